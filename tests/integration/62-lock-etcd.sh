#!/usr/bin/env bash
# cost: 180
# tests/integration/62-lock-etcd.sh — the etcd v3 reboot lock (updater/lock/etcd.c) through cairn-lockctl against
# real etcd (Debian's etcd-server) on 127.0.0.1: lock/unlock/set-max/status, recursion, foreign unlock refused,
# etcdctl as the oracle both ways (locksmith's shape with "holders":null), two processes racing 200 rounds with
# max=1 (every revision seen by `etcdctl watch` checked), a 3-node cluster with 5 contenders and max=2 (one
# node killed mid-run, then quorum lost and regained), TLS with client certs, user/password auth, malformed
# values left untouched, and a fake etcd answering garbage or stalling.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCKCTL=${CAIRN_LOCKCTL:-$ROOT/build/bin/cairn-lockctl}
[ -x "$LOCKCTL" ] || { echo "FAIL: $LOCKCTL not built (run make)"; exit 1; }
for t in etcd etcdctl python3 openssl; do
        command -v $t >/dev/null || { echo "skip: $t not installed (scripts/deps.sh installs etcd-server, etcd-client)"; exit 77; }
done
export ETCDCTL_API=3

T=$(mktemp -d /tmp/cairn-62.XXXXXX)
declare -A EPID=()
OTHER_PIDS=()
cleanup() {
        local p
        for p in "${EPID[@]}" "${OTHER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        for p in "${EPID[@]}" "${OTHER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
on_exit cleanup
FAIL_LOGS="$T/*.log" FAIL_TAIL=8
ok() { echo "ok: $*"; }
START=$SECONDS

KEY=coreos.com/updateengine/rebootlock/semaphore

. "$ROOT/tests/lib/etcd.sh" # free_ports, start_etcd, stop_etcd, wait_healthy, single, mod_rev, value
idfile() { printf '%s\n' "$2" >"$T/id-$1"; echo "$T/id-$1"; }

# =============== single node: the basics, etcdctl as the oracle ===============
single e1 --max-request-bytes=$((12 * 1024 * 1024)) --quota-backend-bytes=$((256 * 1024 * 1024))
E1=$EP
L() { "$LOCKCTL" --endpoint "$E1" --timeout 5 "$@"; }
A=$(idfile A aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)
B=$(idfile B bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb)

out=$(L status) || fail "status on an empty etcd"
[ "$out" = "$(printf 'Available: 1\nMax: 1')" ] || fail "status of a missing key: $out"
[ "$(mod_rev "$E1" $KEY)" = 0 ] || fail "status created the key"
out=$(L --machine-id-file "$A" lock) || fail "lock A: $out"
[ "$out" = "locked: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" ] || fail "lock A said: $out"
v=$(value "$E1" $KEY)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d=={"semaphore":0,"max":1,"holders":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}, d' "$v" ||
        fail "etcdctl reads $v"
rev=$(mod_rev "$E1" $KEY)
out=$(L --machine-id-file "$A" lock) || fail "recursive lock A failed"
[ "$out" = "already-held: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" ] || fail "recursive lock said: $out"
[ "$(mod_rev "$E1" $KEY)" = "$rev" ] || fail "a recursive lock wrote the key"
ok "lock on a missing key creates locksmith's value (etcdctl reads $v); recursive lock writes nothing"

set +e; err=$(L --machine-id-file "$B" lock 2>&1); rc=$?; set -e
[ $rc = 3 ] || fail "lock B with max 1 taken: rc=$rc ($err)"
grep -q "no slot free" <<<"$err" || fail "full semaphore message: $err"
set +e; err=$(L --machine-id-file "$B" unlock 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "B released A's lock? rc=$rc"
grep -q "'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' holds no slot" <<<"$err" || fail "foreign unlock message: $err"
[ "$(mod_rev "$E1" $KEY)" = "$rev" ] || fail "a refused unlock wrote the key"
set +e; err=$(L unlock cccccccc 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "'cccccccc' holds no slot" <<<"$err" || fail "unlock of a non-holder: rc=$rc $err"
ok "second holder refused with max 1 (exit 3); a non-holder's unlock refused and nothing written"

out=$(L set-max 3) || fail "set-max 3"
[ "$out" = "$(printf 'Old-Max: 1\nMax: 3')" ] || fail "set-max said: $out"
L --machine-id-file "$B" lock >/dev/null || fail "lock B after set-max 3"
out=$(L --json status)
[ "$out" = '{"key":"coreos.com/updateengine/rebootlock/semaphore","semaphore":1,"max":3,"holders":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}' ] ||
        fail "status --json: $out"
out=$(L status)
grep -qx "Available: 1" <<<"$out" && grep -qx "Max: 3" <<<"$out" && grep -qx "MACHINE ID" <<<"$out" &&
        grep -qx bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb <<<"$out" || fail "status: $out"
out=$(L unlock bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb) && [ "$out" = "unlocked: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" ] ||
        fail "operator unlock of B: $out"
L --machine-id-file "$A" unlock >/dev/null || fail "A releases its own lock"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d=={"semaphore":3,"max":3,"holders":[]}, d' "$(value "$E1" $KEY)" ||
        fail "after both unlocks etcd holds $(value "$E1" $KEY)"
L set-max 1 >/dev/null
ok "set-max shifts the available count; explicit unlock ID frees another's slot; status human and --json"

# locksmith's own shape, written by etcdctl: "holders":null.
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
out=$(L --json status) && [ "$out" = '{"key":"coreos.com/updateengine/rebootlock/semaphore","semaphore":1,"max":1,"holders":[]}' ] ||
        fail "status of locksmith's value: $out"
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":2,"holders":["locksmith-node"]}' >/dev/null
L --machine-id-file "$A" lock >/dev/null || fail "lock beside a locksmith holder"
[ "$(value "$E1" $KEY)" = '{"semaphore":0,"max":2,"holders":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","locksmith-node"]}' ] ||
        fail "etcdctl reads $(value "$E1" $KEY)"
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
"$LOCKCTL" --endpoint "$E1" --group "edge nodes/x" --machine-id-file "$A" lock >/dev/null || fail "group lock"
value "$E1" "coreos.com/updateengine/rebootlock/groups/edge+nodes%2Fx/semaphore" | grep -q '"holders":\["a' ||
        fail "the group's key (query-escaped like locksmith) does not hold A"
ok "we read locksmith's shape written by etcdctl (holders null, a locksmith holder); group keys query-escaped"

# =============== malformed values: clear errors, value left unchanged ===============
check_bad() { # label value-file expected-message-regex
        if [ "$1" = "10 MB" ]; then # etcdctl's client refuses to send more than 2 MiB: put through the gateway
                python3 - "$2" $KEY >"$T/put.json" <<'EOF'
import base64, json, sys
print(json.dumps({"key": base64.b64encode(sys.argv[2].encode()).decode(),
                  "value": base64.b64encode(open(sys.argv[1], "rb").read()).decode()}))
EOF
                curl -sf -X POST "$E1/v3/kv/put" --data-binary @"$T/put.json" >/dev/null
                [ "$(value "$E1" $KEY | wc -c)" -gt $((10 * 1024 * 1024)) ] || fail "etcdctl does not read back the 10 MB value"
        elif [ -s "$2" ]; then etcdctl --endpoints "$E1" put $KEY <"$2" >/dev/null
        else etcdctl --endpoints "$E1" put $KEY ''; fi >/dev/null || fail "etcdctl put of the $1 value"
        local r0; r0=$(mod_rev "$E1" $KEY)
        local cmd rc err
        for cmd in "lock" "unlock" "set-max 5"; do
                set +e; err=$(L --machine-id-file "$A" $cmd 2>&1); rc=$?; set -e
                [ $rc = 1 ] || fail "$cmd on a $1 value: rc=$rc ($err)"
                grep -Eq "$3" <<<"$err" || fail "$cmd on a $1 value said: $err"
                [ "$(wc -l <<<"$err")" = 1 ] || fail "$cmd on a $1 value: more than one line: $err"
                [ "$cmd" = lock ] && echo "  $1: $err"
        done
        [ "$(mod_rev "$E1" $KEY)" = "$r0" ] || fail "the $1 value was overwritten"
        set +e; L status >/dev/null 2>&1; rc=$?; set -e
        [ $rc = 1 ] || fail "status of a $1 value succeeded"
}
bad() { printf '%s' "$2" >"$T/bad-$1"; check_bad "$1" "$T/bad-$1" "$3"; }
bad json '{"semaphore":1,"max":1,"holders":[' 'does not hold a valid semaphore: value is not JSON'
bad type '{"semaphore":"1","max":1,"holders":null}' '"semaphore" is string, not an integer'
bad negmax '{"semaphore":-1,"max":-1,"holders":null}' '"max" is -1, outside 0'
bad holders '{"semaphore":1,"max":1,"holders":"aaaa"}' '"holders" is string, not a list'
bad dup '{"semaphore":0,"max":2,"holders":["x","x"]}' 'holder "x" listed twice'
bad sum '{"semaphore":1,"max":1,"holders":["x"]}' 'max 1 minus 1 holders is 0'
bad empty '' 'value is empty'
python3 -c 'import sys; sys.stdout.write("{\"semaphore\":1,\"max\":1,\"holders\":[\"" + "x" * (10 * 1024 * 1024) + "\"]}")' >"$T/bad-10mb"
check_bad "10 MB" "$T/bad-10mb" "answer larger than 1048576 bytes|received message larger"
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
ok "malformed JSON, wrong types, negative max, holders not a list, duplicates, inconsistent count, empty, 10 MB: one clear line each, value unchanged"

# =============== a transaction applied but its answer lost ===============
# A proxy forwards to e1 but, for every other /v3/kv/txn, drops the connection after etcd applied it. The client
# resends on the next endpoint (e1 itself), loses the compare, re-reads, and finds its change made: success,
# one slot, no "holds no slot" on unlock.
read -r PP < <(free_ports 1)
cat >"$T/lossy.py" <<'EOF'
import http.server, sys, urllib.request
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        global n
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = urllib.request.Request(sys.argv[2] + self.path, data=body, headers={"Content-Type": "application/json"})
        data = urllib.request.urlopen(req, timeout=5).read()
        if self.path == "/v3/kv/txn":
            n += 1
            if n % 2 == 1:
                self.connection.close(); return   # applied by etcd, answer lost
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$T/lossy.py" "$PP" "$E1" 2>"$T/lossy.log" & OTHER_PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null -X POST -d '{}' "http://127.0.0.1:$PP/v3/kv/range" && break; sleep 0.1; done
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
LL() { "$LOCKCTL" --endpoint "http://127.0.0.1:$PP,$E1" --timeout 5 --machine-id-file "$A" "$@"; }
out=$(LL lock 2>&1) && [ "$out" = "locked: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" ] || fail "lock with a lost answer: $out"
out=$(LL unlock 2>&1) && [ "$out" = "unlocked: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" ] || fail "unlock with a lost answer: $out"
out=$(LL lock 2>&1) && out=$("$LOCKCTL" --endpoint "http://127.0.0.1:$PP,$E1" unlock aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 2>&1) &&
        [ "$out" = "unlocked: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" ] || fail "operator unlock with a lost answer: $out"
[ "$(value "$E1" $KEY)" = '{"semaphore":1,"max":1,"holders":[]}' ] || fail "after lost answers etcd holds $(value "$E1" $KEY)"
ok "a transaction applied but its answer lost: the resent one sees the change made and reports success"

# =============== two processes racing 200 lock/unlock rounds, max 1 ===============
etcdctl --endpoints "$E1" put $KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null
etcdctl --endpoints "$E1" watch --prefix coreos.com/updateengine/rebootlock/ -w json >"$T/watch1.json" 2>"$T/watch1.log" &
WPID=$!; OTHER_PIDS+=("$WPID")
sleep 0.5
racer() { # idfile rounds log
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
racer "$A" 200 "$T/racer-a.out" & RA=$!
racer "$B" 200 "$T/racer-b.out" & RB=$!
wait $RA || fail "racer A: $(tail -n 3 "$T/racer-a.out")"
wait $RB || fail "racer B: $(tail -n 3 "$T/racer-b.out")"
sleep 1
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null || true
locks=$(cat "$T/racer-a.out" "$T/racer-b.out" | grep -c '^locked: ')
[ "$locks" = 400 ] || fail "racers took $locks locks, not 400"
# Every revision of the key, decoded: never more holders than max, count consistent, no lost or extra write.
python3 - "$T/watch1.json" 1 <<'EOF' >"$T/race1.txt" || fail "watch check: $(cat "$T/race1.txt")"
import base64, json, sys
maxh, revs, events, last = int(sys.argv[2]), set(), 0, None
dec = json.JSONDecoder()
buf = open(sys.argv[1]).read()
i = 0
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    obj, i = dec.raw_decode(buf, i)
    for ev in obj.get("Events") or []:
        kv = ev["kv"]
        v = json.loads(base64.b64decode(kv["value"]))
        h = v["holders"] or []
        assert len(h) <= v["max"] == maxh, ("too many holders", kv["mod_revision"], v)
        assert v["semaphore"] == v["max"] - len(h), ("inconsistent", v)
        assert len(set(h)) == len(h), ("duplicate", v)
        if last is not None:
            assert abs(len(h) - last) == 1, ("a write changed more than one holder", v)
        last = len(h)
        assert kv["mod_revision"] not in revs
        revs.add(kv["mod_revision"]); events += 1
print(events)
EOF
events=$(cat "$T/race1.txt")
[ "$events" = 800 ] || fail "watch saw $events writes, expected 800 (400 locks + 400 unlocks)"
ok "2 processes x 200 rounds, max 1: 800 revisions watched, never more than 1 holder, none lost or duplicated"

# =============== user/password auth (on e1) ===============
etcdctl --endpoints "$E1" user add root:rootpw --interactive=false >/dev/null
etcdctl --endpoints "$E1" auth enable >/dev/null 2>"$T/auth-enable.log" # grants root the root role itself
out=$(L --user root:rootpw --machine-id-file "$A" lock) || fail "lock with auth: $out"
value "$E1" $KEY --user root:rootpw | grep -q '"holders":\["aaaa' || fail "etcdctl (auth) does not see A"
out=$(CAIRN_LOCK_USER=root:rootpw L --json status) && grep -q '"holders":\["aaaa' <<<"$out" || fail "status with auth from env: $out"
set +e; err=$(L --user root:wrongpw --machine-id-file "$B" lock 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "authentication of user 'root' failed: etcdserver: authentication failed" <<<"$err" ||
        fail "wrong password: rc=$rc $err"
echo "  $err"
set +e; err=$(L --machine-id-file "$B" lock 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "etcd refused us: .*pass --user" <<<"$err" || fail "no credentials: rc=$rc $err"
echo "  $err"
L --user root:rootpw --machine-id-file "$A" unlock >/dev/null || fail "unlock with auth"
ok "user/password auth: works with --user and \$CAIRN_LOCK_USER; wrong password and none refused clearly"
stop_etcd e1

# =============== TLS: CA, server and client certificates ===============
P=$T/pki; mkdir -p "$P"
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
mkcert() { # name ca san
        openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$1" 2>/dev/null
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$P/$1.ext"
        openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial -out "$P/$1.crt" -days 2 \
                -extfile "$P/$1.ext" 2>/dev/null
}
mkca ca; mkca otherca
mkcert server ca "IP:127.0.0.1"; mkcert client ca "DNS:client"
SCHEME=https single etls --cert-file "$P/server.crt" --key-file "$P/server.key" --client-cert-auth --trusted-ca-file "$P/ca.crt"
ETLS=$EP
TLSARGS=(--cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key")
wait_healthy "$ETLS" "${TLSARGS[@]}" || fail "TLS etcd did not start"
out=$("$LOCKCTL" --endpoint "$ETLS" "${TLSARGS[@]}" --machine-id-file "$A" lock) || fail "lock over TLS: $out"
value "$ETLS" $KEY "${TLSARGS[@]}" | grep -q '"holders":\["aaaa' || fail "etcdctl over TLS does not see A"
set +e
err=$("$LOCKCTL" --endpoint "$ETLS" --cacert "$P/otherca.crt" --cert "$P/client.crt" --key "$P/client.key" status 2>&1); rc=$?
set -e
[ $rc = 1 ] && grep -q "TLS: the server's certificate is not trusted by the CA '$P/otherca.crt'" <<<"$err" || fail "wrong CA: rc=$rc $err"
echo "  $err"
set +e; err=$("$LOCKCTL" --endpoint "$ETLS" --cacert "$P/ca.crt" status 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -Eq "TLS handshake failed|connection broken .*pass --cert and --key" <<<"$err" || fail "no client certificate: rc=$rc $err"
echo "  $err"
ok "TLS with a client certificate; wrong CA and missing client certificate refused clearly"
stop_etcd etls

# =============== a fake etcd: garbage, wrong shapes, huge answers, stalls ===============
read -r FP < <(free_ports 1)
cat >"$T/fake.py" <<'EOF'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        mode = open(sys.argv[2]).read().strip()
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if mode == "stall":
            time.sleep(30); return
        body = {"garbage": b"hello, I am not etcd\n",
                "kvs": b'{"kvs":"nope","count":"1"}',
                "big": b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}',
                "http500": b"<html>oops</html>"}[mode]
        self.send_response(500 if mode == "http500" else 200)
        self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
echo garbage >"$T/fake.mode"
python3 "$T/fake.py" "$FP" "$T/fake.mode" 2>"$T/fake.log" & OTHER_PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null -X POST "http://127.0.0.1:$FP/" && break; sleep 0.1; done
fake() { # mode regex
        echo "$1" >"$T/fake.mode"
        local s=$SECONDS rc err
        set +e; err=$("$LOCKCTL" --endpoint "http://127.0.0.1:$FP" --timeout 2 --machine-id-file "$A" lock 2>&1); rc=$?; set -e
        [ $rc = 1 ] && grep -Eq "$2" <<<"$err" || fail "fake etcd ($1): rc=$rc $err"
        echo "  fake etcd ($1): $err"
        [ $((SECONDS - s)) -lt 15 ] || fail "fake etcd ($1) took $((SECONDS - s)) s"
}
fake garbage "HTTP 200, answer is not etcd's JSON: \"hello, I am not etcd\\\\x0a\""
fake kvs "malformed \"kvs\""
fake big "answer larger than 1048576 bytes"
fake http500 "HTTP 500, answer is not etcd's JSON"
fake stall "no answer within 2 s"
ok "a fake etcd answering garbage, a wrong shape, 2 MiB, HTTP 500 or nothing: one clear error each, within the timeout"

# =============== 3-node cluster: 5 contenders, max 2, a node killed, quorum lost and regained ===============
read -r c1 c2 c3 p1 p2 p3 < <(free_ports 6)
CL="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
export TOKEN=three
start_etcd n1 "$c1" "$p1" "$CL"; start_etcd n2 "$c2" "$p2" "$CL"; start_etcd n3 "$c3" "$p3" "$CL"
N1=http://127.0.0.1:$c1 N2=http://127.0.0.1:$c2 N3=http://127.0.0.1:$c3
EPS=$N1,$N2,$N3
wait_healthy "$EPS" || fail "3-node cluster did not start"
etcdctl --endpoints "$N1" put $KEY '{"semaphore":2,"max":2,"holders":null}' >/dev/null
etcdctl --endpoints "$N3" watch --prefix coreos.com/updateengine/rebootlock/ -w json >"$T/watch3.json" 2>"$T/watch3.log" &
WPID=$!; OTHER_PIDS+=("$WPID")
sleep 0.5
contender() { # n rounds
        local id i rc unavail=0
        id=$(idfile "c$1" "contender-$1")
        for i in $(seq "$2"); do
                while :; do
                        rc=0; "$LOCKCTL" --endpoint "$EPS" --timeout 5 --machine-id-file "$id" lock >>"$T/cont-$1.out" 2>&1 || rc=$?
                        [ $rc = 0 ] && break
                        # While the cluster elects a new leader after the kill, "unavailable" is a fair answer
                        # (the agent retries it with backoff); a few are allowed, nothing else.
                        if [ $rc = 1 ] && tail -n 1 "$T/cont-$1.out" | grep -q "unavailable" && [ $((unavail += 1)) -le 5 ]; then
                                continue
                        fi
                        [ $rc = 3 ] || { echo "contender: lock rc=$rc" >>"$T/cont-$1.out"; return 1; }
                done
                until "$LOCKCTL" --endpoint "$EPS" --timeout 5 --machine-id-file "$id" unlock >>"$T/cont-$1.out" 2>&1; do
                        tail -n 1 "$T/cont-$1.out" | grep -q "unavailable" && [ $((unavail += 1)) -le 5 ] ||
                                { echo "contender: unlock failed" >>"$T/cont-$1.out"; return 1; }
                done
        done
}
CPIDS=()
for n in 1 2 3 4 5; do contender $n 40 & CPIDS+=($!); done
# Kill node 1 (every client's first endpoint) once the run is well under way.
for _ in $(seq 200); do [ "$(cat "$T"/cont-*.out 2>/dev/null | grep -c '^locked: ')" -ge 40 ] && break; sleep 0.05; done
stop_etcd n1
killed_at=$(cat "$T"/cont-*.out | grep -c '^locked: ')
for p in "${CPIDS[@]}"; do wait "$p" || fail "a contender failed with a node down: $(tail -n 3 "$T"/cont-*.out)"; done
sleep 1
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null || true
locks=$(cat "$T"/cont-*.out | grep -c '^locked: ')
# A lock whose answer was lost when n1 died is retried on n1/n2 and reads "already-held": count both.
held=$(cat "$T"/cont-*.out | grep -c '^already-held: ' || true)
[ $((locks + held)) -ge 200 ] || fail "contenders took $locks (+$held) locks, not 200"
python3 - "$T/watch3.json" 2 <<'EOF' >"$T/race3.txt" || fail "3-node watch check: $(cat "$T/race3.txt")"
import base64, json, sys
maxh, events, peak = int(sys.argv[2]), 0, 0
dec = json.JSONDecoder(); buf = open(sys.argv[1]).read(); i = 0
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    obj, i = dec.raw_decode(buf, i)
    for ev in obj.get("Events") or []:
        v = json.loads(base64.b64decode(ev["kv"]["value"]))
        h = v["holders"] or []
        assert len(h) <= v["max"] == maxh, ("too many holders", ev["kv"]["mod_revision"], v)
        assert v["semaphore"] == v["max"] - len(h) and len(set(h)) == len(h), v
        peak = max(peak, len(h)); events += 1
print(events, peak)
EOF
read -r events peak <"$T/race3.txt"
[ "$events" -ge 400 ] && [ "$peak" = 2 ] || fail "3-node watch: $events writes, peak $peak holders"
ok "3 nodes, 5 contenders x 40 rounds, max 2: $events revisions, at most $peak holders; node n1 (the first endpoint) killed after $killed_at locks"

# Kill a second node: no quorum. Nothing may be taken; the error says why.
stop_etcd n2
s=$SECONDS
set +e; err=$("$LOCKCTL" --endpoint "$EPS" --timeout 10 --machine-id-file "$A" lock 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "cluster unavailable: no quorum" <<<"$err" || fail "lock without quorum: rc=$rc $err"
echo "  no quorum: $err"
[ $((SECONDS - s)) -lt 40 ] || fail "lock without quorum took $((SECONDS - s)) s"
set +e; "$LOCKCTL" --endpoint "$EPS" --timeout 10 status >/dev/null 2>&1; rc=$?; set -e
[ $rc = 1 ] || fail "status without quorum succeeded"
# Bring n2 back (same data dir): quorum returns, A's attempt left nothing behind, and locking works again.
start_etcd n2 "$c2" "$p2" "$CL"
wait_healthy "$N2,$N3" || fail "n2 did not come back"
for _ in $(seq 50); do "$LOCKCTL" --endpoint "$EPS" --timeout 5 status >/dev/null 2>&1 && break; sleep 0.2; done
out=$("$LOCKCTL" --endpoint "$EPS" --json status) || fail "status after recovery"
[ "$out" = '{"key":"coreos.com/updateengine/rebootlock/semaphore","semaphore":2,"max":2,"holders":[]}' ] ||
        fail "after the quorum loss etcd holds: $out"
"$LOCKCTL" --endpoint "$EPS" --machine-id-file "$A" lock >/dev/null || fail "lock after recovery"
"$LOCKCTL" --endpoint "$EPS" --machine-id-file "$A" unlock >/dev/null || fail "unlock after recovery"
ok "no quorum: lock refused with a clear error, nothing taken; works again when n2 returns"

echo "all done in $((SECONDS - START)) s"
