# tests/lib/vm.sh — boot a Cairn disk in QEMU (TCG only) for tests; source it from bash.
#
#   vm_start NAME DISK [options]   boot DISK (raw or qcow2; booted through a throw-away qcow2 overlay
#                                  unless --no-overlay) in the background. Options:
#       --firmware efi|bios        OVMF (UEFI, default) or SeaBIOS
#       --tpm                      attach a fresh swtpm (TPM 2.0, tpm-crb); state in $VM_DIR/NAME/tpm
#       --mem MIB                  guest memory (default 512)
#       --disk-size SIZE           grow the overlay to SIZE (e.g. 4G) — tests ROOT growing on first boot
#       --hostfwd tcp::HP-:GP      forward 127.0.0.1:HP on the host to guest port GP
#       --guestfwd tcp:10.0.2.100:80-tcp:127.0.0.1:PORT   let the guest reach one host service
#       --no-overlay               write to DISK itself
#       --fw-cfg NAME=FILE         a QEMU fw_cfg item (e.g. opt/org.flatcar-linux/config=config.ign)
#       --disk2 FILE               a second virtio disk (raw, written directly; /dev/vdb in the guest)
#   vm_wait NAME REGEX [SECS]      wait (default 300 s) for an extended-regex line on the serial console,
#                                  counting only output after the last vm_mark; 0 if seen, 1 on timeout/exit
#   vm_mark NAME                   forget console output so far (before a reboot)
#   vm_grep NAME ERE               does the console output since the mark match ERE (no waiting)
#   vm_run NAME CMD [SECS]         run CMD in the guest's console shell; prints its output, returns its
#                                  exit status (124 on timeout)
#   vm_reboot NAME                 reboot the guest cleanly (marks first); vm_reset NAME: hard reset
#   vm_poweroff NAME [SECS]        clean power-off, waiting for QEMU to exit; vm_kill NAME: cut it hard
#   vm_console NAME                path of the console log
# Networking is QEMU user mode with restrict=on: the guest reaches nothing but the forwards given.
# VM_DIR (default: a temp dir) holds each VM's files; vm_cleanup (registered with on_exit of tests/lib/common.sh,
# which this file sources) kills what is left. common.sh's fail prints every guest's console tail (vm_fail_report).

VM_DIR=${VM_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-vm.XXXXXX")}
declare -A VM_PID VM_MARK
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

declare -F on_exit >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
on_exit vm_cleanup

vm_log() { echo "vm: $*" >&2; }

vm_start() {
        local name=$1 disk=$2; shift 2
        local fw=efi tpm=0 mem=512 size= overlay=1 nets=() fwcfg=() d=$VM_DIR/$name
        while [ $# -gt 0 ]; do
                case $1 in
                --firmware) fw=$2; shift ;;
                --tpm) tpm=1 ;;
                --mem) mem=$2; shift ;;
                --disk-size) size=$2; shift ;;
                --hostfwd) nets+=("hostfwd=$2"); shift ;;
                --guestfwd) # tcp:GUESTIP:PORT-tcp:127.0.0.1:HOSTPORT. QEMU's chardev form would carry every guest
                        # connection over one host connection, opened once and never reopened after the host
                        # service closes it (idle keep-alive); a socat per guest connection behaves like a network.
                        if [[ $2 =~ ^(tcp:[0-9.]+:[0-9]+)-tcp:(127\.0\.0\.1:[0-9]+)$ ]]; then
                                nets+=("guestfwd=${BASH_REMATCH[1]}-cmd:socat - TCP:${BASH_REMATCH[2]}")
                        else
                                nets+=("guestfwd=$2")
                        fi
                        shift ;;
                --no-overlay) overlay=0 ;;
                --fw-cfg) fwcfg+=(-fw_cfg "name=${2%%=*},file=${2#*=}"); shift ;;
                --disk2) fwcfg+=(-drive "if=virtio,format=raw,file=$2,cache=unsafe"); shift ;;
                *) vm_log "vm_start: unknown option $1"; return 2 ;;
                esac
                shift
        done
        mkdir -p "$d"
        rm -f "$d/serial.in" "$d/serial.out" "$d/mon.in" "$d/mon.out" "$d/console.log"
        mkfifo "$d/serial.in" "$d/serial.out" "$d/mon.in" "$d/mon.out"
        local fmt drive
        fmt=$(qemu-img info --output=json "$disk" | sed -n 's/.*"format": "\([a-z0-9]*\)".*/\1/p' | head -n1)
        if [ $overlay = 1 ]; then
                drive=$d/disk.qcow2
                qemu-img create -q -f qcow2 -b "$(readlink -f "$disk")" -F "$fmt" "$drive" ${size:+"$size"} || return 1
                fmt=qcow2
        else
                drive=$disk
                [ -n "$size" ] && { qemu-img resize -q -f "$fmt" "$drive" "$size" || return 1; }
        fi
        local args=(-machine q35,accel=tcg -cpu max -smp 1 -m "$mem" -nographic -nodefaults
                -chardev "pipe,id=ser0,path=$d/serial" -serial chardev:ser0
                -chardev "pipe,id=mon0,path=$d/mon" -mon chardev=mon0,mode=readline
                -drive "if=virtio,format=$fmt,file=$drive,cache=unsafe"
                -netdev "user,id=n0,restrict=on$(printf ',%s' "${nets[@]}")" -device virtio-net-pci,netdev=n0)
        args+=("${fwcfg[@]}")
        if [ "$fw" = efi ]; then
                cp "$OVMF_VARS" "$d/vars.fd"
                args+=(-drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" -drive "if=pflash,format=raw,file=$d/vars.fd")
        fi
        if [ $tpm = 1 ]; then
                mkdir -p "$d/tpm"
                swtpm socket --tpm2 --tpmstate "dir=$d/tpm" --ctrl "type=unixio,path=$d/tpm/swtpm.sock" \
                        --log "file=$d/tpm/log" --pid "file=$d/tpm/swtpm.pid" --daemon || return 1
                for _ in $(seq 50); do [ -S "$d/tpm/swtpm.sock" ] && break; sleep 0.1; done
                args+=(-chardev "socket,id=chrtpm,path=$d/tpm/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
                        -device tpm-crb,tpmdev=tpm0)
        fi
        : >"$d/console.log"
        cat "$d/serial.out" >>"$d/console.log" &
        echo $! >"$d/cat.pid"
        cat "$d/mon.out" >>"$d/monitor.log" &
        echo $! >"$d/catmon.pid"
        qemu-system-x86_64 "${args[@]}" >"$d/qemu.log" 2>&1 &
        VM_PID[$name]=$!
        echo "${VM_PID[$name]}" >"$d/qemu.pid"
        VM_MARK[$name]=0
        vm_log "$name: started ($fw, pid ${VM_PID[$name]}, dir $d)"
}

vm_console() { echo "$VM_DIR/$1/console.log"; }
vm_alive() { kill -0 "${VM_PID[$1]:-0}" 2>/dev/null; }
vm_mark() { VM_MARK[$1]=$(stat -c %s "$VM_DIR/$1/console.log"); }

# Console output since the mark, without carriage returns and terminal escape sequences (firmware and GRUB
# move the cursor in the middle of words).
vm_output() {
        tail -c +$((${VM_MARK[$1]:-0} + 1)) "$VM_DIR/$1/console.log" 2>/dev/null | tr -d "\r" |
                sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][A-Z0-9]//g'
}

# vm_grep NAME ERE: does the console since the mark match? (Never `vm_output | grep -q` under pipefail: grep
# leaves at the first match, the writer gets SIGPIPE, and the pipeline fails although the line is there.)
vm_grep() { local out; out=$(vm_output "$1"); grep -Eq -- "$2" <<<"$out"; }

vm_wait() {
        local name=$1 re=$2 secs=${3:-300} end=$((SECONDS + ${3:-300}))
        while [ $SECONDS -lt $end ]; do
                vm_grep "$name" "$re" && return 0
                if ! vm_alive "$name"; then
                        vm_grep "$name" "$re" && return 0
                        vm_log "$name: QEMU exited while waiting for /$re/"
                        return 1
                fi
                sleep 0.5
        done
        vm_log "$name: no /$re/ on the console within ${secs}s; last lines:"
        vm_output "$name" | tail -n 15 | sed 's/^/    | /' >&2
        return 1
}

# The command travels base64-encoded, so the shell's echo of it can never look like the markers.
vm_run() {
        local name=$1 cmd=$2 secs=${3:-120} id=$RANDOM$RANDOM start out rc
        start=$(stat -c %s "$VM_DIR/$name/console.log")
        local b64
        b64=$(printf '%s\n' "$cmd" | base64 -w0)
        printf 'echo "@@B""EG%s"; echo %s | base64 -d >/tmp/.vmcmd; sh /tmp/.vmcmd; echo "@@E""ND%s $?"\n' \
                "$id" "$b64" "$id" >"$VM_DIR/$name/serial.in"
        local end=$((SECONDS + secs))
        while [ $SECONDS -lt $end ]; do
                # Only complete lines count: the console is read while the guest writes it, and a last line cut
                # after "@@END<id> " (or after the first digit of "12") would otherwise match with an empty (or
                # wrong) status — vm_run then returned non-zero although the console showed "@@END<id> 0".
                out=$(tail -c +$((start + 1)) "$VM_DIR/$name/console.log" | tr -d '\r'; printf x)
                out=${out%x}
                if [[ $out != *$'\n' ]]; then
                        if [[ $out == *$'\n'* ]]; then out=${out%$'\n'*}$'\n'; else out=; fi
                fi
                if grep -Eq "^@@END$id [0-9]+$" <<<"$out"; then
                        rc=$(sed -En "s/^@@END$id ([0-9]+)$/\1/p" <<<"$out" | head -n1)
                        sed -n "/^@@BEG$id\$/,/^@@END$id /p" <<<"$out" | sed '1d;$d'
                        return "$rc"
                fi
                vm_alive "$name" || { vm_log "$name: QEMU exited during '$cmd'"; return 125; }
                sleep 0.2
        done
        vm_log "$name: '$cmd' did not finish within ${secs}s"
        return 124
}

vm_monitor() { printf '%s\n' "$2" >"$VM_DIR/$1/mon.in"; }

vm_reboot() { vm_mark "$1"; printf 'reboot\n' >"$VM_DIR/$1/serial.in"; }
vm_reset() { vm_mark "$1"; vm_monitor "$1" system_reset; }

vm_poweroff() {
        local name=$1 secs=${2:-60} end
        printf 'poweroff\n' >"$VM_DIR/$name/serial.in"
        end=$((SECONDS + secs))
        while vm_alive "$name" && [ $SECONDS -lt $end ]; do sleep 0.5; done
        if vm_alive "$name"; then vm_log "$name: did not power off within ${secs}s; quitting QEMU"; vm_monitor "$name" quit; sleep 1; fi
        vm_kill "$name"
}

vm_kill() {
        local name=$1 d=$VM_DIR/$1 p
        if [ -n "${VM_PID[$name]:-}" ]; then
                kill -9 "${VM_PID[$name]}" 2>/dev/null || true
                wait "${VM_PID[$name]}" 2>/dev/null || true
        fi
        for p in cat.pid catmon.pid tpm/swtpm.pid; do
                if [ -f "$d/$p" ]; then kill "$(cat "$d/$p")" 2>/dev/null || true; rm -f "$d/$p"; fi
        done
        unset "VM_PID[$name]"
        return 0
}

# The last lines of every guest's console (all of it, not only since the mark), for a failing test.
vm_fail_report() {
        local c
        for c in "$VM_DIR"/*/console.log; do
                [ -f "$c" ] || continue
                echo "--- console of $(basename "$(dirname "$c")") (tail)"
                tail -n "${FAIL_TAIL:-25}" "$c" | tr -d "\r" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][A-Z0-9]//g'
        done
}

vm_cleanup() {
        local n
        for n in "${!VM_PID[@]}"; do vm_kill "$n"; done
        pkill -f "swtpm socket --tpm2 --tpmstate dir=$VM_DIR/" 2>/dev/null || true
        [ -n "${KEEP_VM:-}" ] || rm -rf "$VM_DIR"
}
