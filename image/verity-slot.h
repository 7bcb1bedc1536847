/* image/verity-slot.h — read the dm-verity layout of a sealed /usr slot (docs/verity.md, "Slot layout"): the ext4
 * file system's size (where the hash area starts), the verity superblock there, and the root-hash block after
 * the tree. Nothing here is trusted: the callers display it (cairn-bootcfg status) or check it against a root
 * hash (cairn-dmverity). */
#pragma once

#include <stdint.h>

#include "verity.h"

#define VERITY_SLOT_BLOCK_SIZE 1024 /* bytes of the root-hash block GRUB reads (a GRUB environment block) */
#define VERITY_SLOT_VERSION_MAX 64

struct verity_slot {
        uint64_t hash_offset;        /* = the ext4 file system's size */
        struct verity_params params; /* from the verity superblock at hash_offset */
        struct verity_layout layout;
        uint64_t block_offset;       /* the root-hash block: the first 4 KiB boundary after the hash area */
        char root_hex[VERITY_HEX_SIZE];            /* usrhash= of the block, "" if absent or not 64 hex digits */
        char version[VERITY_SLOT_VERSION_MAX + 1]; /* version= of the block, "" if absent */
};

/* The size in bytes of the ext4 file system at byte off of fd: -EBADMSG when there is none (or it is implausible). */
int verity_ext4_size(int fd, uint64_t off, uint64_t *ret) _warn_unused_result_;
/* Read the layout of the slot [off, off+size) of fd. -EBADMSG: no ext4 file system; -ENODATA: no valid verity
 * superblock where the file system ends (not sealed); -ERANGE: the superblock does not describe exactly the file
 * system in 4 KiB blocks, or the hash area or the root-hash block ends past the slot. */
int verity_slot_read(int fd, uint64_t off, uint64_t size, struct verity_slot *ret) _warn_unused_result_;
