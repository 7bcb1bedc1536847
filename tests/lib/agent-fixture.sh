#!/usr/bin/env bash
# tests/lib/agent-fixture.sh — the agent tests' fixture (sourced by the agent tests, 50-agent-*.sh and others): signing key, v1/v2 USR
# images (v2 = v1 with one changed ~1 MiB binary and one changed config file), a GPT disk with v1 in USR-A, a
# release directory with 1.0.0 and 2.0.0, cairn-server on 127.0.0.1 (random port), and a host root for the agent.
# tests/integration/50-agent-fixture.sh builds it and checks it (so the fixture itself is tested).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
B=${CAIRN_BIN:-$ROOT/build/bin}
for t in cairn-updated cairnctl cairn-server cairn-release cairn-keygen cairn-mkimage cairn-mkdisk cairn-bootcfg; do
        [ -x "$B/$t" ] || { echo "FAIL: $B/$t not built (run make)"; exit 1; }
done
for t in mkfs.vfat mcopy grub-editenv python3 curl; do
        command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=1700000000
. "$ROOT/tests/lib/common.sh"
. "$ROOT/tests/lib/usr-image.sh"
. "$ROOT/tests/lib/ab-disk.sh"

T=$(mktemp -d /tmp/cairn-agent.XXXXXX)
SPID= DPID= EXTRA_PIDS=
fx_cleanup() {
        local rc=$? # the test's own status, whatever the cleanup commands return
        set +e
        cairn_run_exit
        for p in $DPID $SPID $EXTRA_PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
        for m in ${FX_MOUNTS:-}; do umount "$m" 2>/dev/null || true; done
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
        exit $rc
}
trap fx_cleanup EXIT
FAIL_LOGS="$T/agent.log $T/server.log" FAIL_TAIL=15
ok() { echo "ok: $*"; }

SLOT_MB=${SLOT_MB:-24}
# ---- images: deterministic content; v2 changes bin/tool (1 MiB) and etc/app.conf ----
fx_tree() { # dir variant
        local d=$1 v=$2
        mkdir -p "$d/bin" "$d/lib" "$d/etc" "$d/share"
        python3 - "$d" "$v" <<'PY'
import os, random, sys
d, v = sys.argv[1], sys.argv[2]
r = random.Random(1234)
for i in range(12):  # stable bulk content, 1 MiB each
    open(f"{d}/lib/lib{i}.so", "wb").write(r.randbytes(1 << 20))
open(f"{d}/share/doc.txt", "w").write("cairn test image\n" * 2000)
t = random.Random(99 if v == "1" else 100)
open(f"{d}/bin/tool", "wb").write(t.randbytes(1 << 20))
open(f"{d}/etc/app.conf", "w").write(f"setting=1\nversion={v}\n")
PY
        usr_os_release "$d" "$([ "$v" = 1 ] && echo 1.0.0 || echo 2.0.0)"
}
fx_images() {
        fx_tree "$T/tree1" 1
        fx_tree "$T/tree2" 2
        "$B/cairn-mkimage" -o "$T/v1.img" --size 20M --seed cairn-usr --label USR "$T/tree1" >/dev/null
        "$B/cairn-mkimage" -o "$T/v2.img" --size 20M --seed cairn-usr --label USR "$T/tree2" >/dev/null
}
fx_disk() { # → $T/disk.img with v1 in USR-A, USR-B empty, grubenv A good
        ab_disk "$T/disk0.img" "$T/v1.img" "$SLOT_MB" agent "$T"
        cp --sparse=always "$T/disk0.img" "$T/disk.img"
        A_START=$(python3 - "$T/disk.img" USR-A <<'PY'
import struct, sys
f = open(sys.argv[1], "rb"); f.seek(512); h = f.read(92)
lba, n, sz = struct.unpack_from("<QII", h, 72)
f.seek(lba * 512)
for i in range(n):
    e = f.read(sz)
    if e[56:56 + 72].decode("utf-16-le").rstrip("\0") == sys.argv[2]:
        print(struct.unpack_from("<Q", e, 32)[0]); break
PY
)
        B_START=$((A_START + SLOT_MB * 2048))
}
fx_release() { # → $T/rel with 1.0.0 and 2.0.0 (alpha → 2.0.0), and the delta 1.0.0 → 2.0.0 when FX_DELTAS > 0
        "$B/cairn-keygen" -o "$T/release" >/dev/null
        "$B/cairn-keygen" -o "$T/other" >/dev/null
        # FX_DELTAS: delta payloads ci/release.sh makes (0 by default here: these tests measure the full payload and
        # chunk reuse; 57-agent-delta.sh sets it).
        ci/release.sh 1.0.0 --image "$T/v1.img" --key "$T/release.key" --reldir "$T/rel" --channel stable \
                --deltas "${FX_DELTAS:-0}" >/dev/null
        ci/release.sh 2.0.0 --image "$T/v2.img" --key "$T/release.key" --reldir "$T/rel" --deltas "${FX_DELTAS:-0}" >/dev/null
        P2=$T/rel/payloads/2.0.0/cairn-2.0.0-amd64.cairn
}
fx_server() { # [extra cairn-server options]
        start_cairn_server FX_SERVER "$T/server.out" "$T/server.log" --reldir "$T/rel" --db "$T/db.sqlite" "$@"
        SPID=$FX_SERVER_PID PORT=$FX_SERVER_PORT URL=$FX_SERVER_URL
}
fx_root() { # host root: machine-id, os-release 1.0.0, trusted key, update.conf (GROUP alpha, REBOOT_STRATEGY=off)
        R=$T/root
        rm -rf "$R"
        mkdir -p "$R/etc/cairn" "$R/usr/lib" "$R/usr/share/cairn/keys" "$R/var/lib/cairn"
        echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
        printf 'ID=cairn\nVERSION_ID=1.0.0\n' >"$R/usr/lib/os-release"
        cp "$T/release.pub" "$R/usr/share/cairn/keys/"
        printf 'GROUP=alpha\nSERVER=%s/v1/update/\nREBOOT_STRATEGY=off\nHTTP_STALL_TIMEOUT=3\n' "$URL" >"$R/etc/cairn/update.conf"
}
fx_all() {
        fx_images; fx_disk; fx_release; fx_server; fx_root
}

# Run the agent once (post-boot gate + one check/apply). Extra args are passed on.
agent_once() {
        "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 "$@" \
                >>"$T/agent.log" 2>&1
}
bc_status() { "$B/cairn-bootcfg" --disk "$T/disk.img" --state-dir "$R/var/lib/cairn/bootcfg" status --json; }
slot_sum() { # A|B [bytes] → sha256 of the slot's first bytes (default: the whole slot)
        local start=$A_START; [ "$1" = B ] && start=$B_START
        local n=${2:-$((SLOT_MB * 1024 * 1024))}
        python3 - "$T/disk.img" "$start" "$n" <<'PY'
import hashlib, sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2]) * 512)
n = int(sys.argv[3]); h = hashlib.sha256()
while n > 0:
    b = f.read(min(n, 1 << 20)); h.update(b); n -= len(b)
    if not b: break
print(h.hexdigest())
PY
}
state_get() { # KEY: its value in the state file ("" when the agent was killed before it wrote one)
        [ -f "$R/var/lib/cairn/state" ] || return 0
        sed -n "s/^$1=//p" "$R/var/lib/cairn/state"
}
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# Remember the running slot and boot selection; check them later.
snapshot() { SNAP_A=$(slot_sum A); SNAP_BC=$(bc_status); }
untouched() { # what
        [ "$(slot_sum A)" = "$SNAP_A" ] || fail "$1: the running slot A changed"
        [ "$(bc_status)" = "$SNAP_BC" ] || fail "$1: the boot selection changed: $(bc_status)"
}
V2_SIZE() { stat -c %s "$T/v2.img"; }
V2_SUM() { sha256sum "$T/v2.img" | cut -c1-64; }
server_payload_bytes() { # sum of bytes the server sent for payload GETs
        awk '$2 == "GET" && $3 ~ /^\/payloads\// && ($4 == 200 || $4 == 206) { s += $5 } END { print s + 0 }' "$T/server.log"
}
