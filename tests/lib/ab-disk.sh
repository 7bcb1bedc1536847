# tests/lib/ab-disk.sh — the host disk of the agent tests and benchmarks (sourced): a GPT disk whose ESP holds a
# grubenv (and grubenv.bak) that boots A, USR-A holding a given /usr image, USR-B empty, and a ROOT.
# Needs grub-editenv, mkfs.vfat, mcopy (MTOOLS_SKIP_CHECK=1) and cairn-mkdisk ($B or build/bin).

# ab_disk OUT USR_A_IMAGE SLOT_MB SEED WORKDIR [extra cairn-mkdisk --part options…]
#   The disk is 2 × SLOT_MB + 48 MiB (ESP 34, BIOS-BOOT 1, OEM 1, ROOT the rest); WORKDIR gets esp/ and esp.img.
ab_disk() {
        local out=$1 img=$2 slot_mb=$3 seed=$4 w=$5 mkdisk=${B:-$PWD/build/bin}/cairn-mkdisk
        shift 5
        mkdir -p "$w/esp/EFI/BOOT"
        rm -f "$w/esp/EFI/BOOT/grubenv" "$w/esp.img"
        grub-editenv "$w/esp/EFI/BOOT/grubenv" create
        grub-editenv "$w/esp/EFI/BOOT/grubenv" set A_PRIORITY=1 A_TRIES=0 A_SUCCESSFUL=1 \
                B_PRIORITY=0 B_TRIES=0 B_SUCCESSFUL=0
        cp "$w/esp/EFI/BOOT/grubenv" "$w/esp/EFI/BOOT/grubenv.bak"
        mkfs.vfat -C -F 32 -n EFI-SYSTEM "$w/esp.img" 34000 >/dev/null
        MTOOLS_SKIP_CHECK=1 mcopy -s -m -Q -i "$w/esp.img" "$w/esp/EFI" ::/
        "$mkdisk" -o "$out" --size $((slot_mb * 2 + 48))M --seed "$seed" \
                --part 1:EFI-SYSTEM:esp:34M:"$w/esp.img" --part 2:BIOS-BOOT:bios:1M \
                --part 3:USR-A:usr:${slot_mb}M:"$img" --part 4:USR-B:usr:${slot_mb}M \
                --part 6:OEM:linux:1M --part 9:ROOT:root:rest "$@" >/dev/null
}
