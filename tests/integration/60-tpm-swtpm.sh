#!/usr/bin/env bash
# tests/integration/60-tpm-swtpm.sh — cairn-tpm against swtpm (socket mode, SHA-1 and SHA-256 banks active), with
# tpm2-tools as the independent oracle: extend/read round trips on both banks (tpm2_pcrread and a Python fold),
# tpm2_eventlog parsing our log with its replayed pcrs: equal to tpm2_pcrread, verify passing then failing on an
# extend behind its back and on tampered logs, concurrent extends serialised by the log lock, bad logs as one-line
# errors, a TPM killed between the log append and the extend (exit 4, record kept), and no TPM at all (exit 3).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
CT=${CAIRN_TPM:-$PWD/build/bin/cairn-tpm}   # CAIRN_TPM=build/asan/bin/cairn-tpm runs it under ASan
PROXY=$PWD/tests/lib/tpm-proxy.py
CORPUS=$PWD/tests/fuzz/corpus/eventlog
[ -x "$CT" ] || { echo "FAIL: $CT not built"; exit 1; }
for t in swtpm swtpm_setup tpm2_pcrread tpm2_pcrextend tpm2_eventlog tpm2_getcap python3; do
        command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
W=$(mktemp -d)
PROXY_PID=
cleanup() {
        stop_swtpm
        [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
        rm -rf "$W"
}
on_exit cleanup
cd "$W"

# One provisioned state (banks sha1+sha256), copied for every fresh TPM (PCRs reset on each start).
swtpm_setup --tpm2 --tpmstate "$W/template" --pcr-banks sha1,sha256 --overwrite >setup.log 2>&1 ||
        { mkdir -p "$W/template" && swtpm_setup --tpm2 --tpmstate "$W/template" --pcr-banks sha1,sha256 \
                --overwrite >setup.log 2>&1; } || fail "swtpm_setup: $(tail -3 setup.log)"

stop_swtpm() {
        if [ -f "$W/swtpm.pid" ]; then
                local pid; pid=$(cat "$W/swtpm.pid")
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                rm -f "$W/swtpm.pid"
        fi
}
# start_swtpm: a fresh TPM on random free ports P (commands) and P+1 (control); sets PORT and the TCTIs.
start_swtpm() {
        stop_swtpm
        rm -rf "$W/state" && cp -a "$W/template" "$W/state"
        local try
        for try in $(seq 30); do
                PORT=$((20000 + RANDOM % 30000))
                if swtpm socket --tpm2 --tpmstate dir="$W/state" \
                        --server type=tcp,port=$PORT,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
                        --flags not-need-init,startup-clear --daemon --pid file="$W/swtpm.pid" --log file="$W/swtpm.log" \
                        2>>"$W/swtpm.err"; then
                        for _ in $(seq 50); do [ -s "$W/swtpm.pid" ] && break; sleep 0.1; done
                        export CAIRN_TPM_TCTI=swtpm:host=127.0.0.1,port=$PORT TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$PORT
                        tpm2_pcrread sha256:0 >/dev/null 2>&1 && return 0
                        stop_swtpm
                fi
        done
        fail "swtpm would not start: $(tail -3 "$W/swtpm.err")"
}
# A port nothing listens on (bound, then closed).
closed_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# pcrmap: "bank:pcr=hex" lines (lower case, sorted) from tpm2_pcrread / cairn-tpm pcrs / a pcrs: section.
pcrmap() {
        python3 -c '
import re, sys
bank = None; out = []
for line in sys.stdin:
    m = re.match(r"^\s*(sha\w+):\s*$", line)
    if m: bank = m.group(1); continue
    m = re.match(r"^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$", line)
    if m and bank: out.append("%s:%d=%s" % (bank, int(m.group(1)), m.group(2).lower()))
print("\n".join(sorted(out)))'
}
# fold ALG HEX_START TEXT...: the PCR after extending with H(text) for each text, computed independently.
fold() {
        python3 -c '
import hashlib, sys
h = getattr(hashlib, sys.argv[1]); v = bytes.fromhex(sys.argv[2])
for t in sys.argv[3:]:
    v = h(v + h(t.encode()).digest()).digest()
print(v.hex())' "$@"
}
pcr_of() { tpm2_pcrread "$1:$2" | pcrmap | sed 's/.*=//'; }
Z1=$(printf '0%.0s' $(seq 40)); Z256=$(printf '0%.0s' $(seq 64))
# expect_fail CODE "what" "regex" cmd...: exit CODE, exactly one stderr line matching regex.
expect_fail() {
        local code=$1 what=$2 re=$3 rc=0; shift 3
        "$@" >out.txt 2>err.txt || rc=$?
        [ "$rc" = "$code" ] || fail "$what: exit $rc, want $code ($(cat err.txt))"
        grep -Eq "$re" err.txt || fail "$what: message '$(cat err.txt)' does not match /$re/"
        [ "$(wc -l <err.txt)" -eq 1 ] || fail "$what: not one line: $(cat err.txt)"
        echo "ok: $what: exit $rc: $(cat err.txt)"
}
NOFW="--firmware none"

# ---------------- banks, reads ----------------
start_swtpm
"$CT" pcrs >pcrs.txt
[ "$(grep -c '^sha' pcrs.txt)" = 2 ] && grep -q '^sha1:' pcrs.txt && grep -q '^sha256:' pcrs.txt ||
        fail "pcrs: want exactly the sha1 and sha256 banks: $(grep '^sha' pcrs.txt)"
tpm2_pcrread sha1:all+sha256:all | pcrmap >oracle.txt
pcrmap <pcrs.txt >mine.txt
[ "$(wc -l <mine.txt)" = 48 ] || fail "pcrs: want 48 values (24 PCRs x 2 banks), got $(wc -l <mine.txt)"
cmp -s mine.txt oracle.txt || fail "pcrs differs from tpm2_pcrread: $(diff mine.txt oracle.txt | head)"
"$CT" pcrs --pcrs 0,7,8-11 | pcrmap >sel.txt
[ "$(cut -d= -f1 sel.txt | tr '\n' ' ')" = "sha1:0 sha1:10 sha1:11 sha1:7 sha1:8 sha1:9 sha256:0 sha256:10 sha256:11 sha256:7 sha256:8 sha256:9 " ] ||
        fail "pcrs --pcrs 0,7,8-11 selected $(cut -d= -f1 sel.txt | tr '\n' ' ')"
"$CT" pcrs --json --pcrs 17 | python3 -c 'import json,sys; d=json.load(sys.stdin)["banks"]; assert set(d)=={"sha1","sha256"}; assert d["sha256"]["17"]=="f"*64, d' ||
        fail "pcrs --json"
echo "ok: pcrs: both banks, 24 PCRs, equal to tpm2_pcrread; selection and --json"
expect_fail 2 "pcrs --pcrs 24" 'not a PCR list' "$CT" pcrs --pcrs 24

# ---------------- extend round trips ----------------
L=$W/run/cairn/tpm-events.log
"$CT" extend --pcr 11 --tag slot --data "usrhash=0123456789abcdef" --log "$L" >ext.txt
grep -q 'record 1 of .* (created)' ext.txt || fail "first extend: $(cat ext.txt)"
"$CT" extend --pcr 11 --tag version --data "1.2.3" --log "$L" >/dev/null
"$CT" extend --pcr 11 --tag leave-initrd --data "leave-initrd" --log "$L" >/dev/null
python3 -c 'import random,sys; random.seed(61); sys.stdout.buffer.write(random.randbytes(100000))' >object.bin
"$CT" extend --pcr 12 --tag 0xCA1B0042 --file object.bin --log "$L" >/dev/null
for alg in sha1 sha256; do
        z=$([ $alg = sha1 ] && echo $Z1 || echo $Z256)
        want=$(fold $alg "$z" "usrhash=0123456789abcdef" "1.2.3" "leave-initrd")
        [ "$(pcr_of $alg 11)" = "$want" ] || fail "PCR 11 $alg: tpm2_pcrread $(pcr_of $alg 11), want $want"
        fh=$(${alg}sum object.bin | cut -d' ' -f1)
        want=$(python3 -c 'import hashlib,sys; h=getattr(hashlib,sys.argv[1]); print(h(bytes.fromhex(sys.argv[2])+bytes.fromhex(sys.argv[3])).hexdigest())' $alg "$z" "$fh")
        [ "$(pcr_of $alg 12)" = "$want" ] || fail "PCR 12 $alg (file): $(pcr_of $alg 12), want $want"
done
"$CT" pcrs --json --pcrs 11,12 | python3 -c '
import json, sys
d = json.load(sys.stdin)["banks"]
for b in d:
    for p in d[b]: print("%s:%s=%s" % (b, p, d[b][p]))' | sort >mine.txt
tpm2_pcrread sha1:11,12+sha256:11,12 | pcrmap >oracle.txt
cmp -s mine.txt oracle.txt || fail "pcrs --json vs tpm2_pcrread after extends: $(diff mine.txt oracle.txt)"
echo "ok: extend: PCR 11 (3 tagged texts) and 12 (a file) on sha1 and sha256 equal tpm2_pcrread and an independent fold"

# ---------------- tpm2_eventlog parses our log ----------------
tpm2_eventlog "$L" >tel.txt 2>tel.err || fail "tpm2_eventlog failed: $(cat tel.err)"
[ ! -s tel.err ] || fail "tpm2_eventlog warned: $(cat tel.err)"
[ "$(grep -c 'EventType: EV_EVENT_TAG' tel.txt)" = 4 ] || fail "tpm2_eventlog: want 4 EV_EVENT_TAG events"
sed -n '/^pcrs:/,$p' tel.txt | pcrmap >tel-pcrs.txt
[ "$(wc -l <tel-pcrs.txt)" = 4 ] || fail "tpm2_eventlog pcrs: want 4 values: $(cat tel-pcrs.txt)"
tpm2_pcrread sha1:11,12+sha256:11,12 | pcrmap >oracle.txt
cmp -s tel-pcrs.txt oracle.txt || fail "tpm2_eventlog pcrs: differ from tpm2_pcrread: $(diff tel-pcrs.txt oracle.txt)"
echo "ok: tpm2_eventlog parses our log without warnings; its replayed pcrs: equal tpm2_pcrread"
sed -n '/^pcrs:/,$p' tel.txt | sed 's/^/    | /'
"$CT" log --log "$L" --firmware "$W/no-firmware-log" >log.txt 2>log.err
grep -q 'no firmware event log' log.err || fail "log: no notice for the absent firmware log"
[ "$(wc -l <log.err)" = 1 ] || fail "log: stderr: $(cat log.err)"
grep -q 'TaggedEventID: 0xca1b0003 (leave-initrd)' log.txt || fail "log: leave-initrd event not shown"
grep -q 'TaggedEventData: "1.2.3"' log.txt || fail "log: version data not shown"
sed -n '/^pcrs:/,$p' log.txt | pcrmap >mine.txt
cmp -s mine.txt oracle.txt || fail "cairn-tpm log pcrs: differ from tpm2_pcrread"
"$CT" log --log "$L" $NOFW --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [e["tag"]["name"] for e in d["events"]] == ["slot", "version", "leave-initrd", None], d["events"]
assert d["events"][1]["tag"]["data"] == "1.2.3"
assert d["logs"][0]["algorithms"] == ["sha1", "sha256"]
assert len(d["pcrs"]["sha256"]) == 2' || fail "log --json"
# The combined firmware + ours log the way the reference describes it (a real-looking firmware log, ours appended).
"$CT" log --firmware "$CORPUS/firmware-like" --log "$L" >comb.txt 2>comb.err || fail "log with a firmware log: $(cat comb.err)"
[ ! -s comb.err ] || fail "log with a firmware log: stderr $(cat comb.err)"
grep -q 'Source: firmware' comb.txt && grep -q 'Event: "grub_cmd: set timeout=0"' comb.txt || fail "log: firmware events"
echo "ok: cairn-tpm log (text and --json): our events, firmware events, replayed pcrs equal tpm2_pcrread"

# ---------------- verify ----------------
"$CT" verify --log "$L" $NOFW >ver.txt 2>ver.err || fail "verify failed: $(cat ver.err)"
grep -q 'verify: ok: PCRs 0,1,2,3,4,5,6,7,8,9,11,12,13,14,15 of banks sha1,sha256 equal the replay of 0 firmware and 4 Cairn events' ver.txt ||
        fail "verify: $(cat ver.txt)"
echo "ok: verify: $(cat ver.txt)"
cp "$L" good.log
# A tampered log: one digest bit of record 2 (offset 69 + record 1 + 12 + 2 → in its sha1 digest).
python3 - "$L" tampered.log <<'PY'
import sys, struct
b = bytearray(open(sys.argv[1], "rb").read())
off = 69
n = struct.unpack_from("<I", b, off + 12 + 22 + 34)[0]; off += 12 + 22 + 34 + 4 + n   # skip record 1
b[off + 12 + 2] ^= 1                                                              # record 2, sha1 digest
open(sys.argv[2], "wb").write(b)
PY
expect_fail 1 "verify, tampered digest" '^cairn-tpm: verify: PCR 11 bank sha1 differs' "$CT" verify --log tampered.log $NOFW --pcrs 11,12
# A log with a record removed.
python3 - "$L" short.log <<'PY'
import sys, struct
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", b, 69 + 12 + 22 + 34)[0]
open(sys.argv[2], "wb").write(b[:69] + b[69 + 12 + 22 + 34 + 4 + n:])
PY
expect_fail 1 "verify, record removed" 'PCR 11 bank sha1 differs' "$CT" verify --log short.log --pcrs 0-23 $NOFW
# An extend behind cairn-tpm's back, on a PCR our log uses and on one no log mentions.
tpm2_pcrextend 12:sha1=$(printf 'ab%.0s' $(seq 20)),sha256=$(printf 'cd%.0s' $(seq 32)) || fail tpm2_pcrextend
expect_fail 1 "verify after tpm2_pcrextend 12" 'verify: PCR 12 bank sha1 differs: the logs replay to [0-9a-f]{40}, the TPM has' \
        "$CT" verify --log "$L" $NOFW
start_swtpm
"$CT" extend --pcr 11 --tag test --data x --log "$W/b.log" >/dev/null
"$CT" verify --log "$W/b.log" $NOFW >/dev/null 2>&1 || fail "verify on a fresh TPM"
tpm2_pcrextend 14:sha256=$(printf 'ef%.0s' $(seq 32)) || fail tpm2_pcrextend
expect_fail 1 "verify after tpm2_pcrextend 14 (sha256 only)" 'verify: PCR 14 bank sha256 differs' "$CT" verify --log "$W/b.log" $NOFW
"$CT" verify --log "$W/b.log" $NOFW --pcrs 11 >/dev/null 2>&1 || fail "verify --pcrs 11 should pass"

# ---------------- concurrent extends: the lock keeps log order = extend order ----------------
start_swtpm
C=$W/c.log
for i in $(seq 8); do "$CT" extend --pcr 13 --tag test --data "concurrent-$i" --log "$C" >/dev/null & done
wait
"$CT" verify --log "$C" $NOFW >ver.txt 2>ver.err || fail "verify after concurrent extends: $(cat ver.err)"
grep -q 'replay of 0 firmware and 8 Cairn events' ver.txt || fail "concurrent: $(cat ver.txt)"
tpm2_eventlog "$C" 2>/dev/null | sed -n '/^pcrs:/,$p' | pcrmap >tel-pcrs.txt
tpm2_pcrread sha1:13+sha256:13 | pcrmap >oracle.txt
cmp -s tel-pcrs.txt oracle.txt || fail "concurrent: tpm2_eventlog replay differs from tpm2_pcrread"
echo "ok: 8 concurrent extends: log replay (cairn-tpm verify and tpm2_eventlog) equals the TPM"
# swtpm has no resource manager: nothing may be left behind (cairn-tpm creates no objects or sessions).
[ -z "$(tpm2_getcap handles-transient)$(tpm2_getcap handles-loaded-session)" ] ||
        fail "transient objects or sessions left in the TPM: $(tpm2_getcap handles-transient) $(tpm2_getcap handles-loaded-session)"

# ---------------- bad logs: one line, non-zero, nothing extended ----------------
head -c 150 "$CORPUS/ours-two-records" >trunc.log
expect_fail 1 "verify, truncated log" 'record 1 at offset 69: event size 11 runs past the end' "$CT" verify --log trunc.log $NOFW
head -c 100 "$CORPUS/ours-two-records" >trunc2.log
expect_fail 1 "log, log cut inside a digest" 'record 1 at offset 69 is truncated: a digest ends past the end' "$CT" log --log trunc2.log $NOFW
expect_fail 1 "log, garbled signature" 'signature is "Spec ID Event02", not "Spec ID Event03"' "$CT" log --log "$CORPUS/bad-signature" $NOFW
expect_fail 1 "log, wrong spec header" 'not a spec header' "$CT" log --log "$CORPUS/legacy-sha1-log" $NOFW
expect_fail 1 "log, digest count overflow" 'digest count 4294967295, but the header lists 2' "$CT" log --log "$CORPUS/digest-count-overflow" $NOFW
expect_fail 1 "log, sha256 with 20-byte digests" 'gives sha256 \(0x000b\) a digest size of 20' "$CT" log --log "$CORPUS/sha256-size-20" $NOFW
expect_fail 1 "log, EV_NO_ACTION in our log" 'EV_NO_ACTION after the header' "$CT" log --log "$CORPUS/no-action-after-header" $NOFW
expect_fail 1 "verify, garbled firmware log" '^cairn-tpm: firmware log .*event size 200 runs past the end' "$CT" verify --log "$C" --firmware "$CORPUS/event-size-past-end"
python3 -c 'import random,sys; random.seed(60); sys.stdout.buffer.write(random.randbytes(5000))' >garbage.log
expect_fail 1 "verify, random bytes" 'not a spec header|truncated|not "Spec ID Event03"' "$CT" verify --log garbage.log $NOFW
for f in "$CORPUS"/*; do
        case $(basename "$f") in ours-* | header-* | sha256-only | four-banks | vendor-info | empty) continue ;; esac
        rc=0; "$CT" log --log "$f" $NOFW >/dev/null 2>err.txt || rc=$?
        [ "$rc" = 1 ] && [ "$(wc -l <err.txt)" = 1 ] ||
                fail "log --log corpus/$(basename "$f"): exit $rc, stderr $(cat err.txt)"
done
echo "ok: every malformed corpus file as our log: exit 1, one line"
# Extending onto a damaged log is refused before the TPM is touched; the log is left alone.
before=$(pcr_of sha256 11)
cp trunc.log trunc.before
expect_fail 1 "extend onto a truncated log" 'is damaged, not appending' "$CT" extend --pcr 11 --tag test --data y --log trunc.log
cmp -s trunc.log trunc.before || fail "extend changed a damaged log"
[ "$(pcr_of sha256 11)" = "$before" ] || fail "extend onto a damaged log extended the TPM"
# Extending a log written for other banks is refused.
cp "$CORPUS/sha256-only" other.log
expect_fail 1 "extend onto a sha256-only log" 'was written for banks sha256, but the TPM has sha1,sha256 active' \
        "$CT" extend --pcr 11 --tag test --data y --log other.log
[ "$(pcr_of sha256 11)" = "$before" ] || fail "extend onto a log of other banks extended the TPM"
expect_fail 2 "extend, not our tag" 'is not a Cairn tag' "$CT" extend --pcr 11 --tag 0x8F3B22EC --data y --log "$C"
expect_fail 2 "extend, no --data/--file" 'needs --pcr N, --tag ID and one of' "$CT" extend --pcr 11 --tag test --log "$C"
expect_fail 1 "extend, missing file" 'cannot open "nope.bin"' "$CT" extend --pcr 11 --tag test --file nope.bin --log "$C"
[ "$(pcr_of sha256 11)" = "$before" ] || fail "a refused extend changed PCR 11"

# ---------------- the TPM dies between the log append and the extend ----------------
start_swtpm
"$CT" extend --pcr 11 --tag test --data before --log "$W/k.log" >/dev/null
PP=
for _ in $(seq 30); do
        PP=$((20000 + RANDOM % 30000))
        rm -f proxy.ready
        python3 "$PROXY" $PP $PORT "$W/swtpm.pid" proxy.ready 2>proxy.err &
        PROXY_PID=$!
        for _ in $(seq 50); do [ -e proxy.ready ] && break; kill -0 $PROXY_PID 2>/dev/null || break; sleep 0.1; done
        [ -e proxy.ready ] && break
        wait $PROXY_PID 2>/dev/null || true; PROXY_PID=
done
[ -n "$PROXY_PID" ] || fail "the proxy would not start: $(cat proxy.err)"
"$CT" --tcti swtpm:host=127.0.0.1,port=$PP pcrs --pcrs 11 >/dev/null || fail "pcrs through the proxy"
SWPID=$(cat "$W/swtpm.pid")
expect_fail 4 "extend, TPM killed at PCR_Extend" 'TPM2_PCR_Extend of PCR 11 failed: .*record 2 \(offset [0-9]+\) of ".*k.log" was written first and stays' \
        "$CT" --tcti swtpm:host=127.0.0.1,port=$PP extend --pcr 11 --tag test --data after --log "$W/k.log"
gone=0   # SIGKILLed; it may linger as a zombie until its parent reaps it
for _ in $(seq 30); do
        { ! kill -0 "$SWPID" 2>/dev/null || grep -q '^[0-9]* ([^)]*) Z' /proc/$SWPID/stat 2>/dev/null; } && { gone=1; break; }
        sleep 0.1
done
[ $gone = 1 ] || fail "swtpm still running after the proxy killed it"
rm -f "$W/swtpm.pid"
"$CT" log --log "$W/k.log" $NOFW 2>/dev/null | grep -c 'TaggedEventData' | grep -qx 2 || fail "killed extend: the log should hold 2 records"
tpm2_eventlog "$W/k.log" >/dev/null 2>&1 || fail "killed extend: tpm2_eventlog cannot parse the log"
echo "ok: killed mid-extend: exit 4, the log keeps the record (2 records, still parseable)"
kill $PROXY_PID 2>/dev/null || true; wait $PROXY_PID 2>/dev/null || true; PROXY_PID=

# ---------------- no TPM at all ----------------
NP=$(closed_port)
export CAIRN_TPM_TCTI=swtpm:host=127.0.0.1,port=$NP
expect_fail 3 "pcrs, no TPM" "^cairn-tpm: no TPM at \"swtpm:host=127.0.0.1,port=$NP\" .*: measured boot is not available here$" "$CT" pcrs
expect_fail 3 "extend, no TPM" 'no TPM at .*measured boot is not available' "$CT" extend --pcr 11 --tag test --data z --log "$W/none.log"
[ ! -s "$W/none.log" ] || fail "extend without a TPM wrote a record"
expect_fail 3 "verify, no TPM" 'no TPM at' "$CT" verify --log "$C" --firmware "$CORPUS/firmware-like"
expect_fail 3 "pcrs, device TCTI, no device" 'no TPM at "device:/nonexistent/tpmrm0"' "$CT" --tcti device:/nonexistent/tpmrm0 pcrs
echo "all ok"
