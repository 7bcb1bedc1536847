#!/usr/bin/env bash
# cost: 60
# tests/integration/11-mkdisk.sh — cairn-mkdisk builds the Cairn disk layout; sgdisk, blkid and (with root and
# loop devices) a real grub-bios-setup --no-rs-codes run are the oracles. Bad input fails with one line and no output.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
MKDISK=$PWD/build/bin/cairn-mkdisk
[ -x "$MKDISK" ] || { echo "FAIL: $MKDISK not built"; exit 1; }
for t in sgdisk grub-mkimage blkid; do command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }; done
BOOT_IMG=/usr/lib/grub/i386-pc/boot.img
[ -f $BOOT_IMG ] || { echo "skip: $BOOT_IMG missing (grub-pc-bin)"; exit 77; }

W=$(mktemp -d)
. "$(dirname "$0")/../lib/loop.sh"
cleanup() {
        loop_cleanup
        rm -rf "$W"
}
on_exit cleanup


cd "$W"
head -c 3000000 /dev/urandom >usr.bin
dd if=/dev/zero bs=1M count=2 status=none >>usr.bin      # a zero tail: must stay sparse
head -c 1000 /dev/urandom >>usr.bin                       # and data after it
grub-mkimage -O i386-pc -o core.img -p '(hd0,gpt1)/grub' biosdisk part_gpt fat

LAYOUT=(--part 1:EFI-SYSTEM:esp:64M --part 2:BIOS-BOOT:bios:2M --part 3:USR-A:usr:512M:usr.bin
        --part 4:USR-B:usr:512M --part 6:OEM:linux:32M --part 9:ROOT:root:128M)
mk() { "$MKDISK" --size 1300M --bios-boot-code $BOOT_IMG --bios-core core.img "${LAYOUT[@]}" "$@"; }

mk -o disk.img --seed one
mk -o same.img --seed one
mk -o other.img --seed two

# 1. sgdisk: no problems, labels, types, GUIDs, 1 MiB alignment.
sgdisk -v disk.img | tee v.txt
grep -q "No problems found" v.txt || fail "sgdisk -v reports problems"
sgdisk -p disk.img | tee p.txt
grep -q "Partitions will be aligned on 2048-sector boundaries" p.txt || fail "not 1 MiB aligned"
expect() { # num label typeguid start
        sgdisk -i "$1" disk.img >i.txt
        grep -q "Partition name: '$2'" i.txt || fail "partition $1 name is not $2: $(cat i.txt)"
        grep -q "Partition GUID code: $3" i.txt || fail "partition $1 type is not $3"
        grep -q "First sector: $4 " i.txt || fail "partition $1 does not start at $4"
}
expect 1 EFI-SYSTEM C12A7328-F81F-11D2-BA4B-00A0C93EC93B 2048
expect 2 BIOS-BOOT 21686148-6449-6E6F-744E-656564454649 133120
expect 3 USR-A 8484680C-9521-48C6-9C11-B0720656F69E 137216
expect 4 USR-B 8484680C-9521-48C6-9C11-B0720656F69E 1185792
expect 6 OEM 0FC63DAF-8483-4772-8E79-3D69D8477DE4 2234368
expect 9 ROOT 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 2299904
[ "$(sgdisk -p disk.img | awk '$1 ~ /^[0-9]+$/ {print $1}' | tr '\n' ' ')" = "1 2 3 4 6 9 " ] || fail "wrong entry numbers"
sgdisk -i 9 disk.img | grep -q "Last sector: 2562047 " || fail "ROOT size wrong"

# 2. Reproducible: same seed, same bytes; other seed, other GUIDs (same layout).
[ "$(sha256sum <disk.img)" = "$(sha256sum <same.img)" ] || fail "same seed gave different images"
g1=$(sgdisk -i 9 disk.img | grep "unique GUID"); g2=$(sgdisk -i 9 other.img | grep "unique GUID")
[ "$g1" != "$g2" ] || fail "different seeds gave the same partition GUID"
d1=$(sgdisk -p disk.img | grep "Disk identifier"); d2=$(sgdisk -p other.img | grep "Disk identifier")
[ "$d1" != "$d2" ] || fail "different seeds gave the same disk GUID"
u3=$(sgdisk -i 3 disk.img | sed -n 's/Partition unique GUID: //p'); u4=$(sgdisk -i 4 disk.img | sed -n 's/Partition unique GUID: //p')
[ "$u3" != "$u4" ] || fail "USR-A and USR-B share a GUID"

# 3. Contents: USR-A holds the file, USR-B is zero, the output is sparse.
cmp <(dd if=disk.img bs=512 skip=137216 count=$(( ($(stat -c %s usr.bin) + 511) / 512 )) status=none | head -c "$(stat -c %s usr.bin)") usr.bin \
        || fail "USR-A does not hold the file"
cmp -n $((512 << 20)) <(dd if=disk.img bs=1M skip=$((1185792 / 2048)) count=512 status=none) /dev/zero || fail "USR-B not empty"
alloc=$(( $(stat -c %b disk.img) * $(stat -c %B disk.img) ))
[ "$alloc" -lt $((8 * 1024 * 1024)) ] || fail "output not sparse ($alloc bytes allocated)"

# 4. blkid with offsets finds PARTLABEL and PARTUUID.
blkid -p -o export disk.img | tee b.txt
grep -q "PTTYPE=gpt" b.txt || fail "blkid does not see a GPT"
if command -v cgpt >/dev/null; then cgpt show disk.img | grep -q "Label: \"ROOT\"" || fail "cgpt disagrees"
else echo "note: cgpt not installed (vboot-utils in Debian 12 lacks it); sgdisk and blkid are the oracles"; fi

# 5. MBR: protective entry, GRUB boot code patched as grub-bios-setup does.
[ "$(od -An -tx1 -j 450 -N1 disk.img | tr -d ' ')" = ee ] || fail "no protective MBR"
[ "$(od -An -tu8 -j $((0x5c)) -N8 disk.img | tr -d ' ')" = 133120 ] || fail "kernel sector not patched"
[ "$(od -An -tx1 -j $((0x64)) -N1 disk.img | tr -d ' ')" = ff ] || fail "boot drive not 0xFF"
[ "$(od -An -tx1 -j $((0x66)) -N2 disk.img | tr -d ' ')" = 9090 ] || fail "drive check jump not NOPed"
[ "$(od -An -tu8 -j $((133120 * 512 + 500)) -N8 disk.img | tr -d ' ')" = 133121 ] || fail "core.img blocklist start"
core_sectors=$(( ($(stat -c %s core.img) + 511) / 512 ))
[ "$(od -An -tu2 -j $((133120 * 512 + 508)) -N2 disk.img | tr -d ' ')" = $((core_sectors - 1)) ] || fail "core.img blocklist length"

# 6. Oracle: the real grub-bios-setup --no-rs-codes on a copy built without boot code must produce the same
#    MBR and BIOS-BOOT bytes. Needs root, loop devices and a mountable ext4 for GRUB's directory.
SETUP=/usr/lib/grub/i386-pc/grub-bios-setup
if [ "$(id -u)" = 0 ] && [ -x $SETUP ] && "$MKDISK" -o plain.img --size 1300M --seed one "${LAYOUT[@]}" && loop_attach plain.img \
        && L=$LOOP_DEV && [ -b "${L}p1" ]; then
        mkfs.ext4 -q "${L}p1" && mkdir -p m && mount "${L}p1" m && LOOP_MNTS+=("$W/m")
        cp $BOOT_IMG core.img m/
        $SETUP --no-rs-codes -d m -b boot.img -c core.img "$L"
        umount m; LOOP_MNTS=()
        cmp <(head -c 512 plain.img) <(head -c 512 disk.img) || fail "MBR differs from grub-bios-setup's"
        cmp <(dd if=plain.img bs=512 skip=133120 count=4096 status=none) <(dd if=disk.img bs=512 skip=133120 count=4096 status=none) \
                || fail "BIOS-BOOT differs from grub-bios-setup's"
        echo "grub-bios-setup oracle: MBR and BIOS-BOOT identical"
        # blkid on the loop partitions of our image sees every PARTLABEL.
        loop_attach disk.img; L2=$LOOP_DEV
        for pl in EFI-SYSTEM BIOS-BOOT USR-A USR-B OEM ROOT; do
                blkid -p -s PART_ENTRY_NAME -o value "${L2}p$(sgdisk -p disk.img | awk -v l=$pl '$NF == l {print $1}')" | grep -qx "$pl" \
                        || fail "blkid does not find PARTLABEL $pl"
        done
else
        echo "note: grub-bios-setup/loop oracle not run (needs root and loop devices)"
fi

# 7. Bad input: one line, non-zero, nothing left behind.
bad() { # expected-substring args...
        local want=$1; shift
        set +e; "$MKDISK" "$@" 2>err.txt; local rc=$?; set -e
        [ $rc -ne 0 ] || fail "accepted bad input: $*"
        [ "$(wc -l <err.txt)" = 1 ] || fail "expected one error line, got: $(cat err.txt)"
        grep -q -- "$want" err.txt || fail "error lacks '$want': $(cat err.txt)"
        echo "ok (rc=$rc): $(cat err.txt)"
}
head -c $((3 * 1024 * 1024)) /dev/urandom >big.bin
bad '"big.bin"' -o out.img --size 64M --seed s --part 1:A:linux:2M:big.bin
grep -q "partition 1 \"A\"" err.txt || fail "file-too-big message does not name the partition"
bad "too small" -o out.img --size 64M --seed s --part 1:A:linux:32M --part 2:B:linux:40M
bad "unknown partition type" -o out.img --size 64M --seed s --part 1:A:nosuch:2M
bad "only the last" -o out.img --size 64M --seed s --part 1:A:linux:rest --part 2:B:linux:2M
bad "given twice" -o out.img --size 64M --seed s --part 1:A:linux:2M --part 1:B:linux:2M
bad "core.img" -o out.img --size 64M --seed s --bios-boot-code $BOOT_IMG --bios-core core.img --part 1:B:bios:8K
bad "Cannot create the output" -o /nonexistent/dir/out.img --size 64M --seed s --part 1:A:linux:2M
[ ! -e out.img ] || fail "output left behind"
[ -z "$(ls | grep tmp)" ] || fail "temp file left behind: $(ls)"
mkdir -p ro && chmod 555 ro
if [ "$(id -u)" != 0 ]; then bad "Cannot create" -o ro/out.img --size 64M --seed s --part 1:A:linux:2M; fi

echo "11-mkdisk: all checks passed"
