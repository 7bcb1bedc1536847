#!/usr/bin/env bash
# cost: 900
# tests/integration/55-update-qemu.sh — the update flow end to end (issue: update agent), in QEMU (OVMF, TCG):
# the VM boots v1 (out/cairn.img); the host runs cairn-server with v2 in channel alpha, reachable from the
# guest only through QEMU user networking (guestfwd 10.0.2.100:80 → 127.0.0.1:PORT, restrict=on). The agent
# updates by delta (ci/release.sh makes v1 → v2), reboots, boots v2 from slot B, passes its health gate and marks the slot good; the server's
# instance table shows the machine on v2. Then a v3 whose initramfs is garbage (the kernel panics) is
# released: the agent installs it into slot A, reboots, the attempt fails, GRUB falls back to v2 by itself,
# the agent reports v3 as failed and does not install it again.
# The reboots are coordinated (REBOOT_STRATEGY=etcd-lock, docs/reboot.md): a real etcd on a host loopback port,
# reached by the guest through guestfwd 10.0.2.100:2379. With the semaphore full (max 1, held by another id put
# there with etcdctl) the staged v2 does not reboot and `cairnctl status` says why; once etcdctl frees the slot
# the guest takes it, and etcdctl (the oracle) sees the guest's machine id hold it from its pre-reboot hook
# through the new boot's health gate and post-boot hook, released only after them (the guest's hooks and check
# announce themselves on the console and wait for the host, so every observation is at a known point); the
# key's whole revision history has exactly one take and one release. The v3 reboot takes the lock too, and the
# post-boot hook of the boot that came back on v2 is told so (CAIRN_ROLLED_BACK=1) before the release.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
[ -f build/keys/dev.key ] || { echo "FAIL: build/keys/dev.key missing (the image's release key; run make image)"; exit 1; }
. "$(dirname "$0")/../lib/vm.sh"
B=$PWD/build/bin
W=$VM_DIR/work
mkdir -p "$W"
SPID=
for t in etcd etcdctl; do
        command -v $t >/dev/null || { echo "skip: $t not installed (scripts/deps.sh installs etcd-server, etcd-client)"; exit 77; }
done
T=$W/etcd
mkdir -p "$T"
declare -A EPID=()
on_exit etcd_stop_all
on_exit '[ -z "$SPID" ] || kill $SPID 2>/dev/null'
fail() {
        echo "FAIL: $*"
        echo "--- server log (tail)"; tail -n 12 "$W/server.log" 2>/dev/null || true
        echo "--- etcd key"; etcdctl --endpoints "${EP:-}" --command-timeout=3s get "$ETCD_KEY" -w json 2>&1 | head -c 600 || true
        echo; echo "--- console (tail)"; vm_output vm 2>/dev/null | tail -n 25 || true
        echo "--- agent log (tail)"; vm_run vm 'tail -n 20 /var/log/cairn-updated.log' 30 2>/dev/null || true
        exit 1
}
. "$(dirname "$0")/../lib/etcd.sh"
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

# The reboot lock: one etcd member on loopback ports; the guest reaches its client port as 10.0.2.100:2379.
etcd_single e1
OTHER=0ther0host0000000000000000000000
etcdctl --endpoints "$EP" put "$ETCD_KEY" "{\"semaphore\":0,\"max\":1,\"holders\":[\"$OTHER\"]}" >/dev/null || fail "etcdctl put"
sem() { # the holders (space-separated; "none") and the key's mod_revision, as etcdctl reads them
        etcdctl --endpoints "$EP" --command-timeout=5s get "$ETCD_KEY" -w json | python3 -c '
import base64, json, sys
kv = json.load(sys.stdin)["kvs"][0]
print(" ".join(json.loads(base64.b64decode(kv["value"]))["holders"] or ["none"]), kv["mod_revision"])'
}
wait_free() { # → FREE_REV, once no one holds the semaphore (60 s)
        local h r _
        for _ in $(seq 60); do read -r h r < <(sem); [ "$h" = none ] && break; sleep 1; done
        read -r h r < <(sem)
        [ "$h" = none ] || return 1
        FREE_REV=$r
}

disk=$VM_DIR/disk.qcow2
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 3G
start_vm() { vm_start vm "$disk" --firmware efi --no-overlay --guestfwd "tcp:10.0.2.100:80-tcp:127.0.0.1:$PORT" \
        --guestfwd "tcp:10.0.2.100:2379-tcp:127.0.0.1:$ETCD_CPORT"; }

# The guest's hooks and health check for the v1 → v2 reboot: each says on the console that it runs (with what
# its environment tells it) and waits until the host creates its go-file in /run, so the host reads etcd while
# the hook or check is known to be running. One vm_run each: the console shell takes lines of at most 1 KiB.
guest_hook() { # FILE CONSOLE-TEXT [GO-FILE]: an executable script that echoes the text (its $VARS expanded there)
        local wait=
        [ -n "${3:-}" ] && wait="i=0; while [ ! -e $3 ]; do i=\$((i+1)); [ \$i -le 900 ] || exit 1; sleep 1; done"
        vm_run vm "mkdir -p ${1%/*} && printf '#!/bin/sh\necho \"%s\" >/dev/console\n%s\n' '$2' '$wait' >$1 && chmod +x $1" ||
                fail "could not write $1 in the guest"
}

# v1 boots; point the agent at our server (channel alpha) and at etcd, and restart it (init respawns it).
start_vm
vm_wait vm "Cairn $V1 \(slot A\) ready" 300 || fail "v1 did not boot"
guest_hook /etc/cairn/pre-reboot.d/50-test \
        'cairn-test: pre-reboot hook id=$CAIRN_MACHINE_ID from=$CAIRN_OLD_VERSION to=$CAIRN_NEW_VERSION next=$CAIRN_NEXT_SLOT lock=$CAIRN_LOCK' \
        /run/cairn-test-pre-go
guest_hook /etc/cairn/health.d/50-test 'cairn-test: health gate running' /run/cairn-test-gate-go
guest_hook /etc/cairn/post-boot.d/50-test \
        'cairn-test: post-boot hook rolled_back=$CAIRN_ROLLED_BACK slot=$CAIRN_BOOTED_SLOT from=$CAIRN_OLD_VERSION to=$CAIRN_NEW_VERSION' \
        /run/cairn-test-post-go
vm_run vm "mkdir -p /etc/cairn && printf 'GROUP=alpha\nSERVER=http://10.0.2.100/v1/update/\nREBOOT_STRATEGY=etcd-lock\nETCD_ENDPOINTS=http://10.0.2.100:2379\nLOCK_RETRY_MIN=1\nLOCK_RETRY_MAX=2\nHEALTH_TIMEOUT=900\nPRE_REBOOT_TIMEOUT=900\nPOST_BOOT_TIMEOUT=900\nFIRST_CHECK_DELAY=600\nHEALTH_DELAY=5\n' >/etc/cairn/update.conf && killall cairn-updated; sleep 2; pidof cairn-updated" ||
        fail "could not configure the agent"
MID=$(vm_run vm 'cat /etc/machine-id') || fail "no machine id"

# 1. Update to v2: the agent downloads, verifies, writes slot B, makes it next; the semaphore is full (another
# host holds its one slot), so it does not reboot, and says why.
vm_mark vm
out=$(vm_run vm 'cairnctl update' 600) || fail "cairnctl update: $out"
grep -q "updated to $V2 (slot B)" <<<"$out" || fail "cairnctl update did not stage $V2: $out"
for _ in $(seq 60); do
        st=$(vm_run vm 'cairnctl status --json' 2>/dev/null) || true
        grep -q '"reason":"waiting for the reboot lock: no slot free' <<<"$st" && break
        sleep 1
done
python3 - "$st" "$OTHER" <<'PY' || fail "status with the semaphore full: $st"
import json, sys
r = json.loads(sys.argv[1])["reboot"]
assert r["strategy"] == "etcd-lock" and r["lock_phase"] == "none" and not r["lock_held"], r
assert r["reason"].startswith("waiting for the reboot lock: no slot free (held by 1 of max 1)"), r["reason"]
assert r["holders"] == [sys.argv[2]] and r["max"] == 1, r
PY
human=$(vm_run vm 'cairnctl status') || fail "cairnctl status: $human"
grep -q '^reboot: *waiting for the reboot lock: no slot free (held by 1 of max 1); retry in' <<<"$human" ||
        fail "human status does not say why there is no reboot: $human"
vm_grep vm "Cairn $V2 \(slot B\) ready|cairn-test: pre-reboot" && fail "the guest went on to reboot with the semaphore full"
[ "$(sem)" = "$OTHER $(mod_rev "$EP" "$ETCD_KEY")" ] && [ "$(mod_rev "$EP" "$ETCD_KEY")" = 2 ] ||
        fail "the guest wrote to the full semaphore: $(sem)"
echo "ok: semaphore full: $V2 staged, no reboot; status: $(grep '^reboot:' <<<"$human")"

# The slot is freed (locksmith's shape, holders null): the guest takes it, runs its pre-reboot hook, reboots.
etcdctl --endpoints "$EP" put "$ETCD_KEY" '{"semaphore":1,"max":1,"holders":null}' >/dev/null || fail "etcdctl put (free)"
vm_wait vm "cairn-test: pre-reboot hook id=$MID from=$V1 to=$V2 next=B lock=etcd" 120 || fail "the guest did not take the freed slot"
read -r holder take_rev < <(sem)
[ "$holder" = "$MID" ] || fail "inside the pre-reboot hook etcd says the holders are '$holder', not $MID"
phase=$(vm_run vm 'sed -n "s/^LOCK_PHASE=//p" /var/lib/cairn/state') || true
[ "$phase" = pre-reboot ] || fail "inside the pre-reboot hook the guest's phase is '$phase'"
vm_grep vm "Cairn $V2 \(slot B\) ready" && fail "v2 booted before the pre-reboot hook finished"
vm_mark vm
vm_run vm 'touch /run/cairn-test-pre-go' 30 || true   # the reboot follows at once
vm_wait vm "Cairn $V2 \(slot B\) ready" 600 || fail "the VM did not come back on v2 in slot B"
vm_wait vm "cairn-test: health gate running" 300 || fail "the new boot's health gate did not run"
[ "$(sem)" = "$MID $take_rev" ] || fail "during the new boot's health gate etcd holds '$(sem)', want '$MID $take_rev'"
vm_run vm 'touch /run/cairn-test-gate-go' 30 || fail "could not let the health gate go on"
vm_wait vm "cairn-test: post-boot hook rolled_back=0 slot=B from=$V1 to=$V2" 300 || fail "the post-boot hook did not run"
s=$(vm_run vm 'cairn-bootcfg status --json') || true
python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["booted"]=="B" and s["slots"]["B"]["successful"], s' "$s" ||
        fail "the post-boot hook ran before the gate marked B good: $s"
[ "$(sem)" = "$MID $take_rev" ] || fail "during the post-boot hook etcd holds '$(sem)', want '$MID $take_rev'"
vm_run vm 'touch /run/cairn-test-post-go' 30 || fail "could not let the post-boot hook go on"
wait_free || fail "the lock was not released after the post-boot hook: $(sem)"
rel_rev=$FREE_REV
# Every revision the key ever had, read back from etcd's history: the test's two puts, then exactly one take
# (the guest, before its reboot) and one release (after the new boot's gate and hooks), nothing in between.
python3 - "$EP" "$ETCD_KEY" "$MID" "$take_rev" "$rel_rev" "$OTHER" <<'PY' || fail "the key's history is not full → free → guest → free"
import base64, json, subprocess, sys
ep, key, mid, take, rel, other = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
hist = {}
for rev in range(1, rel + 1):
    out = subprocess.run(["etcdctl", "--endpoints", ep, "get", key, "--rev", str(rev), "-w", "json"],
                         check=True, capture_output=True, text=True).stdout
    for kv in json.loads(out).get("kvs") or []:
        v = json.loads(base64.b64decode(kv["value"]))
        hist[kv["mod_revision"]] = (v["holders"] or [], v["max"], v["semaphore"])
seq = [hist[r] for r in sorted(hist)]
want = [([other], 1, 0), ([], 1, 1), ([mid], 1, 0), ([], 1, 1)]
assert seq == want, (sorted(hist.items()), want)
assert sorted(hist)[2:] == [take, rel], (sorted(hist), take, rel)
print("  etcd history:", ", ".join("rev %d %s" % (r, hist[r][0] or "free") for r in sorted(hist)))
PY
echo "ok: the guest held the etcd lock (revision $take_rev) from its pre-reboot hook through the new boot's health gate and post-boot hook; released at revision $rel_rev"
vm_run vm 'rm -f /etc/cairn/pre-reboot.d/50-test /etc/cairn/health.d/50-test' || fail "could not remove the guest's hooks"
guest_hook /etc/cairn/post-boot.d/50-test \
        'cairn-test: post-boot hook rolled_back=$CAIRN_ROLLED_BACK slot=$CAIRN_BOOTED_SLOT from=$CAIRN_OLD_VERSION to=$CAIRN_NEW_VERSION'
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
# The v3 reboot took the lock too; the boot that came back on v2 ran its post-boot hook (told it rolled back),
# then gave the lock back.
vm_wait vm "cairn-test: post-boot hook rolled_back=1 slot=B from=$V2 to=$V3" 300 || fail "no post-boot hook after the fallback"
wait_free && [ "$FREE_REV" -gt "$rel_rev" ] || fail "the lock after the fallback to v2: $(sem)"
echo "ok: the v3 attempt held the lock; the boot back on $V2 ran its post-boot hook (rolled back) and released it"
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
