# tests/lib/etcd.sh — start and stop real etcd members (Debian's etcd-server) on 127.0.0.1 for the lock tests
# (62-lock-etcd, 63-fleetlock-server, 64-lock-race). Source it after defining:
#   T      a temporary directory (data dirs and logs go there)
#   EPID   an associative array (declare -A EPID=()) — name → pid; kill what is left in the EXIT trap
#   fail   a function that prints FAIL and exits
# SCHEME (http|https) selects the client URL scheme; TOKEN names the cluster (--initial-cluster-token).

# N distinct free ports (bound together, then released; etcd binds them right after).
free_ports() {
        python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# start_etcd NAME CPORT PPORT CLUSTER [extra args...]
start_etcd() {
        local name=$1 cp=$2 pp=$3 cluster=$4; shift 4
        etcd --name "$name" --data-dir "$T/$name.data" \
                --listen-client-urls "${SCHEME:-http}://127.0.0.1:$cp" --advertise-client-urls "${SCHEME:-http}://127.0.0.1:$cp" \
                --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
                --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "cairn-${TOKEN:-$name}" \
                "$@" >>"$T/$name.log" 2>&1 &
        EPID[$name]=$!
}
stop_etcd() { kill -9 "${EPID[$1]}" 2>/dev/null || true; wait "${EPID[$1]}" 2>/dev/null || true; unset "EPID[$1]"; }
wait_healthy() { # endpoint [etcdctl args]
        local ep=$1; shift
        for _ in $(seq 100); do
                etcdctl --endpoints "$ep" "$@" --command-timeout=2s endpoint health >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}
# A single-node etcd NAME; sets EP. Retries with new ports if a port was taken in between.
single() { # name [extra etcd args]
        local name=$1; shift
        for _ in 1 2 3; do
                read -r cp pp < <(free_ports 2)
                rm -rf "$T/$name.data"
                start_etcd "$name" "$cp" "$pp" "$name=http://127.0.0.1:$pp" "$@"
                EP=${SCHEME:-http}://127.0.0.1:$cp
                [ "${SCHEME:-http}" = https ] && return 0 # the caller waits with its certificates
                wait_healthy "$EP" && return 0
                stop_etcd "$name"
        done
        fail "etcd $name did not start"
}
# A 3-node cluster n1 n2 n3; sets N1 N2 N3 (client URLs), EPS (all three) and CPORTS/PPORTS (for a restart).
three() {
        read -r c1 c2 c3 p1 p2 p3 < <(free_ports 6)
        CPORTS=("$c1" "$c2" "$c3"); PPORTS=("$p1" "$p2" "$p3")
        CL="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
        TOKEN=${TOKEN:-three} start_etcd n1 "$c1" "$p1" "$CL"
        TOKEN=${TOKEN:-three} start_etcd n2 "$c2" "$p2" "$CL"
        TOKEN=${TOKEN:-three} start_etcd n3 "$c3" "$p3" "$CL"
        N1=http://127.0.0.1:$c1 N2=http://127.0.0.1:$c2 N3=http://127.0.0.1:$c3
        EPS=$N1,$N2,$N3
        wait_healthy "$EPS" || fail "3-node cluster did not start"
}
# restart_node I — start member nI again on its old ports and data dir (after stop_etcd nI).
restart_node() {
        local i=$1
        TOKEN=${TOKEN:-three} start_etcd "n$i" "${CPORTS[$((i - 1))]}" "${PPORTS[$((i - 1))]}" "$CL"
}
mod_rev() { # endpoint key [etcdctl args] — the key's mod_revision, 0 if missing
        local ep=$1 key=$2; shift 2
        etcdctl --endpoints "$ep" "$@" get "$key" -w json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["kvs"][0]["mod_revision"] if d.get("kvs") else 0)'
}
value() { etcdctl --endpoints "$1" get "$2" --print-value-only "${@:3}"; }

# check_watch FILE MAX — decode every revision `etcdctl watch -w json` saw: never more holders than MAX (and
# max == MAX), semaphore == max - holders, no duplicate holder, each revision once. Prints "EVENTS PEAK".
check_watch() {
        python3 - "$1" "$2" <<'PY'
import base64, json, sys
maxh, events, peak, revs = int(sys.argv[2]), 0, 0, set()
dec = json.JSONDecoder(); buf = open(sys.argv[1]).read(); i = 0
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    obj, i = dec.raw_decode(buf, i)
    for ev in obj.get("Events") or []:
        kv = ev["kv"]
        if ev.get("type") == "DELETE" or "value" not in kv: continue
        v = json.loads(base64.b64decode(kv["value"]))
        h = v["holders"] or []
        assert len(h) <= v["max"] == maxh, ("too many holders", kv["mod_revision"], v)
        assert v["semaphore"] == v["max"] - len(h), ("inconsistent", v)
        assert len(set(h)) == len(h), ("duplicate", v)
        assert kv["mod_revision"] not in revs, ("revision twice", kv["mod_revision"])
        revs.add(kv["mod_revision"]); peak = max(peak, len(h)); events += 1
print(events, peak)
PY
}

# ---- the reboot-lock agent tests' helpers (61-reboot-lock, 68-reboot-cluster): names prefixed etcd_, data in
# $T/NAME.etcd, logs in $T/NAME.etcd.log ----
export ETCDCTL_API=3
[ "$(declare -p EPID 2>/dev/null)" ] || declare -A EPID=()
ETCD_KEY=coreos.com/updateengine/rebootlock/semaphore

etcd_free_ports() { free_ports "$@"; } # N → N distinct free ports
etcd_start() { # NAME CPORT PPORT CLUSTER TOKEN
        etcd --name "$1" --data-dir "$T/$1.etcd" \
                --listen-client-urls "http://127.0.0.1:$2" --advertise-client-urls "http://127.0.0.1:$2" \
                --listen-peer-urls "http://127.0.0.1:$3" --initial-advertise-peer-urls "http://127.0.0.1:$3" \
                --initial-cluster "$4" --initial-cluster-state new --initial-cluster-token "cairn-$5" \
                >>"$T/$1.etcd.log" 2>&1 &
        EPID[$1]=$!
}
etcd_stop() { stop_etcd "$@"; }
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
