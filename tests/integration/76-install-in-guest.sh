#!/usr/bin/env bash
# cost: 800
# tests/integration/76-install-in-guest.sh — cairn-install on a Cairn host (the image's own /usr/bin/cairn-install,
# busybox userland, no debugfs): the VM boots the built image with a second blank virtio disk and installs the
# current release of channel stable from a cairn-server on the build host (guestfwd 10.0.2.100:80) onto /dev/vdb
# with an Ignition config; refusals first (the disk it runs from, a mounted disk). Then that disk alone boots and
# provisions from its OEM partition.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
USR=${CAIRN_USR_IMAGE:-out/usr.img}
[ -f "$IMG" ] && [ -f "$USR" ] || { echo "FAIL: $IMG/$USR missing (run make image)"; exit 1; }
[ -f build/keys/dev.key ] || { echo "FAIL: build/keys/dev.key missing (run make image)"; exit 1; }
. "$(dirname "$0")/../lib/vm.sh"
B=$PWD/build/bin
W=$VM_DIR/work
mkdir -p "$W"
VERSION=$(cat VERSION)
REL=$W/rel
ci/release.sh "$VERSION" --image "$USR" --reldir "$REL" --channel stable >"$W/release.log" 2>&1 || { cat "$W/release.log"; fail "ci/release.sh"; }
start_cairn_server SRV "$W/server.out" "$W/server.log" --reldir "$REL" --db "$W/db.sqlite" \
        --base-url http://10.0.2.100/payloads/
PORT=$SRV_PORT
cfg='{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/hostname", "contents": {"source": "data:,guest-installed"}}]}}'

truncate -s 2G "$W/target.img"
vm_start vm "$IMG" --disk-size 4G --guestfwd "tcp:10.0.2.100:80-tcp:127.0.0.1:$PORT" --disk2 "$W/target.img"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "did not boot"
vm_run vm "printf '%s' '$cfg' >/tmp/config.ign" || fail "cannot write the config"
out=$(vm_run vm 'cairn-install -d /dev/vda -C stable -s http://10.0.2.100 -i /tmp/config.ign --force 2>&1') && fail "installed over the disk it runs from: $out"
grep -Eq "/dev/vda.* (is mounted|is the disk this system runs from)" <<<"$out" || fail "running disk: $out"
out=$(vm_run vm 'cairn-install -d /dev/vdb -C stable -s http://10.0.2.100 -i /tmp/config.ign 2>&1' 900) || fail "cairn-install in the guest failed: $out"
grep -q "installed Cairn $VERSION on /dev/vdb" <<<"$out" || fail "no 'installed' line: $out"
vm_poweroff vm 120
sgdisk -p "$W/target.img" | grep -q " OEM$" || fail "no OEM partition on the target"

vm_start vm "$W/target.img" --firmware bios
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "the disk installed in the guest does not boot"
vm_grep vm "provisioned from the OEM partition" || fail "not provisioned from OEM"
[ "$(vm_run vm hostname)" = guest-installed ] || fail "hostname"
vm_poweroff vm 120
echo "76-install-in-guest: ok"
