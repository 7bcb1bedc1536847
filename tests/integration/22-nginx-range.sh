#!/usr/bin/env bash
# tests/integration/22-nginx-range.sh — the same release directory served by cairn-server and by a real nginx:
# whole file and Range requests are byte-identical, and an Omaha answer can point hosts at nginx (--base-url).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$(dirname "$0")/../.."
. tests/lib/nginx.sh
SERVER=$PWD/build/bin/cairn-server
[ -x "$SERVER" ] || { echo "FAIL: $SERVER not built (run make)"; exit 1; }

T=$(mktemp -d /tmp/cairn-22.XXXXXX)
SPID=
cleanup() {
        [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
        nginx_stop
        [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
on_exit cleanup
FAIL_LOGS="$T/*.log"

REL=$T/rel
. tests/lib/usr-image.sh
usr_image "$T/usr.img" 2.0.0 7 || fail "cannot make the /usr image"
if [ -x build/bin/cairn-release ] && [ -x build/bin/cairn-keygen ]; then
        build/bin/cairn-keygen -o "$T/k" >/dev/null
        ci/release.sh 2.0.0 --image "$T/usr.img" --key "$T/k.key" --reldir "$REL" >/dev/null
else
        mkdir -p "$REL/payloads/2.0.0"
        cp "$T/usr.img" "$REL/payloads/2.0.0/cairn-2.0.0-amd64.cairn"
        ci/promote.sh 2.0.0 alpha --reldir "$REL" >/dev/null
fi
F=payloads/2.0.0/cairn-2.0.0-amd64.cairn
SIZE=$(stat -c %s "$REL/$F")

rc=0; nginx_start "$REL" "$T" || rc=$?
[ $rc = 0 ] || { [ $rc = 77 ] && exit 77; fail "nginx"; }
NURL=$NGINX_URL

"$SERVER" --reldir "$REL" --db "$T/db.sqlite" --listen 127.0.0.1:0 --base-url "$NURL/payloads/" >"$T/out" 2>"$T/server.log" &
SPID=$!
for _ in $(seq 100); do
        grep -q "listening on" "$T/out" 2>/dev/null && curl -s -o /dev/null "$NURL/" && break
        sleep 0.05
done
SPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/out")
[ -n "$SPORT" ] || fail "cairn-server did not start"
SURL=http://127.0.0.1:$SPORT
curl -sf -o /dev/null "$NURL/$F" || fail "nginx does not serve $F"

fetch() { # base range out → prints HTTP code
        if [ -n "$2" ]; then curl -s -r "$2" -o "$3" -w '%{http_code}' "$1/$F"; else curl -s -o "$3" -w '%{http_code}' "$1/$F"; fi
}
n=0
for range in "" 0-0 0-99 100-65635 $((SIZE - 1000))- -4096 $((SIZE / 2))-$((SIZE / 2 + 1048575)) 1-$((SIZE + 100)) \
        $((SIZE - 1))-$((SIZE - 1)); do
        cs=$(fetch "$SURL" "$range" "$T/s.bin")
        cn=$(fetch "$NURL" "$range" "$T/n.bin")
        [ "$cs" = "$cn" ] || fail "range '$range': cairn-server $cs, nginx $cn"
        cmp "$T/s.bin" "$T/n.bin" || fail "range '$range': bytes differ"
        n=$((n + 1))
done
cs=$(curl -s -o /dev/null -w '%{http_code}' -r "$SIZE-" "$SURL/$F")
cn=$(curl -s -o /dev/null -w '%{http_code}' -r "$SIZE-" "$NURL/$F")
[ "$cs" = 416 ] && [ "$cn" = 416 ] || fail "unsatisfiable range: cairn-server $cs, nginx $cn"
ls_=$(curl -sI "$SURL/$F" | tr -d '\r' | grep -i '^content-length' | cut -d' ' -f2)
ln_=$(curl -sI "$NURL/$F" | tr -d '\r' | grep -i '^content-length' | cut -d' ' -f2)
[ "$ls_" = "$SIZE" ] && [ "$ln_" = "$SIZE" ] || fail "HEAD content-length: cairn-server $ls_, nginx $ln_"
echo "ok: $n ranges (incl. whole file) byte-identical from cairn-server and nginx; 416 and HEAD agree"

# An Omaha answer whose codebase is nginx (--base-url): the host downloads from nginx and the hash matches.
xml='<request protocol="3.0"><app appid="{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}" version="1.0.0" track="alpha" machineid="m22" board="amd64"><updatecheck/></app></request>'
curl -s --data-binary "$xml" "$SURL/v1/update/" >"$T/ans"
cb=$(grep -o 'codebase="[^"]*"' "$T/ans" | cut -d'"' -f2)
name=$(grep -o '<package name="[^"]*"' "$T/ans" | cut -d'"' -f2)
sha=$(grep -o ' sha256="[^"]*"' "$T/ans" | cut -d'"' -f2)
[ "$cb" = "$NURL/payloads/2.0.0/" ] || fail "codebase '$cb' is not nginx"
curl -sf -o "$T/dl" "$cb$name" || fail "download from nginx codebase"
[ "$(openssl dgst -sha256 -binary "$T/dl" | base64)" = "$sha" ] || fail "payload from nginx does not match the announced sha256"
echo "ok: --base-url sends hosts to nginx; the payload there matches the answer's sha256"
echo PASS
