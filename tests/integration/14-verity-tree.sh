#!/usr/bin/env bash
# tests/integration/14-verity-tree.sh — cairn-veritytree against the real `veritysetup` (cryptsetup-bin) as the
# independent oracle: the same root hash and a byte-identical hash area for 1 block, odd sizes, a few MiB and a
# 4-level tree of 512-byte blocks, with and without superblock, in a separate file and at a hash offset in the
# data file itself; `veritysetup verify` accepts our trees and we accept its; one flipped data byte fails both;
# and every bad input is one line and a non-zero exit with nothing written.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
VT=$PWD/build/bin/cairn-veritytree
[ -x "$VT" ] || { echo "build/bin/cairn-veritytree missing (run make)"; exit 1; }
command -v veritysetup >/dev/null || { echo "skip: veritysetup not installed (apt-get install cryptsetup-bin)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SALT=5eed0011223344556677889900aabbccddeeff0102030405060708090a0b0c0d
UUID=0b1e5c4a-9a44-4d2e-8f6e-2f1d6f3e2a10

# Deterministic test data: AES-128-CTR keystream of n bytes.
mkdata() { # path bytes key
        head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$3" -iv 00000000000000000000000000000000 >"$1"
}
root_of() { sed -n 's/^Root hash:[[:space:]]*//p' "$1"; }

# case: name bytes data_block hash_block
CASES=(
        "one-block 4096 4096 4096"
        "odd-size 10000 4096 4096"
        "below-two-blocks 8191 4096 4096"
        "few-mib 4194427 4096 4096"
        "four-levels-512 2560100 512 512"
        "mixed-4096-512 1228800 4096 512"
        "mixed-1024-4096 133120 1024 4096"
        "blocks-65536 196609 65536 65536"
)
n=0
for c in "${CASES[@]}"; do
        read -r name bytes dbs hbs <<<"$c"
        n=$((n + 1))
        D=$T/$name.data
        mkdata "$D" "$bytes" "$(printf '%032x' $n)"
        for sbmode in sb nosb; do
                opt=()
                [ $sbmode = nosb ] && opt=(--no-superblock)
                veritysetup format "${opt[@]}" --data-block-size "$dbs" --hash-block-size "$hbs" --salt $SALT --uuid $UUID \
                        "$D" "$T/$name.$sbmode.vs" >"$T/vs.out" || fail "$name $sbmode: veritysetup format"
                "$VT" format "${opt[@]}" --data-block-size "$dbs" --hash-block-size "$hbs" --salt $SALT --uuid $UUID \
                        "$D" "$T/$name.$sbmode.ours" >"$T/ours.out" || fail "$name $sbmode: cairn-veritytree format"
                want=$(root_of "$T/vs.out")
                got=$(root_of "$T/ours.out")
                [ -n "$want" ] && [ "$want" = "$got" ] || fail "$name $sbmode: root $got, veritysetup $want"
                cmp -s "$T/$name.$sbmode.vs" "$T/$name.$sbmode.ours" || fail "$name $sbmode: hash areas differ"
                for k in "Data blocks" "Hash blocks"; do
                        [ "$(grep "^$k:" "$T/vs.out" | tr -s ' \t')" = "$(grep "^$k:" "$T/ours.out" | tr -s ' \t')" ] ||
                                fail "$name $sbmode: '$k' differs from veritysetup's"
                done
                # each accepts the other's tree
                vopt=("${opt[@]}")
                [ $sbmode = nosb ] && vopt+=(--data-block-size "$dbs" --hash-block-size "$hbs" --salt $SALT)
                veritysetup verify "${vopt[@]}" "$D" "$T/$name.$sbmode.ours" "$got" ||
                        fail "$name $sbmode: veritysetup verify rejects our tree"
                "$VT" verify "${vopt[@]}" "$D" "$T/$name.$sbmode.vs" "$want" >/dev/null ||
                        fail "$name $sbmode: cairn-veritytree verify rejects veritysetup's tree"
        done
        # the hash area at an offset in the data file itself (past the data, rounded up to 1 MiB)
        nblocks=$((bytes / dbs))
        off=$(((nblocks * dbs + (1 << 20) - 1) / (1 << 20) * (1 << 20)))
        cp "$D" "$T/same.vs"
        cp "$D" "$T/same.ours"
        veritysetup format --data-blocks $nblocks --hash-offset $off --data-block-size "$dbs" --hash-block-size "$hbs" \
                --salt $SALT --uuid $UUID "$T/same.vs" "$T/same.vs" >"$T/vs.out" || fail "$name: veritysetup format at an offset"
        "$VT" format --data-blocks $nblocks --hash-offset $off --data-block-size "$dbs" --hash-block-size "$hbs" \
                --salt $SALT --uuid $UUID "$T/same.ours" "$T/same.ours" >"$T/ours.out" || fail "$name: format at an offset"
        cmp -s "$T/same.vs" "$T/same.ours" || fail "$name: data file with the tree at $off differs from veritysetup's"
        [ "$(root_of "$T/vs.out")" = "$(root_of "$T/ours.out")" ] || fail "$name: root at an offset"
        veritysetup verify --hash-offset $off "$T/same.ours" "$T/same.ours" "$(root_of "$T/ours.out")" ||
                fail "$name: veritysetup verify at an offset"
        "$VT" verify --hash-offset $off --data-blocks $nblocks "$T/same.ours" "$T/same.ours" "$(root_of "$T/ours.out")" \
                >/dev/null || fail "$name: our verify at an offset"
        echo "ok: $name ($bytes bytes, $dbs/$hbs): root $(root_of "$T/ours.out")"
done

# a hash offset that is a multiple of a 512-byte hash block but not of 4096: verify takes the block size from the
# superblock (veritysetup agrees on the layout)
D=$T/mixed-4096-512.data
R=$(root_of <("$VT" format --hash-block-size 512 --hash-offset 1536 --salt $SALT --uuid $UUID "$D" "$T/off.ours"))
veritysetup format --hash-block-size 512 --hash-offset 1536 --salt $SALT --uuid $UUID "$D" "$T/off.vs" >/dev/null
cmp -s "$T/off.ours" "$T/off.vs" || fail "hash offset 1536 with 512-byte hash blocks: files differ"
"$VT" verify --hash-offset 1536 "$D" "$T/off.ours" "$R" >/dev/null || fail "verify at hash offset 1536"
veritysetup verify --hash-offset 1536 "$D" "$T/off.ours" "$R" || fail "veritysetup verify at hash offset 1536"

# --- a flipped data byte: both verifiers fail, ours names the block ---
D=$T/four-levels-512.data
H=$T/four-levels-512.sb.ours
R=$(root_of <("$VT" format --block-size 512 --salt $SALT --uuid $UUID "$D" "$H"))
flip() { # file offset
        local b
        b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
        printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
flip "$D" $((4321 * 512 + 17))
if veritysetup verify "$D" "$H" "$R" 2>"$T/vs.err"; then fail "veritysetup verify accepted a flipped data byte"; fi
rc=0; "$VT" verify "$D" "$H" "$R" 2>"$T/err" || rc=$?
[ $rc = 3 ] || fail "our verify of a flipped data byte: exit $rc, expected 3"
[ "$(wc -l <"$T/err")" = 1 ] && grep -q "data block 4321 (bytes 2212352..2212863" "$T/err" ||
        fail "our verify does not name data block 4321: $(cat "$T/err")"
echo "ok: flipped data byte: veritysetup says '$(head -1 "$T/vs.err")'; we say '$(cat "$T/err")'"
flip "$D" $((4321 * 512 + 17))
"$VT" verify "$D" "$H" "$R" >/dev/null || fail "flipped back, verify fails"
# a byte of the level-1 hashes (superblock block + 1 top block + 2 level-2 blocks, then level 1)
flip "$H" $((512 * 4 + 100))
rc=0; "$VT" verify "$D" "$H" "$R" 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q "hash block 0 of level 1 (byte 2048 of" "$T/err" || fail "level-1 flip: exit $rc, $(cat "$T/err")"
if veritysetup verify "$D" "$H" "$R" 2>/dev/null; then fail "veritysetup verify accepted a flipped tree byte"; fi
flip "$H" $((512 * 4 + 100))
# the wrong root hash
rc=0; "$VT" verify "$D" "$H" "$(printf '%064d' 0)" 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q "matches the data, but its root hash is $R" "$T/err" || fail "wrong root: exit $rc, $(cat "$T/err")"
# one block: the root is the block's hash
D1=$T/one-block.data
R1=$(root_of <("$VT" format --salt $SALT "$D1" "$T/one.h"))
flip "$D1" 5
rc=0; "$VT" verify "$D1" "$T/one.h" "$R1" 2>"$T/err" || rc=$?
[ $rc = 3 ] && grep -q "data block 0 of '.*' does not match the root hash" "$T/err" || fail "one block flip: $(cat "$T/err")"
if veritysetup verify "$D1" "$T/one.h" "$R1" 2>/dev/null; then fail "veritysetup verify accepted a flipped lone block"; fi
flip "$D1" 5

# --- the salt seed: SHA-256("cairn-verity-salt:" + seed), reproducible, and veritysetup agrees given that salt ---
want_salt=$(printf 'cairn-verity-salt:%s' "release-42" | sha256sum | cut -d' ' -f1)
D=$T/few-mib.data
"$VT" format --salt-seed release-42 --json "$D" "$T/seed1" >"$T/j1"
"$VT" format --salt-seed release-42 --json "$D" "$T/seed2" >"$T/j2"
cmp -s "$T/seed1" "$T/seed2" && cmp -s "$T/j1" "$T/j2" || fail "two --salt-seed runs differ"
python3 - "$T/j1" "$want_salt" <<'EOF' || fail "--json output"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["salt"] == sys.argv[2], j
assert j["hash_type"] == 1 and j["hash_algorithm"] == "sha256" and j["superblock"] is True
assert j["data_blocks"] == 4194427 // 4096 and j["data_block_size"] == 4096 and j["hash_block_size"] == 4096
assert j["levels"] == 2 and j["hash_offset"] == 0 and j["tree_offset"] == 4096
assert j["hash_area_size"] == 4096 + 4096 * j["hash_blocks"] and len(j["root_hash"]) == 64
EOF
uuid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uuid"])' "$T/j1")
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_hash"])' "$T/j1")
veritysetup format --salt "$want_salt" --uuid "$uuid" "$D" "$T/seed.vs" >"$T/vs.out"
[ "$(root_of "$T/vs.out")" = "$root" ] && cmp -s "$T/seed.vs" "$T/seed1" || fail "--salt-seed tree differs from veritysetup's"
# no salt given: a random one (as veritysetup), so two runs differ
"$VT" format --json "$T/odd-size.data" "$T/r1" >"$T/r1.j"
"$VT" format --json "$T/odd-size.data" "$T/r2" >"$T/r2.j"
cmp -s "$T/r1" "$T/r2" && fail "two runs without a salt gave the same tree"
veritysetup verify "$T/odd-size.data" "$T/r1" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_hash"])' "$T/r1.j")" ||
        fail "veritysetup verify rejects a random-salt tree"

# --- veritysetup itself needs no root for format/verify on files ---
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        U=$T/nobody
        mkdir "$U" && cp "$T/odd-size.data" "$U/d" && chmod 755 "$T" && chmod 777 "$U"
        setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
                "cd '$U' && veritysetup format --salt $SALT d h >o && veritysetup verify d h \$(sed -n 's/^Root hash:[[:space:]]*//p' o)" ||
                fail "veritysetup format/verify as an unprivileged user"
        echo "ok: veritysetup format/verify as uid 65534"
fi

# --- bad input: exit status, one line naming the problem, nothing written ---
D=$T/odd-size.data
bad() { # want_rc pattern args...
        local want=$1 pat=$2 rc=0
        shift 2
        rm -f "$T/bad.h"
        "$VT" "$@" 2>"$T/err" >/dev/null || rc=$?
        [ $rc = "$want" ] || fail "$*: exit $rc, expected $want ($(cat "$T/err"))"
        [ "$(grep -cv '^Usage\|^       \|^  \|^Build or\|^Exit status' "$T/err")" = 1 ] || fail "$*: not one line: $(cat "$T/err")"
        grep -q -- "$pat" "$T/err" || fail "$*: message '$(cat "$T/err")' lacks '$pat'"
}
sum_before=$(sha256sum <"$D")
bad 2 "lies inside the data" format --hash-offset 4096 "$D" "$D"
bad 2 "lies inside the data" format --data-blocks 2 --hash-offset 4096 "$D" "$D"
[ "$(sha256sum <"$D")" = "$sum_before" ] || fail "a refused hash offset changed the data"
bad 2 "not a multiple of the hash block size" format --hash-offset 1000000 "$D" "$T/bad.h"
bad 2 "not a multiple of the hash block size" format --hash-offset 512 "$D" "$T/bad.h"
bad 2 "expected an even number of hex digits" format --salt 00zz "$D" "$T/bad.h"
bad 2 "expected an even number of hex digits" format --salt abc "$D" "$T/bad.h"
bad 2 "longer than 256 bytes" format --salt "$(printf '%0514d' 0)" "$D" "$T/bad.h"
bad 2 "expected a power of two 512..65536" format --block-size 3000 "$D" "$T/bad.h"
bad 2 "expected a power of two 512..65536" format --block-size 256 "$D" "$T/bad.h"
bad 2 "expected a power of two 512..65536" format --hash-block-size 131072 "$D" "$T/bad.h"
bad 2 "expected a power of two 512..65536" format --data-block-size 4k "$D" "$T/bad.h"
bad 2 "holds 10000 bytes, --data-blocks 3 needs 12288" format --data-blocks 3 "$D" "$T/bad.h"
bad 2 "expected a number" format --data-blocks 0 "$D" "$T/bad.h"
bad 2 "expected a number" format --data-blocks -1 "$D" "$T/bad.h"
head -c 4000 "$D" >"$T/short"
bad 1 "shorter than one data block" format "$T/short" "$T/bad.h"
bad 1 "Failed to open '$T/missing'" format "$T/missing" "$T/bad.h"
bad 2 "expected xxxxxxxx-xxxx" format --uuid 1234 "$D" "$T/bad.h"
bad 2 "give one" format --salt 00 --salt-seed x "$D" "$T/bad.h"
bad 2 "expected DATA HASH" format "$D"
bad 2 "expected a command" frobnicate "$D" "$T/bad.h"
[ -e "$T/bad.h" ] && fail "a refused format left a hash file"
R=$(root_of <("$VT" format --salt $SALT "$D" "$T/good.h"))
bad 2 "expected 64 hex digits" verify "$D" "$T/good.h" "${R:0:40}"
bad 2 "only for format" verify --json "$D" "$T/good.h" "$R"
bad 2 "give the salt" verify --no-superblock "$D" "$T/good.h" "$R"
bad 2 "says data block size 4096, not 512" verify --block-size 512 "$D" "$T/good.h" "$R"
bad 2 "has another salt" verify --salt 00 "$D" "$T/good.h" "$R"
bad 3 "no valid verity superblock" verify "$D" "$D" "$R"
head -c 8191 "$D" >"$T/cut"
bad 3 "holds 8191 bytes, the superblock's data blocks 2 needs 8192" verify "$T/cut" "$T/good.h" "$R"
bad 2 "holds 8191 bytes, --data-blocks 2 needs 8192" verify --no-superblock --salt $SALT --data-blocks 2 "$T/cut" "$T/good.h" "$R"
: >"$T/empty"
bad 3 "ends before a superblock" verify "$D" "$T/empty" "$R"
truncate -s -1 "$T/good.h"
bad 3 "the hash area needs bytes 0..8191" verify "$D" "$T/good.h" "$R"
printf 'x' | dd of="$T/good.h" bs=1 seek=0 conv=notrunc status=none
bad 3 "no valid verity superblock" verify "$D" "$T/good.h" "$R"
# a format 0 superblock is refused by name
veritysetup format --format 0 --salt 00 "$D" "$T/f0.h" >/dev/null
bad 3 "not a format 1 SHA-256 verity superblock" verify "$D" "$T/f0.h" "$R"
echo "ok: bad input"
# layout: the sizes veritysetup's tree takes for N blocks, without data (what the image build plans with)
for n in 1 2 128 129 16384 16385 129792; do
        head -c $((n * 4096)) /dev/zero >"$T/lay.data"
        vs=$(veritysetup format "$T/lay.data" "$T/lay.hash" --salt - 2>/dev/null | sed -n 's/^Hash blocks:[[:space:]]*//p')
        got=$("$VT" layout --data-blocks $n --json)
        [[ $got == *"\"hash_blocks\":$vs,"* ]] || fail "layout of $n blocks: $got, veritysetup says $vs hash blocks"
        [[ $got == *"\"hash_area_size\":$(stat -c %s "$T/lay.hash")}"* ]] ||
                fail "layout of $n blocks: $got, veritysetup's hash file is $(stat -c %s "$T/lay.hash") bytes"
done
bad 2 "needs --data-blocks\|is needed" layout
bad 2 "expects no file arguments" layout --data-blocks 4 "$D"
bad 2 "not a multiple" layout --data-blocks 4 --hash-offset 100
# zero blocks (the builder hashes a zero block once and reuses its hash) among other blocks, odd sizes and salts
python3 - "$T/zero.data" <<'PY'
import random, sys
r = random.Random(5); out = bytearray()
for i in range(3000):  # runs of zero blocks between random ones, and a partial tail
    out += bytes(4096) if r.random() < 0.7 else r.randbytes(4096)
out += bytes(1000)
open(sys.argv[1], "wb").write(out)
PY
for salt in - 00 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a; do
        head -c $((300 * 4096)) /dev/zero >"$T/allzero.data"
        for f in "$T/zero.data" "$T/allzero.data"; do
                vs=$(veritysetup format "$f" "$T/z.vs" --salt "$salt" --uuid 11111111-2222-4333-8444-555555555555 | sed -n 's/^Root hash:[[:space:]]*//p')
                ours=$("$VT" format "$f" "$T/z.ours" --salt "$salt" --uuid 11111111-2222-4333-8444-555555555555 --json | sed -n 's/.*"root_hash":"\([0-9a-f]*\)".*/\1/p')
                [ "$vs" = "$ours" ] && cmp -s "$T/z.vs" "$T/z.ours" || fail "zero blocks, salt $salt, $f: ours $ours, veritysetup $vs"
                rm -f "$T/z.vs" "$T/z.ours"
        done
done
echo "ok: data with runs of zero blocks: same root and hash file as veritysetup"
rm -f "$T/lay.data" "$T/lay.hash"
echo "ok: layout agrees with veritysetup's hash block count and hash file size"
echo "all verity tree checks passed"
