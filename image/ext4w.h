/* image/ext4w.h — writes an ext4 filesystem image from an entry stream with libext2fs (and estimates its fit size). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "input.h"

#define EXT4W_BLOCK_SIZE 4096
#define EXT4W_BYTES_PER_INODE 16384 /* inode density, like mke2fs's default */

struct ext4w_params {
        uint64_t size;       /* bytes; rounded down to whole blocks */
        uint64_t min_inodes; /* at least this many inodes (0: density only) */
        const char *label;   /* volume label, at most 16 bytes; may be NULL */
        const char *seed;    /* UUID and directory hash seed derive from it */
        int64_t epoch;       /* every timestamp; 0 .. INT32_MAX */
        bool journal;
};

struct ext4w;

/* Create an empty filesystem (root, lost+found, resize inode, journal) in a temp file beside out_path.
 * Nothing appears at out_path until ext4w_finish() succeeds. */
int ext4w_create(const char *out_path, const struct ext4w_params *p, struct img_err *err, struct ext4w **ret);
/* Stamp the times, close the filesystem and rename it to out_path. Frees w (also on failure). */
int ext4w_finish(struct ext4w *w);
/* Discard: free w and remove the temp file. */
void ext4w_abort(struct ext4w *w);

/* The sink that writes into a struct ext4w. ENOSPC failures record just "/path" of the entry that did not fit. */
extern const struct img_sink ext4w_sink;

/* Fit mode: a sink that only counts what the entries need (data is not read). */
struct ext4w_count {
        uint64_t entries, dirs, blocks, dirent_bytes;
};
extern const struct img_sink ext4w_count_sink;
/* Image size for counted content: (data + inode tables + journal + group overhead) * 1.1 + 4 MiB, in whole MiB. */
uint64_t ext4w_fit_size(const struct ext4w_count *c, bool journal, uint64_t *ret_min_inodes);

/* UUID (RFC 4122 v4 layout) = first 16 bytes of SHA-256("cairn-fs-uuid:" + seed). */
int ext4w_uuid_from_seed(const char *seed, uint8_t ret_uuid[16]);
