#!/usr/bin/env bash
# tests/integration/20-release-tools.sh — cairn-keygen and cairn-release end to end: round trip,
# reproducibility, inspect output, and every tamper case with its one-line error and non-zero exit.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
B=$PWD/build/bin
for b in cairn-keygen cairn-release; do
        [ -x "$B/$b" ] || { echo "FAIL: $B/$b not built (run make)"; exit 1; }
done
command -v python3 >/dev/null || { echo "skip: python3 is needed to patch bytes"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# patch FILE OFFSET XORBYTE — flip bits of one byte in place (negative offsets count from the end).
patch() { python3 - "$@" <<'PY'
import sys
path, off, x = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
b = bytearray(open(path, 'rb').read())
b[off] ^= x
open(path, 'wb').write(b)
PY
}
le32() { python3 -c 'import sys,struct; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), int(sys.argv[2]))[0])' "$@"; }

# expect_fail WHAT PATTERN cmd... — must exit non-zero with exactly one stderr line matching PATTERN.
expect_fail() {
        local what=$1 pat=$2; shift 2
        if "$@" >out.txt 2>err.txt; then fail "$what: succeeded"; fi
        [ "$(wc -l <err.txt)" -eq 1 ] || { cat err.txt; fail "$what: want one error line"; }
        grep -q -- "$pat" err.txt || { cat err.txt; fail "$what: error does not match '$pat'"; }
        echo "ok: $what: $(cat err.txt)"
}

# --- keys ---
id1=$("$B/cairn-keygen" -o "$T/k1")
id2=$("$B/cairn-keygen" -o "$T/k2")
[[ $id1 =~ ^[0-9a-f]{16}$ ]] || fail "key id '$id1'"
[ "$id1" != "$id2" ] || fail "two keys with one id"
[ "$(stat -c %a k1.key)" = 600 ] || fail "private key mode $(stat -c %a k1.key)"
grep -q 'BEGIN PRIVATE KEY' k1.key && grep -q 'BEGIN PUBLIC KEY' k1.pub || fail "PEM"
openssl pkey -in k1.key -noout -text 2>/dev/null | grep -q ED25519 || fail "openssl does not read k1.key as Ed25519"
# The key id is the first 8 bytes of SHA-256 over the raw 32-byte public key (the last 32 DER bytes).
want=$(openssl pkey -pubin -in k1.pub -outform DER | tail -c 32 | sha256sum | cut -c1-16)
[ "$want" = "$id1" ] || fail "key id $id1, expected $want"
expect_fail "keygen refuses to overwrite" 'already exists' "$B/cairn-keygen" -o "$T/k1"
mkdir trust1 trust2 trust12 empty bad
cp k1.pub trust1/; cp k2.pub trust2/; cp k1.pub k2.pub trust12/

# --- an image: text, zeros, random, short tail ---
{ head -c 300000 "$B/cairn-release"; head -c 200000 /dev/zero; head -c 100000 /dev/urandom; echo tail; } >img
"$B/cairn-release" create --image img --version 1.2.3 --board amd64-usr --key k1.key --chunk-size 64K -o p.cairn >/dev/null
"$B/cairn-release" create --image img --version 1.2.3 --board amd64-usr --key k1.key --chunk-size 64K --threads 1 -o p1.cairn >/dev/null
"$B/cairn-release" create --image img --version 1.2.3 --board amd64-usr --key k1.key --chunk-size 64K --threads 7 -o p7.cairn >/dev/null
cmp p.cairn p1.cairn && cmp p.cairn p7.cairn || fail "not reproducible across thread counts"
echo "ok: reproducible"
"$B/cairn-release" verify --keys trust1 p.cairn | grep -q 'good' || fail "verify"
"$B/cairn-release" extract --keys trust1 p.cairn -o out.img >/dev/null
cmp img out.img || fail "extract differs from the image"
echo "ok: round trip"

"$B/cairn-release" inspect p.cairn >ins.txt
grep -q '^OS version: *1.2.3' ins.txt && grep -q '^Board: *amd64-usr' ins.txt && grep -q "^Signature: *$id1 not checked" ins.txt ||
        { cat ins.txt; fail "inspect text"; }
grep -q "^Image SHA-256: *$(sha256sum img | cut -c1-64)" ins.txt || fail "inspect image sha256"
"$B/cairn-release" inspect --json --keys trust12 p.cairn >ins.json
python3 - "$id1" "$(stat -c %s img)" "$(stat -c %s p.cairn)" <<'PY' || fail "inspect --json"
import json, sys
j = json.load(open("ins.json"))
assert j["version"] == "1.2.3" and j["board"] == "amd64-usr", j
assert j["image_size"] == int(sys.argv[2]) and j["payload_size"] == int(sys.argv[3]), j
assert j["chunk_size"] == 65536 and j["chunk_count"] == (int(sys.argv[2]) + 65535) // 65536, j
assert j["signatures"] == [{"key_id": sys.argv[1], "status": "good"}], j
assert j["verified"] is True and j["compression"] == "zstd" and j["zero_chunks"] >= 2, j
PY
echo "ok: inspect"

# Two signers; trusting either one is enough.
"$B/cairn-release" create --image img --version 1.2.3 --board amd64-usr --key k1.key --key k2.key -o p2.cairn >/dev/null
"$B/cairn-release" verify --keys trust2 p2.cairn >/dev/null || fail "verify with the second key"
"$B/cairn-release" inspect --keys trust2 p2.cairn | grep -q "^Signature: *$id1 unknown key" || fail "inspect unknown key"
echo "ok: two signatures"

# --- bad input: each a one-line error and a non-zero exit ---
mlen=$(le32 p.cairn 16)
cp p.cairn t.cairn; patch t.cairn 100 0x01
expect_fail "flipped bit in manifest" 'signature does not verify' "$B/cairn-release" verify --keys trust1 t.cairn
cp p.cairn t.cairn; patch t.cairn $((32 + mlen + 8 + 8 + 20)) 0x80
expect_fail "flipped bit in signature" 'signature does not verify' "$B/cairn-release" verify --keys trust1 t.cairn
cp p.cairn t.cairn; patch t.cairn -20 0x10
expect_fail "flipped bit in a chunk" 'chunk [0-9]* does not match' "$B/cairn-release" verify --keys trust1 t.cairn
expect_fail "flipped bit in a chunk (extract)" 'chunk [0-9]* does not match' "$B/cairn-release" extract --keys trust1 t.cairn -o bad.img
[ ! -e bad.img ] || fail "extract left an image behind after a failure"
head -c -1 p.cairn >t.cairn
expect_fail "truncated data" 'truncated' "$B/cairn-release" verify --keys trust1 t.cairn
head -c 200 p.cairn >t.cairn
expect_fail "truncated manifest" 'truncated' "$B/cairn-release" verify --keys trust1 t.cairn
: >t.cairn
expect_fail "empty file" 'truncated' "$B/cairn-release" verify --keys trust1 t.cairn
cp p.cairn t.cairn; echo junk >>t.cairn
expect_fail "trailing bytes" 'malformed' "$B/cairn-release" verify --keys trust1 t.cairn
expect_fail "wrong key" 'not signed by any trusted key' "$B/cairn-release" verify --keys trust2 p.cairn
cp p.cairn t.cairn; patch t.cairn $((32 + mlen + 8 + 2)) 0x01
expect_fail "unknown key id" 'not signed by any trusted key' "$B/cairn-release" verify --keys trust12 t.cairn
# Unsigned: signature block with no entries.
python3 - p.cairn t.cairn "$mlen" <<'PY'
import sys, struct
b = bytearray(open(sys.argv[1], 'rb').read()); m = int(sys.argv[3])
struct.pack_into('<I', b, 20, 8)
sb = 32 + m
struct.pack_into('<I', b, sb + 4, 0)
open(sys.argv[2], 'wb').write(b[:sb + 8] + b[sb + 8 + 72:])
PY
expect_fail "unsigned payload" 'not signed by any trusted key' "$B/cairn-release" verify --keys trust12 t.cairn
# Duplicate signatures: the second entry replaced by the first.
mlen2=$(le32 p2.cairn 16)
python3 - p2.cairn t.cairn "$mlen2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); e = 32 + int(sys.argv[3]) + 8
b[e + 72:e + 144] = b[e:e + 72]
open(sys.argv[2], 'wb').write(b)
PY
expect_fail "duplicate signatures" 'duplicate signatures' "$B/cairn-release" verify --keys trust12 t.cairn
cp p.cairn t.cairn; python3 -c 'import sys,struct; b=bytearray(open(sys.argv[1],"rb").read()); struct.pack_into("<I",b,16,0xffffffff); open(sys.argv[1],"wb").write(b)' t.cairn
expect_fail "oversized manifest length" 'exceeds' "$B/cairn-release" verify --keys trust1 t.cairn
expect_fail "oversized manifest length (inspect)" 'exceeds' "$B/cairn-release" inspect t.cairn
cp p.cairn t.cairn; patch t.cairn 0 0x01
expect_fail "bad magic" 'malformed' "$B/cairn-release" inspect t.cairn
cp p.cairn t.cairn; patch t.cairn 8 0x02
expect_fail "unknown format version" 'unsupported payload format version' "$B/cairn-release" verify --keys trust1 t.cairn
expect_fail "no trusted keys" 'no trusted keys' "$B/cairn-release" verify --keys empty p.cairn
echo junk >bad/x.pub
expect_fail "unparseable trusted key" "bad/x.pub\" is not a PEM public key" "$B/cairn-release" verify --keys bad p.cairn
expect_fail "missing payload" '"nope.cairn"' "$B/cairn-release" verify --keys trust1 nope.cairn
expect_fail "inspect with wrong key" 'not signed by any trusted key' "$B/cairn-release" inspect --keys trust2 p.cairn
expect_fail "duplicate --key" 'same signing key' "$B/cairn-release" create --image img --version 1 --board b --key k1.key --key k1.key -o x.cairn
expect_fail "public key as signing key" 'is not a PEM private key' "$B/cairn-release" create --image img --version 1 --board b --key k1.pub -o x.cairn
expect_fail "bad version string" 'invalid --version' "$B/cairn-release" create --image img --version '1 2' --board b --key k1.key -o x.cairn
expect_fail "bad chunk size" 'chunk-size' "$B/cairn-release" create --image img --version 1 --board b --key k1.key --chunk-size 5000 -o x.cairn
: >empty.img
expect_fail "empty image" 'empty' "$B/cairn-release" create --image empty.img --version 1 --board b --key k1.key -o x.cairn
[ ! -e x.cairn ] && ! ls x.cairn.tmp* >/dev/null 2>&1 || fail "create left files behind after failures"

# A release revoking its only signing key is refused; signed also by k2 it is accepted.
"$B/cairn-release" create --image img --version 2 --board b --key k1.key --revoke "$id1" -o r1.cairn >/dev/null
expect_fail "revoked key" 'revoked' "$B/cairn-release" verify --keys trust12 r1.cairn
"$B/cairn-release" create --image img --version 2 --board b --key k1.key --key k2.key --revoke "$id1" -o r2.cairn >/dev/null
"$B/cairn-release" verify --keys trust12 r2.cairn >/dev/null || fail "release revoking k1, signed by k2"
echo "ok: revocation"
echo "all release-tool checks passed"
