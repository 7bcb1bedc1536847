#!/usr/bin/env bash
# scripts/run-vm.sh [IMAGE] — boot a Cairn disk in QEMU (TCG) with the serial console on this terminal.
# Writes go to a throw-away overlay (build/run/), so IMAGE stays as built. FIRMWARE=bios for SeaBIOS,
# DISK_SIZE (default 4G) for the overlay (ROOT grows to fill it on first boot). Quit with Ctrl-A X.
set -euo pipefail
IMG=${1:-out/cairn.img}
[ -f "$IMG" ] || { echo "run-vm: $IMG missing (run make image)" >&2; exit 1; }
D=build/run
mkdir -p "$D"
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$D/disk.qcow2" "${DISK_SIZE:-4G}"
fw=()
if [ "${FIRMWARE:-efi}" = efi ]; then
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$D/vars.fd"
        fw=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive "if=pflash,format=raw,file=$D/vars.fd")
fi
echo "run-vm: booting $IMG (${FIRMWARE:-efi}); Ctrl-A X quits" >&2
exec qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 1024 -nographic "${fw[@]}" \
        -drive "if=virtio,format=qcow2,file=$D/disk.qcow2" \
        -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
