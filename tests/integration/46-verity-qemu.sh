#!/usr/bin/env bash
# cost: 550
# tests/integration/46-verity-qemu.sh — /usr on dm-verity in QEMU (TCG), UEFI and BIOS (docs/verity.md):
#  1. both firmwares boot out/cairn.img with one byte of a file's data in USR-A flipped on the raw disk: /usr is
#     /dev/mapper/usr (read-only, the verity table on USR-A with the root hash of the sealed image, which is also
#     the one on the kernel command line), reading the damaged file gives EIO and the kernel logs the verity
#     error, an undamaged block of the same file still reads (the policy: EIO, not restart);
#  2. slots that must not boot, each with a good B beside it (A tried once, B good): a flipped byte in
#     /usr/bin/busybox (the init path), a slot written without its tree, a root-hash block whose hash has the wrong
#     length, a flipped byte in the tree. Each time the initramfs refuses A, GRUB's try is used up and B boots.
# Boots run two at a time.
set -euo pipefail
IMG=${CAIRN_IMAGE:-out/cairn.img}
USR=${CAIRN_USR_IMAGE:-out/usr.img}
[ -f "$IMG" ] && [ -f "$USR" ] || { echo "FAIL: $IMG or $USR missing (run make image)"; exit 1; }
. "$(dirname "$0")/../lib/vm.sh"
VERSION=$(cat VERSION)
W=$VM_DIR/work
mkdir -p "$W"

part_start() { sgdisk -i "$2" "$1" | sed -n 's/^First sector: \([0-9]*\) .*/\1/p'; }
A0=$(($(part_start "$IMG" 3) * 512)) B0=$(($(part_start "$IMG" 4) * 512))
env_of() { debugfs -R 'cat /lib/cairn/verity.env' "$USR" 2>/dev/null | sed -n "s/^$1=//p"; }
SECTOR=$(env_of usrhash_sector) OFF=$(env_of verity_offset)
ROOT=$(dd if="$USR" bs=512 skip="$SECTOR" count=2 status=none | tr -d '\0' | sed -n 's/^usrhash=//p')
[[ $ROOT =~ ^[0-9a-f]{64}$ ]] || fail "no root hash in $USR's root-hash block (sector $SECTOR)"
# The oracle: veritysetup agrees that the sealed image's tree has this root.
veritysetup verify "$USR" "$USR" "$ROOT" --hash-offset "$OFF" || fail "veritysetup does not verify $USR"

flip() { # DISK OFFSET: invert one byte
        local b
        b=$(dd if="$1" bs=1 skip="$2" count=1 status=none | od -An -tu1 | tr -d ' ')
        printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
file_block() { # PATH [N]: the fs block holding block N of PATH in the /usr image
        debugfs -R "bmap $1 ${2:-0}" "$USR" 2>/dev/null
}
set_env() { # DISK VAR=VALUE...: change the ESP's boot selection
        local esp=$(($(part_start "$1" 1) * 512)) disk=$1
        shift
        MTOOLS_SKIP_CHECK=1 mcopy -n -i "$disk@@$esp" ::/EFI/BOOT/grubenv "$W/env"
        grub-editenv "$W/env" set "$@"
        MTOOLS_SKIP_CHECK=1 mcopy -o -i "$disk@@$esp" "$W/env" ::/EFI/BOOT/grubenv
}
new_disk() { # NAME: a copy of the image; with "fallback", B holds the same sealed /usr and is good, A gets one try
        cp --sparse=always "$IMG" "$W/$1.img"
        if [ "${2:-}" = fallback ]; then
                dd if="$USR" of="$W/$1.img" bs=1M seek=$((B0 / 1048576)) conv=notrunc,sparse status=none
                set_env "$W/$1.img" A_PRIORITY=2 A_TRIES=1 A_SUCCESSFUL=0 B_PRIORITY=1 B_TRIES=0 B_SUCCESSFUL=1
        fi
}

# 1. A damaged data block of a file that nothing reads during boot.
KVER=$(debugfs -R 'ls -p /lib/modules' "$USR" 2>/dev/null | awk -F/ '$6 ~ /^[0-9]/ {print $6}')
VICTIM=/lib/modules/$KVER/modules.builtin.modinfo
blk=$(file_block "$VICTIM" 3)
[[ $blk =~ ^[0-9]+$ ]] && [ "$blk" -gt 0 ] || fail "cannot locate block 3 of $VICTIM in $USR"
new_disk data
flip "$W/data.img" $((A0 + blk * 4096 + 1234))
cp --sparse=always "$W/data.img" "$W/data-bios.img"

check_data_boot() { # VM FIRMWARE
        local vm=$1 out
        vm_wait "$vm" "Cairn $VERSION \(slot A\) ready" 300 || fail "$2: no ready line with a damaged file in /usr"
        out=$(vm_run "$vm" "grep ' /usr ' /proc/mounts") || fail "$2: /usr is not mounted"
        [[ $out == "/dev/mapper/usr /usr ext4 ro,"* ]] || fail "$2: /usr is not the verity device read-only: $out"
        out=$(vm_run "$vm" 'cat /sys/block/dm-0/dm/name') || fail "$2: no dm-0"
        [ "$out" = usr ] || fail "$2: dm-0 is '$out', not usr"
        # dmsetup table, by our ioctl client: the data and hash device are USR-A (the partition the slot names)
        out=$(vm_run "$vm" 'cairn-dmverity table usr') || fail "$2: cairn-dmverity table: $out"
        local t part
        read -r -a t <<<"$out"
        part=$(vm_run "$vm" "cat /sys/dev/block/${t[4]}/partition") || true
        [ "${t[2]}" = verity ] && [ "${t[3]}" = 1 ] && [ "$part" = 3 ] && [ "${t[5]}" = "${t[4]}" ] &&
                [ "${t[6]}" = 4096 ] && [ "${t[8]}" = $((OFF / 4096)) ] && [ "${t[9]}" = $((OFF / 4096 + 1)) ] &&
                [ "${t[10]}" = sha256 ] && [ "${t[11]}" = "$ROOT" ] ||
                fail "$2: unexpected verity table (want partition 3 = USR-A, root $ROOT; got partition $part): $out"
        out=$(vm_run "$vm" 'cat /proc/cmdline')
        grep -q "cairn.usrhash=$ROOT" <<<"$out" || fail "$2: the command line lacks cairn.usrhash=$ROOT: $out"
        out=$(vm_run "$vm" 'cairn-dmverity status usr')
        [[ $out == *" verity V" ]] || fail "$2: verity status before the damaged read: $out"
        # the damaged block: EIO (the first 3 blocks read fine), and the kernel names the block
        vm_run "$vm" "head -c 12288 $VICTIM >/dev/null" || fail "$2: the undamaged start of $VICTIM does not read"
        out=$(vm_run "$vm" "cat $VICTIM >/dev/null 2>/tmp/err; echo rc=\$?; cat /tmp/err") || true
        grep -q 'rc=1' <<<"$out" && grep -qi 'Input/output error' <<<"$out" || fail "$2: reading the damaged $VICTIM: $out"
        out=$(vm_run "$vm" 'dmesg | grep -i "verity"')
        grep -Eq "device-mapper: verity: .*data block $blk is corrupted" <<<"$out" ||
                fail "$2: the kernel did not log the corrupted data block $blk: $out"
        out=$(vm_run "$vm" 'cairn-dmverity status usr')
        [[ $out == *" verity C" ]] || fail "$2: verity status after the damaged read: $out"
        vm_run "$vm" "cat /usr/lib/os-release >/dev/null" || fail "$2: other files no longer read"
        vm_poweroff "$vm" 120
        echo "ok: $2 boots /usr on dm-verity; the damaged block of $VICTIM gives EIO and a kernel log line"
}
vm_start efi "$W/data.img" --firmware efi --no-overlay
vm_start bios "$W/data-bios.img" --firmware bios --no-overlay
check_data_boot efi UEFI
check_data_boot bios BIOS

# 2. Slots the initramfs must refuse; B takes over.
new_disk busybox fallback
flip "$W/busybox.img" $((A0 + $(file_block /bin/busybox 40) * 4096 + 77))
new_disk notree fallback
dd if=/dev/zero of="$W/notree.img" bs=4096 seek=$(((A0 + OFF) / 4096)) count=$(((SECTOR * 512 - OFF) / 4096 + 1)) \
        conv=notrunc status=none
new_disk shortroot fallback
printf '%s' "${ROOT:0:63}" >"$W/short"
blk_env=$(dd if="$USR" bs=512 skip="$SECTOR" count=2 status=none)
pos=$(grep -bo "usrhash=" <<<"$blk_env" | head -n 1 | cut -d: -f1)
# 63 digits and a newline where 64 digits stood: the block stays a valid environment block
printf '%s\n#' "${ROOT:0:63}" | dd of="$W/shortroot.img" bs=1 seek=$((A0 + SECTOR * 512 + pos + 8)) conv=notrunc status=none
new_disk tree fallback
flip "$W/tree.img" $((A0 + OFF + 4096 + 2 * 4096 + 100)) # a block of the tree below the top

check_fallback() { # VM WHAT EXPECTED-MESSAGE
        local vm=$1
        vm_wait "$vm" "Cairn $VERSION \(slot B\) ready" 300 || fail "$2: B did not take over"
        vm_grep "$vm" "cairn: booting slot A" || fail "$2: GRUB never tried A"
        vm_grep "$vm" "$3" || fail "$2: the initramfs did not say '$3'"
        local out
        out=$(vm_run "$vm" "grep ' /usr ' /proc/mounts; cairn-bootcfg status --json")
        grep -q '^/dev/mapper/usr /usr ext4 ro' <<<"$out" || fail "$2: B's /usr is not on dm-verity: $out"
        grep -q '"booted": *"B"' <<<"$out" || fail "$2: not booted from B: $out"
        vm_poweroff "$vm" 120
        echo "ok: $2: A refused ('$3'), B booted"
}
vm_start v1 "$W/busybox.img" --firmware efi --no-overlay
vm_start v2 "$W/notree.img" --firmware bios --no-overlay
check_fallback v1 "flipped byte in busybox" "/usr/bin/busybox does not read back"
check_fallback v2 "slot without tree" "has no dm-verity root hash"
vm_start v3 "$W/shortroot.img" --firmware efi --no-overlay
vm_start v4 "$W/tree.img" --firmware bios --no-overlay
check_fallback v3 "63-digit root hash" "is not 64 hex digits"
check_fallback v4 "flipped byte in the tree" "does not match the level above"
echo "46-verity-qemu: ok"
