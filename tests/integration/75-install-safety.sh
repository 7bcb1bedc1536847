#!/usr/bin/env bash
# cost: 120
# tests/integration/75-install-safety.sh — cairn-install refuses targets in use, on loop devices (no QEMU):
# an image file attached to a loop device, a whole disk with a mounted partition (even with --force), a
# partition instead of a whole disk; each with one clear line, and the disk's bytes unchanged.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
B=$PWD/build/bin
. "$(dirname "$0")/../lib/common.sh"
tmpdir W 75-install-safety
. "$(dirname "$0")/../lib/loop.sh"
on_exit loop_cleanup
echo x >"$W/payload.cairn"   # never read: every refusal below comes first
mkdir -p "$W/keys"

cp --sparse=always "$IMG" "$W/disk.img"
sum=$(sha256sum <"$W/disk.img")
loop_attach "$W/disk.img" || { echo "SKIP: cannot attach a loop device"; exit 77; }
dev=$LOOP_DEV
"$B/cairn-install" -d "$W/disk.img" -f "$W/payload.cairn" -k "$W/keys" --force 2>"$W/err" && fail "an attached image file was accepted"
grep -q "is attached to a loop device" "$W/err" || fail "attached file: $(cat "$W/err")"
"$B/cairn-install" -d "${dev}p1" -f "$W/payload.cairn" -k "$W/keys" --force 2>"$W/err" && fail "a partition was accepted"
grep -q "is a partition; give the whole disk" "$W/err" || fail "partition: $(cat "$W/err")"
mkdir -p "$W/mnt"
mount -o ro "${dev}p6" "$W/mnt" || { echo "SKIP: cannot mount the OEM partition of a loop device"; exit 77; }
LOOP_MNTS+=("$W/mnt")
"$B/cairn-install" -d "$dev" -f "$W/payload.cairn" -k "$W/keys" --force 2>"$W/err" && fail "a disk with a mounted partition was accepted"
grep -q "'${dev}p6' is mounted; unmount it first" "$W/err" || fail "mounted: $(cat "$W/err")"
umount "$W/mnt"
LOOP_MNTS=()
# unmounted, without --force: the partitions stop it
"$B/cairn-install" -d "$dev" -f "$W/payload.cairn" -k "$W/keys" 2>"$W/err" && fail "a partitioned loop disk was accepted"
grep -q "has partitions; give --force" "$W/err" || fail "partitions: $(cat "$W/err")"
[ "$(sha256sum <"$W/disk.img")" = "$sum" ] || fail "a refused install changed the disk"
echo "75-install-safety: ok"
