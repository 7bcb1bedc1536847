#!/usr/bin/env bash
# tests/integration/12-growroot.sh — cairn-growroot on a loop device: a disk image grown by 256M gets its backup GPT
# moved, ROOT extended and the mounted ext4 grown online; sgdisk/e2fsck/df are the oracles; a second run is a no-op.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
MKDISK=$PWD/build/bin/cairn-mkdisk GROW=$PWD/build/bin/cairn-growroot
for b in "$MKDISK" "$GROW"; do [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "skip: needs root for loop devices and mount"; exit 77; }
for t in sgdisk mkfs.ext4 e2fsck partx; do command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }; done

W=$(mktemp -d)
. "$(dirname "$0")/../lib/loop.sh"
cleanup() {
        loop_cleanup
        rm -rf "$W"
}
on_exit cleanup
cd "$W"

# ROOT's filesystem, made on a plain file and copied in by mkdisk.
truncate -s 64M root.ext4
mkfs.ext4 -q -O resize_inode -L ROOT root.ext4
"$MKDISK" -o disk.img --size 200M --seed grow --part 1:EFI-SYSTEM:esp:8M --part 6:OEM:linux:8M \
        --part 9:ROOT:root:64M:root.ext4
sgdisk -v disk.img | grep -q "No problems found" || fail "fresh image not clean"
old_end=$(sgdisk -i 9 disk.img | sed -n 's/^Last sector: \([0-9]*\) .*/\1/p')
truncate -s +256M disk.img
sectors=$(( $(stat -c %s disk.img) / 512 ))

L=$(losetup -f --show -P disk.img 2>/dev/null) || { echo "skip: losetup failed (no loop devices)"; exit 77; }
LOOP_DEVS+=("$L")
ls /sys/block/$(basename $L)/$(basename $L)p* >/dev/null 2>&1 || partx -a "$L"
loop_mknodes "$L"
[ -b "${L}p9" ] || fail "no ${L}p9 after partx"
mkdir m && mount "${L}p9" m && LOOP_MNTS+=("$W/m")
echo hello >m/file
before=$(df -B1 --output=size m | tail -1)

# Wrong arguments first: nothing may change.
set +e
"$GROW" "$L" NOSUCH m 2>err.txt; rc=$?
set -e
[ $rc -ne 0 ] && grep -q 'No partition labelled "NOSUCH"' err.txt || fail "missing label not reported: $(cat err.txt)"
set +e
"$GROW" "$L" EFI-SYSTEM m 2>err.txt; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "not the last one" err.txt || fail "non-last partition not refused: $(cat err.txt)"
set +e
"$GROW" "$L" ROOT / 2>err.txt; rc=$?
set -e
[ $rc -ne 0 ] || fail "growroot accepted a mountpoint on another device"
echo "refused: $(cat err.txt)"

# CAP_SYS_RESOURCE (bit 24) is what EXT4_IOC_RESIZE_FS needs; some sandboxes drop it.
have_resource_cap() { (( (0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 24) & 1 )); }

check_gpt() { # the partition side: run with the filesystem unmounted
        sgdisk -v "$L" | tee v.txt
        grep -q "No problems found" v.txt || fail "sgdisk -v reports problems after growing"
        new_end=$(sgdisk -i 9 "$L" | sed -n 's/^Last sector: \([0-9]*\) .*/\1/p')
        echo "ROOT end: $old_end -> $new_end of $sectors sectors"
        [ "$new_end" -gt "$old_end" ] || fail "ROOT did not grow"
        [ $(( (new_end + 1) % 2048 )) = 0 ] || fail "ROOT end not 1 MiB aligned"
        [ $(( sectors - 1 - new_end )) -lt $((2048 + 34)) ] || fail "ROOT does not reach the end of the disk"
        sgdisk -p "$L" | grep -q "last usable sector is $((sectors - 34))" || fail "LastUsableLBA not raised"
        [ "$(cat /sys/block/$(basename $L)/$(basename $L)p9/size)" = $((new_end - old_end + 64 * 2048)) ] \
                || fail "kernel did not see the new partition size"
        e2fsck -fn "${L}p9" || fail "e2fsck reports problems"
}

if ! have_resource_cap; then
        set +e; "$GROW" "$L" ROOT m >out.txt 2>err.txt; rc=$?; set -e
        cat out.txt err.txt
        [ $rc -ne 0 ] && grep -q "Cannot grow the filesystem" err.txt || fail "expected the ext4 resize to be refused without CAP_SYS_RESOURCE"
        umount m; LOOP_MNTS=()
        check_gpt
        echo "skip: online ext4 resize needs CAP_SYS_RESOURCE, which this machine withholds (GPT move, ROOT extension, BLKPG and e2fsck were checked and passed)"
        exit 77
fi

"$GROW" "$L" ROOT m | tee out.txt
grep -q "ROOT grown from 64 to" out.txt || fail "no size line: $(cat out.txt)"
after=$(df -B1 --output=size m | tail -1)
echo "df: $before -> $after"
[ "$after" -gt $((before + 200 * 1024 * 1024)) ] || fail "filesystem did not grow ($before -> $after)"
[ "$(cat m/file)" = hello ] || fail "file lost"

# Second run: no-op.
"$GROW" "$L" ROOT m | tee out2.txt
grep -qx "cairn-growroot: ROOT already fills the disk" out2.txt || fail "second run was not a no-op: $(cat out2.txt)"

umount m; LOOP_MNTS=()
check_gpt
echo "12-growroot: all checks passed"
