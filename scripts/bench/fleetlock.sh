#!/usr/bin/env bash
# scripts/bench/fleetlock.sh — FleetLock round trips (POST /v1/pre-reboot + POST /v1/steady-state) per second through
# cairn-server with 1, 8 and 64 clients (threads of cairn-fleetlock-bench, each its own keep-alive connection and
# holder id; group max = clients, so every client can hold a slot and the numbers measure the server, not the
# waiting), for the SQLite backend and the etcd backend (a local 3-node etcd), beside the same lock+unlock rounds
# straight against etcd with cairn-lock-bench (the library cairn-lockctl and the agent use). After every run the
# group must read back with no holder left. Env: BENCH_SECS (default 5), BENCH_THREADS (cairn-server --threads, 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${BENCH_SECS:-5}
B=$PWD/build/bin
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "bench: etcd-server/etcd-client not installed (scripts/deps.sh)"; exit 1; }
[ -x "$B/cairn-server" ] && [ -x "$B/cairn-fleetlock-bench" ] && [ -x "$B/cairn-lock-bench" ] ||
        make -s "$B/cairn-server" "$B/cairn-fleetlock-bench" "$B/cairn-lock-bench"
export ETCDCTL_API=3

T=$(mktemp -d /tmp/cairn-bench-fleetlock.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
read -r c1 c2 c3 p1 p2 p3 < <(python3 -c '
import socket; s=[socket.socket() for _ in range(6)]
[x.bind(("127.0.0.1",0)) for x in s]; print(" ".join(str(x.getsockname()[1]) for x in s))')
CL="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
for i in 1 2 3; do
        eval cp=\$c$i pp=\$p$i
        etcd --name n$i --data-dir "$T/n$i" --listen-client-urls http://127.0.0.1:$cp --advertise-client-urls http://127.0.0.1:$cp \
                --listen-peer-urls http://127.0.0.1:$pp --initial-advertise-peer-urls http://127.0.0.1:$pp \
                --initial-cluster "$CL" --initial-cluster-state new --initial-cluster-token cairn-bench-fl >"$T/n$i.log" 2>&1 &
        PIDS+=($!)
done
EPS=http://127.0.0.1:$c1,http://127.0.0.1:$c2,http://127.0.0.1:$c3
for _ in $(seq 100); do etcdctl --endpoints "$EPS" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
etcdctl --endpoints "$EPS" endpoint health >/dev/null 2>&1 || { echo "bench: etcd cluster did not start"; exit 1; }

mkdir -p "$T/rel/channels" "$T/rel/payloads"
GROUPS_OPTS=(--lock-group c1=1 --lock-group c8=8 --lock-group c64=64)
server() { # name [options] — sets URL
        "$B/cairn-server" --reldir "$T/rel" --db "$T/$1.sqlite" --listen 127.0.0.1:0 --threads "${BENCH_THREADS:-4}" \
                --max-conns-per-ip 0 "${GROUPS_OPTS[@]}" "${@:2}" >"$T/$1.out" 2>/dev/null &
        PIDS+=($!)
        for _ in $(seq 100); do grep -q listening "$T/$1.out" && break; sleep 0.05; done
        URL=http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$T/$1.out")
}
server sqlite; SQ=$URL
server etcd --lock-etcd "$EPS"; ET=$URL
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
empty() { # url group
        curl -s "$1/api/v1/locks" | python3 -c '
import json, sys
g = [x for x in json.load(sys.stdin)["groups"] if x["group"] == sys.argv[1]][0]
sys.exit(0 if g["holders"] == [] and g["semaphore"] == g["max"] else 1)' "$2" ||
                { echo "bench: group $2 at $1 has holders left (lost or duplicated)"; exit 1; }
}
printf '%-8s | %11s %8s | %11s %8s | %11s %8s\n' clients "sqlite rnd/s" "p99 ms" "etcd rnd/s" "p99 ms" "direct rnd/s" "p99 ms"
printf -- '---------+----------------------+----------------------+----------------------\n'
for n in 1 8 64; do
        sq=$("$B/cairn-fleetlock-bench" --url "$SQ" --group c$n --clients $n --seconds "$SECS"); empty "$SQ" c$n
        et=$("$B/cairn-fleetlock-bench" --url "$ET" --group c$n --clients $n --seconds "$SECS"); empty "$ET" c$n
        etcdctl --endpoints "$EPS" put coreos.com/updateengine/rebootlock/semaphore "{\"semaphore\":$n,\"max\":$n,\"holders\":null}" >/dev/null
        di=$("$B/cairn-lock-bench" --endpoint "$EPS" --clients $n --seconds "$SECS" --mode lock)
        printf '%-8s | %11s %8s | %11s %8s | %11s %8s\n' "$n" "$(field rounds_per_s "$sq")" "$(field p99_ms "$sq")" \
                "$(field rounds_per_s "$et")" "$(field p99_ms "$et")" "$(field rounds_per_s "$di")" "$(field p99_ms "$di")"
done
echo "(a round = pre-reboot + steady-state through cairn-server, or lock + unlock straight against etcd (direct);"
echo " ${SECS} s each, cairn-server --threads ${BENCH_THREADS:-4}; every group read back empty after its run)"
