/* image/diskbios.c — patches GRUB's boot.img into the MBR and core.img's blocklist for a BIOS boot partition. */
#include "diskbios.h"

#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static uint16_t get16(const uint8_t *p) {
        return (uint16_t)(p[0] | p[1] << 8);
}
static void put64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

int disk_bios_patch(uint8_t mbr[512], const uint8_t boot_img[512], uint8_t *core, size_t core_len, uint64_t core_lba) {
        if (boot_img[510] != 0x55 || boot_img[511] != 0xaa)
                return -EINVAL;
        if (core_len < 1024 || core_len > (size_t)GRUB_CORE_MAX_SECTORS * 512)
                return -EINVAL;
        if (get16(core + 512 + GRUB_KERNEL_NO_RS_LENGTH) == 0xffff)
                return -EINVAL;
        uint64_t sectors = (core_len + 511) / 512;

        /* core.img: clear the blocklists (they grow down from the end of the first sector), as setup does. */
        uint8_t *first = core + 512 - GRUB_BLOCKLIST_SIZE;
        for (uint8_t *b = first; get16(b + 8) != 0; b -= GRUB_BLOCKLIST_SIZE) {
                if (b - GRUB_BLOCKLIST_SIZE <= core)
                        return -EINVAL; /* no terminator */
                memset(b, 0, GRUB_BLOCKLIST_SIZE);
        }
        /* One contiguous run: the rest of core.img right after its first sector; the next entry terminates. */
        put64(first, core_lba + 1);
        put16(first + 8, (uint16_t)(sectors - 1));
        put16(first + 10, GRUB_KERNEL_SEG_FIRST);
        memset(first - GRUB_BLOCKLIST_SIZE, 0, GRUB_BLOCKLIST_SIZE);

        /* MBR: boot.img code up to the NT magic, keeping our BPB area, signature, partition table and 0x55AA. */
        uint8_t bpb[GRUB_BOOT_BPB_END - GRUB_BOOT_BPB_START];
        memcpy(bpb, mbr + GRUB_BOOT_BPB_START, sizeof bpb);
        memcpy(mbr, boot_img, GRUB_BOOT_WINDOWS_NT_MAGIC);
        memcpy(mbr + GRUB_BOOT_BPB_START, bpb, sizeof bpb);
        put64(mbr + GRUB_BOOT_KERNEL_SECTOR, core_lba);
        mbr[GRUB_BOOT_BOOT_DRIVE] = 0xff;
        mbr[GRUB_BOOT_DRIVE_CHECK] = 0x90;
        mbr[GRUB_BOOT_DRIVE_CHECK + 1] = 0x90;
        return 0;
}
