#!/usr/bin/env bash
# cost: 430
# tests/integration/73-provision-update.sh — a provisioned host updates A→B and keeps what was provisioned.
# The Ignition config (fw_cfg) creates user core with an SSH key, a file, the hostname, and the agent's own
# config (/etc/cairn/update.conf: channel alpha on a local cairn-server reached through guestfwd). Over SSH,
# `sudo cairnctl update` installs v2 into slot B and reboots; on v2 the host is not provisioned again, and the
# user, key, file, hostname and SSH host key are all still there.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
[ -f build/keys/dev.key ] || { echo "FAIL: build/keys/dev.key missing (run make image)"; exit 1; }
command -v ssh >/dev/null || { echo "SKIP: no OpenSSH client"; exit 77; }
. "$(dirname "$0")/../lib/vm.sh"
B=$PWD/build/bin
W=$VM_DIR/work
mkdir -p "$W"
V1=$(cat VERSION) V2=0.2.0
REL=$W/rel
ci/release.sh "$V1" --image out/usr.img --reldir "$REL" --channel stable >/dev/null
CAIRN_RELDIR=$REL ci/release.sh "$V2" >"$W/release-v2.log" 2>&1 || { cat "$W/release-v2.log"; fail "ci/release.sh $V2 failed"; }
start_cairn_server SRV "$W/server.out" "$W/server.log" --reldir "$REL" --db "$W/db.sqlite" \
        --base-url http://10.0.2.100/payloads/
PORT=$SRV_PORT

ssh-keygen -q -t ed25519 -N '' -f "$W/key"
conf=$(printf 'GROUP=alpha\nSERVER=http://10.0.2.100/v1/update/\nREBOOT_STRATEGY=reboot\nFIRST_CHECK_DELAY=600\nHEALTH_DELAY=5\n' | base64 -w0)
cat >"$W/config.ign" <<EOF
{"ignition": {"version": "3.3.0"},
 "passwd": {"users": [{"name": "core", "groups": ["sudo"], "sshAuthorizedKeys": ["$(cat "$W/key.pub")"]}]},
 "storage": {"files": [
   {"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,updated-host"}},
   {"path": "/etc/cairn/update.conf", "mode": 420, "contents": {"source": "data:;base64,$conf"}},
   {"path": "/var/lib/app/state", "mode": 384, "user": {"name": "core"}, "contents": {"source": "data:,kept%0A"}}]}}
EOF
SSHPORT=$((PORT + 7))
SSH=(ssh -i "$W/key" -p "$SSHPORT" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20 -o LogLevel=ERROR
        -o UserKnownHostsFile="$W/known_hosts")
disk=$VM_DIR/disk.qcow2
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 3G
vm_start vm "$disk" --no-overlay --hostfwd "tcp:127.0.0.1:$SSHPORT-:22" --guestfwd "tcp:10.0.2.100:80-tcp:127.0.0.1:$PORT" \
        --fw-cfg "opt/org.flatcar-linux/config=$W/config.ign"
vm_wait vm "Cairn $V1 \(slot A\) ready" 400 || fail "v1 did not boot"
vm_grep vm "cairn-provision: provisioned from fw_cfg" || fail "not provisioned"
ok=0
for _ in $(seq 60); do "${SSH[@]}" -o StrictHostKeyChecking=accept-new core@127.0.0.1 true 2>/dev/null && { ok=1; break; }; sleep 2; done
[ $ok = 1 ] || fail "cannot SSH in on v1"
# The agent started after provisioning, so it runs with the provisioned update.conf. Ask it to update now (the
# reboot ends the SSH session, so it runs in the background with a time limit).
vm_mark vm
timeout 600 "${SSH[@]}" -o StrictHostKeyChecking=yes core@127.0.0.1 'sudo cairnctl update' >"$W/update.out" 2>&1 &
vm_wait vm "Cairn $V2 \(slot B\) ready" 600 || { cat "$W/update.out"; fail "no v2 in slot B after the update"; }
vm_grep vm "provisioned from" && fail "provisioned again on v2"
ok=0
for _ in $(seq 60); do out=$("${SSH[@]}" -o StrictHostKeyChecking=yes core@127.0.0.1 \
        '. /usr/lib/os-release; echo $VERSION_ID; hostname; cat /var/lib/app/state; stat -c "%a %U" /var/lib/app/state; sudo id -u' 2>/dev/null) && { ok=1; break; }; sleep 2; done
[ $ok = 1 ] || fail "cannot SSH into v2 with the same host key and user key"
[ "$out" = "$V2"$'\nupdated-host\nkept\n600 core\n0' ] || fail "after the update: '$out'"
vm_poweroff vm 120
echo "73-provision-update: ok"
