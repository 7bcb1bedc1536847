#!/usr/bin/env bash
# tests/integration/74-provision-url.sh — provisioning from ignition.config.url= in QEMU: the kernel command line
# gets the URL through grubenv's CAIRN_EXTRA_CMDLINE; the config and a remote file (checked by its sha512) come
# from a python HTTP server on 127.0.0.1 that the guest reaches only through guestfwd 10.0.2.100:80
# (restrict=on). The initramfs brings the network up for it; the file and the user are there after boot.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
[ -f "$IMG" ] || { echo "FAIL: $IMG missing (run make image)"; exit 1; }
for t in mcopy grub-editenv sgdisk; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
. "$(dirname "$0")/../lib/vm.sh"
W=$VM_DIR/work
mkdir -p "$W/www"
FAIL_LOGS=$W/http.log
VERSION=$(cat VERSION)

printf 'fetched over http\n' >"$W/www/payload"
H=sha512-$(sha512sum <"$W/www/payload" | cut -d' ' -f1)
cat >"$W/www/config.ign" <<EOF
{"ignition": {"version": "3.3.0"},
 "passwd": {"users": [{"name": "web", "groups": ["wheel"]}]},
 "storage": {"files": [{"path": "/etc/hostname", "contents": {"source": "data:,from-url"}},
   {"path": "/opt/payload", "mode": 420, "contents": {"source": "http://10.0.2.100/payload", "verification": {"hash": "$H"}}}]}}
EOF
python3 -m http.server 0 --bind 127.0.0.1 --directory "$W/www" >"$W/http.log" 2>&1 &
HPID=$!
on_exit "kill $HPID 2>/dev/null"
HP=
for _ in $(seq 50); do HP=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$W/http.log" | head -n1); [ -n "$HP" ] && break; sleep 0.1; done
[ -n "$HP" ] || fail "python http.server did not start"

# A copy of the image whose grubenv adds the URL to the kernel command line.
disk=$W/disk.img
cp --sparse=always "$IMG" "$disk"
start=$(sgdisk -i 1 "$disk" | awk '/First sector/{print $3}')
export MTOOLS_SKIP_CHECK=1
mcopy -i "$disk@@$((start * 512))" ::/EFI/BOOT/grubenv "$W/grubenv"
grub-editenv "$W/grubenv" set "CAIRN_EXTRA_CMDLINE=ignition.config.url=http://10.0.2.100/config.ign"
mcopy -o -i "$disk@@$((start * 512))" "$W/grubenv" ::/EFI/BOOT/grubenv

vm_start vm "$disk" --guestfwd "tcp:10.0.2.100:80-tcp:127.0.0.1:$HP"
vm_wait vm "Cairn $VERSION \(slot A\) ready" 400 || fail "did not boot"
vm_grep vm "cairn-provision: provisioned from ignition.config.url: 1 user" || fail "not provisioned from the URL"
out=$(vm_run vm 'cat /proc/cmdline; hostname; cat /opt/payload; grep "^wheel:" /etc/group') || fail "guest commands failed"
grep -q "ignition.config.url=http://10.0.2.100/config.ign" <<<"$out" || fail "URL not on the command line: $out"
[ "$(sed -n 2,4p <<<"$out")" = $'from-url\nfetched over http\nwheel:x:10:web' ] || fail "URL config not applied: $out"
grep -q '"GET /config.ign' "$W/http.log" && grep -q '"GET /payload' "$W/http.log" || fail "the server saw no requests"
vm_poweroff vm 120
echo "74-provision-url: ok"
