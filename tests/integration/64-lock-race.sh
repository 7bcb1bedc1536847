#!/usr/bin/env bash
# cost: 110
# tests/integration/64-lock-race.sh — the etcd reboot lock under races, with cairn-lockctl as the contenders and
# `etcdctl watch --rev 1` (every revision the key ever had, replayed from etcd's history) as the oracle:
#   1. single node, max 1: two processes racing LOCK_RACE_ROUNDS (default 300 each, 600 in all) lock/unlock
#      rounds — never more than one holder at any revision, every write accounted for;
#   2. 3-node cluster, max 2, 5 contenders with their own ids looping until told to stop: never more than 2
#      holders at any revision; one node killed mid-run → still correct; a second killed (no quorum) → every
#      contender fails with a clear error, nobody is told it holds a lock, and all recover when a node returns;
#      at the end nobody holds a slot and every lock a contender was told about was matched by its release.
# Run time about a minute; 64-lock-race.long.sh runs it with 1,000 rounds each (2,000 in all) and a longer cluster phase.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCKCTL=${CAIRN_LOCKCTL:-$ROOT/build/bin/cairn-lockctl}
[ -x "$LOCKCTL" ] || { echo "FAIL: $LOCKCTL not built (run make)"; exit 1; }
for t in etcd etcdctl python3; do
        command -v $t >/dev/null || { echo "FAIL: $t not installed (scripts/deps.sh installs etcd-server, etcd-client)"; exit 1; }
done
export ETCDCTL_API=3
ROUNDS=${LOCK_RACE_ROUNDS:-300}
PHASE=${LOCK_RACE_PHASE_LOCKS:-40} # locks granted before each kill

. "$ROOT/tests/lib/common.sh"
T=$(mktemp -d /tmp/cairn-64.XXXXXX)
declare -A EPID=()
OTHER_PIDS=()
cleanup() {
        local p
        touch "$T/stop" 2>/dev/null || true
        for p in "${OTHER_PIDS[@]}" "${EPID[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        for p in "${OTHER_PIDS[@]}" "${EPID[@]}"; do wait "$p" 2>/dev/null || true; done
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
on_exit cleanup
FAIL_LOGS="$T/*.out" FAIL_TAIL=5
ok() { echo "ok: $*"; }
START=$SECONDS
. "$ROOT/tests/lib/etcd.sh"
KEY=coreos.com/updateengine/rebootlock/semaphore
idfile() { printf '%s\n' "$2" >"$T/id-$1"; echo "$T/id-$1"; }
# history EP — every revision of the key from the first, as etcdctl watch prints it (stops after 5 s idle).
history() { timeout 5 etcdctl --endpoints "$1" watch "$KEY" --rev 1 -w json >"$T/history.json" 2>"$T/history.log" || true; }

# =============== 1. single node: two racers, max 1 ===============
single e1
E1=$EP
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
racer() { # idfile rounds out
        local i rc
        for i in $(seq "$2"); do
                while :; do
                        rc=0; "$LOCKCTL" --endpoint "$E1" --machine-id-file "$1" lock >>"$3" 2>&1 || rc=$?
                        [ $rc = 0 ] && break
                        [ $rc = 3 ] || { echo "racer: lock rc=$rc" >>"$3"; return 1; }
                done
                "$LOCKCTL" --endpoint "$E1" --machine-id-file "$1" unlock >>"$3" 2>&1 || { echo "racer: unlock failed" >>"$3"; return 1; }
        done
}
A=$(idfile A racer-a); B=$(idfile B racer-b)
s=$SECONDS
racer "$A" "$ROUNDS" "$T/racer-a.out" & RA=$!
racer "$B" "$ROUNDS" "$T/racer-b.out" & RB=$!
wait $RA || fail "racer A: $(tail -n 3 "$T/racer-a.out")"
wait $RB || fail "racer B: $(tail -n 3 "$T/racer-b.out")"
secs=$((SECONDS - s))
for r in a b; do
        n=$(grep -c '^locked: ' "$T/racer-$r.out"); u=$(grep -c '^unlocked: ' "$T/racer-$r.out")
        [ "$n" = "$ROUNDS" ] && [ "$u" = "$ROUNDS" ] || fail "racer $r: $n locks, $u unlocks, expected $ROUNDS each"
done
history "$E1"
check_watch "$T/history.json" 1 >"$T/h1.txt" || fail "history check: $(cat "$T/h1.txt")"
read -r events peak <"$T/h1.txt"
# the initial put, then one write per lock and per unlock — no more (nothing lost, nothing written twice)
[ "$events" = $((4 * ROUNDS + 1)) ] && [ "$peak" = 1 ] || fail "history: $events writes (expected $((4 * ROUNDS + 1))), peak $peak"
python3 - "$T/history.json" <<'EOF' || fail "a write changed more than one holder"
import base64, json, sys
dec = json.JSONDecoder(); buf = open(sys.argv[1]).read(); i = 0; last = None
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    obj, i = dec.raw_decode(buf, i)
    for ev in obj.get("Events") or []:
        h = json.loads(base64.b64decode(ev["kv"]["value"]))["holders"] or []
        assert last is None or abs(len(h) - last) == 1, h
        last = len(h)
EOF
ok "single node: 2 processes x $ROUNDS rounds, max 1, in $secs s: all $events revisions replayed, never more than $peak holder, each write one holder"
stop_etcd e1

# =============== 2. 3-node cluster: 5 contenders, max 2, kill one node, then quorum ===============
three
etcdctl --endpoints "$N1" put $KEY '{"semaphore":2,"max":2,"holders":null}' >/dev/null
# A contender loops lock → hold → unlock until $T/stop exists. It counts what it was told:
#   "locked:"/"already-held:" → it holds; "unlocked:" → it released. Errors other than "no slot free" are
#   retried after 0.3 s and logged with an "ERR" prefix; they must name the cause. An unlock whose earlier
#   attempt failed mid-outage may find the slot already gone (that attempt was applied when quorum came
#   back): "holds no slot" then counts as the release.
contender() { # n
        local id out=$T/cont-$1.out rc err pending=0
        id=$(idfile "c$1" "contender-$1")
        while [ ! -e "$T/stop" ]; do
                while :; do
                        rc=0; err=$("$LOCKCTL" --endpoint "$EPS" --timeout 3 --machine-id-file "$id" lock 2>&1) || rc=$?
                        [ $rc = 0 ] && { echo "$err" >>"$out"; break; }
                        [ $rc = 3 ] && { [ -e "$T/stop" ] && return 0; sleep 0.0$((RANDOM % 5 + 1)); continue; }
                        echo "ERR lock: $err" >>"$out"
                        [ -e "$T/stop" ] && return 0
                        sleep 0.3
                done
                sleep 0.0$((RANDOM % 3 + 1))
                pending=0
                while :; do
                        rc=0; err=$("$LOCKCTL" --endpoint "$EPS" --timeout 3 --machine-id-file "$id" unlock 2>&1) || rc=$?
                        [ $rc = 0 ] && { echo "$err" >>"$out"; break; }
                        if [ $pending = 1 ] && grep -q "holds no slot" <<<"$err"; then
                                echo "unlocked (earlier attempt applied): contender-$1" >>"$out"; break
                        fi
                        echo "ERR unlock: $err" >>"$out"; pending=1
                        sleep 0.3
                done
        done
}
locks() { cat "$T"/cont-*.out 2>/dev/null | grep -Ec '^(locked|already-held): ' || true; }
wait_locks() { # n timeout-s
        local s=$SECONDS
        while [ "$(locks)" -lt "$1" ]; do [ $((SECONDS - s)) -lt "$2" ] || fail "only $(locks) locks after $2 s (wanted $1)"; sleep 0.1; done
}
CPIDS=()
for n in 1 2 3 4 5; do contender $n & CPIDS+=($!); OTHER_PIDS+=($!); done
wait_locks "$PHASE" 60
stop_etcd n1
at_kill1=$(locks)
wait_locks $((at_kill1 + PHASE)) 60
ok "3 nodes, max 2, 5 contenders: $at_kill1 locks, then n1 (every contender's first endpoint) killed, $((${PHASE})) more granted"

# No quorum: n2 down too. In-flight requests end within 3 endpoints x 3 s; from then on nothing is granted.
stop_etcd n2
sleep 10
before=$(locks)
sleep 5
after=$(locks)
[ "$before" = "$after" ] || fail "$((after - before)) locks granted without quorum"
for n in 1 2 3 4 5; do
        line=$(grep '^ERR' "$T/cont-$n.out" | tail -n 1)
        [ -n "$line" ] || fail "contender $n saw no error without quorum"
        grep -Eq "no quorum|unavailable|no answer within|cannot connect" <<<"$line" || fail "contender $n: unclear error: $line"
done
echo "  no quorum, e.g.: $(grep '^ERR' "$T/cont-1.out" | tail -n 1)"
ok "no quorum: nothing granted for 5 s, every contender fails with the cause named"

restart_node 2
wait_healthy "$N2,$N3" || fail "n2 did not come back"
wait_locks $((after + 10)) 60
touch "$T/stop"
for p in "${CPIDS[@]}"; do wait "$p" || fail "a contender failed"; done
total=$(locks)
# Every contender: what it was told it took, it released.
for n in 1 2 3 4 5; do
        l=$(grep -Ec '^(locked|already-held): ' "$T/cont-$n.out" || true)
        u=$(grep -Ec '^unlocked' "$T/cont-$n.out" || true)
        [ "$l" = "$u" ] && [ "$l" -gt 0 ] || fail "contender $n: told $l locks, $u releases"
done
out=$("$LOCKCTL" --endpoint "$N2,$N3" --json status) || fail "status after recovery"
[ "$out" = "{\"key\":\"$KEY\",\"semaphore\":2,\"max\":2,\"holders\":[]}" ] || fail "after the run etcd holds: $out"
history "$N3"
check_watch "$T/history.json" 2 >"$T/h3.txt" || fail "3-node history check: $(cat "$T/h3.txt")"
read -r events peak <"$T/h3.txt"
granted=$(cat "$T"/cont-*.out | grep -c '^locked: ' || true)
[ "$events" -ge $((2 * granted)) ] && [ "$peak" = 2 ] || fail "3-node history: $events writes for $granted new locks, peak $peak"
ok "recovered with n2 back: $total locks in all, every one released; $events revisions replayed, never more than $peak holders"
echo "all done in $((SECONDS - START)) s"
