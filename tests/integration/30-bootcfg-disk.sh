#!/usr/bin/env bash
# tests/integration/30-bootcfg-disk.sh — cairn-bootcfg on a disk image made like the image build makes it: status
# (human and --json), every verb on both backends, guard rails, grub-editenv and sgdisk cross-checks both ways, and
# corrupt state (env block, GPT CRC) reported clearly with the bytes left untouched.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/loop.sh"
BC=$PWD/build/bin/cairn-bootcfg
MKDISK=$PWD/build/bin/cairn-mkdisk
for b in "$BC" "$MKDISK"; do [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }; done
for t in mkfs.vfat mcopy grub-editenv sgdisk mke2fs python3; do
        command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
export MTOOLS_SKIP_CHECK=1
tmpdir W bootcfg
on_exit loop_cleanup
cd "$W"

# The fixture: an ESP as scripts/build-image.sh makes it, an ext4 USR-A, an empty USR-B.
mkdir -p esp/EFI/BOOT
grub-editenv esp/EFI/BOOT/grubenv create
grub-editenv esp/EFI/BOOT/grubenv set A_PRIORITY=1 A_TRIES=0 A_SUCCESSFUL=1 B_PRIORITY=0 B_TRIES=0 B_SUCCESSFUL=0
cp esp/EFI/BOOT/grubenv esp/EFI/BOOT/grubenv.bak
echo 'set timeout=0' >esp/EFI/BOOT/grub.cfg
mkfs.vfat -C -F 32 -n EFI-SYSTEM esp.img 34000 >/dev/null
mcopy -s -m -Q -i esp.img esp/EFI ::/
truncate -s 4M usr.img
mke2fs -q -t ext4 -F usr.img
"$MKDISK" -o fresh.img --size 64M --seed bootcfg --part 1:EFI-SYSTEM:esp:34M:esp.img --part 2:BIOS-BOOT:bios:1M \
        --part 3:USR-A:usr:4M:usr.img --part 4:USR-B:usr:4M --part 6:OEM:linux:1M --part 9:ROOT:root:rest
ESP='disk.img@@1M' # partition 1 starts at 1 MiB
B_START=$(sgdisk -i 4 fresh.img | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
[ -n "$B_START" ] || fail "cannot find USR-B's first sector"
fill_b() { dd if=usr.img of=disk.img bs=512 seek="$B_START" conv=notrunc status=none; }

bc() { "$BC" --disk disk.img --state-dir "$W/state" "$@"; }
# expect_fail "what" "message regex" cmd...: must exit 1 with one line matching the regex.
expect_fail() {
        local what=$1 re=$2; shift 2
        if "$@" >out.txt 2>err.txt; then fail "$what: succeeded"; fi
        grep -Eq "$re" err.txt || fail "$what: message '$(cat err.txt)' does not match /$re/"
        [ "$(wc -l <err.txt)" -eq 1 ] || fail "$what: more than one error line: $(cat err.txt)"
        echo "ok: $what refused: $(cat err.txt)"
}
env_list() { mcopy -o -i "$ESP" "::/EFI/BOOT/$1" x.env && grub-editenv x.env list; }
json() { bc "$@" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$J"; }
j() { J=$1; shift; json "$@"; }

# ---------------- grubenv backend ----------------
cp --sparse=always fresh.img disk.img
bc status | tee status.txt
grep -Eq '^A +1 +0 +yes' status.txt || fail "status: slot A line"
grep -Eq '^B +0 +0 +no' status.txt || fail "status: slot B line"
grep -q '^next: *A' status.txt || fail "status: next is not A"
grep -q '^booted: *unknown' status.txt || fail "status: booted should be unknown on an image"
[ "$(j 'd["next"]')" = A ] || fail "json next"
[ "$(j 'd["booted"]')" = None ] || fail "json booted"
[ "$(j 'd["slots"]["A"]["successful"]')" = True ] || fail "json A successful"
[ "$(j 'd["slots"]["B"]["priority"]')" = 0 ] || fail "json B priority"
echo "cairn.slot=A root=/dev/sda9 quiet" >cmdline
[ "$(j 'd["booted"]' --cmdline cmdline)" = A ] || fail "booted from --cmdline"
[ "$(CAIRN_CMDLINE=cmdline j 'd["booted"]')" = A ] || fail "booted from CAIRN_CMDLINE"
[ "$(j 'd["booted"]' --booted B)" = B ] || fail "booted from --booted"

# Guard rails.
expect_fail "set-next of empty B" 'slot B .*no ext4 file system' bc set-next B
expect_fail "mark-bad of the only good slot" 'only good slot' bc mark-bad A
expect_fail "rollback without a good other slot" 'not a good slot' bc --booted A rollback
expect_fail "mark-good without a booted slot" 'booted slot is unknown' bc mark-good
expect_fail "bad slot name" 'not a slot' bc set-next C
[ "$(j 'd["next"]')" = A ] || fail "refusals changed the state"

# Put A's file system into B, verify it, and make B next.
fill_b
H=$(sha256sum usr.img | cut -c1-64)
expect_fail "set-next of unverified B" 'not verified' bc set-next B
expect_fail "verify with a wrong hash" 'does not match' bc verify B "$(echo x | sha256sum | cut -c1-64)"
bc verify B "$H"
[ "$(j 'd["slots"]["B"]["verified"]')" = True ] || fail "B not verified after verify"
bc set-next B
env_list grubenv >l.txt
grep -qx B_PRIORITY=2 l.txt && grep -qx B_TRIES=1 l.txt && grep -qx B_SUCCESSFUL=0 l.txt || fail "grub-editenv: $(cat l.txt)"
grep -qx A_PRIORITY=1 l.txt && grep -qx A_SUCCESSFUL=1 l.txt || fail "grub-editenv A: $(cat l.txt)"
env_list grubenv.bak | cmp - l.txt || fail "grubenv.bak differs from grubenv"
[ "$(j 'd["next"]')" = B ] || fail "next is not B after set-next"

# The loader boots B and decrements tries (GRUB's save_env, emulated with grub-editenv in place).
mcopy -o -i "$ESP" ::/EFI/BOOT/grubenv g.env
grub-editenv g.env set B_TRIES=0
mcopy -o -i "$ESP" g.env ::/EFI/BOOT/grubenv
[ "$(j 'd["slots"]["B"]["tries"]')" = 0 ] || fail "did not read grub-editenv's write"
[ "$(j 'd["next"]')" = A ] || fail "B out of tries: A must be next"
echo "cairn.slot=B" >cmdline
bc --cmdline cmdline mark-good
[ "$(j 'd["next"]')" = B ] || fail "B good: next must be B"
[ "$(j 'd["slots"]["B"]["successful"]')" = True ] || fail "mark-good"
bc --cmdline cmdline rollback
[ "$(j 'd["next"]')" = A ] || fail "rollback: next must be A"
[ "$(j 'd["slots"]["A"]["priority"]')" = 3 ] || fail "rollback: A priority"
bc mark-bad B
env_list grubenv >l.txt
grep -qx B_PRIORITY=0 l.txt && grep -qx B_SUCCESSFUL=0 l.txt || fail "mark-bad B: $(cat l.txt)"
bc --force set-next B >/dev/null
bc unverify B

# A foreign variable survives every edit.
mcopy -o -i "$ESP" ::/EFI/BOOT/grubenv g.env
grub-editenv g.env set saved_entry=cairn
mcopy -o -i "$ESP" g.env ::/EFI/BOOT/grubenv
bc --force mark-bad B >/dev/null
env_list grubenv | grep -qx saved_entry=cairn || fail "foreign variable lost"

# Corrupt primary: clear error naming the file, nothing written; repair restores it from the copy.
mcopy -o -i "$ESP" ::/EFI/BOOT/grubenv g.env
sed -i 's/^A_PRIORITY=3$/A_PRIORITY=Z/' g.env
mcopy -o -i "$ESP" g.env ::/EFI/BOOT/grubenv
cp disk.img before.img
expect_fail "status on a corrupt env" 'grubenv.* is corrupt: line [0-9]+: A_PRIORITY' bc status
expect_fail "mark-good on a corrupt env" 'corrupt' bc mark-good A
expect_fail "set-next on a corrupt env" 'corrupt' bc --force set-next B
cmp disk.img before.img || fail "a refused verb changed the disk"
mcopy -o -i "$ESP" ::/EFI/BOOT/grubenv g2.env
cmp g.env g2.env || fail "corrupt grubenv was rewritten"
bc repair | grep -q repaired || fail "repair"
bc status >/dev/null
env_list grubenv | grep -qx A_PRIORITY=3 || fail "repair did not restore the copy"

# ---------------- gpt backend ----------------
cp --sparse=always fresh.img disk.img
fill_b
g() { bc --backend gpt "$@"; }
attrs() { sgdisk -i "$1" disk.img | sed -n 's/^Attribute flags: //p'; }
# We read what sgdisk writes.
sgdisk -A 3:set:48 -A 3:set:56 disk.img >/dev/null
[ "$(J='d["slots"]["A"]["priority"]' json --backend gpt)" = 1 ] || fail "gpt: sgdisk-set priority not read"
[ "$(J='d["next"]' json --backend gpt)" = A ] || fail "gpt: next"
g verify B "$H" >/dev/null
g set-next B
[ "$(attrs 4)" = 0012000000000000 ] || fail "gpt: sgdisk sees B attrs $(attrs 4)"
sgdisk -A 4:show disk.img | tee show.txt
grep -q '4:49' show.txt && grep -q '4:52' show.txt || fail "gpt: sgdisk -A show"
sgdisk -v disk.img | grep -q "No problems found" || fail "gpt: sgdisk -v"
g --booted B mark-good
[ "$(attrs 4)" = 0102000000000000 ] || fail "gpt: after mark-good $(attrs 4)"
g --booted B rollback
[ "$(attrs 3)" = 0103000000000000 ] || fail "gpt: after rollback $(attrs 3)"
g mark-bad B
[ "$(attrs 4)" = 0000000000000000 ] || fail "gpt: after mark-bad $(attrs 4)"
expect_fail "gpt: rollback to a bad slot" 'not a good slot' g --booted A rollback
expect_fail "gpt: mark-bad of the only good slot" 'only good slot' g mark-bad A
# sgdisk changes, we see them.
sgdisk -A 4:set:50 -A 4:set:53 disk.img >/dev/null
[ "$(J='d["slots"]["B"]["priority"]' json --backend gpt)" = 4 ] || fail "gpt: B priority from sgdisk"
[ "$(J='d["slots"]["B"]["tries"]' json --backend gpt)" = 2 ] || fail "gpt: B tries from sgdisk"
# GPT CRC mismatch: flip a byte in the primary entry array.
printf '\x55' | dd of=disk.img bs=1 seek=$((2 * 512 + 2 * 128 + 60)) conv=notrunc status=none
cp disk.img before.img
expect_fail "gpt: status with a CRC mismatch" 'GPT of .* is damaged \(.*CRC' g status
expect_fail "gpt: mark-good with a CRC mismatch" 'damaged' g mark-good A
cmp disk.img before.img || fail "gpt: a refused verb changed the disk"
g repair | grep -q repaired || fail "gpt: repair"
sgdisk -v disk.img | grep -q "No problems found" || fail "gpt: not valid after repair"
[ "$(J='d["next"]' json --backend gpt)" = B ] || fail "gpt: state after repair (B: prio 4, tries 2)"

# ---------------- live host discovery (libblkid, PARTLABEL=USR-A) on a loop device ----------------
NOT_RUN=() # cases this machine cannot run: the test then ends as a skip, after every other case ran
live_check() {
        [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v partx >/dev/null || {
                NOT_RUN+=("live discovery (needs root, losetup, partx)"); return 0; }
        if [ -n "$(blkid -o device -t PARTLABEL=USR-A 2>/dev/null)" ]; then
                NOT_RUN+=("live discovery (this machine already has a PARTLABEL=USR-A)"); return 0
        fi
        cp --sparse=always fresh.img live.img
        loop_attach live.img || { NOT_RUN+=("live discovery (losetup failed)"); return 0; }
        local l=$LOOP_DEV
        echo "cairn.slot=A quiet" >live-cmdline
        local out rc=0
        out=$(CAIRN_CMDLINE=live-cmdline "$BC" --state-dir "$W/state" status --json) || rc=$?
        [ $rc -eq 0 ] && CAIRN_CMDLINE=live-cmdline "$BC" --state-dir "$W/state" --force set-next B >/dev/null || rc=$?
        loop_cleanup
        [ $rc -eq 0 ] || fail "live: cairn-bootcfg without --disk failed on $l"
        local disk booted
        disk=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disk"])' "$out")
        booted=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["booted"])' "$out")
        if [ "$disk" != "$l" ]; then
                NOT_RUN+=("live discovery (found $disk, not $l: another USR-A appeared meanwhile)"); return 0
        fi
        [ "$booted" = A ] || fail "live: booted slot $booted, want A"
        # The write through the block device landed in the image.
        "$BC" --disk live.img status | grep -Eq '^B +2 +1 +no' || fail "live: set-next B did not reach the image"
        echo "ok: live discovery found $l, booted A"
}
live_check

# Usage errors exit 2.
set +e
"$BC" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no verb: exit 2"
"$BC" --disk disk.img frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown verb: exit 2"
"$BC" --disk disk.img --backend nope status >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown backend: exit 2"
"$BC" --disk nonexistent.img status 2>err.txt; [ $? -eq 1 ] || fail "missing disk: exit 1"
grep -q 'nonexistent.img' err.txt || fail "missing disk message"
set -e
if [ ${#NOT_RUN[@]} -gt 0 ]; then
        echo "skip: every other case passed, but these were not run: ${NOT_RUN[*]}"
        exit 77
fi
echo "PASS"
