#!/usr/bin/env bash
# tests/integration/24-tools-hardening.sh — cairn-mkimage and cairn-release under hostile inputs and interruptions:
# temp files removed on SIGTERM/SIGINT, non-regular -o targets refused, FIFO inputs refused at once, a signed
# manifest declaring a huge (or inconsistent) image refused before anything is hashed, an empty subdirectory
# under UBSan, inode exhaustion named as such, strict number options.
# CAIRN_BIN / CAIRN_ASAN_BIN point at other builds (e.g. an older one, to see these checks fail there).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
B=${CAIRN_BIN:-$PWD/build/bin}
ASAN=${CAIRN_ASAN_BIN:-$PWD/build/asan/bin}
for b in cairn-keygen cairn-release cairn-mkimage; do
        [ -x "$B/$b" ] || { echo "FAIL: $B/$b not built (run make)"; exit 1; }
done
for t in python3 openssl debugfs e2fsck; do
        command -v $t >/dev/null || { echo "skip: $t is needed"; exit 77; }
done
T=$(mktemp -d)
PIDS=()
NOT_RUN=() SMALL_MNT= # cases this machine cannot run: the test then ends as a skip, after all others ran
cleanup() {
        [ -z "${SMALL_MNT:-}" ] || umount "$SMALL_MNT" 2>/dev/null
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        rm -rf "$T"
}
on_exit cleanup
cd "$T"

# expect_fail WHAT PATTERN cmd... — must exit non-zero (not by timeout) with one stderr line matching PATTERN.
expect_fail() {
        local what=$1 pat=$2 rc=0; shift 2
        "$@" >out.txt 2>err.txt || rc=$?
        [ $rc -ne 0 ] || fail "$what: succeeded"
        [ $rc -ne 124 ] || fail "$what: still running after the time limit (hangs or does the expensive work)"
        [ "$(wc -l <err.txt)" -eq 1 ] || { cat err.txt; fail "$what: want one error line"; }
        grep -q -- "$pat" err.txt || { cat err.txt; fail "$what: error does not match '$pat'"; }
        echo "ok: $what: $(cat err.txt)"
}
no_temp() { # DIR WHAT
        ! ls "$1" | grep -q '\.tmp' || { ls -la "$1"; fail "$2: temp file left behind"; }
}

# wait_for_temp DIR PID — poll (bounded) until a *.tmp* file exists in DIR while PID runs.
wait_for_temp() {
        for _ in $(seq 600); do
                ls "$1" | grep -q '\.tmp' && return 0
                kill -0 "$2" 2>/dev/null || fail "process $2 ended before creating its temp file"
                sleep 0.05
        done
        fail "no temp file in $1 after 30 s"
}
# interrupt SIG WANT_RC DIR cmd... — start cmd in the background with default signal dispositions (job control
# on, so SIGINT is not ignored), wait for its temp file, send SIG, and require death by SIG and no temp file.
interrupt() {
        local sig=$1 want=$2 dir=$3 pid rc=0; shift 3
        set -m
        "$@" >/dev/null 2>"$T/int.err" &
        pid=$!
        set +m
        PIDS+=("$pid")
        wait_for_temp "$dir" "$pid"
        kill -"$sig" "$pid"
        for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$pid" 2>/dev/null && fail "$1 did not end within 30 s of SIG$sig"
        wait "$pid" || rc=$?
        [ "$rc" -eq "$want" ] || { cat "$T/int.err"; fail "$1 after SIG$sig: exit $rc, want $want (death by the signal)"; }
        no_temp "$dir" "$(basename "$1") after SIG$sig"
        echo "ok: $(basename "$1") ${*:2:1}: SIG$sig -> exit $rc, no temp file"
}

# gen OUT KEY CHUNK_SIZE COUNT KIND — write a payload signed by KEY whose manifest declares COUNT chunks of
# CHUNK_SIZE. KIND: zero (all zero chunks, correct zero hashes), badzero (the last zero hash is wrong),
# zstd (1 stored garbage byte per chunk). The image SHA-256 is arbitrary: nothing reaches that check.
gen() {
        python3 - "$@" <<'PY'
import hashlib, struct, subprocess, sys
out, key, cs, count, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ver, board = b"9.9.9", b"amd64-usr"
fixed = 224 + len(ver) + len(board)
m_len = (fixed + 7) // 8 * 8 + 56 * count
s_len = 8 + 72
data_off = 32 + m_len + s_len
zero_sha = hashlib.sha256(bytes(cs)).digest()
table, data, at = bytearray(), bytearray(), data_off
for i in range(count):
    if kind == "zstd":
        e = struct.pack("<QIIB7x", at, 1, cs, 1) + hashlib.sha256(b"x").digest()
        data += b"\x00"; at += 1
    else:
        sha = zero_sha if not (kind == "badzero" and i == count - 1) else hashlib.sha256(b"no").digest()
        e = struct.pack("<QIIB7x", at, 0, cs, 3) + sha
    table += e
m = bytearray(m_len)
m[0:4] = b"CMAN"
struct.pack_into("<IQ", m, 4, 1, cs * count)
m[16:48] = hashlib.sha256(b"whatever").digest()
struct.pack_into("<IIQQBBBBH", m, 48, cs, count, data_off, at, 1, 0, len(ver), len(board), 0)
m[224:224 + len(ver)] = ver
m[224 + len(ver):fixed] = board
t = (fixed + 7) // 8 * 8
m[t:] = table
open(out + ".m", "wb").write(m)
subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", out + ".m", "-out", out + ".sig"], check=True)
sig = open(out + ".sig", "rb").read()
der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
kid = hashlib.sha256(der[-32:]).digest()[:8]
head = b"CAIRNPL1" + struct.pack("<IIII8x", 1, 32, m_len, s_len)
open(out, "wb").write(head + m + b"CSIG" + struct.pack("<I", 1) + kid + sig + data)
PY
}

"$B/cairn-keygen" -o "$T/k" >/dev/null
mkdir trust && cp k.pub trust/
head -c 200000 /dev/urandom >small.img
"$B/cairn-release" create --image small.img --version 1 --board b --key k.key --chunk-size 64K -o good.cairn >/dev/null

# --- 1. signals: no temp file survives SIGTERM/SIGINT ---
mkdir sig sig/mk sig/cr sig/ex
mkfifo sig/in.tar # mkimage opens its inputs after creating the image: it blocks here with a 9 GiB temp image
interrupt TERM 143 sig/mk "$B/cairn-mkimage" -o sig/mk/a.img --size 9G sig/in.tar
interrupt INT 130 sig/mk "$B/cairn-mkimage" -o sig/mk/b.img --size 9G sig/in.tar
truncate -s 60G sig/zero.img # sparse: reading it takes far longer than the test waits
interrupt TERM 143 sig/cr "$B/cairn-release" create --image sig/zero.img --version 1 --board b --key k.key -o sig/cr/z.cairn
gen sig/z60.cairn k.key $((64 << 20)) 960 zero # a 60 GiB zero image, within the limit: hashing takes minutes
interrupt INT 130 sig/ex "$B/cairn-release" extract --keys trust sig/z60.cairn -o sig/ex/z.img
rm -f sig/zero.img sig/z60.cairn*

# --- 2. -o must be a regular file or absent: symlinks, devices, FIFOs, directories are refused, left as they are ---
mkdir o
echo precious >o/real
ln -s real o/link
ln -s /dev/stdout o/stdout
mkfifo o/fifo
mknod o/null c 1 3 2>/dev/null || true
mkdir o/dir
for t in link stdout fifo null dir; do
        [ -e "o/$t" ] || [ -L "o/$t" ] || continue
        case $t in link | stdout) want='is a symbolic link' ;; fifo) want='is a FIFO' ;; null) want='is a character device' ;; dir) want='is a directory' ;; esac
        expect_fail "extract -o $t" "$want" timeout 20 "$B/cairn-release" extract --keys trust good.cairn -o "o/$t"
        expect_fail "create -o $t" "$want" timeout 20 "$B/cairn-release" create --image small.img --version 1 --board b --key k.key -o "o/$t"
        expect_fail "mkimage -o $t" "$want" timeout 20 "$B/cairn-mkimage" -o "o/$t" --size 16M o/dir
done
[ -L o/link ] && [ "$(cat o/real)" = precious ] && [ -L o/stdout ] && [ -p o/fifo ] && [ -d o/dir ] ||
        { ls -la o; fail "a refused -o target was changed"; }
[ ! -e o/null ] || [ -c o/null ] || fail "the device node was replaced"
no_temp o "refused -o"
"$B/cairn-release" extract --keys trust good.cairn -o o/real >/dev/null && cmp small.img o/real || fail "extract over a regular file"
echo "ok: extract replaces a regular file"

# --- 3. FIFO inputs are refused at once; a huge or inconsistent image is refused before hashing ---
mkfifo in.fifo
expect_fail "verify of a FIFO" 'is not a regular file' timeout 10 "$B/cairn-release" verify --keys trust in.fifo
expect_fail "extract of a FIFO" 'is not a regular file' timeout 10 "$B/cairn-release" extract --keys trust in.fifo -o x.img
expect_fail "inspect of a FIFO" 'is not a regular file' timeout 10 "$B/cairn-release" inspect in.fifo
expect_fail "create from a FIFO" 'is not a regular file' timeout 10 "$B/cairn-release" create --image in.fifo --version 1 --board b --key k.key -o x.cairn
mkdir trustfifo && cp k.pub trustfifo/ && mkfifo trustfifo/x.pub
expect_fail "trusted key that is a FIFO" 'trustfifo/x.pub" is not a regular file' timeout 10 "$B/cairn-release" verify --keys trustfifo good.cairn
expect_fail "signing key that is a FIFO" 'signing key "trustfifo/x.pub" is not a regular file' timeout 10 "$B/cairn-release" create --image small.img --version 1 --board b --key trustfifo/x.pub -o x.cairn
gen z256.cairn k.key $((64 << 20)) 4096 zero # 4,096 zero chunks of 64 MiB: a 256 GiB image in a ~230 KB file
[ "$(stat -c %s z256.cairn)" -lt 300000 ] || fail "generator: z256.cairn too large"
expect_fail "verify of a 256 GiB image" "exceeds the format's maximum" timeout 5 "$B/cairn-release" verify --keys trust z256.cairn
expect_fail "extract of a 256 GiB image" "exceeds the format's maximum" timeout 5 "$B/cairn-release" extract --keys trust z256.cairn -o x.img
expect_fail "inspect of a 256 GiB image" "exceeds the format's maximum" timeout 5 "$B/cairn-release" inspect z256.cairn
gen bz.cairn k.key $((64 << 20)) 900 badzero # 56 GiB of zero chunks, the last one's hash wrong: caught first
expect_fail "wrong zero-chunk hash" 'chunk 899 does not match' timeout 5 "$B/cairn-release" verify --keys trust bz.cairn
expect_fail "wrong zero-chunk hash (extract)" 'chunk 899 does not match' timeout 5 "$B/cairn-release" extract --keys trust bz.cairn -o x.img
[ ! -e x.img ] && [ ! -e x.cairn ] || fail "output left behind"
no_temp . "refused inputs"
# A target filesystem with less free space than the image's non-zero data is refused before any chunk is read.
cs=$((64 << 20)) limit=$((60 << 30)) dest=
# A small tmpfs of our own makes this case independent of the machine's disks; else a small enough existing one.
mkdir -p "$T/small"
if mount -t tmpfs -o size=64m tmpfs "$T/small" 2>/dev/null; then SMALL_MNT=$T/small; fi
for d in ${SMALL_MNT:-} "$T" /dev/shm; do
        [ -d "$d" ] && [ -w "$d" ] || continue
        avail=$(df -B1 --output=avail "$d" | tail -1)
        if [ $((avail + (2 << 30))) -le $limit ]; then dest=$d; break; fi
done
if [ -n "$dest" ]; then
        gen full.cairn k.key $cs $(((avail + (2 << 30)) / cs + 1)) zstd
        expect_fail "extract larger than free space" 'free' timeout 5 "$B/cairn-release" extract --keys trust full.cairn -o "$dest/cairn-24-$$.img"
        [ ! -e "$dest/cairn-24-$$.img" ] && ! ls "$dest" | grep -q "cairn-24-$$.img.tmp" || fail "free-space refusal left a file in $dest"
        rm -f full.cairn*
        [ -z "${SMALL_MNT:-}" ] || { umount "$SMALL_MNT"; SMALL_MNT=; }
else
        NOT_RUN+=("free-space refusal (cannot mount a tmpfs and no writable filesystem with less than 58 GiB free)")
fi

# --- 4. an empty subdirectory (UBSan: qsort(NULL, 0)); inode exhaustion says inodes ---
MK=$B/cairn-mkimage
if [ -x "$ASAN/cairn-mkimage" ]; then MK=$ASAN/cairn-mkimage; else echo "note: no ASan build at $ASAN; the UBSan case runs on the plain build (test-ext4w covers it under make check)"; fi
mkdir -p tree/empty
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=0 "$MK" -o e.img --size 16M tree 2>ub.txt ||
        { cat ub.txt; fail "mkimage of a directory holding an empty directory (under ${MK#$PWD/})"; }
[ ! -s ub.txt ] || { cat ub.txt; fail "mkimage printed diagnostics"; }
e2fsck -fn e.img >/dev/null 2>&1 || fail "e2fsck e.img"
debugfs -R 'stat /empty' e.img 2>/dev/null | grep -q 'Type: directory' || fail "/empty missing from the image"
echo "ok: empty subdirectory (${MK#$PWD/})"
mkdir many && (cd many && touch $(seq -f 'f%g' 200))
expect_fail "inode exhaustion" 'out of inodes.*--inodes' "$B/cairn-mkimage" -o i.img --size 1M --no-journal many
"$B/cairn-mkimage" -o i.img --size 1M --no-journal --inodes 300 many && e2fsck -fn i.img >/dev/null 2>&1 || fail "--inodes 300"
echo "ok: --inodes"

# --- strict numbers: garbage the old parsers let through ---
expect_fail "--threads ' 4'" '--threads' "$B/cairn-release" create --image small.img --version 1 --board b --key k.key --threads ' 4' -o x.cairn
expect_fail "--level +3" '--level' "$B/cairn-release" create --image small.img --version 1 --board b --key k.key --level +3 -o x.cairn
expect_fail "--chunk-size ' 64K'" '--chunk-size' "$B/cairn-release" create --image small.img --version 1 --board b --key k.key --chunk-size ' 64K' -o x.cairn
expect_fail "--size ' 16M'" "--size" "$B/cairn-mkimage" -o x.img --size ' 16M' tree
expect_fail "--epoch ' 5'" "epoch" "$B/cairn-mkimage" -o x.img --size 16M --epoch ' 5' tree
expect_fail "--inodes 1x" "--inodes" "$B/cairn-mkimage" -o x.img --size 16M --inodes 1x tree
[ ! -e x.img ] && [ ! -e x.cairn ] || fail "output left behind"
if [ ${#NOT_RUN[@]} -gt 0 ]; then
        echo "skip: every other case passed, but these were not run: ${NOT_RUN[*]}"
        exit 77
fi
echo "all tools-hardening checks passed"
