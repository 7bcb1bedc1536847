#!/usr/bin/env bash
# tests/integration/42-image-oracles.sh — independent tools check the built disk (out/cairn.img):
# sgdisk -v clean, blkid -p finds every PARTLABEL, e2fsck -fn clean on every ext4 partition, fsck.vfat -n
# clean on the ESP, USR-B empty, the initial boot selection (A good, B empty), and /usr within budget.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
W=$(mktemp -d)
. "$(dirname "$0")/../lib/loop.sh"
trap 'loop_cleanup; rm -rf "$W"' EXIT

sgdisk -v "$IMG" | tee "$W/v" | grep -q "No problems found" || fail "sgdisk -v: $(cat "$W/v")"

# Partition N's bytes as a sparse file (no root needed).
extract() { # N OUT
        local start end
        start=$(sgdisk -i "$1" "$IMG" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p')
        end=$(sgdisk -i "$1" "$IMG" | sed -n 's/^Last sector: \([0-9]*\) .*/\1/p')
        dd if="$IMG" of="$2" bs=512 skip="$start" count=$((end - start + 1)) conv=sparse status=none
}
declare -A LABEL=([1]=EFI-SYSTEM [2]=BIOS-BOOT [3]=USR-A [4]=USR-B [6]=OEM [9]=ROOT)
for n in "${!LABEL[@]}"; do
        sgdisk -i "$n" "$IMG" | grep -q "Partition name: '${LABEL[$n]}'" || fail "partition $n is not ${LABEL[$n]}"
done
for n in 3 6 9; do
        extract $n "$W/p$n"
        e2fsck -fn "$W/p$n" >"$W/fsck$n" 2>&1 || fail "e2fsck -fn on ${LABEL[$n]}: $(cat "$W/fsck$n")"
        echo "e2fsck ${LABEL[$n]}: $(tail -n1 "$W/fsck$n")"
done
extract 1 "$W/p1"
fsck.vfat -n "$W/p1" >"$W/vfat" 2>&1 || fail "fsck.vfat -n on the ESP: $(cat "$W/vfat")"
extract 4 "$W/p4"
cmp -s "$W/p4" <(head -c "$(stat -c %s "$W/p4")" /dev/zero) || fail "USR-B is not empty"

# The slot's content: kernel, initramfs, init, our binaries; used space within the 64 MiB budget.
for f in /boot/vmlinuz /boot/initrd /sbin/init /bin/busybox /lib/os-release /share/cairn/etc/inittab; do
        debugfs -R "stat $f" "$W/p3" 2>/dev/null | grep -q '^Inode:' || fail "USR-A lacks $f"
done
used=$(dumpe2fs -h "$W/p3" 2>/dev/null | awk -F: '/^Block count/{b=$2} /^Free blocks/{f=$2} /^Block size/{s=$2} END{print int((b-f)*s/1048576)}')
echo "/usr used: ${used} MiB"
[ "$used" -le 64 ] || fail "/usr uses ${used} MiB, more than the 64 MiB budget"

# The initial boot selection, read by the stock tool from the ESP and by cairn-bootcfg.
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$W/p1" ::/EFI/BOOT/grubenv "$W/grubenv"
grub-editenv "$W/grubenv" list | tee "$W/env"
for kv in A_PRIORITY=1 A_SUCCESSFUL=1 B_PRIORITY=0 B_SUCCESSFUL=0; do grep -qx "$kv" "$W/env" || fail "grubenv lacks $kv"; done
build/bin/cairn-bootcfg --disk "$IMG" status --json >"$W/status.json"
python3 - "$W/status.json" <<'PY' || fail "cairn-bootcfg status: $(cat "$W/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
a, b = s["slots"]["A"], s["slots"]["B"]
assert s["next"] == "A", s
assert (a["priority"], a["successful"]) == (1, 1) and b["priority"] == 0, s
PY

# blkid -p (libblkid's low-level probe) on the partitions as block devices.
if [ "$(id -u)" = 0 ] && loop_attach "$IMG"; then
        for n in "${!LABEL[@]}"; do
                got=$(blkid -p -s PART_ENTRY_NAME -o value "${LOOP_DEV}p$n")
                [ "$got" = "${LABEL[$n]}" ] || fail "blkid -p ${LOOP_DEV}p$n: PARTLABEL '$got', want '${LABEL[$n]}'"
        done
        blkid -p -s TYPE -o value "${LOOP_DEV}p1" | grep -qx vfat || fail "blkid: ESP is not vfat"
        for n in 3 6 9; do blkid -p -s TYPE -o value "${LOOP_DEV}p$n" | grep -qx ext4 || fail "blkid: ${LABEL[$n]} is not ext4"; done
        echo "blkid -p: all PARTLABELs found"
else
        echo "note: no loop devices; blkid -p checked through the extracted partitions only"
        for n in 3 6 9; do blkid -p -s TYPE -o value "$W/p$n" | grep -qx ext4 || fail "blkid: ${LABEL[$n]} is not ext4"; done
fi
echo "42-image-oracles: ok"
