/* image/verity.h — dm-verity hash trees (format 1, SHA-256), built or checked in one streaming pass over the data.
 *
 * Layout of the hash area (what veritysetup writes for a separate hash device or at --hash-offset), relative to
 * the hash offset, with B = hash block size and levels numbered from the data up (level 0 holds the hashes of the
 * data blocks, the last level is a single block whose hash is the root hash):
 *   [superblock: 512 bytes, zero-padded to B]   (absent when superblock is false)
 *   [level L-1: 1 block] [level L-2] ... [level 0: ceil(data_blocks / (B/32)) blocks]
 * Every hash is SHA-256(salt || block). A hash block holds B/32 hashes in order, the rest zero. One data block
 * means no tree at all (L = 0): the root hash is the hash of that block. See docs/verity.md.
 *
 * Memory: one partly filled run of hash blocks per level (at most 64 KiB each), one scratch run for the
 * compare mode; a tree has at most 14 levels (2^63 bytes of data in 512-byte blocks), so at most 15 x 64 KiB =
 * 960 KiB for any data size, plus the 1 MiB read buffer of verity_hash_fd(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define VERITY_DIGEST_SIZE 32
#define VERITY_SALT_MAX 256
#define VERITY_UUID_SIZE 16
#define VERITY_SUPERBLOCK_SIZE 512
#define VERITY_BLOCK_MIN 512
#define VERITY_BLOCK_MAX 65536
#define VERITY_BLOCK_DEFAULT 4096
#define VERITY_MAX_LEVELS 63 /* the kernel's DM_VERITY_MAX_LEVELS */
#define VERITY_HEX_SIZE (2 * VERITY_DIGEST_SIZE + 1)
#define VERITY_UUID_STRLEN 36

struct verity_params {
        uint32_t data_block_size; /* power of two, VERITY_BLOCK_MIN .. VERITY_BLOCK_MAX */
        uint32_t hash_block_size; /* likewise */
        uint64_t data_blocks;     /* > 0; data_blocks * data_block_size must fit in an off_t */
        size_t salt_size;         /* 0 .. VERITY_SALT_MAX */
        uint8_t salt[VERITY_SALT_MAX];
        bool superblock;                 /* a 512-byte superblock at the start of the hash area */
        uint8_t uuid[VERITY_UUID_SIZE]; /* the superblock's UUID */
};

/* Where everything lies, in bytes relative to the start of the hash area (the hash offset). */
struct verity_layout {
        unsigned levels;          /* 0 for a single data block */
        uint64_t hash_blocks;     /* tree blocks, without the superblock (veritysetup's "Hash blocks") */
        uint64_t tree_offset;     /* 0, or hash_block_size with a superblock */
        uint64_t area_size;       /* tree_offset + hash_blocks * hash_block_size */
        uint64_t level_blocks[VERITY_MAX_LEVELS];
        uint64_t level_offset[VERITY_MAX_LEVELS];
};

/* Fill params with the defaults (4 KiB blocks, superblock, no salt, zero UUID) for data_blocks blocks. */
void verity_params_init(struct verity_params *p, uint64_t data_blocks);
/* Check every field: -EINVAL for a block size that is not a power of two in range, a salt that is too long or zero
 * data blocks; -EFBIG when the data or the tree would not fit in an off_t. */
int verity_params_check(const struct verity_params *p) _warn_unused_result_;
int verity_layout_compute(const struct verity_params *p, struct verity_layout *ret) _warn_unused_result_;

/* The deterministic salt of a build: SHA-256("cairn-verity-salt:" + seed), 32 bytes. */
int verity_salt_from_seed(const char *seed, uint8_t ret_salt[VERITY_DIGEST_SIZE]) _warn_unused_result_;
/* The default superblock UUID: the first 16 bytes of SHA-256("cairn-verity-uuid:" + salt), with the RFC 4122
 * version 4 and variant bits set. */
int verity_uuid_from_salt(const uint8_t *salt, size_t salt_size, uint8_t ret_uuid[VERITY_UUID_SIZE]) _warn_unused_result_;
/* Salt from hex ("-" or "" is the empty salt, as veritysetup takes it); -EINVAL for a non-hex digit or an odd
 * count, -E2BIG for more than VERITY_SALT_MAX bytes. */
int verity_salt_from_hex(const char *hex, uint8_t ret_salt[VERITY_SALT_MAX], size_t *ret_size) _warn_unused_result_;
/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case); -EINVAL otherwise. */
int verity_uuid_parse(const char *s, uint8_t ret_uuid[VERITY_UUID_SIZE]) _warn_unused_result_;
char *verity_uuid_format(const uint8_t uuid[VERITY_UUID_SIZE], char buf[VERITY_UUID_STRLEN + 1]);
/* Lower-case hex of len bytes into buf (2*len+1 bytes); returns buf. */
char *verity_hex(const uint8_t *data, size_t len, char *buf);
/* Exactly 2*VERITY_DIGEST_SIZE hex digits; -EINVAL otherwise. */
int verity_root_from_hex(const char *hex, uint8_t ret_root[VERITY_DIGEST_SIZE]) _warn_unused_result_;

/* The superblock veritysetup writes (little-endian): "verity\0\0", version 1, hash type 1, UUID, "sha256",
 * block sizes, data blocks, salt size and salt, every other byte zero. */
int verity_superblock_build(const struct verity_params *p, uint8_t ret_sb[VERITY_SUPERBLOCK_SIZE]) _warn_unused_result_;
/* Parse an untrusted superblock into params (superblock = true). Only the canonical form above is accepted:
 * -EBADMSG for a wrong signature, non-zero reserved bytes or salt bytes past the salt size, -EOPNOTSUPP for another
 * version, hash type (format 0) or algorithm, -EINVAL/-EFBIG for what verity_params_check() refuses. */
int verity_superblock_parse(const uint8_t *untrusted, size_t len, struct verity_params *ret) _warn_unused_result_;

/* What the tree does with each hash block it completes. */
enum verity_mode {
        VERITY_ROOT_ONLY, /* nothing: only the root hash is wanted (fd ignored) */
        VERITY_WRITE,     /* pwrite the superblock and the tree to fd at the hash offset */
        VERITY_COMPARE,   /* pread the same places from fd and compare (the superblock is not compared) */
};

/* Where the first difference of a VERITY_COMPARE run lies. */
struct verity_mismatch {
        int level;           /* tree level of the differing hash block; -1: the root hash itself differs */
        uint64_t hash_block; /* index of the block within its level */
        uint64_t offset;     /* byte offset of that hash block in fd (absolute) */
        bool data_known;     /* level 0 and a hash in it differs: data_block names the data block */
        uint64_t data_block;
        bool padding;        /* every hash in the block matches but the zero padding after them does not */
};

struct verity_tree;
/* A builder for params; fd and hash_offset as for enum verity_mode (hash_offset: absolute offset in fd of the
 * hash area, a multiple of the hash block size). VERITY_WRITE writes the superblock (if any) right away. */
int verity_tree_new(const struct verity_params *p, enum verity_mode mode, int fd, uint64_t hash_offset,
                    struct verity_tree **ret) _warn_unused_result_;
/* Feed the next len bytes of data. -EFBIG past data_blocks * data_block_size; -EBADMSG in compare mode at the first
 * difference (see verity_tree_mismatch()); any error sticks: later calls return it again. */
int verity_tree_update(struct verity_tree *t, const void *buf, size_t len) _warn_unused_result_;
/* After exactly data_blocks blocks: flush the tree and return the root hash. -ENODATA if data is missing; in
 * compare mode also -EBADMSG if a remaining block differs. Does not fsync. */
int verity_tree_finish(struct verity_tree *t, uint8_t ret_root[VERITY_DIGEST_SIZE]) _warn_unused_result_;
/* The first difference after -EBADMSG; -ENOENT if there is none. */
int verity_tree_mismatch(const struct verity_tree *t, struct verity_mismatch *ret);
void verity_tree_free(struct verity_tree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct verity_tree *, verity_tree_free);
#define _cleanup_verity_tree_ _cleanup_(verity_tree_freep)

/* The whole pass over an fd: data_blocks blocks read from data_fd at data_offset (-EIO if it ends early), the
 * tree handled per mode in hash_fd at hash_offset. In compare mode, *mismatch_out (if not NULL) describes an
 * -EBADMSG. Reads 1 MiB at a time. */
int verity_hash_fd(const struct verity_params *p, int data_fd, uint64_t data_offset, enum verity_mode mode,
                   int hash_fd, uint64_t hash_offset, uint8_t ret_root[VERITY_DIGEST_SIZE],
                   struct verity_mismatch *mismatch_out) _warn_unused_result_;
