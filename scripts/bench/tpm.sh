#!/usr/bin/env bash
# scripts/bench/tpm.sh — measured boot costs, side by side with their baselines (one run each unless noted):
#  1. `cairn-tpm predict` on the built disk (out/cairn.img, slot A), 4 banks and 1 bank, best of 5, against the
#     floor it cannot beat: sha256sum + sha1sum + sha384sum + sha512sum of the same kernel and initrd.
#  2. the initramfs's PCR 11 measurement: boot to the ready line under OVMF + swtpm with it and without it
#     (cairn.measure=0 via CAIRN_EXTRA_CMDLINE in the grubenv), same run; and cairn-tpm-initrd itself timed in the
#     booted guest (5 runs against the guest's TPM, log in /tmp).
# Not part of `make check`; timings are never assertions. SKIP_BOOT=1 skips part 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMG=${CAIRN_IMAGE:-out/cairn.img}
TPM=build/bin/cairn-tpm
[ -f "$IMG" ] || { echo "tpm bench: $IMG missing (make image)" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
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

[ "${SKIP_BOOT:-0}" = 1 ] && exit 0
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
boot_secs() { # boot; SECS = seconds to the ready line (not in a subshell: vm.sh's EXIT trap would end the VM)
        local s e
        s=$(date +%s.%N)
        vm_start vm "$d" --tpm 2>/dev/null
        vm_wait vm "\(slot A\) ready" 400 || { echo "tpm bench: no ready line" >&2; exit 1; }
        e=$(date +%s.%N)
        SECS=$(echo "$s $e" | awk '{printf "%.1f", $2-$1}')
}
boot_secs
with=$SECS
vm_run vm 'osr=/usr/lib/os-release; dev=$(cairn-findpart PARTLABEL=USR-A); i=0; while [ $i -lt 5 ]; do
s=$(date +%s%N); cairn-tpm-initrd --usr-dev $dev --os-release $osr --log /tmp/b$i.log >/dev/null 2>&1; e=$(date +%s%N)
echo $(( (e - s) / 1000 )); i=$((i + 1)); done' 120 >"$T/inguest"
inguest=$(sort -n "$T/inguest" | head -1)
vm_poweroff vm 120 >/dev/null 2>&1
setextra cairn.measure=0
boot_secs
without=$SECS
vm_poweroff vm 120 >/dev/null 2>&1
printf '\n%-44s %10s\n' "boot under OVMF + swtpm (TCG), to ready" "seconds"
printf '%-44s %10s\n' "with the PCR 11 measurement" "$with" "without (cairn.measure=0)" "$without"
printf '%-44s %10s\n' "cairn-tpm-initrd in the guest, best of 5" "${inguest} us"
rm -rf "$T"
