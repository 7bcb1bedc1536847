#!/usr/bin/env bash
# cost: 340
# tests/integration/72-install.sh — cairn-install on the build host:
#   - from a local cairn-server (channel stable) into a blank disk image file, with an Ignition config: the
#     layout (sgdisk), USR-A equal to the release image, USR-B empty, config.ign on OEM; then that disk boots
#     under UEFI (provisioned from the OEM partition, SSH in with the config's key) and under BIOS;
#   - a payload signed by a key the installer does not trust, and one with a flipped data byte: refused, and
#     the target is not written at all;
#   - a disk with partitions without --force, a disk that is too small, a bad Ignition config: refused.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
USR=${CAIRN_USR_IMAGE:-out/usr.img}
[ -f "$IMG" ] && [ -f "$USR" ] || { echo "FAIL: $IMG/$USR missing (run make image)"; exit 1; }
[ -f build/keys/dev.key ] || { echo "FAIL: build/keys/dev.key missing (run make image)"; exit 1; }
for t in sgdisk debugfs ssh; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
. "$(dirname "$0")/../lib/vm.sh"
B=$PWD/build/bin
W=$VM_DIR/work
mkdir -p "$W"
VERSION=$(cat VERSION)
mkdir -p "$W/keys"; cp build/keys/dev.pub "$W/keys/"

# A release of the built image in channel stable, served by cairn-server on 127.0.0.1.
REL=$W/rel
ci/release.sh "$VERSION" --image "$USR" --reldir "$REL" --channel stable >"$W/release.log" 2>&1 || { cat "$W/release.log"; fail "ci/release.sh"; }
PAYLOAD=$REL/payloads/$VERSION/cairn-$VERSION-amd64-usr.cairn
[ -f "$PAYLOAD" ] || fail "no payload at $PAYLOAD"
PORT=$((20000 + RANDOM % 20000))
"$B/cairn-server" --reldir "$REL" --db "$W/db.sqlite" --listen "127.0.0.1:$PORT" --base-url "http://127.0.0.1:$PORT/payloads/" \
        >"$W/server.out" 2>"$W/server.log" &
SPID=$!
on_exit "kill $SPID 2>/dev/null"
for _ in $(seq 100); do grep -q "listening on" "$W/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$W/server.out" || fail "cairn-server did not start: $(cat "$W/server.log")"

# The Ignition config the installed host provisions from (OEM partition).
ssh-keygen -q -t ed25519 -N '' -f "$W/key"
cat >"$W/config.ign" <<EOF
{"ignition": {"version": "3.3.0"},
 "passwd": {"users": [{"name": "core", "groups": ["sudo"], "sshAuthorizedKeys": ["$(cat "$W/key.pub")"]}]},
 "storage": {"files": [{"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,installed"}}]}}
EOF

# --- refusals that must leave the target untouched
truncate -s 2G "$W/blank.img"
blank_sum=$(sha256sum <"$W/blank.img")
untouched() { [ "$(sha256sum <"$W/blank.img")" = "$blank_sum" ] || fail "$1: the target was written"; }
"$B/cairn-keygen" -o "$W/other" >/dev/null
mkdir -p "$W/otherkeys"; cp "$W/other.pub" "$W/otherkeys/"
if "$B/cairn-install" -d "$W/blank.img" -f "$PAYLOAD" -k "$W/otherkeys" 2>"$W/err"; then fail "a payload signed by an untrusted key was installed"; fi
grep -q "refused" "$W/err" && grep -q "was not touched" "$W/err" || fail "untrusted key message: $(cat "$W/err")"
untouched "untrusted key"
cp "$PAYLOAD" "$W/flipped.cairn"
sz=$(stat -c %s "$W/flipped.cairn")
printf '\xff' | dd of="$W/flipped.cairn" bs=1 seek=$((sz - 100)) conv=notrunc status=none
if "$B/cairn-install" -d "$W/blank.img" -f "$W/flipped.cairn" -k "$W/keys" 2>"$W/err"; then fail "a corrupt payload was installed"; fi
grep -q "was not touched" "$W/err" || fail "corrupt payload message: $(cat "$W/err")"
untouched "corrupt payload"
echo '{"ignition": {"version": "3.3.0"}, "systemd": {"units": [{"name": "a.service"}]}}' >"$W/bad.ign"
if "$B/cairn-install" -d "$W/blank.img" -f "$PAYLOAD" -k "$W/keys" -i "$W/bad.ign" 2>"$W/err"; then fail "a bad config was accepted"; fi
grep -q "Ignition config refused: .*unsupported field 'systemd'" "$W/err" || fail "bad config message: $(cat "$W/err")"
untouched "bad Ignition config"
truncate -s 1G "$W/small.img"
if "$B/cairn-install" -d "$W/small.img" -f "$PAYLOAD" -k "$W/keys" 2>"$W/err"; then fail "a 1 GiB disk was accepted"; fi
grep -q "Cairn needs at least" "$W/err" || fail "small disk message: $(cat "$W/err")"
cp --sparse=always "$IMG" "$W/used.img"
if "$B/cairn-install" -d "$W/used.img" -f "$PAYLOAD" -k "$W/keys" 2>"$W/err"; then fail "a disk with partitions was overwritten without --force"; fi
grep -q "has partitions; give --force" "$W/err" || fail "partitions message: $(cat "$W/err")"
cmp -s "$IMG" "$W/used.img" || fail "the partitioned disk was changed"
rm -f "$W/used.img" "$W/small.img"

# --- install from the server
"$B/cairn-install" -d "$W/blank.img" -C stable -s "http://127.0.0.1:$PORT" -k "$W/keys" -i "$W/config.ign" 2>"$W/err" ||
        fail "cairn-install from the server failed: $(cat "$W/err")"
grep -q "installed Cairn $VERSION on $W/blank.img" "$W/err" || fail "no 'installed' line: $(cat "$W/err")"
sgdisk -p "$W/blank.img" >"$W/sgdisk" 2>&1 || fail "sgdisk cannot read the installed disk: $(cat "$W/sgdisk")"
for l in EFI-SYSTEM BIOS-BOOT USR-A USR-B OEM ROOT; do grep -q " $l\$" "$W/sgdisk" || fail "no $l partition: $(cat "$W/sgdisk")"; done
part() { # NAME → "start size" in sectors
        sgdisk -i "$1" "$W/blank.img" | awk '/First sector/{s=$3} /Partition size/{n=$3} END{print s, n}'
}
read -r s n < <(part 3)
cmp -n $((n * 512)) "$USR" <(dd if="$W/blank.img" bs=512 skip="$s" count="$n" status=none) || fail "USR-A is not the release image"
read -r s n < <(part 4)
cmp -n $((n * 512)) /dev/zero <(dd if="$W/blank.img" bs=512 skip="$s" count="$n" status=none) || fail "USR-B is not empty"
read -r s n < <(part 6)
dd if="$W/blank.img" of="$W/oem.img" bs=512 skip="$s" count="$n" status=none
debugfs -R "cat /config.ign" "$W/oem.img" 2>/dev/null | cmp -s - "$W/config.ign" || fail "config.ign on OEM differs"

# --- boot it: UEFI (first boot: provisioned from OEM, SSH in), then BIOS (a fresh overlay: first boot too)
SSH=(ssh -i "$W/key" -p "$((PORT + 1))" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20 -o LogLevel=ERROR
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
for fw in efi bios; do
        vm_start vm "$W/blank.img" --firmware $fw --hostfwd "tcp:127.0.0.1:$((PORT + 1))-:22"
        vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "$fw: the installed disk did not boot"
        vm_grep vm "cairn-provision: provisioned from the OEM partition" || fail "$fw: not provisioned from OEM"
        ok=0
        for _ in $(seq 60); do out=$("${SSH[@]}" core@127.0.0.1 'hostname; sudo id -u' 2>/dev/null) && { ok=1; break; }; sleep 2; done
        [ $ok = 1 ] || fail "$fw: cannot SSH into the installed host"
        [ "$out" = $'installed\n0' ] || fail "$fw: provisioned host answers '$out'"
        if [ $fw = efi ]; then vm_run vm '[ -d /sys/firmware/efi ]' || fail "no EFI"; else vm_run vm '[ ! -d /sys/firmware/efi ]' || fail "EFI under SeaBIOS"; fi
        vm_grep vm "cairn-growroot: ROOT grown" || fail "$fw: ROOT did not grow to the end of the disk"
        vm_poweroff vm 120
done

# --- and from a local payload, into a second blank disk (no boot: same bytes but GUIDs)
truncate -s 2G "$W/blank2.img"
"$B/cairn-install" -d "$W/blank2.img" -f "$PAYLOAD" -k "$W/keys" 2>"$W/err" || fail "cairn-install -f failed: $(cat "$W/err")"
sgdisk -p "$W/blank2.img" | grep -q " USR-A$" || fail "sgdisk -p of the second install: $(sgdisk -p "$W/blank2.img" 2>&1 | tail -n 3)"
[ "$(sgdisk -p "$W/blank2.img" | sed -n 's/^Disk identifier (GUID): //p')" != "$(sgdisk -p "$W/blank.img" | sed -n 's/^Disk identifier (GUID): //p')" ] ||
        fail "two installs have the same disk GUID"
echo "72-install: ok"
