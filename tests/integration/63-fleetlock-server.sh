#!/usr/bin/env bash
# cost: 150
# tests/integration/63-fleetlock-server.sh — cairn-server's FleetLock endpoints (updater/server/fleetlock.c) with
# curl exactly as the protocol document shows (coreos/zincati docs/development/fleetlock/protocol.md): status
# codes and {"kind","value"} bodies, missing header, bad JSON, oversized and chunked bodies, unknown group,
# wrong method; recursion and owned, idempotent release; 20 concurrent curl clients never above max and no
# holder lost; state kept across SIGTERM and kill -9 restarts; the etcd backend (--lock-etcd) against a real
# etcd, read back with etcdctl and cairn-lockctl; bad etcd values reported, never overwritten; etcd down →
# 503, not a grant.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SERVER=${CAIRN_SERVER:-$ROOT/build/bin/cairn-server}
LOCKCTL=${CAIRN_LOCKCTL:-$ROOT/build/bin/cairn-lockctl}
[ -x "$SERVER" ] && [ -x "$LOCKCTL" ] || { echo "FAIL: $SERVER or $LOCKCTL not built (run make)"; exit 1; }
for t in curl python3 flock sqlite3 openssl; do command -v $t >/dev/null || { echo "FAIL: $t missing (scripts/deps.sh)"; exit 1; }; done

. "$ROOT/tests/lib/common.sh"
T=$(mktemp -d /tmp/cairn-63.XXXXXX)
declare -A EPID=()
OTHER_PIDS=()
SPID=
cleanup() {
        local p
        [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null
        for p in "${EPID[@]}" "${OTHER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        for p in $SPID "${EPID[@]}" "${OTHER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
on_exit cleanup
FAIL_LOGS="$T/*.log" FAIL_TAIL=8
ok() { echo "ok: $*"; }
START=$SECONDS
. "$ROOT/tests/lib/etcd.sh"

mkdir -p "$T/rel/channels" "$T/rel/payloads"
# start_server [cairn-server options] — sets S (base URL) and SPID.
start_server() {
        NSTART=$((${NSTART:-0} + 1))
        local out=$T/server-$NSTART.out
        "$SERVER" --reldir "$T/rel" --db "$T/db.sqlite" --listen 127.0.0.1:0 "$@" >"$out" 2>>"$T/server.log" &
        SPID=$!
        for _ in $(seq 600); do grep -q listening "$out" 2>/dev/null && break; sleep 0.05; done
        local port; port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$out")
        [ -n "$port" ] || fail "cairn-server did not start within 30 s (pid $SPID $(kill -0 $SPID 2>/dev/null && echo alive, in $(cat /proc/$SPID/wchan 2>/dev/null) || echo gone)): $(tail -n 3 "$T/server.log")"
        S=http://127.0.0.1:$port
}
stop_server() { # [signal]
        kill -"${1:-TERM}" "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
        SPID=
}
# req PATH [curl args...] — sets ST (HTTP status) and RB (body).
req() {
        local path=$1; shift
        RB=$(curl -s -o - -w '\n%{http_code}' "$@" "$S$path") || true
        ST=${RB##*$'\n'}
        RB=${RB%$'\n'*}; RB=${RB%$'\n'}
}
# The protocol's error body: a JSON object with exactly "kind" (== $1) and "value", both non-empty strings.
is_error() {
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert isinstance(d, dict) and sorted(d) == ["kind", "value"], d
assert isinstance(d["kind"], str) and isinstance(d["value"], str) and d["kind"] and d["value"], d
assert d["kind"] == sys.argv[2], (d["kind"], sys.argv[2])' "$RB" "$1" 2>/dev/null
}
expect_error() { # status kind value-regex label
        [ "$ST" = "$1" ] || fail "$4: HTTP $ST, expected $1 ($RB)"
        is_error "$2" || fail "$4: body is not {\"kind\":\"$2\",\"value\":…}: $RB"
        grep -Eq -- "$3" <<<"$RB" || fail "$4: value does not say '$3': $RB"
}
body() { printf '{"client_params":{"id":"%s","group":"%s"}}' "$1" "${2:-default}"; }
lock() { req /v1/pre-reboot -H "fleet-lock-protocol: true" -d "$(body "$@")"; }
unlock() { req /v1/steady-state -H "fleet-lock-protocol: true" -d "$(body "$@")"; }
holders() { # group — the holder ids in GET /api/v1/locks, space-separated
        curl -sf "$S/api/v1/locks" | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = [x for x in d["groups"] if x["group"] == sys.argv[1]][0]
print(" ".join(h["id"] for h in g["holders"]))' "$1"
}

# =============== SQLite: the protocol, exactly as the document shows ===============
start_server --lock-group default=1 --lock-group workers=2
# The document's example body and curl line (its id, group "default").
cat >"$T/body.json" <<'EOF'

{
  "client_params": {
    "group": "default",
    "id": "c988d2509fdf5cdcbed39037c56406fb"
  }
}

EOF
ID=c988d2509fdf5cdcbed39037c56406fb
req /v1/pre-reboot -H "fleet-lock-protocol: true" -d @"$T/body.json"
[ "$ST" = 200 ] || fail "the document's pre-reboot: HTTP $ST $RB"
[ "$RB" = "{\"result\":\"locked\",\"group\":\"default\",\"id\":\"$ID\"}" ] || fail "pre-reboot body: $RB"
req /v1/pre-reboot -H "fleet-lock-protocol: true" -d @"$T/body.json"
[ "$ST" = 200 ] && grep -q '"result":"already-held"' <<<"$RB" || fail "recursive pre-reboot: HTTP $ST $RB"
[ "$(holders default)" = "$ID" ] || fail "holders after a recursive lock: $(holders default)"
lock other-node
expect_error 409 failed_lock_semaphore_full "semaphore currently full: all 1 slots of group 'default'" "second holder, max 1"
unlock other-node
[ "$ST" = 200 ] && grep -q '"result":"not-held"' <<<"$RB" || fail "steady-state of a non-holder: HTTP $ST $RB"
[ "$(holders default)" = "$ID" ] || fail "a non-holder's steady-state released the lock: $(holders default)"
req /v1/steady-state -H "fleet-lock-protocol: true" -d @"$T/body.json"
[ "$ST" = 200 ] && grep -q '"result":"released"' <<<"$RB" || fail "steady-state of the holder: HTTP $ST $RB"
req /v1/steady-state -H "fleet-lock-protocol: true" -d @"$T/body.json"
[ "$ST" = 200 ] && grep -q '"result":"not-held"' <<<"$RB" || fail "second steady-state: HTTP $ST $RB"
[ -z "$(holders default)" ] || fail "holders after release: $(holders default)"
lock other-node
[ "$ST" = 200 ] || fail "the slot did not come free: HTTP $ST $RB"
unlock other-node
ok "the document's curl: 200 locked, recursive 200, 409 failed_lock_semaphore_full, owned release, idempotent steady-state"

# Zincati's own request: a pretty-printed body, no Content-Type.
printf '{\n  "client_params": {\n    "id": "e0f3745b108f471cbd4883c6fbed8cdd",\n    "group": "workers"\n  }\n}' >"$T/zincati.json"
req /v1/pre-reboot -H "fleet-lock-protocol: true" -H "Content-Type:" --data-binary @"$T/zincati.json"
[ "$ST" = 200 ] || fail "Zincati's request: HTTP $ST $RB"
req /v1/steady-state -H "fleet-lock-protocol: true" -H "Content-Type:" --data-binary @"$T/zincati.json"
[ "$ST" = 200 ] && grep -q released <<<"$RB" || fail "Zincati's steady-state: HTTP $ST $RB"
ok "Zincati's request shape (pretty JSON, no Content-Type, group workers)"

# Bad requests: each one a 4xx with the protocol's error body, nothing taken.
req /v1/pre-reboot -d @"$T/body.json"
expect_error 400 invalid_client_identity "fleet-lock-protocol" "missing header"
req /v1/pre-reboot -H "fleet-lock-protocol: false" -d @"$T/body.json"
expect_error 400 invalid_client_identity "fleet-lock-protocol" "header false"
req /v1/steady-state -d @"$T/body.json"
expect_error 400 invalid_client_identity "fleet-lock-protocol" "steady-state without header"
badjson() { # label body value-regex
        req /v1/pre-reboot -H "fleet-lock-protocol: true" --data-binary "$2"
        expect_error 400 invalid_client_identity "$3" "$1"
        echo "  $1: $RB"
}
badjson truncated '{"client_params":{"id":"a","group":"def' 'not JSON: truncated'
badjson "not an object" '["client_params"]' 'not an object'
badjson "no client_params" '{"id":"a","group":"default"}' 'no \\"client_params\\"'
badjson "client_params a string" '{"client_params":"a"}' 'is string, not an object'
badjson "missing id" '{"client_params":{"group":"default"}}' 'has no \\"id\\"'
badjson "empty id" '{"client_params":{"id":"","group":"default"}}' '\\"id\\" is empty'
badjson "id a number" '{"client_params":{"id":42,"group":"default"}}' 'is int, not a string'
badjson "missing group" '{"client_params":{"id":"a"}}' 'has no \\"group\\"'
badjson "group with a slash" '{"client_params":{"id":"a","group":"a/b"}}' 'does not match'
badjson "id with a NUL" '{"client_params":{"id":"a\u0000b","group":"default"}}' 'NUL'
badjson "id with a newline" '{"client_params":{"id":"a\nb","group":"default"}}' 'control character'
badjson "trailing bytes" '{"client_params":{"id":"a","group":"default"}} {}' 'trailing bytes|unexpected character'
badjson "single quotes" "{'client_params':{'id':'a','group':'default'}}" 'not JSON'
badjson "empty body" '' 'empty body'
badjson "too deep" '{"client_params":{"id":"a","group":"default","x":{"y":{"z":1}}}}' 'not JSON'
head -c 5000 /dev/zero | tr '\0' ' ' >"$T/big.json"
req /v1/pre-reboot -H "fleet-lock-protocol: true" --data-binary @"$T/big.json"
expect_error 413 request_too_large "larger than 4096 bytes" "5000-byte body"
req /v1/pre-reboot -H "fleet-lock-protocol: true" -H "Transfer-Encoding: chunked" --data-binary @"$T/big.json"
expect_error 413 request_too_large "larger than 4096 bytes" "5000-byte chunked body"
lock a-node no-such-group
expect_error 400 unknown_group 'unknown group \\"no-such-group\\"' "unknown group"
for m in GET PUT DELETE; do
        req /v1/pre-reboot -X $m -H "fleet-lock-protocol: true" -D "$T/headers"
        expect_error 405 method_not_allowed "takes POST" "$m /v1/pre-reboot"
        grep -qi '^Allow: POST' "$T/headers" || fail "405 without Allow: POST"
done
req /v1/steady-state -X GET -H "fleet-lock-protocol: true"
expect_error 405 method_not_allowed "takes POST" "GET /v1/steady-state"
[ -z "$(holders default)" ] && [ -z "$(holders workers)" ] || fail "a bad request took a slot: $(curl -s "$S/api/v1/locks")"
# A connection that sent a bad request still gets a good one answered (keep-alive, nothing wedged).
lock keepalive-node
[ "$ST" = 200 ] || fail "a good request after the bad ones: HTTP $ST"
unlock keepalive-node
grep -q 'POST /v1/pre-reboot 400 .*fleetlock invalid_client_identity' "$T/server.log" || fail "the request log does not say why"
ok "missing/wrong header, 15 malformed bodies, 5000-byte bodies (plain, chunked), unknown group, GET/PUT/DELETE: 4xx with {kind,value}, nothing taken"

# GET /api/v1/locks
out=$(curl -sf "$S/api/v1/locks")
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["backend"] == "sqlite", d
g = {x["group"]: x for x in d["groups"]}
assert g["default"]["max"] == 1 and g["workers"]["max"] == 2 and g["workers"]["semaphore"] == 2, d
assert g["default"]["holders"] == [], d' "$out" || fail "/api/v1/locks: $out"
ok "/api/v1/locks: backend, groups, max, semaphore, holders"

# =============== 20 concurrent curl clients, max 3 ===============
# Each client loops: pre-reboot until it gets the slot (409 → retry), then holds it a few ms, then steady-state.
# While holding, it counts itself in a shared counter (under flock) that must never pass max; the counter's
# intervals lie inside the server's, so a server that gave out a 4th slot shows up as a 4th count whenever
# the holds overlap (they are made to: every hold sleeps). A sampler reads /api/v1/locks meanwhile.
race() { # label max clients rounds — uses $S; group "workers"
        local label=$1 max=$2 n=$3 rounds=$4 i
        echo 0 >"$T/ctr"; : >"$T/peaks"; rm -f "$T"/client-*.log
        client() {
                local id=$1 r st held=0
                for r in $(seq "$rounds"); do
                        for _ in $(seq 2000); do
                                st=$(curl -s -o "$T/c-$id.body" -w '%{http_code}' -H "fleet-lock-protocol: true" \
                                        -d "$(body "$id" workers)" "$S/v1/pre-reboot") || st=000
                                [ "$st" = 200 ] && break
                                # 409: full; 503 lock_backend_unavailable: (etcd) all the server's request slots busy
                                [ "$st" = 409 ] || { [ "$st" = 503 ] && grep -q lock_backend_unavailable "$T/c-$id.body"; } ||
                                        { echo "client $id: pre-reboot HTTP $st $(cat "$T/c-$id.body")" >>"$T/client-$id.log"; return 1; }
                                sleep 0.0$((RANDOM % 5 + 1))
                        done
                        [ "$st" = 200 ] && grep -q '"result":"locked"' "$T/c-$id.body" ||
                                { echo "client $id: no slot after 2000 tries ($st $(cat "$T/c-$id.body"))" >>"$T/client-$id.log"; return 1; }
                        flock "$T/ctr" sh -c 'n=$(($(cat "$1") + 1)); echo $n >"$1"; echo $n >>"$2"' _ "$T/ctr" "$T/peaks"
                        sleep 0.0$((RANDOM % 3 + 1))
                        flock "$T/ctr" sh -c 'echo $(($(cat "$1") - 1)) >"$1"' _ "$T/ctr"
                        for _ in $(seq 200); do
                                st=$(curl -s -o "$T/c-$id.body" -w '%{http_code}' -H "fleet-lock-protocol: true" \
                                        -d "$(body "$id" workers)" "$S/v1/steady-state") || st=000
                                [ "$st" = 503 ] && grep -q lock_backend_unavailable "$T/c-$id.body" || break
                                sleep 0.0$((RANDOM % 5 + 1))
                        done
                        [ "$st" = 200 ] && grep -q '"result":"released"' "$T/c-$id.body" ||
                                { echo "client $id: steady-state HTTP $st $(cat "$T/c-$id.body")" >>"$T/client-$id.log"; return 1; }
                        echo "round $r" >>"$T/client-$id.log"
                done
        }
        ( while :; do curl -s "$S/api/v1/locks" | tr -d '\n' >>"$T/samples.json"; echo >>"$T/samples.json"; sleep 0.02; done ) &
        local sampler=$!
        local pids=()
        for i in $(seq "$n"); do client "node-$i" & pids+=($!); done
        for i in "${pids[@]}"; do wait "$i" || { kill "$sampler"; fail "$label: a client failed: $(grep -h client "$T"/client-*.log | head -3)"; }; done
        kill "$sampler"; wait "$sampler" 2>/dev/null || true
        local peak rounds_done
        peak=$(sort -n "$T/peaks" | tail -n 1)
        rounds_done=$(cat "$T"/client-*.log | grep -c '^round ')
        [ "$rounds_done" = $((n * rounds)) ] || fail "$label: $rounds_done rounds done, expected $((n * rounds))"
        [ "$peak" -le "$max" ] || fail "$label: $peak clients held a slot at once, max $max"
        [ "$(wc -l <"$T/peaks")" = $((n * rounds)) ] || fail "$label: $(wc -l <"$T/peaks") holds counted"
        [ -z "$(holders workers)" ] || fail "$label: holders left after the race: $(holders workers)"
        RACE_PEAK=$peak
}
stop_server; start_server --lock-group default=1 --lock-group workers=3
: >"$T/samples.json"
race sqlite 3 20 ${FLEETLOCK_ROUNDS:-3}
python3 - "$T/samples.json" 3 <<'EOF' >"$T/samples.txt" || fail "a sample of /api/v1/locks: $(cat "$T/samples.txt")"
import json, sys
n = peak = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line: continue
    try: d = json.loads(line)
    except ValueError: continue   # a sample cut short by the kill
    g = [x for x in d["groups"] if x["group"] == "workers"][0]
    assert len(g["holders"]) <= int(sys.argv[2]) and g["semaphore"] == 3 - len(g["holders"]), g
    n += 1; peak = max(peak, len(g["holders"]))
print(n, peak)
EOF
read -r nsamples speak <"$T/samples.txt"
ok "SQLite: 20 concurrent curl clients x ${FLEETLOCK_ROUNDS:-3} rounds, max 3: $((20 * ${FLEETLOCK_ROUNDS:-3})) rounds, at most $RACE_PEAK holding at once (counter), $nsamples samples of /api/v1/locks at most $speak"

# =============== restarts keep the state ===============
lock keeper workers
[ "$ST" = 200 ] || fail "lock before restart: $ST"
stop_server TERM
sqlite3 "$T/db.sqlite" "SELECT grp, id FROM fleetlock_holders" | grep -qx 'workers|keeper' || fail "the DB does not hold the lock"
start_server --lock-group default=1 --lock-group workers=3
[ "$(holders workers)" = keeper ] || fail "after SIGTERM + restart: holders '$(holders workers)'"
lock keeper workers
grep -q already-held <<<"$RB" || fail "recursive lock after restart: $RB"
lock second workers; [ "$ST" = 200 ] || fail "second lock: $ST"
stop_server KILL
start_server --lock-group default=1 --lock-group workers=1
[ "$(holders workers)" = "keeper second" ] || fail "after kill -9 + restart: holders '$(holders workers)'"
lock third workers
expect_error 409 failed_lock_semaphore_full "all 1 slots of group .*workers.* are locked \(2 holders\)" "max lowered to 1 below 2 holders"
unlock keeper workers; unlock second workers
lock third workers; [ "$ST" = 200 ] || fail "lock after the two released: $ST $RB"
unlock third workers
[ "$(sqlite3 "$T/db.sqlite" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
ok "holders survive SIGTERM and kill -9 restarts; a lowered --lock-group max applies to new locks only"
stop_server

# Bad options: one line, exit 2.
for bad in "--lock-group default" "--lock-group a/b=1" "--lock-group x=-1" "--lock-group x=1000001" \
        "--lock-etcd ftp://x" "--lock-etcd-cert $T/x" "--lock-etcd-timeout 0"; do
        set +e; err=$("$SERVER" --reldir "$T/rel" --db "$T/db2.sqlite" $bad 2>&1); rc=$?; set -e
        [ $rc = 2 ] && [ "$(wc -l <<<"$err")" = 1 ] || fail "option '$bad': rc=$rc $err"
        echo "  $bad: $err"
done
ok "bad FleetLock options: one line each, exit 2"

# =============== etcd backend ===============
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
        echo "FAIL: etcd-server/etcd-client not installed (scripts/deps.sh)"; exit 1
fi
export ETCDCTL_API=3
KEY=coreos.com/updateengine/rebootlock/semaphore
WKEY=coreos.com/updateengine/rebootlock/groups/workers/semaphore
single e1 --max-request-bytes=$((12 * 1024 * 1024)) --quota-backend-bytes=$((256 * 1024 * 1024))
E1=$EP; E1CP=$cp; E1PP=$pp
start_server --lock-etcd "$E1" --lock-etcd-timeout 3 --lock-group default=2 --lock-group workers=1
lock node-a
[ "$ST" = 200 ] || fail "etcd: pre-reboot: HTTP $ST $RB"
v=$(value "$E1" $KEY)
[ "$v" = '{"semaphore":1,"max":2,"holders":["node-a"]}' ] || fail "etcdctl reads $v"
out=$("$LOCKCTL" --endpoint "$E1" --json status)
[ "$out" = "{\"key\":\"$KEY\",\"semaphore\":1,\"max\":2,\"holders\":[\"node-a\"]}" ] || fail "cairn-lockctl reads $out"
rev=$(mod_rev "$E1" $KEY)
lock node-a
grep -q already-held <<<"$RB" && [ "$(mod_rev "$E1" $KEY)" = "$rev" ] || fail "etcd: recursive lock wrote ($RB)"
lock node-w workers
[ "$(value "$E1" $WKEY)" = '{"semaphore":0,"max":1,"holders":["node-w"]}' ] || fail "workers key: $(value "$E1" $WKEY)"
lock node-x workers
expect_error 409 failed_lock_semaphore_full "all 1 slots" "etcd: workers full"
"$LOCKCTL" --endpoint "$E1" --machine-id-file <(echo lockctl-host) lock >/dev/null || fail "cairn-lockctl lock beside FleetLock"
lock node-b
expect_error 409 failed_lock_semaphore_full "all 2 slots" "etcd: default full with a cairn-lockctl holder"
unlock node-b
grep -q not-held <<<"$RB" || fail "etcd: steady-state of a non-holder: $RB"
"$LOCKCTL" --endpoint "$E1" unlock lockctl-host >/dev/null
unlock node-a; grep -q released <<<"$RB" || fail "etcd: release: $RB"
unlock node-w workers
[ "$(value "$E1" $KEY)" = '{"semaphore":2,"max":2,"holders":[]}' ] || fail "after release etcdctl reads $(value "$E1" $KEY)"
# locksmith's shape written by etcdctl (holders null), and a max set there: the configured max wins at start.
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
lock node-c; [ "$ST" = 200 ] || fail "etcd: lock on locksmith's value: $ST $RB"
[ "$(value "$E1" $KEY)" = '{"semaphore":0,"max":1,"holders":["node-c"]}' ] || fail "etcdctl reads $(value "$E1" $KEY)"
unlock node-c
out=$(curl -sf "$S/api/v1/locks")
python3 -c '
import json, sys
d = json.loads(sys.argv[1]); g = {x["group"]: x for x in d["groups"]}
assert d["backend"] == "etcd" and g["default"]["key"] == "coreos.com/updateengine/rebootlock/semaphore", d
assert g["workers"]["key"] == "coreos.com/updateengine/rebootlock/groups/workers/semaphore", d
assert g["default"]["max"] == 1 and g["default"]["configured_max"] == 2 and g["workers"]["max"] == 1, d' "$out" ||
        fail "/api/v1/locks (etcd): $out"
stop_server; etcdctl --endpoints "$E1" del $KEY >/dev/null
start_server --lock-etcd "$E1" --lock-etcd-timeout 3 --lock-group default=3 --lock-group workers=3
lock node-d
[ "$(value "$E1" $KEY)" = '{"semaphore":2,"max":3,"holders":["node-d"]}' ] || fail "a missing key is created with --lock-group's max: $(value "$E1" $KEY)"
unlock node-d
grep -q "fleetlock group 'default': max 1 -> 3" "$T/server.log" || true
ok "etcd: locksmith's keys and value read back with etcdctl and cairn-lockctl; recursion writes nothing; shared with cairn-lockctl holders; groups; /api/v1/locks"

# Bad values in etcd: reported (500 failed_lock naming the problem), never overwritten.
check_bad() { # label regex — the value is already in etcd
        local r0 op; r0=$(mod_rev "$E1" $KEY)
        for op in lock unlock; do
                $op node-e
                expect_error 500 "failed_$op" "$2" "etcd $1 value ($op)"
        done
        [ "$(mod_rev "$E1" $KEY)" = "$r0" ] || fail "the $1 value was overwritten"
        curl -sf "$S/api/v1/locks" | grep -q '"error"' || fail "/api/v1/locks does not show the $1 value's error"
        echo "  $1: $RB"
}
bad() { etcdctl --endpoints "$E1" put $KEY "$2" >/dev/null; check_bad "$1" "$3"; }
bad json '{"semaphore":1,"max":1,"holders":[' 'does not hold a valid semaphore: value is not JSON'
bad negmax '{"semaphore":-1,"max":-1,"holders":null}' '\\"max\\" is -1, outside 0'
bad holders '{"semaphore":1,"max":1,"holders":"node-e"}' '\\"holders\\" is string, not a list'
bad type '{"semaphore":"1","max":1,"holders":null}' '\\"semaphore\\" is string'
python3 - "$KEY" >"$T/put.json" <<'EOF'
import base64, json, sys
v = '{"semaphore":1,"max":1,"holders":["' + "x" * (10 * 1024 * 1024) + '"]}'
print(json.dumps({"key": base64.b64encode(sys.argv[1].encode()).decode(), "value": base64.b64encode(v.encode()).decode()}))
EOF
curl -sf -X POST "$E1/v3/kv/put" --data-binary @"$T/put.json" >/dev/null || fail "cannot put the 10 MB value"
check_bad "10 MB" "answer larger than 1048576 bytes"
etcdctl --endpoints "$E1" put $KEY '{"semaphore":3,"max":3,"holders":null}' >/dev/null
lock node-e; [ "$ST" = 200 ] || fail "lock after the value was fixed: $ST $RB"
unlock node-e
ok "etcd: malformed JSON, negative max, holders not a list, wrong type, 10 MB: 500 failed_lock/failed_unlock naming the problem, value untouched"

# 20 concurrent clients through the etcd backend, every revision watched.
etcdctl --endpoints "$E1" put $WKEY '{"semaphore":3,"max":3,"holders":null}' >/dev/null
etcdctl --endpoints "$E1" watch $WKEY -w json >"$T/watch.json" 2>"$T/watch.log" & WPID=$!; OTHER_PIDS+=("$WPID")
sleep 0.5
race etcd 3 20 ${FLEETLOCK_ROUNDS:-3}
sleep 0.5; kill "$WPID"; wait "$WPID" 2>/dev/null || true
check_watch "$T/watch.json" 3 >"$T/w.txt" || fail "watch check: $(cat "$T/w.txt")"
read -r events wpeak <"$T/w.txt"
[ "$events" = $((40 * ${FLEETLOCK_ROUNDS:-3})) ] || fail "etcd watch saw $events writes, expected $((40 * ${FLEETLOCK_ROUNDS:-3})) (a lock and a release per round)"
ok "etcd: 20 concurrent curl clients x ${FLEETLOCK_ROUNDS:-3} rounds, max 3: all $events revisions watched, at most $wpeak holders (counter: $RACE_PEAK)"

# user/password auth on e1, then TLS with client certificates: the --lock-etcd-* options reach the same client.
stop_server
etcdctl --endpoints "$E1" user add root:rootpw --interactive=false >/dev/null
etcdctl --endpoints "$E1" auth enable >/dev/null 2>"$T/auth-enable.log"
start_server --lock-etcd "$E1" --lock-etcd-user root:rootpw --lock-etcd-timeout 3 --lock-group default=3
lock node-auth; [ "$ST" = 200 ] || fail "lock with etcd auth: $ST $RB"
value "$E1" $KEY --user root:rootpw | grep -q '"node-auth"' || fail "etcdctl (auth) does not see node-auth"
unlock node-auth
stop_server
start_server --lock-etcd "$E1" --lock-etcd-user root:wrongpw --lock-etcd-timeout 3 --lock-group default=3
lock node-auth
expect_error 500 failed_lock "authentication of user 'root' failed" "wrong etcd password"
echo "  wrong password: $RB"
stop_server
etcdctl --endpoints "$E1" --user root:rootpw auth disable >/dev/null
P=$T/pki; mkdir -p "$P"
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
mkcert() { # name ca san
        openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$1" 2>/dev/null
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$P/$1.ext"
        openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial -out "$P/$1.crt" -days 2 \
                -extfile "$P/$1.ext" 2>/dev/null
}
mkca ca; mkca otherca; mkcert server ca "IP:127.0.0.1"; mkcert client ca "DNS:client"
SCHEME=https single etls --cert-file "$P/server.crt" --key-file "$P/server.key" --client-cert-auth --trusted-ca-file "$P/ca.crt"
ETLS=$EP
wait_healthy "$ETLS" --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" || fail "TLS etcd did not start"
start_server --lock-etcd "$ETLS" --lock-etcd-cacert "$P/ca.crt" --lock-etcd-cert "$P/client.crt" --lock-etcd-key "$P/client.key" \
        --lock-etcd-timeout 3 --lock-group default=3
lock node-tls; [ "$ST" = 200 ] || fail "lock over TLS: $ST $RB"
value "$ETLS" $KEY --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" | grep -q '"node-tls"' ||
        fail "etcdctl over TLS does not see node-tls"
unlock node-tls
stop_server
start_server --lock-etcd "$ETLS" --lock-etcd-cacert "$P/otherca.crt" --lock-etcd-cert "$P/client.crt" \
        --lock-etcd-key "$P/client.key" --lock-etcd-timeout 3 --lock-group default=3
lock node-tls
expect_error 500 failed_lock "not trusted by the CA" "wrong CA"
echo "  wrong CA: $RB"
stop_server; stop_etcd etls
ok "etcd with user/password auth and with TLS client certificates; wrong password and wrong CA: 500 failed_lock saying so, no grant"

# etcd down: a clear 503, never a grant; back up: works. (A fresh member: e1's WAL holds the 10 MB value,
# which etcd refuses to replay at a restart.)
stop_etcd e1
single e2
E1=$EP; E1CP=$cp; E1PP=$pp
start_server --lock-etcd "$E1" --lock-etcd-timeout 3 --lock-group default=3
lock node-f; [ "$ST" = 200 ] || fail "lock on e2: $ST $RB"
unlock node-f
stop_etcd e2
s=$SECONDS
lock node-f
expect_error 503 lock_backend_unavailable "cannot connect" "etcd down (pre-reboot)"
echo "  etcd down: $RB"
unlock node-f
expect_error 503 lock_backend_unavailable "cannot connect" "etcd down (steady-state)"
[ $((SECONDS - s)) -lt 20 ] || fail "answers with etcd down took $((SECONDS - s)) s"
curl -sf "$S/api/v1/locks" | grep -q '"error"' || fail "/api/v1/locks with etcd down shows no error"
start_etcd e2 "$E1CP" "$E1PP" "e2=http://127.0.0.1:$E1PP"
wait_healthy "$E1" || fail "etcd did not come back"
lock node-f; [ "$ST" = 200 ] || fail "lock after etcd came back: $ST $RB"
[ "$(value "$E1" $KEY)" = '{"semaphore":2,"max":3,"holders":["node-f"]}' ] || fail "after the outage etcd holds $(value "$E1" $KEY)"
unlock node-f
ok "etcd down: 503 lock_backend_unavailable with the reason (no grant), recovers when etcd returns"

stop_server

# A fake etcd that stalls or answers garbage: 503 (timeout) or 500, never a grant; while etcd stalls, at most
# --threads - 1 FleetLock requests wait for it and the next one is answered 503 at once, so the rest of
# cairn-server (here /api/v1/health) keeps a thread.
read -r FP < <(free_ports 1)
cat >"$T/fake.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        mode = open(sys.argv[2]).read().strip()
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if mode == "stall":
            time.sleep(30); return
        body = b"hello, I am not etcd\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
echo garbage >"$T/fake.mode"
python3 "$T/fake.py" "$FP" "$T/fake.mode" 2>"$T/fake.log" & OTHER_PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null -X POST "http://127.0.0.1:$FP/" && break; sleep 0.1; done
start_server --lock-etcd "http://127.0.0.1:$FP" --lock-etcd-timeout 5 --threads 4 --lock-group default=3
lock node-g
expect_error 500 failed_lock "answer is not etcd's JSON" "a fake etcd answering garbage"
echo "  garbage: $RB"
echo stall >"$T/fake.mode"
for i in 1 2 3; do
        ( curl -s -o "$T/stall-$i.body" -w '%{http_code}' -H "fleet-lock-protocol: true" -d "$(body node-s$i)" \
                "$S/v1/pre-reboot" >"$T/stall-$i.status" ) & OTHER_PIDS+=($!)
        sleep 0.3 # one at a time, so each is taken by an idle HTTP thread
done
sleep 0.5
s=$SECONDS
lock node-s4
expect_error 503 lock_backend_unavailable "already waiting for etcd" "a 4th request while 3 wait for a stalled etcd"
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$S/api/v1/health") || st=timeout
[ "$st" = 200 ] || fail "/api/v1/health while etcd stalls: $st"
[ $((SECONDS - s)) -le 2 ] || fail "answers while etcd stalls took $((SECONDS - s)) s"
for i in 1 2 3; do
        for _ in $(seq 150); do [ -s "$T/stall-$i.status" ] && break; sleep 0.1; done
        [ "$(cat "$T/stall-$i.status")" = 503 ] && grep -q "no answer within 5 s" "$T/stall-$i.body" ||
                fail "stalled request $i: $(cat "$T/stall-$i.status") $(cat "$T/stall-$i.body")"
done
echo "  stall: $(cat "$T/stall-1.body")"
ok "a fake etcd: garbage → 500 failed_lock, a stall → 503 after --lock-etcd-timeout (5 s); a 4th request answered 503 at once and /api/v1/health served meanwhile"
stop_server
# Under CAIRN_SERVER=build/asan/bin/cairn-server: any sanitizer report (leaks at exit included) fails the test.
! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$T/server.log" || fail "sanitizer report in the server log"
echo "all done in $((SECONDS - START)) s"
