#!/usr/bin/env bash
# tests/integration/21-server.sh — cairn-server over real HTTP on 127.0.0.1: channels, noupdate/ok answers with the
# right size and sha256, rollout, pause, max per period, promotion, events, bad input, locked/read-only DB, Range/HEAD,
# kill -9 consistency and SIGTERM. Release directory made by ci/release.sh and ci/promote.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$(dirname "$0")/../.."
ROOT=$PWD
SERVER=${CAIRN_SERVER:-$ROOT/build/bin/cairn-server}
[ -x "$SERVER" ] || { echo "FAIL: $SERVER not built (run make)"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl missing (scripts/deps.sh installs it)"; exit 1; }

T=$(mktemp -d /tmp/cairn-21.XXXXXX)
PID=
cleanup() {
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        [ -n "${LOCKPID:-}" ] && kill "$LOCKPID" 2>/dev/null
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
on_exit cleanup
FAIL_LOGS="$T/server.log"
ok() { echo "ok: $*"; }

APPID='{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}'
REL=$T/rel

# ---- release directory via the ci scripts (real signed payloads when the payload tools are built) ----
# ci/release.sh takes each release's version and board from the image's own os-release.
. tests/lib/usr-image.sh
[ -x build/bin/cairn-release ] && [ -x build/bin/cairn-keygen ] && [ -x build/bin/cairn-mkimage ] ||
        { echo "FAIL: the payload tools are not built (run make)"; exit 1; }
usr_image "$T/usr-1.0.0.img" 1.0.0 4 && usr_image_retag "$T/usr-1.0.0.img" "$T/usr-1.1.0.img" 1.1.0 &&
        usr_image_retag "$T/usr-1.0.0.img" "$T/usr-1.2.0.img" 1.2.0 || fail "cannot make the /usr images"
build/bin/cairn-keygen -o "$T/release" >/dev/null
ci/release.sh 1.0.0 --image "$T/usr-1.0.0.img" --key "$T/release.key" --reldir "$REL" >/dev/null 2>"$T/rel-1.0.0.err"
ci/release.sh 1.1.0 --image "$T/usr-1.1.0.img" --key "$T/release.key" --reldir "$REL" >/dev/null
ci/promote.sh 1.0.0 beta --reldir "$REL" >/dev/null
ci/promote.sh 1.0.0 stable --reldir "$REL" >/dev/null
ci/promote.sh 1.1.0 edge --reldir "$REL" >/dev/null
grep -qx VERSION=1.1.0 "$REL/channels/alpha" || fail "ci/release.sh did not point alpha at 1.1.0"
if ci/promote.sh 1.0.0 alpha --reldir "$REL" 2>/dev/null; then fail "promote moved alpha back without --force"; fi
if ci/promote.sh 9.9.9 beta --reldir "$REL" 2>/dev/null; then fail "promote of an unreleased version succeeded"; fi
if ci/release.sh 1.1.0 --image "$T/usr-1.1.0.img" --key "$T/release.key" --reldir "$REL" 2>/dev/null; then
        fail "ci/release.sh replaced a published payload"
fi
ok "ci/release.sh and ci/promote.sh built the release directory"

# The image is the one source of truth for board and version; the signing key should be one it trusts.
err=$(ci/release.sh 1.3.0 --image "$T/usr-1.2.0.img" --key "$T/release.key" --reldir "$REL" 2>&1) &&
        fail "released 1.3.0 from an image that says 1.2.0"
grep -q "says VERSION_ID=1.2.0, not 1.3.0" <<<"$err" || fail "version mismatch message: $err"
err=$(ci/release.sh 1.2.0 --image "$T/usr-1.2.0.img" --board arm64 --key "$T/release.key" --reldir "$REL" 2>&1) &&
        fail "released with a --board the image disagrees with"
grep -q "board 'arm64' disagrees with the image, which says CAIRN_BOARD=amd64" <<<"$err" || fail "board message: $err"
[ ! -e "$REL/payloads/1.3.0" ] && [ ! -e "$REL/payloads/1.2.0" ] || fail "a refused release left files behind"
grep -q "warning: no signing key .* is trusted by" "$T/rel-1.0.0.err" || fail "no warning for a key the image does not trust"
mkdir -p "$T/ktree/share/cairn/keys"; usr_os_release "$T/ktree" 1.4.0; cp "$T/release.pub" "$T/ktree/share/cairn/keys/"
build/bin/cairn-mkimage -o "$T/usr-1.4.0.img" --size 4M --seed k --label USR --no-journal "$T/ktree" >/dev/null
ci/release.sh 1.4.0 --image "$T/usr-1.4.0.img" --key "$T/release.key" --reldir "$T/rel-k" --channel "" 2>"$T/k.err" >/dev/null ||
        fail "release of an image that trusts its key: $(cat "$T/k.err")"
grep -q warning "$T/k.err" && fail "warned although the image trusts the signing key: $(cat "$T/k.err")"
ok "ci/release.sh: board and version from the image (mismatches refused), warns about a key the image does not trust"

P110=$REL/payloads/1.1.0/cairn-1.1.0-amd64.cairn
P100=$REL/payloads/1.0.0/cairn-1.0.0-amd64.cairn

# ---- helpers ----
start_server() { # extra args...
        start_cairn_server SRV "$T/out" "$T/server.log" --reldir "$REL" --db "$T/db.sqlite" "$@"
        PID=$SRV_PID PORT=$SRV_PORT URL=$SRV_URL
}
xml() { # machineid version track [board] [appid]
        printf '<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1"><os version="Chateau" platform="CoreOS" sp="%s_x86_64"></os><app appid="%s" version="%s" track="%s" bootid="{b00}" oem="qemu" machineid="%s" machinealias="" lang="en-US" board="%s" hardware_class="" delta_okay="false"><ping active="1"></ping><updatecheck></updatecheck><event eventtype="3" eventresult="2" previousversion=""></event></app></request>' \
                "$2" "${5:-$APPID}" "$2" "$3" "$1" "${4:-amd64}"
}
post() { # body → prints "HTTPCODE\nBODY"
        curl -s -o "$T/resp" -w '%{http_code}' --data-binary "$1" -H 'Content-Type: text/xml' "$URL/v1/update/"
        echo
        cat "$T/resp"
}
check() { # machineid version track → prints updatecheck status
        post "$(xml "$@")" >"$T/last"
        [ "$(head -n1 "$T/last")" = 200 ] || fail "update check for $* answered HTTP $(head -n1 "$T/last")"
        grep -o '<updatecheck status="[^"]*"' "$T/last" | head -n1 | sed 's/.*status="//; s/"$//'
}
attr() { # name → value of that attribute in the last answer's <url>, <manifest>, <package> or <action>
        local el
        case $1 in codebase) el=url ;; version) el=manifest ;; name|size) el=package ;; sha256) el=action ;; esac
        grep -o "<$el [^>]*" "$T/last" | head -n1 | grep -o " $1=\"[^\"]*\"" | sed 's/^[^"]*"//; s/"$//'
}
alive() {
        [ "$(check alive-check 0.0.1 stable)" = ok ] || fail "server not answering after $1"
}
b64sha() { openssl dgst -sha256 -binary "$1" | base64; }
set_channel() { # name key=value... (rewrites the channel file atomically)
        local f=$REL/channels/$1; shift
        local tmp; tmp=$(mktemp "$f.tmpXXXXXX")
        cp "$f" "$tmp"
        for kv in "$@"; do
                sed -i "/^${kv%%=*}=/d" "$tmp"
                echo "$kv" >>"$tmp"
        done
        mv "$tmp" "$f"
}

start_server

# ---- each channel: current, ahead, older ----
[ "$(check m-alpha-cur 1.1.0 alpha)" = noupdate ] || fail "current host on alpha was offered an update"
[ "$(check m-alpha-ahead 1.2.0 alpha)" = noupdate ] || fail "host ahead of alpha was offered a downgrade"
[ "$(check m-alpha-old 1.0.0 alpha)" = ok ] || fail "old host on alpha got no update"
[ "$(attr version)" = 1.1.0 ] || fail "alpha offered manifest version '$(attr version)'"
[ "$(attr size)" = "$(stat -c %s "$P110")" ] || fail "package size '$(attr size)' != file size"
[ "$(attr sha256)" = "$(b64sha "$P110")" ] || fail "postinstall sha256 '$(attr sha256)' != openssl's"
[ "$(attr name)" = cairn-1.1.0-amd64.cairn ] || fail "package name '$(attr name)'"
[ "$(attr codebase)" = "$URL/payloads/1.1.0/" ] || fail "codebase '$(attr codebase)'"
grep -q 'required="true"' "$T/last" || fail "package not marked required"
grep -q '<action event="postinstall"' "$T/last" || fail "no postinstall action"
grep -q '<event status="ok"></event>' "$T/last" || fail "event not acknowledged"
grep -q '<daystart elapsed_seconds="[0-9]*">' "$T/last" || fail "no daystart"
curl -sf "$(attr codebase)$(attr name)" -o "$T/dl" || fail "payload download from the codebase failed"
[ "$(b64sha "$T/dl")" = "$(attr sha256)" ] || fail "downloaded payload does not match the announced sha256"
ok "alpha: current/ahead → noupdate, older → ok with the right size, sha256, codebase; download matches"

for ch in beta stable; do
        [ "$(check "m-$ch-old" 0.9.0 "$ch")" = ok ] || fail "old host on $ch got no update"
        [ "$(attr version)" = 1.0.0 ] || fail "$ch offered '$(attr version)'"
        [ "$(attr sha256)" = "$(b64sha "$P100")" ] || fail "$ch sha256 wrong"
        [ "$(check "m-$ch-cur" 1.0.0 "$ch")" = noupdate ] || fail "current host on $ch was offered an update"
done
[ "$(check m-edge-old 1.0.0 edge)" = ok ] && [ "$(attr version)" = 1.1.0 ] || fail "custom channel edge"
[ "$(check m-1-2-10 1.2.9 alpha)" = noupdate ] || fail "1.2.9 host offered 1.1.0"
ok "beta, stable and custom channel edge answer their own releases; version compare is numeric"

# ---- promotion: the very same file ----
before=$(find "$REL/payloads" -type f | sort | xargs sha256sum)
ci/promote.sh 1.1.0 beta --reldir "$REL" >/dev/null
[ "$(check m-beta-old 1.0.0 beta)" = ok ] && [ "$(attr version)" = 1.1.0 ] || fail "beta not promoted to 1.1.0"
[ "$(attr codebase)$(attr name)" = "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn" ] || fail "promotion changed the payload URL"
[ "$(attr sha256)" = "$(b64sha "$P110")" ] || fail "promoted payload sha256 differs"
after=$(find "$REL/payloads" -type f | sort | xargs sha256sum)
[ "$before" = "$after" ] || fail "promotion changed or added payload files"
ok "promotion points beta at the same payload file, nothing copied or re-signed"

# ---- rollout 30% over 1,000 machine ids: deterministic and about 30% ----
ci/promote.sh 1.1.0 alpha --reldir "$REL" --rollout 30 >/dev/null
rollout_run() {
        : >"$T/cfg"
        for i in $(seq -w 1 1000); do
                [ "$i" = 0001 ] || echo next >>"$T/cfg"
                printf 'url = "%s/v1/update/"\ndata-binary = "@%s"\n' "$URL" "$T/req-$i" >>"$T/cfg"
                [ -f "$T/req-$i" ] || xml "rollout-machine-$i" 1.0.0 alpha >"$T/req-$i"
        done
        curl -s -K "$T/cfg" | grep -o '<updatecheck status="[a-z]*"'
}
rollout_run >"$T/r1"
rollout_run >"$T/r2"
[ "$(wc -l <"$T/r1")" = 1000 ] || fail "rollout run answered $(wc -l <"$T/r1") of 1000"
cmp -s "$T/r1" "$T/r2" || fail "rollout answers differ between two runs"
n_ok=$(grep -c '"ok"' "$T/r1" || true)
[ "$n_ok" -ge 200 ] && [ "$n_ok" -le 400 ] || fail "rollout 30% offered $n_ok of 1000"
ok "rollout 30%: $n_ok/1000 offered, identical answers on a second pass"

# ---- pause ----
set_channel alpha PAUSED=1
[ "$(check m-paused 1.0.0 alpha)" = noupdate ] || fail "paused channel offered an update"
set_channel alpha PAUSED=0 ROLLOUT=100
[ "$(check m-paused 1.0.0 alpha)" = ok ] || fail "resumed channel offered nothing"
ok "pause → noupdate, resume → ok"

# ---- max updates per period ----
ci/promote.sh 1.1.0 limited --reldir "$REL" >/dev/null
set_channel limited MAX_PER_PERIOD=3 PERIOD=31536000
got=""
for i in 1 2 3 4 5 6; do got+="$(check "m-limit-$i" 1.0.0 limited) "; done
[ "$got" = "ok ok ok noupdate noupdate noupdate " ] || fail "max 3 per period answered: $got"
[ "$(check m-limit-2 1.0.0 limited)" = ok ] || fail "an already granted machine was refused"
curl -sf "$URL/api/v1/channels" >"$T/channels.json" || fail "GET /api/v1/channels"
python3 - "$T/channels.json" <<'EOF' || fail "channels JSON"
import json, sys
ch = {c["name"]: c for c in json.load(open(sys.argv[1]))}
assert ch["limited"]["granted_this_period"] == 3, ch["limited"]
assert ch["limited"]["max_per_period"] == 3
assert ch["alpha"]["version"] == "1.1.0" and ch["alpha"]["rollout"] == 100 and ch["alpha"]["paused"] is False
assert ch["beta"]["version"] == "1.1.0" and ch["stable"]["version"] == "1.0.0"
EOF
ok "max 3 per period: 3 machines granted, others noupdate, a granted machine stays granted; /api/v1/channels agrees"

# ---- events recorded and visible ----
M=0f0e0d0c0b0a09080706050403020100
for ev in '13" eventresult="1' '14" eventresult="1' '800" eventresult="1' '3" eventresult="0" errorcode="44'; do
        body="<request protocol=\"3.0\"><app appid=\"$APPID\" version=\"1.0.0\" track=\"alpha\" machineid=\"$M\" board=\"amd64\"><event eventtype=\"$ev\" previousversion=\"1.0.0\"></event></app></request>"
        post "$body" >"$T/last"
        [ "$(head -n1 "$T/last")" = 200 ] && grep -q '<event status="ok">' "$T/last" || fail "event $ev not acknowledged"
done
curl -sf "$URL/api/v1/instances?limit=100000" >"$T/inst.json" || fail "GET /api/v1/instances"
curl -sf "$URL/api/v1/events?machine=$M" >"$T/ev.json" || fail "GET /api/v1/events"
python3 - "$T/inst.json" "$T/ev.json" "$M" <<'EOF' || fail "instances/events JSON"
import json, sys
inst = {i["machine_id"]: i for i in json.load(open(sys.argv[1]))}
m = inst[sys.argv[3]]
assert (m["last_event_type"], m["last_event_result"], m["last_error_code"]) == (3, 0, 44), m
assert m["channel"] == "alpha" and m["version"] == "1.0.0" and m["ip"] == "127.0.0.1"
evs = json.load(open(sys.argv[2]))
assert [(e["type"], e["result"]) for e in evs] == [(3, 0), (800, 1), (14, 1), (13, 1)], evs
o = inst["m-alpha-old"]
assert o["last_answer"] == "ok" and o["offered_version"] == "1.1.0", o
assert inst["m-alpha-cur"]["last_answer"] == "noupdate"
assert inst["m-limit-5"]["last_answer"] == "limit"
# The constant 3/2 event update_engine sends with every check is not stored.
assert inst["m-alpha-old"]["last_event_type"] is None
EOF
ok "events 13/14/800/3(err 44) recorded; /api/v1/instances and /api/v1/events show them"

# ---- bad input: clear answers, server stays up ----
code=$(curl -s -o "$T/resp" -w '%{http_code}' --data-binary '<request protocol="3.0"><app' "$URL/v1/update/")
[ "$code" = 400 ] && grep -q "malformed" "$T/resp" || fail "malformed XML answered $code"
alive "malformed XML"
[ "$(check m-unknown-app 1.0.0 alpha amd64 '{00000000-0000-0000-0000-000000000000}')" = error-unknownApplication ] \
        || fail "unknown appid"
grep -q 'status="error-unknownApplication"' "$T/last" || fail "app status for unknown appid"
alive "unknown appid"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(curl -s -o "$T/resp" -w '%{http_code}' --data-binary "@$T/big" "$URL/v1/update/")
[ "$code" = 413 ] || fail "oversized body answered $code"
code=$(curl -s -o "$T/resp" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary "@$T/big" "$URL/v1/update/")
[ "$code" = 413 ] || fail "oversized chunked body answered $code"
alive "oversized bodies"
lol='<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><request protocol="3.0"><app appid="&lol3;"/></request>'
code=$(curl -s -o "$T/resp" -w '%{http_code}' --data-binary "$lol" "$URL/v1/update/")
[ "$code" = 400 ] && grep -q "DOCTYPE" "$T/resp" || fail "entity expansion answered $code: $(cat "$T/resp")"
alive "entity expansion"
post "<request protocol=\"3.0\"><app appid=\"$APPID\" track=\"alpha\" machineid=\"m-noversion\" board=\"amd64\"><updatecheck/></app></request>" >"$T/last"
grep -q 'status="error-invalidRequest"' "$T/last" || fail "missing version not refused: $(cat "$T/last")"
grep -q "missing version" "$T/server.log" || fail "missing version not logged"
post "<request protocol=\"3.0\"><app appid=\"$APPID\" version=\"1.0.0\" track=\"../channels\" machineid=\"m-bad\" board=\"amd64\"><updatecheck/></app></request>" >"$T/last"
grep -q 'status="error-invalidRequest"' "$T/last" || fail "invalid track not refused"
alive "missing/invalid attributes"
printf 'VERSION=\n' >"$REL/channels/empty"
[ "$(check m-empty 1.0.0 empty)" = error-noPackage ] || fail "channel without release"
[ "$(check m-nochan 1.0.0 nosuchchannel)" = error-unknownChannel ] || fail "unknown channel"
alive "channel without release"
ci/release.sh 1.2.0 --image "$T/usr-1.2.0.img" --key "$T/release.key" --reldir "$REL" --channel vanish >/dev/null
rm "$REL/payloads/1.2.0/cairn-1.2.0-amd64.cairn"
[ "$(check m-vanish 1.0.0 vanish)" = error-payloadUnavailable ] || fail "vanished payload"
grep -q "payloads/1.2.0/cairn-1.2.0-amd64.cairn" "$T/server.log" || fail "vanished payload not logged with its path"
alive "vanished payload"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/update/")
[ "$code" = 405 ] || fail "GET /v1/update/ answered $code"
ok "malformed XML 400, unknown appid, oversized 413 (plain and chunked), entity bomb 400, missing/invalid attributes, no release, unknown channel, vanished payload: clear answers, server alive"

# ---- payload files: HEAD, Range, 416, traversal ----
size=$(stat -c %s "$P110")
curl -sI "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn" >"$T/head"
grep -qi "^content-length: $size" "$T/head" && grep -qi '^accept-ranges: bytes' "$T/head" || fail "HEAD: $(cat "$T/head")"
curl -s -D "$T/h" -r 1000-1999 "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn" -o "$T/part"
head -n1 "$T/h" | grep -q 206 || fail "Range answered $(head -n1 "$T/h")"
grep -qi "^content-range: bytes 1000-1999/$size" "$T/h" || fail "Content-Range: $(cat "$T/h")"
dd if="$P110" bs=1 skip=1000 count=1000 status=none | cmp -s - "$T/part" || fail "Range bytes differ"
curl -s -r -100 "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn" -o "$T/tail"
tail -c 100 "$P110" | cmp -s - "$T/tail" || fail "suffix range differs"
curl -s -r "$((size - 10))-" "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn" -o "$T/tail2"
tail -c 10 "$P110" | cmp -s - "$T/tail2" || fail "open range differs"
code=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -r "$size-" "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn")
[ "$code" = 416 ] && grep -qi "^content-range: bytes \*/$size" "$T/h" || fail "unsatisfiable range answered $code"
code=$(curl -s -o "$T/full" -w '%{http_code}' -r 0-1,5-6 "$URL/payloads/1.1.0/cairn-1.1.0-amd64.cairn")
[ "$code" = 200 ] && cmp -s "$T/full" "$P110" || fail "multi-range request answered $code"
for bad in '/payloads/../channels/alpha' '/payloads/%2e%2e/channels/alpha' '/payloads/1.1.0/.hidden' \
        '/payloads/1.1.0/' '/payloads//etc/passwd' '/payloads/1.1.0/nope.cairn'; do
        code=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$URL$bad")
        [ "$code" = 404 ] || fail "$bad answered $code"
done
ln -s /etc/passwd "$REL/payloads/1.1.0/link.cairn"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/payloads/1.1.0/link.cairn")
[ "$code" = 404 ] || fail "symlink payload answered $code"
rm "$REL/payloads/1.1.0/link.cairn"
ok "payloads: HEAD, Range (206, suffix, open), 416, multi-range → 200, traversal/hidden/symlink → 404"

# ---- DB locked by another process → 503, then recovers ----
kill -TERM "$PID"; wait "$PID" || fail "server exit status $? on SIGTERM"; PID=
start_server --busy-timeout 300
python3 - "$T/db.sqlite" "$T/locked" <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE instances SET alias = alias")
open(sys.argv[2], "w").close()
time.sleep(3)
c.execute("COMMIT")
EOF
LOCKPID=$!
for _ in $(seq 100); do [ -f "$T/locked" ] && break; sleep 0.05; done
[ -f "$T/locked" ] || fail "could not lock the DB from python"
# A check that needs a decision from the DB (a grant on a channel with a per-period limit) cannot be answered.
code=$(curl -s -D "$T/h" -o "$T/resp" -w '%{http_code}' --data-binary "$(xml m-locked 1.0.0 limited)" "$URL/v1/update/")
[ "$code" = 503 ] && grep -qi '^retry-after:' "$T/h" || fail "locked DB answered $code"
# One that needs none is answered, and recorded once the DB is free again.
[ "$(check m-while-locked 1.1.0 alpha)" = noupdate ] || fail "noupdate check while the DB is locked"
wait "$LOCKPID"; LOCKPID=
alive "a locked DB"
curl -sf "$URL/api/v1/instances?limit=100000" >"$T/inst2.json" || fail "GET /api/v1/instances after the lock"
grep -q '"machine_id":"m-while-locked"' "$T/inst2.json" || fail "visit during the lock was not recorded"
ok "DB locked by another process → 503 with Retry-After for a limited grant; other checks answered and recorded later"

# ---- kill -9 under load leaves a consistent DB ----
( for i in $(seq 1 300); do curl -s -o /dev/null --data-binary "$(xml "m-load-$i" 1.0.0 alpha)" "$URL/v1/update/" || true; done ) &
LOAD=$!
sleep 0.7
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
wait "$LOAD" || true
integrity=$(sqlite3 "$T/db.sqlite" "PRAGMA integrity_check" 2>&1 || true)
[ "$integrity" = ok ] || fail "DB not consistent after kill -9: $integrity"
start_server
alive "restart after kill -9"
n=$(curl -sf "$URL/api/v1/instances?limit=100000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" -gt 1000 ] || fail "instances lost after kill -9 ($n)"
ok "kill -9 under load: integrity_check ok, $n instances kept, server restarts"

# ---- SIGTERM → exit 0 ----
kill -TERM "$PID"
wait "$PID"; rc=$?; PID=
[ $rc = 0 ] || fail "SIGTERM exit status $rc"
grep -q "stopping on SIGTERM" "$T/server.log" || fail "no shutdown line"
grep -Eq '^cairn-server: POST /v1/update/ 200 [0-9]+ [0-9.]+ms 127\.0\.0\.1:[0-9]+' "$T/server.log" || fail "request log format"
ok "SIGTERM → clean exit 0; one log line per request"

# ---- read-only DB → clear error at start ----
cp "$T/db.sqlite" "$T/ro.sqlite"; chmod 0444 "$T/ro.sqlite"; chmod 0755 "$T"
run_ro() {
        if [ "$(id -u)" = 0 ]; then
                setpriv --reuid=65534 --regid=65534 --clear-groups "$SERVER" "$@"
        else
                "$SERVER" "$@"
        fi
}
chmod -R a+rX "$REL"
set +e
run_ro --reldir "$REL" --db "$T/ro.sqlite" --listen 127.0.0.1:0 >/dev/null 2>"$T/ro.err"
rc=$?
set -e
[ $rc = 1 ] && grep -q "database '$T/ro.sqlite' is read-only" "$T/ro.err" || fail "read-only DB: rc=$rc $(cat "$T/ro.err")"
ok "read-only DB → exit 1: $(cat "$T/ro.err")"
echo "PASS"
