#!/usr/bin/env bash
# scripts/bench/lock.sh — the etcd reboot lock against a local 3-node etcd (Debian's etcd-server): lock+unlock
# rounds per second with 1, 8 and 64 contending clients (threads of cairn-lock-bench, each its own connection,
# max = clients so every client can hold a slot and contention is only compare-and-swap conflicts), the
# conflict-retry rate and p99 latency of a round, beside the ceiling: the same rounds as bare CAS transactions
# on a counter key over the JSON gateway (range + txn on mod_revision, two per round, retried at once).
# After each run the semaphore must read back with no holder left and semaphore == max.
# Env: BENCH_SECS (default 5).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/lib/common.sh"
cd "$(dirname "$0")/../.."
SECS=${BENCH_SECS:-5}
BENCH=$PWD/build/bin/cairn-lock-bench
LOCKCTL=$PWD/build/bin/cairn-lockctl
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "bench: etcd-server/etcd-client not installed (scripts/deps.sh)"; exit 1; }
[ -x "$BENCH" ] && [ -x "$LOCKCTL" ] || make -s build/bin/cairn-lock-bench build/bin/cairn-lockctl
export ETCDCTL_API=3
KEY=coreos.com/updateengine/rebootlock/semaphore

T=$(mktemp -d /tmp/cairn-bench-lock.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
on_exit cleanup
read -r c1 c2 c3 p1 p2 p3 < <(python3 -c '
import socket; s=[socket.socket() for _ in range(6)]
[x.bind(("127.0.0.1",0)) for x in s]; print(" ".join(str(x.getsockname()[1]) for x in s))')
CL="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
for i in 1 2 3; do
        eval cp=\$c$i pp=\$p$i
        etcd --name n$i --data-dir "$T/n$i" --listen-client-urls http://127.0.0.1:$cp --advertise-client-urls http://127.0.0.1:$cp \
                --listen-peer-urls http://127.0.0.1:$pp --initial-advertise-peer-urls http://127.0.0.1:$pp \
                --initial-cluster "$CL" --initial-cluster-state new --initial-cluster-token cairn-bench >"$T/n$i.log" 2>&1 &
        PIDS+=($!)
done
EPS=http://127.0.0.1:$c1,http://127.0.0.1:$c2,http://127.0.0.1:$c3
for _ in $(seq 100); do etcdctl --endpoints "$EPS" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
etcdctl --endpoints "$EPS" endpoint health >/dev/null 2>&1 || { echo "bench: etcd cluster did not start"; exit 1; }

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
printf '%-8s | %12s %10s %8s %8s | %12s %10s %8s | %6s\n' clients "lock rnd/s" "retry/rnd" "p99 ms" "gave up" "raw rnd/s" "retry/rnd" "p99 ms" ratio
printf -- '---------+----------------------------------------------+------------------------------------+-------\n'
for n in 1 8 64; do
        etcdctl --endpoints "$EPS" put $KEY "{\"semaphore\":$n,\"max\":$n,\"holders\":null}" >/dev/null
        lock=$("$BENCH" --endpoint "$EPS" --clients $n --seconds "$SECS" --mode lock)
        after=$("$LOCKCTL" --endpoint "$EPS" --json status)
        [ "$after" = "{\"key\":\"$KEY\",\"semaphore\":$n,\"max\":$n,\"holders\":[]}" ] ||
                { echo "bench: after $n clients the semaphore reads $after (lost or duplicated holder)"; exit 1; }
        raw=$("$BENCH" --endpoint "$EPS" --clients $n --seconds "$SECS" --mode raw)
        lr=$(field rounds_per_s "$lock") rr=$(field rounds_per_s "$raw")
        lc=$(awk -v c="$(field conflicts "$lock")" -v r="$(field rounds "$lock")" 'BEGIN { printf "%.2f", r ? c / r : 0 }')
        rc=$(awk -v c="$(field conflicts "$raw")" -v r="$(field rounds "$raw")" 'BEGIN { printf "%.2f", r ? c / r : 0 }')
        printf '%-8s | %12s %10s %8s %8s | %12s %10s %8s | %5.2fx\n' "$n" "$lr" "$lc" "$(field p99_ms "$lock")" "$(field gave_up "$lock")" \
                "$rr" "$rc" "$(field p99_ms "$raw")" "$(awk -v a="$lr" -v b="$rr" 'BEGIN { print b ? a / b : 0 }')"
done
echo "(a round = lock + unlock = 2 read-modify-write CAS; raw = the same 2 CAS on an opaque counter; ${SECS} s each;"
echo " gave up = lock/unlock calls that lost ${LOCK_ATTEMPTS:-32} CAS races in a row and returned -EAGAIN (retried by the bench);"
echo " the semaphore read back intact after every run)"
