/* tpm/bootdigest.h — the boot digests a release manifest carries, read from a /usr slot image (ext4, no mount):
 * SHA-256 of /boot/vmlinuz and /boot/initrd (what GRUB measures into PCR 9), and of the kernel command-line
 * arguments the slot itself contributes (what GRUB reads from it: "cairn.usrhash=<hex>" when the image carries a
 * dm-verity root hash in /lib/cairn/verity.env, else the empty string). Used by cairn-release create. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* image: a /usr image file or partition (the file system at byte offset). 0, or -errno with one line in why. */
int usr_boot_digests(const char *image, uint64_t offset, uint8_t kernel[32], uint8_t initrd[32], uint8_t cmdline[32],
                     char *why, size_t why_size);
