/* bootcfg/fat.h — read-only FAT12/16/32 lookup: where a file's bytes live inside a FAT volume (no mount). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fat_file {
        uint64_t offset;        /* byte offset of the file's first cluster, from the start of the volume */
        uint32_t size;          /* file size from its directory entry */
        uint32_t first_cluster;
        uint32_t cluster_bytes;
        bool contiguous;        /* the clusters holding all `size` bytes are consecutive */
        unsigned fat_bits;      /* 12, 16 or 32 */
        uint64_t fat_offset;    /* byte offset of the first FAT from the start of the volume (for tests) */
};

/* Look up path ("EFI/BOOT/grubenv", '/'-separated, compared case-insensitively against the long name when the
 * entry has a valid VFAT long name, and always against the 8.3 name "GRUBENV.BAK") in the FAT volume that
 * occupies [vol_offset, vol_offset + vol_size) of fd. Every structure is bounds-checked against vol_size.
 * Errors: -ENOENT no such file, -EISDIR the path names a directory, -EBADMSG not a valid FAT volume or a broken
 * cluster chain (loop, out of range, ends early), -EIO/-errno read errors. */
int fat_lookup(int fd, uint64_t vol_offset, uint64_t vol_size, const char *path, struct fat_file *ret);

/* Before writing into files in place: check that the files at paths[0..n) (resolved as fat_lookup() does) own
 * their clusters. Each chain must be in range and exactly as long as the file's size; no cluster may belong to two
 * of them, nor to any other file or directory of the volume (the whole directory tree is walked, the root
 * directory's and every directory's own clusters included; "." and ".." are skipped; loops end at the first
 * cluster already seen). Memory: two bitmaps of one bit per cluster, plus one directory at a time per level of
 * the tree (at most 32 levels). Returns 0; -EBADMSG with one line in why ("\"/EFI/BOOT/grubenv\" shares cluster
 * 48 with \"/EFI/BOOT/BOOTX64.EFI\""; a broken chain; not a FAT volume); -ENOENT a path does not name a file;
 * -ENOMEM; -EIO/-errno read errors. */
int fat_check_exclusive(int fd, uint64_t vol_offset, uint64_t vol_size, const char *const *paths, size_t n,
                        char *why, size_t whysize);
