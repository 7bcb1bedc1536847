#!/usr/bin/env bash
# cost: 300
# tests/integration/70-provision-qemu.sh — first-boot provisioning in QEMU (OVMF, TCG, restrict=on user networking):
#   1. an Ignition config on fw_cfg opt/org.flatcar-linux/config (a user "core" with an SSH key, in group sudo; a
#      file with mode 0640; the hostname): the host OpenSSH client logs in through hostfwd on 127.0.0.1, runs
#      commands, reads the file through sudo; root and password logins are refused;
#   2. the same disk boots again with a *different* config: a notice that it is ignored, nothing changes, and the
#      SSH host key is the one made on the first boot (strict host key checking against the first boot's key);
#   3. a fresh disk with a config that uses an unsupported field (systemd units) beside a user and a file: the
#      console names the field and says provisioning failed, and neither the user nor the file exists;
#   4. that disk boots again with the config fixed (via the Fedora CoreOS fw_cfg name): now it provisions.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
command -v ssh >/dev/null || { echo "SKIP: no OpenSSH client"; exit 77; }
. "$(dirname "$0")/../lib/vm.sh"
W=$VM_DIR/work
mkdir -p "$W"
VERSION=$(cat VERSION)
ssh-keygen -q -t ed25519 -N '' -C test@cairn -f "$W/key"
PORT=$((20000 + RANDOM % 20000))
SSH=(ssh -i "$W/key" -p "$PORT" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20 -o LogLevel=ERROR)
ssh_new() { "${SSH[@]}" -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$W/known_hosts" "$@"; }
ssh_strict() { "${SSH[@]}" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$W/known_hosts" "$@"; }
wait_ssh() { # the ready line comes before dropbear has its host keys; give it a little while
        for _ in $(seq 60); do ssh_new core@127.0.0.1 true 2>/dev/null && return 0; sleep 2; done
        return 1
}
b64() { printf '%s' "$1" | base64 -w0; }
config() { # HOSTNAME FILE-CONTENT [EXTRA top-level JSON]
        cat <<EOF
{"ignition": {"version": "3.3.0"},
 "passwd": {"users": [{"name": "core", "groups": ["sudo"], "sshAuthorizedKeys": ["$(cat "$W/key.pub")"]}]},
 "storage": {"files": [
   {"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,$1%0A"}},
   {"path": "/etc/cairn-test/hello.txt", "mode": 416, "contents": {"source": "data:;base64,$(b64 "$2")"}}]}${3:+,$3}}
EOF
}
config prov-one "hello from ignition" >"$W/good.ign"
config prov-two "a later config" >"$W/later.ign"
config prov-bad "never written" '"systemd": {"units": [{"name": "x.service", "enabled": true}]}' >"$W/bad.ign"
if command -v ignition-validate >/dev/null; then # the reference parser agrees that these are valid Ignition configs
        for f in good later bad; do ignition-validate "$W/$f.ign" >/dev/null || fail "ignition-validate rejects $f.ign"; done
fi

# 1. First boot with a config on fw_cfg.
disk=$VM_DIR/disk.qcow2
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 2G
vm_start vm "$disk" --no-overlay --hostfwd "tcp:127.0.0.1:$PORT-:22" --fw-cfg "opt/org.flatcar-linux/config=$W/good.ign"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "first boot did not reach the ready line"
vm_grep vm "cairn-provision: provisioned from fw_cfg opt/org.flatcar-linux/config: 1 user" || fail "no 'provisioned' line"
wait_ssh || fail "cannot SSH in as core with the provisioned key"
out=$(ssh_strict core@127.0.0.1 'id -un; hostname; id -Gn') || fail "ssh command failed"
[ "$(sed -n 1p <<<"$out")" = core ] || fail "ssh: not user core: $out"
[ "$(sed -n 2p <<<"$out")" = prov-one ] || fail "hostname is not prov-one: $out"
grep -qw sudo <<<"$(sed -n 3p <<<"$out")" || fail "core is not in group sudo: $out"
ssh_strict core@127.0.0.1 'cat /etc/cairn-test/hello.txt' >/dev/null 2>&1 && fail "core can read a 0640 root file"
got=$(ssh_strict core@127.0.0.1 'sudo cat /etc/cairn-test/hello.txt') || fail "sudo cat failed"
[ "$got" = "hello from ignition" ] || fail "provisioned file content: '$got'"
got=$(ssh_strict core@127.0.0.1 'stat -c "%a %U %G" /etc/cairn-test/hello.txt; sudo id -u')
[ "$got" = $'640 root root\n0' ] || fail "mode/owner or sudo: '$got'"
ssh_strict root@127.0.0.1 true 2>/dev/null && fail "root logged in over SSH without a provisioned root key"
err=$(ssh_strict -o PubkeyAuthentication=no -o PasswordAuthentication=yes -o KbdInteractiveAuthentication=no \
        core@127.0.0.1 true 2>&1) && fail "a login without a key succeeded"
grep -q 'Permission denied (publickey)' <<<"$err" || fail "the server offers more than public keys: $err"
vm_run vm '[ -s /etc/dropbear/dropbear_ed25519_host_key ] && [ "$(stat -c %d /etc/dropbear)" = "$(stat -c %d /)" ] && [ "$(stat -c %d /usr)" != "$(stat -c %d /)" ]' ||
        fail "host keys are not on ROOT"
vm_run vm 'grep -q "^sha256=" /var/lib/cairn/provisioned' || fail "no marker on ROOT"
vm_poweroff vm 120

# 2. Second boot, a different config: ignored, with a notice; same host key.
vm_start vm "$disk" --no-overlay --hostfwd "tcp:127.0.0.1:$PORT-:22" --fw-cfg "opt/org.flatcar-linux/config=$W/later.ign"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "second boot did not reach the ready line"
vm_grep vm "cairn-provision: notice: the Ignition config from fw_cfg opt/org.flatcar-linux/config differs.*ignored" ||
        fail "no notice that the changed config is ignored"
vm_grep vm "provisioned from" && fail "provisioned a second time"
for _ in $(seq 60); do ssh_strict core@127.0.0.1 true 2>/dev/null && break; sleep 2; done
got=$(ssh_strict core@127.0.0.1 'hostname; sudo cat /etc/cairn-test/hello.txt') ||
        fail "second boot: SSH with the first boot's host key failed (host key changed?)"
[ "$got" = $'prov-one\nhello from ignition' ] || fail "second boot changed what was provisioned: '$got'"
vm_poweroff vm 120

# 3. A fresh disk, a config with an unsupported field: refused whole.
rm -f "$disk" "$W/known_hosts"
qemu-img create -q -f qcow2 -b "$(readlink -f "$IMG")" -F raw "$disk" 2G
vm_start vm "$disk" --no-overlay --fw-cfg "opt/org.flatcar-linux/config=$W/bad.ign"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "boot with a bad config did not reach the ready line"
vm_grep vm "cairn-provision: config from fw_cfg opt/org.flatcar-linux/config: unsupported field 'systemd'" ||
        fail "the console does not name the unsupported field"
vm_grep vm "cairn-provision: provisioning failed; nothing was applied" || fail "no 'provisioning failed' line"
vm_run vm '! grep -q "^core:" /etc/passwd && [ ! -e /home/core ] && [ ! -e /etc/cairn-test ] && [ "$(hostname)" = cairn ] && [ ! -e /var/lib/cairn/provisioned ]' ||
        fail "a refused config was partly applied"
vm_poweroff vm 120

# 4. The same disk with the config fixed, on the Fedora CoreOS fw_cfg name: provisioned now.
vm_start vm "$disk" --no-overlay --hostfwd "tcp:127.0.0.1:$PORT-:22" --fw-cfg "opt/com.coreos/config=$W/good.ign"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "boot with the fixed config did not reach the ready line"
vm_grep vm "provisioned from fw_cfg opt/com.coreos/config" || fail "the fixed config was not applied"
wait_ssh || fail "cannot SSH in after the fixed config"
[ "$(ssh_strict core@127.0.0.1 hostname)" = prov-one ] || fail "hostname after the fixed config"
vm_poweroff vm 120
echo "70-provision-qemu: ok"
