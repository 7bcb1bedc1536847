# tests/lib/etcd.sh — start and stop real etcd (Debian's etcd-server) on random 127.0.0.1 ports for the reboot-lock
# tests (sourced; needs $T and fail()). Sets EPID[name] per node.
export ETCDCTL_API=3
declare -A EPID=()
ETCD_KEY=coreos.com/updateengine/rebootlock/semaphore

etcd_free_ports() { # N → N distinct free ports
        python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
etcd_start() { # NAME CPORT PPORT CLUSTER TOKEN
        etcd --name "$1" --data-dir "$T/$1.etcd" \
                --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
                --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
                --initial-cluster "$4" --initial-cluster-state new --initial-cluster-token "cairn-$5" \
                >>"$T/$1.etcd.log" 2>&1 &
        EPID[$1]=$!
}
etcd_stop() { kill -9 "${EPID[$1]}" 2>/dev/null || true; wait "${EPID[$1]}" 2>/dev/null || true; unset "EPID[$1]"; }
etcd_stop_all() { local n; for n in "${!EPID[@]}"; do etcd_stop "$n"; done; }
etcd_healthy() { # ENDPOINTS
        local _
        for _ in $(seq 100); do
                etcdctl --endpoints "$1" --command-timeout=2s endpoint health >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}
etcd_single() { # NAME → sets EP (retries on a port race)
        local cp pp _
        for _ in 1 2 3; do
                read -r cp pp < <(etcd_free_ports 2)
                rm -rf "$T/$1.etcd"
                etcd_start "$1" "$cp" "$pp" "$1=http://127.0.0.1:$pp" "$1"
                EP=http://127.0.0.1:$cp
                ETCD_CPORT=$cp ETCD_PPORT=$pp
                etcd_healthy "$EP" && return 0
                etcd_stop "$1"
        done
        fail "etcd $1 did not start"
}
etcd_holders() { # ENDPOINTS → the holders, one per line (nothing for a missing key)
        etcdctl --endpoints "$1" --command-timeout=5s get "$ETCD_KEY" --print-value-only |
                python3 -c 'import json,sys; t=sys.stdin.read().strip(); [print(h) for h in ((json.loads(t)["holders"] or []) if t else [])]'
}
