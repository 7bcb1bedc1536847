#!/usr/bin/env bash
# tests/integration/65-tpm-initrd.sh — cairn-tpm-initrd (the initramfs's PCR 11 measurer) against swtpm on
# 127.0.0.1, no VM (~10 s): the three events in the log, tpm2_eventlog's replay and tpm2_pcrread equal, and equal
# an independent hashlib fold; refusals (systemd-stub's EFI variables, PCR 11 events in the firmware log, a damaged
# or foreign log, bad arguments), no TPM (exit 3, one notice), and a TPM killed at the PCR_Extend (exit 4, the
# record stays one ahead).
set -euo pipefail
CI=${CAIRN_TPM_INITRD:-$PWD/build/bin/cairn-tpm-initrd}
CT=${CAIRN_TPM:-$PWD/build/bin/cairn-tpm}
PROXY=$PWD/tests/lib/tpm-proxy.py
for t in swtpm tpm2_pcrread tpm2_eventlog python3; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
. "$(dirname "$0")/../lib/common.sh"
W=$(mktemp -d)
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        [ -f "$W/state/pid" ] && kill "$(cat "$W/state/pid")" 2>/dev/null || true
        rm -rf "$W"
}
on_exit cleanup
HASH=5a6f1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8
printf 'NAME="Cairn"\nVERSION_ID="7.8.9"\n' >"$W/os-release"
mkdir -p "$W/efivars"
start_swtpm() { # fresh TPM (sha1 + sha256 banks) on a free port; sets PORT
        [ -f "$W/state/pid" ] && kill "$(cat "$W/state/pid")" 2>/dev/null && sleep 0.2
        rm -rf "$W/state"; mkdir -p "$W/state"
        swtpm_setup --tpm2 --tpmstate "$W/state" --pcr-banks sha1,sha256 >/dev/null 2>&1 || fail "swtpm_setup"
        for _ in 1 2 3 4 5; do
                PORT=$((20000 + RANDOM % 20000))
                swtpm socket --tpm2 --tpmstate dir="$W/state" --server type=tcp,port=$PORT \
                        --ctrl type=tcp,port=$((PORT + 1)) --flags not-need-init,startup-clear \
                        --pid file="$W/state/pid" --daemon 2>/dev/null && return 0
        done
        fail "swtpm did not start"
}
run() { # ARGS...: run the measurer with the test's paths; rc in RC, output in $W/out, $W/err
        RC=0
        "$CI" --os-release "$W/os-release" --efivars "$W/efivars" --firmware "$W/fw.log" "$@" >"$W/out" 2>"$W/err" || RC=$?
}
one_line() { [ "$(wc -l <"$W/err")" = 1 ] || fail "$1: not one line on stderr: $(cat "$W/err")"; grep -q -- "$2" "$W/err" || fail "$1: want /$2/: $(cat "$W/err")"; }

# 1. Measure: log, replay and TPM agree, and equal hashlib.
start_swtpm
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$PORT
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/run/cairn/tpm-events.log"
[ $RC = 0 ] || fail "measure: rc $RC: $(cat "$W/err")"
grep -q "PCR 11 (2 banks) <- usrhash=$HASH, version 7.8.9, leave-initrd" "$W/out" || fail "output: $(cat "$W/out")"
tpm2_eventlog "$W/run/cairn/tpm-events.log" >"$W/el.yaml" 2>"$W/el.err" || fail "tpm2_eventlog: $(cat "$W/el.err")"
[ ! -s "$W/el.err" ] || fail "tpm2_eventlog warned: $(cat "$W/el.err")"
tpm2_pcrread sha1:11+sha256:11 >"$W/pcr.yaml"
python3 - "$W" "$HASH" <<'EOF'
import hashlib, re, sys
w, h = sys.argv[1], sys.argv[2]
el = open(w + "/el.yaml").read(); pr = open(w + "/pcr.yaml").read()
for bank in ("sha1", "sha256"):
    v = bytes(hashlib.new(bank).digest_size)
    for t in ("usrhash=" + h, "7.8.9", "leave-initrd"):
        v = hashlib.new(bank, v + hashlib.new(bank, t.encode()).digest()).digest()
    rep = re.search(bank + r":\n\s+11 : 0x([0-9a-fA-F]+)", el.split("pcrs:")[1]).group(1).lower()
    tpm = re.search(bank + r":\n\s+11: 0x([0-9A-F]+)", pr).group(1).lower()
    assert rep == v.hex() == tpm, (bank, rep, tpm, v.hex())
print("PCR 11: log replay = TPM = hashlib")
EOF
"$CT" log --firmware none --log "$W/run/cairn/tpm-events.log" | grep -c 'TaggedEventID: 0xca1b000[123]' | grep -qx 3 ||
        fail "cairn-tpm log does not show the three tagged events"
# A second run appends to the same log (same banks): six events, still equal to the TPM.
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/run/cairn/tpm-events.log"
[ $RC = 0 ] || fail "second measure: rc $RC"
CAIRN_TPM_TCTI=$TPM2TOOLS_TCTI "$CT" verify --firmware none --log "$W/run/cairn/tpm-events.log" --pcrs 11 >/dev/null ||
        fail "cairn-tpm verify after two runs"

# 2. Refusals: nothing measured, PCR 11 unchanged.
before=$(tpm2_pcrread sha256:11)
touch "$W/efivars/StubInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/l2"
[ $RC = 5 ] || fail "StubInfo: rc $RC"; one_line StubInfo "systemd-stub is in use"
rm "$W/efivars/StubInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
touch "$W/efivars/StubPcrKernelImage-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/l2"
[ $RC = 5 ] || fail "StubPcrKernelImage: rc $RC"
rm "$W/efivars"/*
cp "$W/run/cairn/tpm-events.log" "$W/fw.log" # a "firmware" log with PCR 11 events
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/l2"
[ $RC = 5 ] || fail "firmware PCR 11: rc $RC"; one_line "firmware log" "firmware log already has events for PCR 11"
rm "$W/fw.log"
[ ! -e "$W/l2" ] || fail "a refused run created its log"
head -c 100 "$W/run/cairn/tpm-events.log" >"$W/damaged.log"
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/damaged.log"
[ $RC = 1 ] || fail "damaged log: rc $RC"; one_line "damaged log" "is damaged, not appending"
printf 'garbage' >"$W/foreign.log"
run --device tcp:127.0.0.1:$PORT --usrhash "$HASH" --log "$W/foreign.log"
[ $RC = 1 ] || fail "foreign log: rc $RC"
run --device tcp:127.0.0.1:$PORT --usrhash "not-hex" --log "$W/l3"
[ $RC = 1 ] || fail "bad usrhash: rc $RC"; one_line "bad usrhash" "is not a hex root hash"
printf 'NAME=x\n' >"$W/noversion"
RC=0; "$CI" --os-release "$W/noversion" --efivars "$W/efivars" --firmware "$W/fw.log" --device tcp:127.0.0.1:$PORT \
        --usrhash "$HASH" --log "$W/l3" 2>"$W/err" || RC=$?
[ $RC = 1 ] || fail "no VERSION_ID: rc $RC"; one_line "no VERSION_ID" "no usable VERSION_ID"
RC=0; "$CI" >/dev/null 2>&1 || RC=$?; [ $RC = 2 ] || fail "no arguments: rc $RC"
[ "$(tpm2_pcrread sha256:11)" = "$before" ] || fail "a refused run changed PCR 11"

# 3. No TPM: one notice, exit 3.
run --device /nonexistent/tpmrm0 --usrhash "$HASH" --log "$W/l4"
[ $RC = 3 ] || fail "no TPM: rc $RC"; one_line "no TPM" "notice: no TPM"
run --device tcp:127.0.0.1:1 --usrhash "$HASH" --log "$W/l4"
[ $RC = 3 ] || fail "nothing listening: rc $RC"

# 4. The TPM dies at the first PCR_Extend: the record was written first and stays (exit 4).
start_swtpm
# The proxy takes two ports (PP, PP+1); one may be taken by a test running beside this one: try others.
for _ in $(seq 10); do
        PP=$((20000 + RANDOM % 20000))
        python3 "$PROXY" "$PP" "$PORT" "$W/state/pid" "$W/proxy.ready" 2>>"$W/proxy.err" &
        ppid=$!
        for _ in $(seq 50); do [ -f "$W/proxy.ready" ] && break; kill -0 $ppid 2>/dev/null || break; sleep 0.1; done
        [ -f "$W/proxy.ready" ] && { PIDS+=($ppid); break; }
        wait $ppid 2>/dev/null || true
done
[ -f "$W/proxy.ready" ] || fail "the TPM proxy did not start: $(tail -n 2 "$W/proxy.err")"
run --device tcp:127.0.0.1:$PP --usrhash "$HASH" --log "$W/l5"
[ $RC = 4 ] || fail "TPM killed: rc $RC: $(cat "$W/err")"; one_line "TPM killed" "the record stays"
"$CT" log --firmware none --log "$W/l5" | grep -c 'TaggedEventID' | grep -qx 1 || fail "killed TPM: want exactly the first record"
echo "65-tpm-initrd: ok"
