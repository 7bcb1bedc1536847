#!/usr/bin/env bash
# tests/integration/66-tpm-boot.long.sh — measured boot of the real image: QEMU + OVMF + swtpm (tpm-crb).
#  1. slot A: `cairn-tpm predict` on the host, before the boot; in the guest PCR 8, 9 and 11 of every active
#     bank equal it, `cairn-tpm verify` replays the firmware log + ours to the TPM; a quote (tpm2-tools carried on
#     the OEM partition) checks with tpm2_checkquote against the combined log, and fails on a tampered copy.
#  2. slot B (a v2 slot written from the host, set-next B): predicted on the host for B's state (tries 1 → 0),
#     then booted: the PCRs equal the prediction for B, which differs from A's.
#  3. SeaBIOS without a TPM: the boot reaches the ready line, the initramfs says "no TPM", and cairn-tpm says it
#     cannot measure (exit 3).
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
for t in swtpm tpm2 tpm2_checkquote debugfs sgdisk; do
        command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh)"; exit 77; }
done
. "$(dirname "$0")/../lib/vm.sh"
. "$(dirname "$0")/../lib/usr-image.sh"
TPM=${CAIRN_TPM:-build/bin/cairn-tpm}
BOOTCFG=build/bin/cairn-bootcfg
fail() {
        echo "FAIL: $*"
        if [ -n "${VM_PID[vm]:-}" ]; then echo "--- console (tail)"; vm_output vm | tail -n 40 | cat -v; fi
        exit 1
}
V1=$(cat VERSION) V2=0.2.1
W=$VM_DIR/work
mkdir -p "$W"
disk=$W/disk.img
cp --sparse=always "$IMG" "$disk"
part_start() { sgdisk -i "$1" "$disk" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p'; }

# tpm2-tools for the guest's quote, on the OEM partition (mounted read-only at /oem): the binary and its libraries.
mkdir -p "$W/oem/bin" "$W/oem/lib"
cp /usr/bin/tpm2 "$W/oem/bin/"
ldd /usr/bin/tpm2 | awk '/=> \//{print $3}' | while read -r l; do cp -L "$l" "$W/oem/lib/"; done
build/bin/cairn-mkimage -o "$W/oem.img" --size 32M --seed oem-tpm --label OEM "$W/oem" >/dev/null
dd if="$W/oem.img" of="$disk" bs=512 seek="$(part_start 6)" conv=notrunc,sparse status=none

# compare PREDICTION.json PCRS.json: every bank the TPM has must be predicted and equal, sha1 and sha256 present.
compare() {
        python3 - "$1" "$2" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["banks"]; t = json.load(open(sys.argv[2]))["banks"]
assert "sha1" in t and "sha256" in t, "TPM lacks sha1/sha256: %s" % list(t)
for bank, vals in t.items():
    assert bank in p, "bank %s not predicted" % bank
    for pcr in ("8", "9", "11"):
        assert vals[pcr] == p[bank][pcr], "PCR %s %s: TPM %s, predicted %s" % (pcr, bank, vals[pcr], p[bank][pcr])
print("PCR 8, 9, 11 equal the prediction in banks", ",".join(sorted(t)))
EOF
}
guest_pcrs() { # OUT.json
        local out
        out=$(vm_run vm 'cairn-tpm pcrs --pcrs 8,9,11 --json') || fail "cairn-tpm pcrs in the guest: $out"
        printf '%s\n' "$out" | grep '^{' >"$1"
}

# 1. Slot A.
"$TPM" predict --disk "$disk" --json >"$W/predict-a.json" || fail "predict A"
"$TPM" predict --disk "$disk" >"$W/predict-a.txt"
grep -q '"slot":"A"' "$W/predict-a.json" || fail "predict does not say slot A"
vm_start vm "$disk" --no-overlay --tpm
vm_wait vm "Cairn $V1 \(slot A\) ready" 300 || fail "slot A did not boot"
vm_grep vm "cairn-tpm-initrd: PCR 11 \([0-9] banks\) <- usrhash=[0-9a-f]{64}, version " || fail "the initramfs did not measure PCR 11 (with the dm-verity root it activated)"
guest_pcrs "$W/pcrs-a.json"
compare "$W/predict-a.json" "$W/pcrs-a.json" || fail "slot A: TPM differs from the prediction"
vm_run vm 'cairn-tpm verify' >"$W/verify-a.txt" || fail "verify in the guest: $(cat "$W/verify-a.txt")"
grep -q "verify: ok" "$W/verify-a.txt" || fail "verify did not say ok"
vm_run vm 'cairn-tpm log' >"$W/log-a.txt" || fail "cairn-tpm log"
grep -q 'TaggedEventData: "leave-initrd"' "$W/log-a.txt" || fail "our log lacks leave-initrd"
# A quote over the PCRs, checked on the host with the combined log (firmware log + our records).
out=$(vm_run vm 'export LD_LIBRARY_PATH=/oem/lib TPM2TOOLS_TCTI=device:/dev/tpmrm0 TSS2_LOG=all+NONE; cd /tmp &&
/oem/bin/tpm2 createek -c ek.ctx -G rsa -u ek.pub >/dev/null &&
/oem/bin/tpm2 createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -f pem -n ak.name >/dev/null &&
/oem/bin/tpm2 quote -c ak.ctx -l sha256:0,1,2,3,4,5,6,7,8,9,11 -q 5eed1234 -m q.msg -s q.sig -o q.pcrs -g sha256 >/dev/null &&
for f in ak.pub q.msg q.sig q.pcrs /sys/kernel/security/tpm0/binary_bios_measurements /run/cairn/tpm-events.log; do
echo "@@F $(basename $f)"; base64 -w0 $f; echo; done' 180) || fail "quote in the guest: $out"
printf '%s\n' "$out" >"$W/quote.out"
python3 - "$W" <<'EOF'
import base64, struct, sys
w = sys.argv[1]; files = {}; name = None
for line in open(w + "/quote.out").read().splitlines():
    if line.startswith("@@F "): name = line[4:]
    elif name: files[name] = base64.b64decode(line); name = None
for n, b in files.items(): open("%s/%s" % (w, n), "wb").write(b)
ours = files["tpm-events.log"]
hdr = 32 + struct.unpack_from("<I", ours, 28)[0]           # our spec header record
nalg = struct.unpack_from("<I", ours, 32 + 24)[0]
sizes = dict(struct.unpack_from("<HH", ours, 32 + 28 + 4 * i) for i in range(nalg))
fw = files["binary_bios_measurements"]
combined = fw + ours[hdr:]
open(w + "/combined.log", "wb").write(combined)
# Tamper: one byte of the sha256 digest of our first record (the slot identity, PCR 11).
o = len(fw) + 12
for i in range(struct.unpack_from("<I", combined, len(fw) + 8)[0]):
    alg = struct.unpack_from("<H", combined, o)[0]
    if alg == 0x000B:
        break
    o += 2 + sizes[alg]
t = bytearray(combined); t[o + 2] ^= 1
open(w + "/tampered.log", "wb").write(bytes(t))
EOF
( cd "$W" && tpm2_checkquote -u ak.pub -m q.msg -s q.sig -f q.pcrs -g sha256 -q 5eed1234 -e combined.log ) >"$W/cq.out" 2>&1 ||
        { cat "$W/cq.out"; fail "tpm2_checkquote rejected the combined log"; }
if ( cd "$W" && tpm2_checkquote -u ak.pub -m q.msg -s q.sig -f q.pcrs -g sha256 -q 5eed1234 -e tampered.log ) >"$W/cq-bad.out" 2>&1; then
        fail "tpm2_checkquote accepted a tampered log"
fi
grep -qi "mismatch" "$W/cq-bad.out" || { cat "$W/cq-bad.out"; fail "tampered log: no PCR mismatch reported"; }
echo "slot A: predicted PCRs, verify ok, quote checks; tampered log rejected"
vm_poweroff vm 120

# 2. Slot B: a v2 slot (same kernel and initrd, other version) written from the host, then set-next B.
usr_image_retag_sealed out/usr.img "$W/v2.img" "$V2" amd64-usr
dd if="$W/v2.img" of="$disk" bs=512 seek="$(part_start 4)" conv=notrunc,sparse status=none
"$BOOTCFG" --disk "$disk" --force set-next B >/dev/null || fail "set-next B on the host"
"$TPM" predict --disk "$disk" --slot A >/dev/null 2>"$W/err" && fail "predict --slot A accepted a state that boots B"
grep -q "boots slot B, not A" "$W/err" || fail "predict --slot A: $(cat "$W/err")"
"$TPM" predict --disk "$disk" --slot B --json >"$W/predict-b.json" || fail "predict B"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["banks"]; b=json.load(open(sys.argv[2]))["banks"]
assert all(a["sha256"][p] != b["sha256"][p] for p in ("8","11")), "A and B predict the same PCR 8/11"' \
        "$W/predict-a.json" "$W/predict-b.json" || fail "B's prediction does not differ from A's"
vm_start vm "$disk" --no-overlay --tpm
vm_wait vm "Cairn $V2 \(slot B\) ready" 300 || fail "slot B did not boot"
guest_pcrs "$W/pcrs-b.json"
compare "$W/predict-b.json" "$W/pcrs-b.json" || fail "slot B: TPM differs from the prediction"
vm_run vm 'cairn-tpm verify' >/dev/null || fail "verify on slot B"
echo "slot B: predicted PCRs"
vm_poweroff vm 120

# 3. SeaBIOS, no TPM: the boot goes on; cairn-tpm says what it cannot do.
"$TPM" predict --disk "$disk" --bios --json >"$W/predict-bios.json" || fail "predict --bios"
vm_start vm "$disk" --no-overlay --firmware bios
vm_wait vm "Cairn [^ ]+ \(slot [AB]\) ready" 300 || fail "no boot under SeaBIOS"
vm_grep vm "cairn-tpm-initrd: notice: no TPM" || fail "the initramfs did not say there is no TPM"
set +e
out=$(vm_run vm 'cairn-tpm pcrs; echo "rc=$?"')
set -e
grep -q "rc=3" <<<"$out" || fail "cairn-tpm pcrs without a TPM: $out"
grep -q "measured boot is not available here" <<<"$out" || fail "no 'not available' notice: $out"
vm_poweroff vm 120
echo "66-tpm-boot: ok"
