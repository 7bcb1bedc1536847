/* image/diskbios.h — GRUB i386-pc boot code embedding into a BIOS boot partition, as grub-bios-setup does it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Offsets in boot.img (GRUB 2.06 include/grub/i386/pc/boot.h). */
#define GRUB_BOOT_BPB_START 0x03
#define GRUB_BOOT_BPB_END 0x5a
#define GRUB_BOOT_KERNEL_SECTOR 0x5c /* u64 LE: LBA of core.img's first sector */
#define GRUB_BOOT_BOOT_DRIVE 0x64    /* u8: 0xFF = use the drive the BIOS passed in %dl */
#define GRUB_BOOT_DRIVE_CHECK 0x66   /* 2-byte jmp, NOPed for hard disks */
#define GRUB_BOOT_WINDOWS_NT_MAGIC 0x1b8 /* from here to 0x1FE the disk's own MBR is kept */
#define GRUB_BOOT_PART_END 0x1fe
/* Offsets in core.img (diskboot.img sector, then the kernel's first sector). */
#define GRUB_BLOCKLIST_SIZE 12 /* struct { u64 start; u16 len; u16 segment; } packed */
#define GRUB_KERNEL_SEG_FIRST 0x820 /* segment of the 2nd sector: GRUB_BOOT_I386_PC_KERNEL_SEG + 512/16 */
#define GRUB_KERNEL_NO_RS_LENGTH 0x14 /* u16 in core.img's second sector; 0xFFFF = version mismatch */
#define GRUB_CORE_MAX_SECTORS 0xffff

/* Patch the GRUB boot code into mbr (a protective MBR already built): boot.img bytes 0..0x1B7 except the BPB
 * (0x03..0x59, kept from mbr), KERNEL_SECTOR = core_lba, BOOT_DRIVE = 0xFF, DRIVE_CHECK = 0x90 0x90. The disk
 * signature, partition table and 0x55AA of mbr stay. Patch core (core_len bytes, a grub-mkimage -O i386-pc image)
 * in place: the blocklists at the end of its first sector are cleared and the first one set to
 * { core_lba + 1, core sectors - 1, 0x820 }. -EINVAL when boot.img lacks 0x55AA, core.img is smaller than two
 * sectors, larger than 0xFFFF sectors, has no blocklist terminator, or carries 0xFFFF as no-RS length. */
int disk_bios_patch(uint8_t mbr[512], const uint8_t boot_img[512], uint8_t *core, size_t core_len, uint64_t core_lba);
