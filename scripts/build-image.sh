#!/usr/bin/env bash
# scripts/build-image.sh — build the default bootable Cairn disk: out/cairn.img (raw) and out/cairn.qcow2.
# Steps: fetch/cached .debs → kernel + needed modules → busybox initramfs → /usr, ROOT and OEM ext4 images
# (cairn-mkimage) → ESP with GRUB (EFI) → disk with GPT and GRUB BIOS boot code (cairn-mkdisk).
# Reproducible: the same inputs, CAIRN_SEED and SOURCE_DATE_EPOCH give the same bytes.
# Environment: CAIRN_VERSION (default: VERSION file), CAIRN_RECIPE (dir, default image/recipes/default),
# CAIRN_OUT (default out), CAIRN_WORK (default build/image), CAIRN_SEED, CAIRN_DEBS, SOURCE_DATE_EPOCH,
# CAIRN_USR_ONLY=1 (stop after the /usr image: $CAIRN_OUT/usr.img).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
VERSION=${CAIRN_VERSION:-$(cat VERSION)}
RECIPE=${CAIRN_RECIPE:-image/recipes/default}
OUT=${CAIRN_OUT:-out}
[ -n "${CAIRN_WORK-build/image}" ] || { echo "build-image: CAIRN_WORK is set but empty" >&2; exit 1; }
W=$(realpath -m "${CAIRN_WORK:-build/image}")
BIN=$top/build/bin
SEED=${CAIRN_SEED:-cairn-$VERSION}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
export LC_ALL=C TZ=UTC
# shellcheck source=/dev/null
. "$RECIPE/image.conf"

say() { echo "build-image: $*" >&2; }
die() { echo "build-image: $*" >&2; exit 1; }
for t in cairn-mkimage cairn-mkdisk cairn-growroot cairn-findpart cairn-keygen cairn-tpm-initrd cairn-veritytree cairn-dmverity; do [ -x "$BIN/$t" ] || die "missing $BIN/$t (run make)"; done

# The work directory is removed whole: never an empty path, /, or a directory above this checkout or $HOME.
case $W in
/ | "" | "$top" | "$(dirname "$top")" | "$HOME" | /root | /home | /tmp | /usr | /var | /etc)
        die "refusing to use '$W' as CAIRN_WORK (it is removed and recreated by every build)" ;;
esac
rm -rf "$W"; mkdir -p "$W" "$OUT"
TREE=$W/tree           # files for /usr, laid out as on the host (usr/...)
mkdir -p "$TREE/usr/bin" "$TREE/usr/sbin" "$TREE/usr/lib" "$TREE/usr/boot"

# 1. Debian packages (cached).
declare -A DEB
debs=$(scripts/fetch-debs.sh "$RECIPE/packages") || die "cannot get the recipe's Debian packages (see the line above)"
while IFS=$'\t' read -r pkg path; do DEB[$pkg]=$path; done <<<"$debs"
for p in linux-image-cloud-amd64 busybox-static; do
        [ -n "${DEB[$p]:-}" ] || die "$RECIPE/packages does not provide '$p'"
done
KERNEL_DEB=${DEB[linux-image-cloud-amd64]}
# Every package is also a recipe variable: ${DEB_<package, non-alphanumerics as _>} (e.g. DEB_dropbear_bin).
DEBVARS=()
for p in "${!DEB[@]}"; do DEBVARS+=(--var "DEB_${p//[^A-Za-z0-9]/_}=${DEB[$p]}"); done
BUSYBOX_DEB=${DEB[busybox-static]}

# 2. Kernel: unpack the package into a scratch dir, keep vmlinuz and the modules we need.
mkdir -p "$W/kernel"
dpkg-deb --fsys-tarfile "$KERNEL_DEB" | tar -x -C "$W/kernel" ./boot ./lib/modules
KVER=$(ls "$W/kernel/lib/modules")
[ -n "$KVER" ] && [ -f "$W/kernel/boot/vmlinuz-$KVER" ] || die "'$KERNEL_DEB': no kernel found"
cp "$W/kernel/boot/vmlinuz-$KVER" "$TREE/usr/boot/"
KMOD=$W/kernel/lib/modules/$KVER

# Module name → file (dashes and underscores are the same to the kernel).
declare -A MODPATH
while read -r f; do n=$(basename "$f" .ko); MODPATH[${n//-/_}]=${f#"$KMOD"/}; done < <(find "$KMOD/kernel" -name '*.ko')
declare -A SEEN
ORDER=()
add_module() { # depth-first: dependencies before the module
        local m=${1//-/_} dep
        [ -n "${SEEN[$m]:-}" ] && return 0
        SEEN[$m]=1
        [ -n "${MODPATH[$m]:-}" ] || die "kernel module '$m' is not in $KERNEL_DEB (built in? then drop it from the recipe)"
        for dep in $(modinfo -F depends "$KMOD/${MODPATH[$m]}" | tr ',' ' '); do add_module "$dep"; done
        ORDER+=("$m")
}
modlist() { grep -v '^\s*#' "$1" | tr -s ' \t' '\n' | grep -v '^$' || true; }
for m in $(modlist "$RECIPE/modules.initrd"); do add_module "$m"; done
INITRD_MODS=("${ORDER[@]}")
for m in $(modlist "$RECIPE/modules.usr"); do add_module "$m"; done
MODDIR=$TREE/usr/lib/modules/$KVER
mkdir -p "$MODDIR"
cp "$KMOD"/modules.order "$KMOD"/modules.builtin "$KMOD"/modules.builtin.modinfo "$MODDIR/"
for m in "${ORDER[@]}"; do install -D -m 0644 "$KMOD/${MODPATH[$m]}" "$MODDIR/${MODPATH[$m]}"; done
depmod -b "$TREE/usr" "$KVER" 2>/dev/null || depmod -b "$TREE" "$KVER"
# depmod -b BASE uses BASE/lib/modules; with merged /usr that is usr/lib/modules.
[ -f "$MODDIR/modules.dep" ] || die "depmod did not write modules.dep"
say "kernel $KVER with ${#ORDER[@]} modules"

# 3. busybox (static) and its applet links; our on-host programs with their libraries.
mkdir -p "$W/busybox"
dpkg-deb --fsys-tarfile "$BUSYBOX_DEB" | tar -x -C "$W/busybox" ./bin/busybox
BUSYBOX=$W/busybox/bin/busybox
"$BUSYBOX" --list-full | while read -r a; do
        a=${a#usr/}
        case $a in bin/busybox | linuxrc) continue ;; esac
        d=$(dirname "$a")
        case $d in bin) tgt=busybox ;; *) tgt=../bin/busybox ;; esac
        mkdir -p "$TREE/usr/$d"
        ln -sfn "$tgt" "$TREE/usr/$a"
done
for p in $HOST_PROGRAMS; do
        [ -x "$BIN/$p" ] || continue
        install -m 0755 "$BIN/$p" "$TREE/usr/bin/$p"
        # shared libraries, from this build host's Debian packages, at their usual paths under /usr
        { ldd "$BIN/$p" 2>/dev/null || true; } | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}' | while read -r lib; do
                real=$(readlink -f "$lib")
                dest=$TREE/usr/${lib#/usr/}
                dest=${dest/#$TREE\/usr\/usr\//$TREE/usr/}
                mkdir -p "$(dirname "$dest")"
                [ -e "$dest" ] || cp "$real" "$dest"
        done
done
cp -a image/usr/. "$TREE/usr/"
# Trusted release keys: CAIRN_KEYS_DIR/*.pub for real releases; otherwise this checkout's development key
# (made once in build/keys/, kept across builds so rebuilds stay reproducible).
mkdir -p "$TREE/usr/share/cairn/keys"
if [ -n "${CAIRN_KEYS_DIR:-}" ]; then
        cp "$CAIRN_KEYS_DIR"/*.pub "$TREE/usr/share/cairn/keys/" || die "no *.pub in CAIRN_KEYS_DIR=$CAIRN_KEYS_DIR"
else
        [ -f "$top/build/keys/dev.pub" ] || { mkdir -p "$top/build/keys" && "$BIN/cairn-keygen" -o "$top/build/keys/dev" >/dev/null; }
        cp "$top/build/keys/dev.pub" "$TREE/usr/share/cairn/keys/"
fi
cat >"$TREE/usr/lib/os-release" <<OSR
NAME="Cairn"
ID=cairn
VERSION_ID=$VERSION
VERSION="$VERSION"
PRETTY_NAME="Cairn $VERSION"
CAIRN_BOARD=$BOARD
HOME_URL="https://github.com/cairn-os/cairn"
OSR

# 4. initramfs: busybox, the init script, cairn-growroot, cairn-findpart and cairn-tpm-initrd (static), the modules.
IR=$W/initramfs
mkdir -p "$IR/bin" "$IR/lib/modules" "$IR/dev" "$IR/proc" "$IR/sys" "$IR/run" "$IR/sysroot" "$IR/tmp"
cp "$BUSYBOX" "$IR/bin/busybox"
install -m 0755 "$BIN/cairn-growroot" "$BIN/cairn-findpart" "$BIN/cairn-tpm-initrd" "$IR/bin/"
install -s -m 0755 "$BIN/cairn-dmverity" "$IR/bin/"
install -m 0755 image/initramfs/init "$IR/init"
: >"$IR/lib/modules/load.list"
for m in "${INITRD_MODS[@]}"; do
        cp "$KMOD/${MODPATH[$m]}" "$IR/lib/modules/$m.ko"
        echo "$m.ko" >>"$IR/lib/modules/load.list"
done
find "$IR" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$IR" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -9 >"$TREE/usr/boot/initrd"

# 5. File systems (the /usr image last, after step 6: it carries the installer's templates).
mkimage() { "$BIN/cairn-mkimage" "$@"; }
mkimage -o "$W/root.img" --size 128M --seed "$SEED-root" --label ROOT --recipe "$RECIPE/root.recipe"
mkimage -o "$W/oem.img" --size "${OEM_SIZE}M" --seed "$SEED-oem" --label OEM --recipe "$RECIPE/oem.recipe"

# 6. GRUB. One early config for both firmwares finds the ESP by its FAT volume id, then reads grub.cfg.
ESP_SERIAL=$(printf '%s' "$SEED-esp" | sha256sum | cut -c1-8 | tr a-f A-F)
ESP_UUID=$(echo "${ESP_SERIAL:0:4}-${ESP_SERIAL:4:4}" | tr A-F a-f)
sed "s/@ESP_UUID@/$ESP_UUID/" image/grub/early.cfg >"$W/early.cfg"
GRUB_MODS="part_gpt fat ext2 normal configfile search search_fs_uuid test echo regexp probe loadenv
           linux serial terminal sleep reboot halt true"
grub-mkimage -O x86_64-efi -o "$W/BOOTX64.EFI" -c "$W/early.cfg" -p /EFI/BOOT $GRUB_MODS linuxefi tpm efi_gop
grub-mkimage -O i386-pc -o "$W/core.img" -c "$W/early.cfg" -p /EFI/BOOT $GRUB_MODS biosdisk
# Initial boot selection: A good, B empty.
grub-editenv "$W/grubenv" create
grub-editenv "$W/grubenv" set A_PRIORITY=1 A_TRIES=0 A_SUCCESSFUL=1 B_PRIORITY=0 B_TRIES=0 B_SUCCESSFUL=0
cp "$W/grubenv" "$W/grubenv.bak"
ESP=$W/esp.img
rm -f "$ESP"
# --invariant: fixed times and volume id (mkfs.fat ignores SOURCE_DATE_EPOCH); then set our volume id in the
# FAT32 boot sector and its backup (sector 6), byte 0x43, little-endian.
mkfs.vfat -C -F 32 -n EFI-SYSTEM --invariant "$ESP" $((ESP_SIZE * 1024)) >/dev/null
serial_le=$(printf '\\x%s\\x%s\\x%s\\x%s' "${ESP_SERIAL:6:2}" "${ESP_SERIAL:4:2}" "${ESP_SERIAL:2:2}" "${ESP_SERIAL:0:2}")
for off in $((0x43)) $((6 * 512 + 0x43)); do printf "$serial_le" | dd of="$ESP" bs=1 seek=$off conv=notrunc status=none; done
mkdir -p "$W/esp/EFI/BOOT"
cp "$W/BOOTX64.EFI" image/grub/grub.cfg "$W/grubenv" "$W/grubenv.bak" "$W/esp/EFI/BOOT/"
find "$W/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
MTOOLS_SKIP_CHECK=1 mcopy -s -m -Q -i "$ESP" "$W/esp/EFI" ::/

# 6b. What cairn-install needs besides the release's /usr (docs/install.md): the partitions other than USR as
# built here (compressed), GRUB's BIOS boot code and the layout; then the /usr image itself.
INST=$TREE/usr/share/cairn/install
mkdir -p "$INST"
for f in esp root oem; do gzip -n -9 <"$W/$f.img" >"$INST/$f.img.gz"; done
cp "$W/core.img" "$INST/core.img"
cp /usr/lib/grub/i386-pc/boot.img "$INST/boot.img"
printf 'DISK_SIZE=%s\nESP_SIZE=%s\nBIOS_SIZE=%s\nUSR_SIZE=%s\nOEM_SIZE=%s\n' \
        "$DISK_SIZE" "$ESP_SIZE" "$BIOS_SIZE" "$USR_SIZE" "$OEM_SIZE" >"$INST/layout.conf"
find "$INST" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# /usr is sealed for dm-verity (docs/verity.md): the ext4 file system leaves room at the end of the slot for its
# hash tree and the root-hash block GRUB reads; where both go is fixed first and recorded in /lib/cairn/verity.env
# inside the file system (covered by the tree), then the tree is built over it.
install -s -m 0755 "$BIN/cairn-dmverity" "$TREE/usr/bin/"   # `cairn-dmverity table usr` on the host
mkdir -p "$TREE/usr/lib/cairn"
USR_FS_BYTES=$(scripts/verity-seal.sh plan $((USR_SIZE * 1048576)) "$TREE/usr/lib/cairn/verity.env")
touch -h -d "@$SOURCE_DATE_EPOCH" "$TREE/usr/lib/cairn/verity.env"
mkimage -o "$W/usr.img" --size "$USR_FS_BYTES" --seed "$SEED-usr" --label USR --no-journal \
        --root-mode usr --var "BUSYBOX_DEB=$BUSYBOX_DEB" --var "KVER=$KVER" --var "TREE=$TREE" "${DEBVARS[@]}" \
        --recipe "$RECIPE/usr.recipe"
truncate -s "${USR_SIZE}M" "$W/usr.img"
USR_ROOT_HASH=$(scripts/verity-seal.sh seal "$W/usr.img" "$SEED-usr")
say "/usr: $USR_FS_BYTES bytes of ext4 in a ${USR_SIZE} MiB slot, dm-verity root hash $USR_ROOT_HASH"
if [ "${CAIRN_USR_ONLY:-0}" = 1 ]; then mv "$W/usr.img" "$OUT/usr.img"; say "wrote $OUT/usr.img"; exit 0; fi

# 7. The disk.
"$BIN/cairn-mkdisk" -o "$OUT/cairn.img" --size "${DISK_SIZE}M" --seed "$SEED" \
        --bios-boot-code /usr/lib/grub/i386-pc/boot.img --bios-core "$W/core.img" \
        --part "1:EFI-SYSTEM:esp:${ESP_SIZE}M:$ESP" \
        --part "2:BIOS-BOOT:bios:${BIOS_SIZE}M" \
        --part "3:USR-A:usr:${USR_SIZE}M:$W/usr.img" \
        --part "4:USR-B:usr:${USR_SIZE}M" \
        --part "6:OEM:linux:${OEM_SIZE}M:$W/oem.img" \
        --part "9:ROOT:root:rest:$W/root.img"
cp "$W/usr.img" "$OUT/usr.img"
qemu-img convert -f raw -O qcow2 "$OUT/cairn.img" "$OUT/cairn.qcow2.tmp" && mv "$OUT/cairn.qcow2.tmp" "$OUT/cairn.qcow2"
say "wrote $OUT/cairn.img, $OUT/cairn.qcow2 and $OUT/usr.img (Cairn $VERSION, kernel $KVER)"
