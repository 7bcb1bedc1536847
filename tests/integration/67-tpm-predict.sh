#!/usr/bin/env bash
# cost: 90
# tests/integration/67-tpm-predict.sh — `cairn-tpm predict` on copies of the built disk image, no VM (~10 s):
#  - the PCR values equal an independent fold (Python hashlib) over the listed events, and the events' digests
#    equal hashlib over their texts (PCR 8, 11) and over the files themselves (PCR 9: grub.cfg from the ESP with
#    mtools, the kernel and initrd from the slot with debugfs);
#  - the GRUB command sequence follows the state: set-next B (the tries table and save_env), mark-good, a primary
#    grubenv without a header (GRUB reads the copy), CAIRN_EXTRA_CMDLINE on the command line;
#  - bad input: no GPT, a disk without Cairn partitions, an empty slot, a slot without a kernel, no bootable slot,
#    a damaged env block, --slot disagreeing with the state, unknown banks — one line on stderr, exit 1 or 2.
# (PCR values against a real boot: 66-tpm-boot.sh.)
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
for t in debugfs sgdisk mcopy python3; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
TPM=${CAIRN_TPM:-build/bin/cairn-tpm}
BOOTCFG=build/bin/cairn-bootcfg
. "$(dirname "$0")/../lib/common.sh"
tmpdir W 67-tpm-predict
d=$W/disk.img
fresh() { cp --sparse=always "$IMG" "$d"; }
part_start() { sgdisk -i "$1" "$d" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p'; }
part_bytes() { sgdisk -i "$1" "$d" | sed -n 's/^Partition size: \([0-9]*\) sectors.*/\1/p'; }
# expect_fail PATTERN ARGS...: predict fails with exactly one stderr line matching PATTERN, nothing on stdout
expect_fail() {
        local pat=$1 rc=0; shift
        "$TPM" predict "$@" >"$W/out" 2>"$W/err" || rc=$?
        [ $rc -ne 0 ] || fail "predict $* succeeded"
        [ ! -s "$W/out" ] || fail "predict $* wrote to stdout: $(head -c 200 "$W/out")"
        [ "$(wc -l <"$W/err")" = 1 ] || fail "predict $*: not one line on stderr: $(cat "$W/err")"
        grep -q -- "$pat" "$W/err" || fail "predict $*: expected /$pat/, got: $(cat "$W/err")"
}

# Independent check of a --json prediction: folds and digests recomputed with hashlib from the disk's files.
check_json() { # JSON-FILE
        local p3 kern init
        p3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["partition"])' "$1")
        dd if="$d" of="$W/slot.img" bs=512 skip="$(part_start "$p3")" count="$(part_bytes "$p3")" status=none
        kern=$(debugfs -R "stat /boot/vmlinuz" "$W/slot.img" 2>/dev/null | sed -n 's/^Fast link dest: "\(.*\)"/\1/p')
        debugfs -R "dump /boot/${kern:-vmlinuz} $W/vmlinuz" "$W/slot.img" >/dev/null 2>&1
        debugfs -R "dump /boot/initrd $W/initrd" "$W/slot.img" >/dev/null 2>&1
        MTOOLS_SKIP_CHECK=1 mcopy -n -i "$d@@$(($(part_start 1) * 512))" ::/EFI/BOOT/grub.cfg "$W/grub.cfg"
        python3 - "$1" "$W" <<'EOF'
import hashlib, json, sys
p = json.load(open(sys.argv[1])); w = sys.argv[2]
files = {"grub.cfg": open(w + "/grub.cfg", "rb").read(), "vmlinuz": open(w + "/vmlinuz", "rb").read(),
         "initrd": open(w + "/initrd", "rb").read()}
assert len(files["vmlinuz"]) > 1000000, "kernel not extracted"
for bank, vals in p["banks"].items():
    size = hashlib.new(bank).digest_size
    pcr = {8: bytes(size), 9: bytes(size), 11: bytes(size)}
    for ev in p["events"]:
        t = ev["text"]
        if ev["pcr"] == 9:
            obj = files[t.rsplit("/", 1)[1]]
        elif ev["pcr"] == 8:
            assert t.startswith("grub_cmd: ") or t.startswith("kernel_cmdline: "), t
            obj = t.split(": ", 1)[1].encode()
        else:
            assert ev["type"] == "EV_EVENT_TAG", ev
            obj = t.encode()
        dg = hashlib.new(bank, obj).digest()
        assert ev["digests"][bank] == dg.hex(), "digest of %r in %s" % (t, bank)
        pcr[ev["pcr"]] = hashlib.new(bank, pcr[ev["pcr"]] + dg).digest()
    for k in (8, 9, 11):
        assert vals[str(k)] == pcr[k].hex(), "PCR %d %s: %s != %s" % (k, bank, vals[str(k)], pcr[k].hex())
print("fold and digests check:", p["slot"], ",".join(sorted(p["banks"])), len(p["events"]), "events")
EOF
}
has_cmd() { python3 -c 'import json,sys; t=[e["text"] for e in json.load(open(sys.argv[1]))["events"]]
sys.exit(0 if sys.argv[2] in t else 1)' "$@"; }

# 1. The fresh image: slot A, successful.
fresh
"$TPM" predict --disk "$d" --json >"$W/a.json" || fail "predict A"
check_json "$W/a.json" || fail "slot A prediction does not check"
has_cmd "$W/a.json" "grub_cmd: [ 1 = 1 ]" || fail "A: the successful test is missing"
has_cmd "$W/a.json" "grub_cmd: boot" || fail "A: no boot command"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert set(p["banks"])=={"sha1","sha256","sha384","sha512"}, p["banks"].keys()' "$W/a.json" ||
        fail "default banks"
"$TPM" predict --disk "$d" --banks sha256 --json | python3 -c 'import json,sys; assert list(json.load(sys.stdin)["banks"])==["sha256"]' ||
        fail "--banks sha256"
"$TPM" predict --disk "$d" >"$W/a.txt" || fail "human output"
grep -q "^pcrs:" "$W/a.txt" && grep -q "slot A, partition 3" "$W/a.txt" || fail "human output: $(head -3 "$W/a.txt")"
"$TPM" predict --disk "$d" --bios --json >"$W/bios.json" || fail "--bios"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert all(e["pcr"]==11 for e in p["events"]) and p["banks"]["sha256"]["8"]=="0"*64' "$W/bios.json" ||
        fail "--bios still predicts GRUB measurements"

# Release digests: cairn-release create fills them from the slot image; they equal PCR 9's sha256 digests.
[ -f build/keys/dev.key ] || build/bin/cairn-keygen -o build/keys/dev >/dev/null
dd if="$d" of="$W/a-usr.img" bs=512 skip="$(part_start 3)" count="$(part_bytes 3)" status=none
build/bin/cairn-release create --image "$W/a-usr.img" --version 0.1.0 --board amd64-usr --key build/keys/dev.key \
        -o "$W/r.cairn" >/dev/null || fail "cairn-release create"
build/bin/cairn-release inspect "$W/r.cairn" >"$W/r.txt" || fail "inspect"
python3 - "$W" <<'EOF'
import hashlib, json, re, sys
w = sys.argv[1]; p = json.load(open(w + "/a.json"))
ev = {e["text"].rsplit("/", 1)[-1]: e["digests"]["sha256"] for e in p["events"] if e["pcr"] == 9}
t = open(w + "/r.txt").read()
k, i, c = (re.search(name + r" SHA-256:\s*([0-9a-f]{64})", t).group(1) for name in ("Kernel", "Initrd", "Cmdline"))
assert k == ev["vmlinuz"], (k, ev["vmlinuz"])
assert i == ev["initrd"], (i, ev["initrd"])
# The slot's own command-line argument: the dm-verity root hash GRUB passes (in PCR 8's kernel_cmdline event).
m = [re.search(r"cairn\.usrhash=([0-9a-f]{64})", e["text"]) for e in p["events"] if e["pcr"] == 8]
m = [x.group(1) for x in m if x]
want = hashlib.sha256(("cairn.usrhash=" + m[0]).encode() if m else b"").hexdigest()
assert c == want, (c, want)
print("release digests equal the PCR 9 events")
EOF

# 2. set-next B (tries 1): GRUB's table, save_env and B's partition; --slot checks.
usr=$W/usr.img
dd if="$d" of="$usr" bs=512 skip="$(part_start 3)" count="$(part_bytes 3)" status=none
dd if="$usr" of="$d" bs=512 seek="$(part_start 4)" conv=notrunc,sparse status=none
"$BOOTCFG" --disk "$d" --force set-next B >/dev/null
"$TPM" predict --disk "$d" --slot B --json >"$W/b.json" || fail "predict B"
check_json "$W/b.json" || fail "slot B prediction does not check"
for c in "grub_cmd: set order=B A" "grub_cmd: [ 1 = 1 ]" "grub_cmd: set t=0" "grub_cmd: set B_TRIES=0" \
        "grub_cmd: probe --part-uuid --set=usruuid (hd0,gpt4)"; do
        has_cmd "$W/b.json" "$c" || fail "B: no '$c'"
done
python3 -c 'import json,sys; t=[e["text"] for e in json.load(open(sys.argv[1]))["events"]]
assert any(x.startswith("grub_cmd: save_env -f (hd0,gpt1)/EFI/BOOT/grubenv B_TRIES") for x in t)' "$W/b.json" || fail "B: no save_env"
expect_fail "boots slot B, not A" --disk "$d" --slot A
# mark-good B: the successful branch, no save_env
"$BOOTCFG" --disk "$d" --booted B mark-good >/dev/null
"$TPM" predict --disk "$d" --json >"$W/bg.json" || fail "predict B good"
has_cmd "$W/bg.json" "grub_cmd: set slot=B" || fail "B good: no set slot=B"
python3 -c 'import json,sys; t=[e["text"] for e in json.load(open(sys.argv[1]))["events"]]; assert not any("save_env" in x for x in t)' "$W/bg.json" ||
        fail "B good: save_env predicted"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["banks"]["sha256"]; b=json.load(open(sys.argv[2]))["banks"]["sha256"]
assert a["8"]!=b["8"] and a["9"]==b["9"] and a["11"]==b["11"]' "$W/b.json" "$W/bg.json" ||
        fail "B tries vs B good: expected PCR 8 to differ (state) and PCR 9, 11 to agree (same slot)"

# 3. An extra kernel argument from the env; and a primary env without its header (GRUB reads grubenv.bak).
fresh
esp="$d@@$(($(part_start 1) * 512))"
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$esp" ::/EFI/BOOT/grubenv "$W/env"
grub-editenv "$W/env" set CAIRN_EXTRA_CMDLINE="quiet loglevel=3"
"$TPM" predict --disk "$d" --env "$W/env" --json >"$W/x.json" || fail "predict with --env"
python3 -c 'import json,sys; t=[e["text"] for e in json.load(open(sys.argv[1]))["events"]]
assert any(x.startswith("kernel_cmdline: ") and x.endswith(" quiet loglevel=3") for x in t), t' "$W/x.json" || fail "extra cmdline"
grub-editenv "$W/env" set 'CAIRN_EXTRA_CMDLINE=a"b'
expect_fail "CAIRN_EXTRA_CMDLINE" --disk "$d" --env "$W/env"
# Break the primary's header in place (same size, same clusters), as a torn write could.
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$esp" ::/EFI/BOOT/grubenv "$W/env2"
printf 'X' | dd of="$W/env2" bs=1 seek=0 conv=notrunc status=none
MTOOLS_SKIP_CHECK=1 mcopy -o -n -i "$esp" "$W/env2" ::/EFI/BOOT/grubenv
"$TPM" predict --disk "$d" --json >"$W/fb.json" || fail "predict with a broken primary env"
has_cmd "$W/fb.json" "grub_cmd: load_env --skip-sig -f (hd0,gpt1)/EFI/BOOT/grubenv.bak" || fail "no fallback to grubenv.bak"
check_json "$W/fb.json" || fail "fallback prediction does not check"
# A primary with its header but a bad body: GRUB's reading cannot be predicted.
printf '# GRUB Environment Block\nA_PRIORITY=99\n' >"$W/env3"
head -c $((1024 - $(stat -c %s "$W/env3"))) /dev/zero | tr '\0' '#' >>"$W/env3"
expect_fail "damaged" --disk "$d" --env "$W/env3"
grub-editenv "$W/env4" create
grub-editenv "$W/env4" set A_PRIORITY=1
expect_fail "has no A_TRIES" --disk "$d" --env "$W/env4"
grub-editenv "$W/env5" create
grub-editenv "$W/env5" set A_PRIORITY=0 A_TRIES=0 A_SUCCESSFUL=0 B_PRIORITY=0 B_TRIES=0 B_SUCCESSFUL=0
expect_fail "no slot is bootable" --disk "$d" --env "$W/env5"

# 4. Bad disks and arguments.
head -c 4M /dev/zero >"$W/zero.img"
expect_fail "no usable GPT" --disk "$W/zero.img"
expect_fail "cannot open" --disk "$W/missing.img"
sgdisk -o -n 1:2048:+1M "$W/zero.img" >/dev/null
expect_fail "not a Cairn disk" --disk "$W/zero.img"
fresh
dd if=/dev/zero of="$d" bs=512 seek="$(part_start 3)" count=8 conv=notrunc status=none
expect_fail "holds no ext4" --disk "$d"
fresh
dd if="$d" of="$usr" bs=512 skip="$(part_start 3)" count="$(part_bytes 3)" status=none
debugfs -w -R "rm /boot/initrd" "$usr" >/dev/null 2>&1
dd if="$usr" of="$d" bs=512 seek="$(part_start 3)" conv=notrunc status=none
expect_fail "has no /usr/boot/initrd" --disk "$d"
rc=0; "$TPM" predict --disk "$d" --banks md5 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "not a bank" "$W/err" || fail "--banks md5: rc $rc $(cat "$W/err")"
rc=0; "$TPM" predict --disk "$d" --slot C 2>"$W/err" || rc=$?
[ $rc = 2 ] || fail "--slot C: rc $rc"
rc=0; "$TPM" predict 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "needs --disk" "$W/err" || fail "predict without --disk: rc $rc"
rc=0; "$TPM" pcrs --disk "$d" 2>"$W/err" || rc=$?
[ $rc = 2 ] || fail "pcrs --disk accepted"
echo "67-tpm-predict: ok"
