#!/usr/bin/env bash
# scripts/bench/tpm.sh — measured boot costs, side by side with their baselines (one run each unless noted):
#  1. `cairn-tpm predict` on the built disk (out/cairn.img, slot A), 4 banks and 1 bank, best of 5, against the
#     floor it cannot beat: sha256sum + sha1sum + sha384sum + sha512sum of the same kernel and initrd.
#  2. the initramfs's PCR 11 measurement: boot to the ready line under OVMF + swtpm with it and without it
#     (cairn.measure=0 via CAIRN_EXTRA_CMDLINE in the grubenv), same run; and cairn-tpm-initrd itself, 20 runs on
#     this host against swtpm (the helper lives only in the initramfs).
# Not part of `make check`; timings are never assertions. SKIP_BOOT=1 skips the boots.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMG=${CAIRN_IMAGE:-out/cairn.img}
TPM=build/bin/cairn-tpm
[ -f "$IMG" ] || { echo "tpm bench: $IMG missing (make image)" >&2; exit 1; }
. tests/lib/common.sh
tmpdir T bench-tpm
best() { # N command...: best wall seconds of N runs
        local n=$1 b=999 s e; shift
        for _ in $(seq "$n"); do
                s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
                b=$(echo "$b $s $e" | awk '{t=$3-$2; print (t<$1)?t:$1}')
        done
        echo "$b"
}
p4=$(best 5 "$TPM" predict --disk "$IMG")
p1=$(best 5 "$TPM" predict --disk "$IMG" --banks sha256)
start=$(sgdisk -i 3 "$IMG" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p')
size=$(sgdisk -i 3 "$IMG" | sed -n 's/^Partition size: \([0-9]*\) sectors.*/\1/p')
dd if="$IMG" of="$T/usr.img" bs=512 skip="$start" count="$size" status=none
k=$(debugfs -R "stat /boot/vmlinuz" "$T/usr.img" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"/\1/p')
debugfs -R "dump /boot/${k:-vmlinuz} $T/vmlinuz" "$T/usr.img" >/dev/null 2>&1
debugfs -R "dump /boot/initrd $T/initrd" "$T/usr.img" >/dev/null 2>&1
mb=$(du -cm "$T/vmlinuz" "$T/initrd" | tail -1 | cut -f1)
hashall() { for h in sha256sum sha1sum sha384sum sha512sum; do $h "$T/vmlinuz" "$T/initrd"; done; }
floor=$(best 5 hashall)
printf '%-44s %10s\n' "predict (slot A, kernel+initrd ${mb} MiB)" "seconds"
printf '%-44s %10.3f\n' "cairn-tpm predict, 4 banks" "$p4" "cairn-tpm predict, sha256 only" "$p1" \
        "baseline: sha{1,256,384,512}sum of the files" "$floor"

# The measurer alone, on this host against swtpm (sha1 + sha256 banks): 20 runs of the three extends + log writes.
mkdir -p "$T/st"
swtpm_setup --tpm2 --tpmstate "$T/st" --pcr-banks sha1,sha256 >/dev/null 2>&1
for _ in 1 2 3 4 5; do
        port=$((30000 + RANDOM % 20000))
        swtpm socket --tpm2 --tpmstate dir="$T/st" --server type=tcp,port=$port --ctrl type=tcp,port=$((port + 1)) \
                --flags not-need-init,startup-clear --pid file="$T/st/pid" --daemon 2>/dev/null && break
done
printf 'VERSION_ID=0.1.0\n' >"$T/osr"
one() { build/bin/cairn-tpm-initrd --device tcp:127.0.0.1:$port --os-release "$T/osr" --efivars "$T/none" \
        --firmware "$T/none" --usrhash "$(printf '%064d' 0)" --log "/dev/shm/cairn-bench-tpm.log" >/dev/null; rm -f /dev/shm/cairn-bench-tpm.log; }
s=$(date +%s.%N); for _ in $(seq 20); do one; done; e=$(date +%s.%N)
kill "$(cat "$T/st/pid")"
per=$(echo "$s $e" | awk '{printf "%.2f", ($2-$1)*1000/20}')
printf '%-44s %10s\n' "cairn-tpm-initrd vs swtpm (log on tmpfs), per run" "$per ms"

[ "${SKIP_BOOT:-0}" = 1 ] && { rm -rf "$T"; exit 0; }
VM_DIR=$T/vm
. tests/lib/vm.sh
d=$T/disk.img
cp --sparse=always "$IMG" "$d"
esp="$d@@$(($(sgdisk -i 1 "$d" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p') * 512))"
setextra() { # VALUE: CAIRN_EXTRA_CMDLINE in the ESP's grubenv (in place, same size)
        MTOOLS_SKIP_CHECK=1 mcopy -n -i "$esp" ::/EFI/BOOT/grubenv "$T/env"
        if [ -n "$1" ]; then grub-editenv "$T/env" set "CAIRN_EXTRA_CMDLINE=$1"; else grub-editenv "$T/env" unset CAIRN_EXTRA_CMDLINE; fi
        MTOOLS_SKIP_CHECK=1 mcopy -o -n -i "$esp" "$T/env" ::/EFI/BOOT/grubenv
}
boot_secs() { # boot; SECS = seconds to the ready line (not in a subshell: the VM's pid must reach VM_PID here)
        local s e
        s=$(date +%s.%N)
        vm_start vm "$d" --tpm 2>/dev/null
        vm_wait vm "\(slot A\) ready" 400 || { echo "tpm bench: no ready line" >&2; exit 1; }
        e=$(date +%s.%N)
        SECS=$(echo "$s $e" | awk '{printf "%.1f", $2-$1}')
}
# Alternate with/without twice; the guest's own uptime at the ready line (excludes QEMU start, not host load).
boot_up() { # -> UP: guest uptime (s) when the ready line appeared
        boot_secs
        UP=$(vm_run vm 'cut -d" " -f1 /proc/uptime' 60 | tail -n1)
        vm_poweroff vm 120 >/dev/null 2>&1
}
W1= W2= O1= O2=
setextra ""; boot_up; W1=$UP
setextra cairn.measure=0; boot_up; O1=$UP
setextra ""; boot_up; W2=$UP
setextra cairn.measure=0; boot_up; O2=$UP
printf '\n%-44s %10s\n' "boot under OVMF + swtpm (TCG): guest uptime at ready" "seconds"
printf '%-44s %10s\n' "with the PCR 11 measurement (runs 1, 3)" "$W1, $W2" "without, cairn.measure=0 (runs 2, 4)" "$O1, $O2"

rm -rf "$T"
