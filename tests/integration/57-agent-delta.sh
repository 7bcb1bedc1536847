#!/usr/bin/env bash
# cost: 100
# tests/integration/57-agent-delta.sh — delta payloads end to end against cairn-server: ci/release.sh makes the deltas,
# the agent (delta_okay="true") gets and applies 1.0.0 → 2.0.0 by delta, then 2.0.0 → 3.0.0 by delta after a
# reboot into B; a host whose active slot was modified falls back to the full payload by itself, having fetched no
# more of the delta than its manifest; kill -9 in the middle of a delta apply resumes from the last verified chunk.
FX_DELTAS=2
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_images; fx_disk; fx_release; fx_server; fx_root
D2=$T/rel/payloads/2.0.0/deltas/cairn-2.0.0-amd64-from-1.0.0.cairn
[ -f "$D2" ] && [ -f "$D2.sha256" ] || fail "ci/release.sh made no delta 1.0.0 → 2.0.0"
D2_SIZE=$(stat -c %s "$D2") P2_SIZE=$(stat -c %s "$P2")
[ "$D2_SIZE" -lt $((P2_SIZE / 4)) ] || fail "delta is $D2_SIZE bytes, full payload $P2_SIZE: not smaller than a quarter"
"$B/cairn-release" verify --keys "$R/usr/share/cairn/keys" "$D2" >/dev/null 2>&1 && fail "a delta verified without its source"
"$B/cairn-release" verify --keys "$R/usr/share/cairn/keys" --source "$T/v1.img" "$D2" >/dev/null || fail "delta does not verify against v1"
"$B/cairn-release" verify --keys "$R/usr/share/cairn/keys" --source "$T/v2.img" "$D2" >/dev/null 2>"$T/err" &&
        fail "delta verified against the wrong source"
grep -q "not the image this delta was made from" "$T/err" || fail "wrong-source message: $(cat "$T/err")"
ok "ci/release.sh: delta 1.0.0 → 2.0.0 of $D2_SIZE bytes (full $P2_SIZE), verifies only against its source"

# A check without delta_okay still gets the full payload (older agents, --no-delta).
post() { curl -s -X POST --data-binary "$1" "$URL/v1/update/"; }
APPID=$(sed -n 's/^#define AGENT_APPID "\(.*\)"$/\1/p' updater/agent/agent.h)
req() { echo "<request protocol=\"3.0\"><app appid=\"$APPID\" version=\"1.0.0\" track=\"alpha\" machineid=\"m-$1\" board=\"amd64\" delta_okay=\"$1\"><updatecheck></updatecheck></app></request>"; }
post "$(req false)" | grep -q 'name="cairn-2.0.0-amd64.cairn"' || fail "delta_okay=false not answered with the full payload"
post "$(req true)" | grep -q 'codebase="[^"]*/payloads/2.0.0/deltas/".*name="cairn-2.0.0-amd64-from-1.0.0.cairn" size="'"$D2_SIZE"'"' ||
        fail "delta_okay=true not answered with the delta: $(post "$(req true)")"
ok "server: delta_okay=\"true\" → the delta for the host's version, otherwise the full payload"

# ---- 1.0.0 → 2.0.0 by delta ----
snapshot
base=$(server_payload_bytes)
agent_once || fail "delta update failed: $(tail -n 3 "$T/agent.log")"
got=$(( $(server_payload_bytes) - base ))
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2 after the delta update"
[ "$(bc_status | json_get 'd["next"]')" = B ] || fail "B not next after the delta update"
[ "$(slot_sum A)" = "$SNAP_A" ] || fail "slot A changed"
grep -q 'GET /payloads/2.0.0/deltas/cairn-2.0.0-amd64-from-1.0.0.cairn' "$T/server.log" || fail "the agent did not fetch the delta"
grep -q 'GET /payloads/2.0.0/cairn-2.0.0-amd64.cairn' "$T/server.log" && fail "the agent fetched the full payload too"
[ "$got" -le "$D2_SIZE" ] || fail "fetched $got bytes, the delta has $D2_SIZE"
curl -sf "$URL/api/v1/instances?limit=1000" >"$T/inst.json" || fail "GET /api/v1/instances"
python3 - "$T/inst.json" <<'PY' || fail "the server did not record the delta: $(cat "$T/inst.json")"
import json, sys
i = {x["machine_id"]: x for x in json.load(open(sys.argv[1]))}["0123456789abcdef0123456789abcdef"]
assert i["last_answer"] == "delta" and i["offered_version"] == "2.0.0", i
PY
ok "1.0.0 → 2.0.0 by delta: fetched $got bytes (full payload $P2_SIZE), B holds v2, the server recorded 'delta'"

# ---- 2.0.0 → 3.0.0 by delta, after the reboot into B ----
cp -a "$T/tree2" "$T/tree3"
python3 - "$T/tree3" <<'PY'
import random, sys
f = open(f"{sys.argv[1]}/lib/lib3.so", "r+b"); f.seek(300000); f.write(random.Random(3).randbytes(5000))
open(f"{sys.argv[1]}/etc/app.conf", "w").write("setting=2\nversion=3\n")
PY
usr_os_release "$T/tree3" 3.0.0
"$B/cairn-mkimage" -o "$T/v3.img" --size 20M --seed cairn-usr --label USR "$T/tree3" >/dev/null
ci/release.sh 3.0.0 --image "$T/v3.img" --key "$T/release.key" --reldir "$T/rel" --deltas 2 >/dev/null 2>"$T/rel3.err" ||
        fail "release 3.0.0: $(cat "$T/rel3.err")"
D3=$T/rel/payloads/3.0.0/deltas/cairn-3.0.0-amd64-from-2.0.0.cairn
[ -f "$D3" ] || fail "no delta 2.0.0 → 3.0.0 (alpha's history: $(cat "$T/rel/history/alpha"))"
[ "$(cat "$T/rel/history/alpha")" = "$(printf '2.0.0\n3.0.0')" ] || fail "alpha history: $(cat "$T/rel/history/alpha")"
printf 'ID=cairn\nVERSION_ID=2.0.0\n' >"$R/usr/lib/os-release"
base=$(server_payload_bytes)
"$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted B --boot-id boot-2 >>"$T/agent.log" 2>&1 ||
        fail "update from B failed: $(tail -n 3 "$T/agent.log")"
got=$(( $(server_payload_bytes) - base ))
[ "$(slot_sum A "$(stat -c %s "$T/v3.img")")" = "$(sha256sum "$T/v3.img" | cut -c1-64)" ] || fail "slot A does not hold v3"
[ "$(bc_status | json_get 'd["next"]')" = A ] || fail "A not next after 2.0.0 → 3.0.0"
grep -q 'GET /payloads/3.0.0/deltas/cairn-3.0.0-amd64-from-2.0.0.cairn' "$T/server.log" || fail "2.0.0 → 3.0.0 not by delta"
[ "$got" -le "$(stat -c %s "$D3")" ] || fail "2.0.0 → 3.0.0 fetched $got bytes, the delta has $(stat -c %s "$D3")"
ok "2.0.0 → 3.0.0 by delta from slot B into A: fetched $got bytes (delta $(stat -c %s "$D3"))"

# ---- a modified active slot: the references do not match → the full payload, by itself ----
pkill_server() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=; }
pkill_server
rm -rf "$T/rel/payloads/3.0.0"
sed -i 's/^VERSION=.*/VERSION=2.0.0/' "$T/rel/channels/alpha"
: >"$T/server.log"
fx_server; fx_root
cp --sparse=always "$T/disk0.img" "$T/disk.img"
python3 - "$T/disk.img" "$A_START" "$T/v1.img" <<'PY'
import sys
img = open(sys.argv[3], "rb").read()
f = open(sys.argv[1], "r+b")
for k in range(len(img) >> 20):  # one byte in every non-zero MiB of slot A
    off = (k << 20) + 777
    if any(img[k << 20:(k + 1) << 20]):
        f.seek(int(sys.argv[2]) * 512 + off); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x5a]))
PY
snapshot
prefix=$(python3 - "$D2" <<'PY'
import struct, sys
h = open(sys.argv[1], "rb").read(32)
print(32 + struct.unpack_from("<II", h, 16)[0] + struct.unpack_from("<II", h, 16)[1])
PY
)
agent_once || fail "fallback update failed: $(tail -n 3 "$T/agent.log")"
grep -q "does not match the active slot: .*not this delta's source release.*falling back to the full payload" "$T/agent.log" ||
        fail "the agent did not say it fell back: $(tail -n 3 "$T/agent.log")"
dbytes=$(awk '$2 == "GET" && $3 ~ /\/deltas\// && ($4 == 200 || $4 == 206) { s += $5 } END { print s + 0 }' "$T/server.log")
[ "$dbytes" -le "$prefix" ] || fail "fetched $dbytes bytes of the delta before falling back (its manifest is $prefix)"
grep -q 'GET /payloads/2.0.0/cairn-2.0.0-amd64.cairn' "$T/server.log" || fail "no full payload fetched after the fallback"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2 after the fallback"
[ "$(bc_status | json_get 'd["next"]')" = B ] || fail "B not next after the fallback"
[ "$(slot_sum A)" = "$SNAP_A" ] || fail "slot A changed during the fallback"
curl -sf "$URL/api/v1/instances?limit=1000" | python3 -c '
import json, sys
i = {x["machine_id"]: x for x in json.load(sys.stdin)}["0123456789abcdef0123456789abcdef"]
assert i["last_answer"] == "ok", i' || fail "the server's last answer is not the full payload"
ok "modified slot A: the agent fell back to the full payload after $dbytes bytes of the delta (its manifest: $prefix)"

# ---- kill -9 in the middle of a delta apply, then resume ----
# A release whose delta has ten changed MiB (rate-limited to take a few seconds), in its own release directory.
cp -a "$T/tree1" "$T/treek"
python3 - "$T/treek" <<'PY'
import random, sys
r = random.Random(77)
for i in range(10):
    open(f"{sys.argv[1]}/lib/lib{i}.so", "wb").write(r.randbytes(1 << 20))
PY
usr_os_release "$T/treek" 2.0.0
"$B/cairn-mkimage" -o "$T/v2k.img" --size 20M --seed cairn-usr --label USR "$T/treek" >/dev/null
ci/release.sh 1.0.0 --image "$T/v1.img" --key "$T/release.key" --reldir "$T/relk" --channel stable >/dev/null 2>&1
ci/release.sh 2.0.0 --image "$T/v2k.img" --key "$T/release.key" --reldir "$T/relk" --delta-level 3 >/dev/null 2>&1 ||
        fail "release 2.0.0 into relk"
DK=$T/relk/payloads/2.0.0/deltas/cairn-2.0.0-amd64-from-1.0.0.cairn
[ -f "$DK" ] || fail "no delta in relk"
D2_SIZE=$(stat -c %s "$DK")
V2_SIZE() { stat -c %s "$T/v2k.img"; }
V2_SUM() { sha256sum "$T/v2k.img" | cut -c1-64; }
pkill_server
mv "$T/rel" "$T/rel.done"; mv "$T/relk" "$T/rel"
: >"$T/server.log"
fx_server; fx_root
echo 'DOWNLOAD_RATE_LIMIT=2M' >>"$R/etc/cairn/update.conf"
cp -a "$R" "$T/root0"
resumed=0
for at in ${CAIRN_DELTA_KILL_POINTS:-1.5 3 4.5}; do
        rm -rf "$R"; cp -a "$T/root0" "$R"
        cp --sparse=always "$T/disk0.img" "$T/disk.img"
        snapshot
        "$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 >>"$T/agent.log" 2>&1 &
        pid=$!
        sleep "$at"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        next=$(state_get RESUME_NEXT); next=${next:-0}
        st=$(state_get STATE)
        [ "$st" = UPDATED_NEED_REBOOT ] || [ "$st" = FINALIZING ] || untouched "kill -9 at ${at}s"
        base=$(server_payload_bytes)
        agent_once || fail "rerun after kill -9 at ${at}s failed: $(tail -n 3 "$T/agent.log")"
        got=$(( $(server_payload_bytes) - base ))
        [ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "after kill -9 at ${at}s: slot B does not verify"
        [ "$(bc_status | json_get 'd["next"]')" = B ] || fail "after kill -9 at ${at}s: B not next"
        [ "$(slot_sum A)" = "$SNAP_A" ] || fail "after kill -9 at ${at}s: slot A changed"
        if [ "$next" -gt 0 ] && [ "$st" != UPDATED_NEED_REBOOT ] && [ "$st" != FINALIZING ]; then
                [ "$got" -lt "$D2_SIZE" ] || fail "kill at ${at}s: resume point $next but the rerun fetched $got of $D2_SIZE bytes"
                resumed=$((resumed + 1))
        fi
        echo "ok: kill -9 at ${at}s in the delta apply (state $st, resume point chunk $next): rerun fetched $got of $D2_SIZE bytes, B verifies"
done
[ "$resumed" -ge 1 ] || fail "no kill point left a resume point inside the delta"
grep -q 'GET /payloads/2.0.0/cairn-2.0.0-amd64.cairn' "$T/server.log" && fail "a resumed delta fell back to the full payload"
ok "kill -9 during delta applies: $resumed rerun(s) resumed inside the delta"
echo PASS
