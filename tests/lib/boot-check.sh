#!/usr/bin/env bash
# tests/lib/boot-check.sh FIRMWARE — boot the built image (out/cairn.img) twice under FIRMWARE (efi|bios)
# on a disk larger than the image: the first boot reaches the ready line for slot A and grows ROOT to the
# end of the disk; the second boot keeps what the first wrote to /var and has nothing left to grow.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
FW=$1
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
. "$(dirname "$0")/vm.sh"
VERSION=$(cat VERSION)

disk=$VM_DIR/disk.qcow2
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 3G

# Boot 1: first boot.
vm_start vm "$disk" --firmware "$FW" --no-overlay
vm_wait vm "Cairn $VERSION \(slot A\) ready" 300 || fail "first boot did not reach the ready line"
vm_grep vm "cairn-growroot: ROOT grown" || fail "ROOT was not grown on first boot"
out=$(vm_run vm 'cat /proc/cmdline') || fail "cmdline: $out"
grep -q 'cairn.slot=A' <<<"$out" || fail "kernel command line lacks cairn.slot=A: $out"
grep -q 'cairn.usr=PARTUUID=' <<<"$out" || fail "kernel command line lacks the USR PARTUUID: $out"
size1=$(vm_run vm "df -k / | awk 'NR==2{print \$2}'") || fail "df failed"
[ "$size1" -gt $((1500 * 1024)) ] || fail "ROOT is only ${size1} KiB after growing on a 3 GiB disk"
vm_run vm "grep ' /usr ' /proc/mounts | grep -q ' ro[, ]'" || fail "/usr is not mounted read-only"
vm_run vm "grep -q '^/dev/mapper/usr /usr ' /proc/mounts" || fail "/usr is not mounted from the dm-verity device"
vm_run vm 'touch /usr/x 2>/dev/null' && fail "/usr is writable"
vm_run vm '[ -L /etc/os-release ] && grep -q "VERSION_ID='"$VERSION"'" /etc/os-release' || fail "/etc not seeded from /usr"
if [ "$FW" = efi ]; then
        vm_run vm '[ -d /sys/firmware/efi ]' || fail "booted under OVMF but the kernel sees no EFI"
else
        vm_run vm '[ ! -d /sys/firmware/efi ]' || fail "booted under SeaBIOS but the kernel sees EFI"
fi
marker=boot1-$RANDOM$RANDOM
vm_run vm "echo $marker >/var/lib/cairn/marker && sync" || fail "cannot write to /var"
vm_poweroff vm 120

# Boot 2: the same disk.
vm_start vm "$disk" --firmware "$FW" --no-overlay
vm_wait vm "Cairn $VERSION \(slot A\) ready" 300 || fail "second boot did not reach the ready line"
vm_grep vm "cairn-growroot: ROOT already fills the disk" || fail "second boot tried to grow ROOT again"
got=$(vm_run vm 'cat /var/lib/cairn/marker') || fail "marker from the first boot is gone"
[ "$got" = "$marker" ] || fail "marker changed: '$got' != '$marker'"
size2=$(vm_run vm "df -k / | awk 'NR==2{print \$2}'")
[ "$size2" = "$size1" ] || fail "ROOT size changed between boots ($size1 → $size2 KiB)"
vm_poweroff vm 120
echo "boot-check $FW: ok (ROOT ${size1} KiB, marker kept)"
