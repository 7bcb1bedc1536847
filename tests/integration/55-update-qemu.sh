#!/usr/bin/env bash
# tests/integration/55-update-qemu.sh — the update flow end to end (issue: update agent), in QEMU (OVMF, TCG):
# the VM boots v1 (out/cairn.img); the host runs cairn-server with v2 in channel alpha, reachable from the
# guest only through QEMU user networking (guestfwd 10.0.2.100:80 → 127.0.0.1:PORT, restrict=on). The agent
# updates by delta (ci/release.sh makes v1 → v2), reboots, boots v2 from slot B, passes its health gate and marks the slot good; the server's
# instance table shows the machine on v2. Then a v3 whose initramfs is garbage (the kernel panics) is
# released: the agent installs it into slot A, reboots, the attempt fails, GRUB falls back to v2 by itself,
# the agent reports v3 as failed and does not install it again.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
[ -f build/keys/dev.key ] || { echo "FAIL: build/keys/dev.key missing (the image's release key; run make image)"; exit 1; }
. "$(dirname "$0")/../lib/vm.sh"
B=$PWD/build/bin
W=$VM_DIR/work
mkdir -p "$W"
SPID=
cleanup_all() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; vm_cleanup; }
trap cleanup_all EXIT
fail() {
        echo "FAIL: $*"
        echo "--- server log (tail)"; tail -n 12 "$W/server.log" 2>/dev/null || true
        echo "--- console (tail)"; vm_output vm 2>/dev/null | tail -n 25 || true
        echo "--- agent log (tail)"; vm_run vm 'tail -n 20 /var/log/cairn-updated.log' 30 2>/dev/null || true
        exit 1
}
V1=$(cat VERSION) V2=0.2.0 V3=0.3.0

# Releases: v2 (the default image with another version), v3 (v2 with a garbage initramfs), same dev key.
REL=$W/rel
# v2 exactly as a release manager makes one: `ci/release.sh VERSION` and no option (the release directory from
# the environment): it builds v2's /usr itself, takes the board and version from that image, signs with the
# development key that `make image` built into the image, and puts it into channel alpha.
ci/release.sh "$V1" --image out/usr.img --reldir "$REL" --channel stable >/dev/null
CAIRN_RELDIR=$REL ci/release.sh "$V2" >"$W/release-v2.log" 2>&1 || { cat "$W/release-v2.log"; fail "ci/release.sh $V2 failed"; }
grep -q warning "$W/release-v2.log" && fail "ci/release.sh $V2 warned: $(cat "$W/release-v2.log")"
[ -f "$REL/payloads/$V2/cairn-$V2-amd64-usr.cairn" ] || fail "ci/release.sh $V2 published no amd64-usr payload: $(ls -R "$REL/payloads")"
cp --sparse=always "build/release/$V2/usr.img" "$W/v3.img"
head -c 4096 /dev/urandom >"$W/junk"
debugfs -w -R "rm /boot/initrd" "$W/v3.img" >/dev/null 2>&1
debugfs -w -R "write $W/junk /boot/initrd" "$W/v3.img" >/dev/null 2>&1
debugfs -w -R "rm /lib/os-release" "$W/v3.img" >/dev/null 2>&1
printf "ID=cairn\nVERSION_ID=%s\nCAIRN_BOARD=amd64-usr\n" "$V3" >"$W/os3"
debugfs -w -R "write $W/os3 /lib/os-release" "$W/v3.img" >/dev/null 2>&1
# the edits changed the file system: seal it again (new tree and root-hash block), as a release build would
scripts/verity-seal.sh seal "$W/v3.img" "cairn-$V3-usr" >/dev/null || fail "could not reseal v3"

# The update server on a random loopback port; the guest sees it as http://10.0.2.100/.
"$B/cairn-server" --reldir "$REL" --db "$W/db.sqlite" --listen 127.0.0.1:0 --base-url http://10.0.2.100/payloads/ \
        >"$W/server.out" 2>"$W/server.log" &
SPID=$!
for _ in $(seq 100); do grep -q "listening on" "$W/server.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$W/server.out")
[ -n "$PORT" ] || fail "cairn-server did not start"
instances() { curl -sf "http://127.0.0.1:$PORT/api/v1/instances"; }

disk=$VM_DIR/disk.qcow2
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 3G
start_vm() { vm_start vm "$disk" --firmware efi --no-overlay --guestfwd "tcp:10.0.2.100:80-tcp:127.0.0.1:$PORT"; }

# v1 boots; point the agent at our server (channel alpha) and restart it (init respawns it).
start_vm
vm_wait vm "Cairn $V1 \(slot A\) ready" 300 || fail "v1 did not boot"
vm_run vm "mkdir -p /etc/cairn && printf 'GROUP=alpha\nSERVER=http://10.0.2.100/v1/update/\nREBOOT_STRATEGY=reboot\nFIRST_CHECK_DELAY=600\nHEALTH_DELAY=5\n' >/etc/cairn/update.conf && killall cairn-updated; sleep 2; pidof cairn-updated" ||
        fail "could not configure the agent"
MID=$(vm_run vm 'cat /etc/machine-id') || fail "no machine id"

# 1. Update to v2: the agent downloads, verifies, writes slot B, makes it next and reboots.
vm_mark vm
vm_run vm 'cairnctl update' 600 || true    # the reboot may cut the command's output short
vm_wait vm "Cairn $V2 \(slot B\) ready" 600 || fail "the VM did not come back on v2 in slot B"
for _ in $(seq 60); do
        s=$(vm_run vm 'cairn-bootcfg status --json' 2>/dev/null) || true
        python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s["booted"]=="B" and s["slots"]["B"]["successful"] else 1)' "$s" 2>/dev/null && break
        sleep 3
done
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["booted"]=="B" and s["slots"]["B"]["successful"], s' "$s" ||
        fail "v2 was not marked good after its health gate: $s"
for _ in $(seq 30); do instances | grep -q "\"$V2\"" && break; sleep 2; done
instances | python3 -c 'import json,sys; d=json.load(sys.stdin); m=sys.argv[1]; v=sys.argv[2]
rows=d if isinstance(d,list) else d.get("instances",d)
assert any(r.get("machine_id")==m and r.get("version")==v for r in rows), d' "$MID" "$V2" ||
        fail "the server does not show machine $MID on $V2: $(instances)"
# ci/release.sh made the delta $V1 → $V2 and the agent (delta_okay="true") got it, not the full payload.
grep -q "GET /payloads/$V2/deltas/cairn-$V2-amd64-usr-from-$V1.cairn 20[06]" "$W/server.log" ||
        fail "the guest did not fetch the delta $V1 → $V2: $(grep GET "$W/server.log" | tail -n 5)"
grep -q "GET /payloads/$V2/cairn-$V2-amd64-usr.cairn " "$W/server.log" && fail "the guest fetched the full $V2 payload too"
echo "ok: updated to $V2 by delta ($(stat -c %s "$REL/payloads/$V2/deltas/cairn-$V2-amd64-usr-from-$V1.cairn") of $(stat -c %s "$REL/payloads/$V2/cairn-$V2-amd64-usr.cairn") bytes) and marked good; the server shows it"
# dm-verity: B runs from /dev/mapper/usr with the root hash v2's manifest signed (docs/verity.md).
R2=$("$B/cairn-release" inspect --json "$REL/payloads/$V2/cairn-$V2-amd64-usr.cairn" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["verity_root_hash"])')
[[ $R2 =~ ^[0-9a-f]{64}$ ]] || fail "v2's manifest carries no verity root hash ($R2)"
st=$(vm_run vm "grep ' /usr ' /proc/mounts; cairn-dmverity table usr; cairnctl status --json") || fail "status on v2: $st"
grep -q '^/dev/mapper/usr /usr ext4 ro' <<<"$st" || fail "v2's /usr is not on dm-verity: $st"
grep -q " verity 1 .* sha256 $R2 " <<<"$st" || fail "v2's verity table does not carry the signed root $R2: $st"
grep -q "\"booted_verity_root\":\"$R2\"" <<<"$st" || fail "cairnctl status does not show the booted root $R2: $st"
echo "ok: v2 runs on dm-verity with the signed root hash $R2"

# 2. A broken v3: installed into slot A, fails to boot, GRUB falls back to v2, v3 reported and not retried.
ci/release.sh "$V3" --image "$W/v3.img" --reldir "$REL" >/dev/null
vm_mark vm
vm_run vm 'cairnctl update' 600 || true
vm_wait vm "Kernel panic" 600 || fail "v3 was not tried"
vm_wait vm "Cairn $V2 \(slot B\) ready" 600 || fail "no fallback to v2 after v3 failed"
for _ in $(seq 40); do
        st=$(vm_run vm 'cairnctl status --json' 2>/dev/null) || true
        grep -q "\"failed_versions\":\[\"$V3\"\]" <<<"$st" && break
        sleep 3
done
echo "agent status: $st"
grep -q "\"failed_versions\":\[\"$V3\"\]" <<<"$st" || fail "the agent does not report the failed $V3"
out=$(vm_run vm 'cairnctl update' 300) || fail "cairnctl update after the rollback failed: $out"
echo "cairnctl update after the rollback: $out"
grep -q "not installing $V3: it failed to boot before" <<<"$out" || fail "the agent did not say why it skipped $V3: $out"
vm_run vm 'cairn-bootcfg status --json' | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["booted"]=="B" and s["next"]=="B", s' ||
        fail "boot selection changed after the refused retry"
# The failed boot reaches the server as update_engine's event 3 (update complete), result 0 (error), code 44
# (post-install: rolled back), naming the version that failed.
for _ in $(seq 20); do
        curl -sf "http://127.0.0.1:$PORT/api/v1/events?machine=$MID" >"$W/events.json" || true
        python3 - "$W/events.json" "$V3" <<'PY' && break
import json, sys
d = json.load(open(sys.argv[1]))
rows = d if isinstance(d, list) else d.get("events", d)
sys.exit(0 if any(r.get("type") == 3 and r.get("result") == 0 and r.get("errorcode") == 44
                  and r.get("previous_version") == sys.argv[2] for r in rows) else 1)
PY
        sleep 3
done
python3 - "$W/events.json" "$V3" <<'PY' || fail "the server lists no error event for the failed $V3: $(cat "$W/events.json")"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d if isinstance(d, list) else d.get("events", d)
assert any(r.get("type") == 3 and r.get("result") == 0 and r.get("errorcode") == 44
           and r.get("previous_version") == sys.argv[2] for r in rows), rows
PY
vm_poweroff vm 120
echo "55-update-qemu: ok"
