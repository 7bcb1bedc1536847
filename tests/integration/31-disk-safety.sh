#!/usr/bin/env bash
# tests/integration/31-disk-safety.sh — the writers of slots and of the boot selection (cairn-updated, cairn-bootcfg)
# against disks they must not write: a GPT with valid CRCs whose USR-B overlaps the running USR-A, or starts on the
# ESP's first sector (refused with one line naming partitions and sectors, the disk byte-identical), and a disk or
# state directory locked by another process with flock(1) (refused as busy, nothing changed). Then the same disk,
# unlocked and with a sane table, updates normally (so the refusals came from the checks).
source "$(dirname "$0")/../lib/agent-fixture.sh"
command -v flock >/dev/null || { echo "skip: flock (util-linux) not installed"; exit 77; }
fx_all
BC=$B/cairn-bootcfg
STATE=$R/var/lib/cairn

# gpt_move DISK NUM FIRST LAST: set partition NUM's first/last LBA in both GPT copies, CRCs recomputed (so the
# table is valid as far as CRCs go; only its layout is wrong).
gpt_move() {
        python3 - "$@" <<'PY'
import struct, sys, zlib
path, num, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f = open(path, "r+b")
def patch(hlba):
    f.seek(hlba * 512); h = bytearray(f.read(512))
    hsize = struct.unpack_from("<I", h, 12)[0]
    elba, n, esz = struct.unpack_from("<QII", h, 72)
    f.seek(elba * 512); arr = bytearray(f.read(n * esz))
    struct.pack_into("<QQ", arr, (num - 1) * esz + 32, first, last)
    f.seek(elba * 512); f.write(arr)
    struct.pack_into("<I", h, 88, zlib.crc32(arr))
    struct.pack_into("<I", h, 16, 0)
    struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hsize])))
    f.seek(hlba * 512); f.write(h)
    return struct.unpack_from("<Q", h, 32)[0]
patch(patch(1))
PY
}
SLOT_SECTORS=$((SLOT_MB * 2048))
ESP_START=2048 # cairn-mkdisk: partition 1 at 1 MiB

# refused NAME REGEX CMD...: CMD must fail, its output must hold a line matching REGEX, and the disk (every byte:
# slots, ESP, GPT) and the agent's state file must be unchanged.
refused() {
        local name=$1 re=$2 rc=0; shift 2
        cp --sparse=always "$T/disk.img" "$T/before.img"
        [ -e "$STATE/state" ] && cp "$STATE/state" "$T/state.before" || rm -f "$T/state.before"
        : >"$T/agent.log"
        "$@" >>"$T/agent.log" 2>&1 || rc=$?
        [ $rc -ne 0 ] || fail "$name: exited 0: $(cat "$T/agent.log")"
        grep -Eq "$re" "$T/agent.log" || fail "$name: output does not match /$re/: $(cat "$T/agent.log")"
        cmp -s "$T/disk.img" "$T/before.img" || fail "$name: the disk changed"
        if [ "${KEEP_STATE:-}" ]; then
                if [ -e "$T/state.before" ]; then cmp -s "$STATE/state" "$T/state.before" || fail "$name: the state file changed"
                else [ ! -e "$STATE/state" ] || fail "$name: a state file appeared"; fi
        fi
        ok "$name refused: $(grep -E "$re" "$T/agent.log" | head -n1)"
}
bc() { "$BC" --disk "$T/disk.img" --state-dir "$STATE/bootcfg" "$@"; }

# ---- 1. USR-B (partition 4) starts inside the running USR-A (partition 3) ----
gpt_move "$T/disk.img" 4 $((A_START + 2048)) $((A_START + 2048 + SLOT_SECTORS - 1))
sgdisk -v "$T/disk.img" >"$T/sgdisk.txt" 2>&1 || true
grep -qi 'crc' "$T/sgdisk.txt" && fail "crafted GPT has a CRC problem: $(cat "$T/sgdisk.txt")"
grep -qi 'overlap' "$T/sgdisk.txt" || fail "sgdisk does not see the overlap: $(cat "$T/sgdisk.txt")"
bc status >/dev/null || fail "status must still read a disk with an overlapping table"
snapshot
refused "agent, USR-B inside USR-A" \
        "partition 4 \(USR-B, sectors $((A_START + 2048))-[0-9]+\) overlaps partition 3 \(USR-A, sectors $A_START-" agent_once
untouched "agent, USR-B inside USR-A"
refused "cairn-bootcfg set-next, USR-B inside USR-A" 'partition 4 \(USR-B, sectors [0-9]+-[0-9]+\) overlaps partition 3 \(USR-A' \
        bc --force set-next B
refused "cairn-bootcfg mark-good, USR-B inside USR-A" 'overlaps partition 3 \(USR-A' bc mark-good A
refused "cairn-bootcfg gpt backend, USR-B inside USR-A" 'overlaps partition 3 \(USR-A' bc --backend gpt --force set-next B

# ---- 2. USR-B starts on the ESP's first sector ----
cp --sparse=always "$T/disk0.img" "$T/disk.img"
gpt_move "$T/disk.img" 4 $ESP_START $((ESP_START + SLOT_SECTORS - 1))
snapshot
refused "agent, USR-B on the ESP" \
        "partition 4 \(USR-B, sectors $ESP_START-[0-9]+\) overlaps partition 1 \(EFI-SYSTEM, sectors $ESP_START-" agent_once
untouched "agent, USR-B on the ESP"
refused "cairn-bootcfg, USR-B on the ESP" "overlaps partition 1 \(EFI-SYSTEM, sectors $ESP_START-" bc --force set-next B

# ---- 3. a partition past the last usable sector (CRCs valid) ----
cp --sparse=always "$T/disk0.img" "$T/disk.img"
DISK_SECTORS=$(($(stat -c %s "$T/disk.img") / 512))
gpt_move "$T/disk.img" 4 $((DISK_SECTORS - 40)) $((DISK_SECTORS - 2))
refused "agent, USR-B over the backup GPT" 'no usable GPT|outside the usable' agent_once
refused "cairn-bootcfg, USR-B over the backup GPT" 'no usable GPT|outside the usable' bc --force set-next B

# ---- 3b. the running /usr is the target: cairn.usr=PARTUUID= names USR-B while cairn.slot=A ----
# (labels and cairn.slot= say B is free; the partition the kernel mounted as /usr says otherwise)
cp --sparse=always "$T/disk0.img" "$T/disk.img"
B_UUID=$(bc_status | json_get 'd["slots"]["B"]["partuuid"]')
echo "root=/dev/vda9 cairn.slot=A cairn.usr=PARTUUID=$(echo "$B_UUID" | tr A-F a-f) quiet" >"$T/cmdline-usr-b"
snapshot
refused "agent, target is the running /usr" \
        "partition 4 \(USR-B, sectors $B_START-[0-9]+\) is the booted slot" \
        "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --cmdline "$T/cmdline-usr-b" --boot-id boot-1
untouched "agent, target is the running /usr"

# ---- 4. locks: another process holds the disk or the state directory ----
cp --sparse=always "$T/disk0.img" "$T/disk.img"
snapshot
refused "cairn-bootcfg, disk locked" "disk \"$T/disk.img\" is busy \(held by another cairn process\)" \
        flock "$T/disk.img" "$BC" --disk "$T/disk.img" --state-dir "$STATE/bootcfg" --force set-next B
refused "cairn-bootcfg unverify, disk locked" 'is busy \(held by another cairn process\)' \
        flock "$T/disk.img" "$BC" --disk "$T/disk.img" --state-dir "$STATE/bootcfg" unverify B
refused "agent, disk locked" "disk \"$T/disk.img\" is busy \(held by another cairn process\)" \
        flock "$T/disk.img" "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1
untouched "agent, disk locked"
mkdir -p "$STATE"
KEEP_STATE=1 refused "agent, state directory locked" \
        "state directory \"$STATE\" is busy \(held by another cairn process\)" \
        flock "$STATE" "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1
untouched "agent, state directory locked"
# A lock held on something else (another file) does not get in the way.
: >"$T/elsewhere"
flock "$T/elsewhere" "$BC" --disk "$T/disk.img" --state-dir "$STATE/bootcfg" status >/dev/null ||
        fail "status with an unrelated lock held"
# Readers do not take the lock: status works while the disk is locked.
flock "$T/disk.img" "$BC" --disk "$T/disk.img" --state-dir "$STATE/bootcfg" status >/dev/null ||
        fail "status must work while a writer holds the disk"

# ---- 5. the same disk, sane and unlocked: the update goes through ----
: >"$T/agent.log"
agent_once || fail "agent on a sane, unlocked disk failed: $(cat "$T/agent.log")"
[ "$(slot_sum A)" = "$SNAP_A" ] || fail "the update changed the running slot A"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2 after the update"
[ "$(bc_status | json_get 'd["next"]')" = B ] || fail "B is not next after the update"
ok "sane, unlocked disk: updated to 2.0.0 in slot B, slot A unchanged"
echo PASS
