/* image/verity.c — dm-verity format 1 hash trees: layout, superblock, salt/UUID helpers and the streaming builder. */
#include <assert.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>

#include "fileio.h"
#include "verity.h"

#include "hash.h"
#include "hex.h"

#define RUN_BYTES 65536u           /* the most of one level held in memory */
#define READ_CHUNK (1u << 20)      /* verity_hash_fd() */
#define SALT_PREFIX "cairn-verity-salt:"
#define UUID_PREFIX "cairn-verity-uuid:"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD *, EVP_MD_free);

static bool block_size_ok(uint32_t s) {
        return s >= VERITY_BLOCK_MIN && s <= VERITY_BLOCK_MAX && (s & (s - 1)) == 0;
}

void verity_params_init(struct verity_params *p, uint64_t data_blocks) {
        assert(p);
        *p = (struct verity_params){ .data_block_size = VERITY_BLOCK_DEFAULT,
                                     .hash_block_size = VERITY_BLOCK_DEFAULT,
                                     .data_blocks = data_blocks,
                                     .superblock = true };
}

int verity_layout_compute(const struct verity_params *p, struct verity_layout *ret) {
        assert(p && ret);
        if (!block_size_ok(p->data_block_size) || !block_size_ok(p->hash_block_size) || p->salt_size > VERITY_SALT_MAX ||
            p->data_blocks == 0)
                return -EINVAL;
        uint64_t data_bytes;
        if (__builtin_mul_overflow(p->data_blocks, (uint64_t)p->data_block_size, &data_bytes) || data_bytes > INT64_MAX)
                return -EFBIG;
        struct verity_layout l = { .tree_offset = p->superblock ? p->hash_block_size : 0 };
        uint64_t per = p->hash_block_size / VERITY_DIGEST_SIZE, n = p->data_blocks;
        while (n > 1) {
                n = n / per + (n % per != 0);
                assert(l.levels < VERITY_MAX_LEVELS); /* per >= 16 and n < 2^64: at most 16 levels */
                l.level_blocks[l.levels++] = n;
                l.hash_blocks += n;
        }
        uint64_t off = l.tree_offset;
        for (unsigned i = l.levels; i-- > 0;) {
                l.level_offset[i] = off;
                uint64_t bytes;
                if (__builtin_mul_overflow(l.level_blocks[i], (uint64_t)p->hash_block_size, &bytes) ||
                    __builtin_add_overflow(off, bytes, &off) || off > INT64_MAX)
                        return -EFBIG;
        }
        l.area_size = off;
        *ret = l;
        return 0;
}

int verity_params_check(const struct verity_params *p) {
        struct verity_layout l;
        return verity_layout_compute(p, &l);
}

static int sha256_parts(const void *a, size_t alen, const void *b, size_t blen, uint8_t ret[VERITY_DIGEST_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
            (blen && EVP_DigestUpdate(ctx, b, blen) != 1) || EVP_DigestFinal_ex(ctx, d, &n) != 1 ||
            n != VERITY_DIGEST_SIZE)
                return -EIO;
        memcpy(ret, d, VERITY_DIGEST_SIZE);
        return 0;
}

int verity_salt_from_seed(const char *seed, uint8_t ret_salt[VERITY_DIGEST_SIZE]) {
        assert(seed && ret_salt);
        return sha256_parts(SALT_PREFIX, strlen(SALT_PREFIX), seed, strlen(seed), ret_salt);
}

int verity_uuid_from_salt(const uint8_t *salt, size_t salt_size, uint8_t ret_uuid[VERITY_UUID_SIZE]) {
        assert(salt || salt_size == 0);
        assert(ret_uuid);
        uint8_t d[VERITY_DIGEST_SIZE];
        int r = sha256_parts(UUID_PREFIX, strlen(UUID_PREFIX), salt, salt_size, d);
        if (r < 0)
                return r;
        d[6] = (d[6] & 0x0f) | 0x40;
        d[8] = (d[8] & 0x3f) | 0x80;
        memcpy(ret_uuid, d, VERITY_UUID_SIZE);
        return 0;
}

char *verity_hex(const uint8_t *data, size_t len, char *buf) {
        return hex_encode(data, len, buf);
}

int verity_salt_from_hex(const char *hex, uint8_t ret_salt[VERITY_SALT_MAX], size_t *ret_size) {
        assert(hex && ret_salt && ret_size);
        if (strcmp(hex, "-") == 0)
                hex = "";
        size_t n = strlen(hex);
        if (n % 2)
                return -EINVAL;
        uint8_t salt[VERITY_SALT_MAX];
        if (n / 2 > VERITY_SALT_MAX) {
                for (size_t i = 0; i < n; i++) /* a non-hex salt is -EINVAL whatever its length */
                        if (hex_digit(hex[i]) < 0)
                                return -EINVAL;
                return -E2BIG;
        }
        int r = hex_decode_n(hex, salt, n / 2);
        if (r < 0)
                return r;
        memcpy(ret_salt, salt, n / 2);
        *ret_size = n / 2;
        return 0;
}

int verity_root_from_hex(const char *hex, uint8_t ret_root[VERITY_DIGEST_SIZE]) {
        assert(hex && ret_root);
        uint8_t d[VERITY_DIGEST_SIZE];
        if (strlen(hex) != 2 * VERITY_DIGEST_SIZE || hex_decode_n(hex, d, sizeof d) < 0)
                return -EINVAL;
        memcpy(ret_root, d, sizeof d);
        return 0;
}

int verity_uuid_parse(const char *s, uint8_t ret_uuid[VERITY_UUID_SIZE]) {
        assert(s && ret_uuid);
        if (strlen(s) != VERITY_UUID_STRLEN)
                return -EINVAL;
        char digits[2 * VERITY_UUID_SIZE];
        size_t n = 0;
        for (size_t i = 0; i < VERITY_UUID_STRLEN; i++) {
                bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash_here != (s[i] == '-'))
                        return -EINVAL;
                if (!dash_here)
                        digits[n++] = s[i];
        }
        uint8_t u[VERITY_UUID_SIZE];
        for (size_t i = 0; i < VERITY_UUID_SIZE; i++) {
                int hi = hex_digit(digits[2 * i]), lo = hex_digit(digits[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                u[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret_uuid, u, sizeof u);
        return 0;
}

char *verity_uuid_format(const uint8_t uuid[VERITY_UUID_SIZE], char buf[VERITY_UUID_STRLEN + 1]) {
        char h[2 * VERITY_UUID_SIZE + 1];
        verity_hex(uuid, VERITY_UUID_SIZE, h);
        snprintf(buf, VERITY_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
        return buf;
}

/* The on-disk superblock, little-endian (cryptsetup's struct verity_sb). */
enum {
        SB_SIGNATURE = 0,     /* 8: "verity\0\0" */
        SB_VERSION = 8,       /* le32: 1 */
        SB_HASH_TYPE = 12,    /* le32: 1 (format 1) */
        SB_UUID = 16,         /* 16 */
        SB_ALGORITHM = 32,    /* 32: NUL-padded name */
        SB_DATA_BLOCK = 64,   /* le32 */
        SB_HASH_BLOCK = 68,   /* le32 */
        SB_DATA_BLOCKS = 72,  /* le64 */
        SB_SALT_SIZE = 80,    /* le16 */
        SB_PAD1 = 82,         /* 6 */
        SB_SALT = 88,         /* 256 */
        SB_PAD2 = 344,        /* 168, up to 512 */
};
static const char sb_signature[8] = { 'v', 'e', 'r', 'i', 't', 'y', 0, 0 };

static void put_le(uint8_t *p, uint64_t v, unsigned bytes) {
        for (unsigned i = 0; i < bytes; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, unsigned bytes) {
        uint64_t v = 0;
        for (unsigned i = bytes; i-- > 0;)
                v = v << 8 | p[i];
        return v;
}
static bool all_zero(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

int verity_superblock_build(const struct verity_params *p, uint8_t ret_sb[VERITY_SUPERBLOCK_SIZE]) {
        assert(p && ret_sb);
        int r = verity_params_check(p);
        if (r < 0)
                return r;
        uint8_t sb[VERITY_SUPERBLOCK_SIZE] = { 0 };
        memcpy(sb + SB_SIGNATURE, sb_signature, sizeof sb_signature);
        put_le(sb + SB_VERSION, 1, 4);
        put_le(sb + SB_HASH_TYPE, 1, 4);
        memcpy(sb + SB_UUID, p->uuid, VERITY_UUID_SIZE);
        memcpy(sb + SB_ALGORITHM, "sha256", 6);
        put_le(sb + SB_DATA_BLOCK, p->data_block_size, 4);
        put_le(sb + SB_HASH_BLOCK, p->hash_block_size, 4);
        put_le(sb + SB_DATA_BLOCKS, p->data_blocks, 8);
        put_le(sb + SB_SALT_SIZE, p->salt_size, 2);
        memcpy(sb + SB_SALT, p->salt, p->salt_size);
        memcpy(ret_sb, sb, sizeof sb);
        return 0;
}

int verity_superblock_parse(const uint8_t *untrusted, size_t len, struct verity_params *ret) {
        assert(untrusted || len == 0);
        assert(ret);
        if (len < VERITY_SUPERBLOCK_SIZE || memcmp(untrusted + SB_SIGNATURE, sb_signature, sizeof sb_signature) != 0)
                return -EBADMSG;
        if (get_le(untrusted + SB_VERSION, 4) != 1 || get_le(untrusted + SB_HASH_TYPE, 4) != 1)
                return -EOPNOTSUPP;
        static const uint8_t sha256_name[32] = "sha256";
        if (memcmp(untrusted + SB_ALGORITHM, sha256_name, sizeof sha256_name) != 0)
                return -EOPNOTSUPP;
        size_t salt_size = (size_t)get_le(untrusted + SB_SALT_SIZE, 2);
        if (salt_size > VERITY_SALT_MAX || !all_zero(untrusted + SB_PAD1, SB_SALT - SB_PAD1) ||
            !all_zero(untrusted + SB_SALT + salt_size, VERITY_SUPERBLOCK_SIZE - SB_SALT - salt_size))
                return -EBADMSG;
        struct verity_params p = { .data_block_size = (uint32_t)get_le(untrusted + SB_DATA_BLOCK, 4),
                                   .hash_block_size = (uint32_t)get_le(untrusted + SB_HASH_BLOCK, 4),
                                   .data_blocks = get_le(untrusted + SB_DATA_BLOCKS, 8),
                                   .salt_size = salt_size,
                                   .superblock = true };
        memcpy(p.uuid, untrusted + SB_UUID, VERITY_UUID_SIZE);
        memcpy(p.salt, untrusted + SB_SALT, salt_size);
        int r = verity_params_check(&p);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

struct level {
        uint8_t *run;       /* run_cap blocks: the blocks from run_first on, the last one maybe partly filled */
        uint64_t run_cap;   /* blocks */
        uint64_t run_first; /* index in the level of run[0] */
        size_t fill;        /* bytes of run in use */
        uint64_t done;      /* completed blocks of the level */
};

struct verity_tree {
        struct verity_params p;
        struct verity_layout layout;
        enum verity_mode mode;
        int fd;
        uint64_t hash_offset;
        EVP_MD *md;
        EVP_MD_CTX *data_ctx;  /* the data block being fed */
        EVP_MD_CTX *block_ctx; /* hash blocks */
        uint32_t data_fill;    /* bytes of the current data block fed */
        uint64_t data_done;    /* complete data blocks */
        struct level levels[VERITY_MAX_LEVELS];
        uint8_t *scratch; /* compare mode: what fd holds */
        uint8_t root[VERITY_DIGEST_SIZE];
        bool have_root;
        uint8_t zero_digest[VERITY_DIGEST_SIZE]; /* SHA-256(salt || zero block), once there was one */
        bool have_zero;
        int error; /* sticky */
        bool have_mismatch;
        struct verity_mismatch mismatch;
};

void verity_tree_free(struct verity_tree *t) {
        if (!t)
                return;
        for (unsigned i = 0; i < t->layout.levels; i++)
                free(t->levels[i].run);
        free(t->scratch);
        EVP_MD_CTX_free(t->data_ctx);
        EVP_MD_CTX_free(t->block_ctx);
        EVP_MD_free(t->md);
        free(t);
}

static int salted_init(struct verity_tree *t, EVP_MD_CTX *ctx) {
        if (EVP_DigestInit_ex2(ctx, t->md, NULL) != 1 ||
            (t->p.salt_size && EVP_DigestUpdate(ctx, t->p.salt, t->p.salt_size) != 1))
                return -EIO;
        return 0;
}

static int digest_final(EVP_MD_CTX *ctx, uint8_t out[VERITY_DIGEST_SIZE]) {
        unsigned n = 0;
        if (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != VERITY_DIGEST_SIZE)
                return -EIO;
        return 0;
}

int verity_tree_new(const struct verity_params *p, enum verity_mode mode, int fd, uint64_t hash_offset,
                    struct verity_tree **ret) {
        assert(p && ret);
        assert(mode == VERITY_ROOT_ONLY || mode == VERITY_WRITE || mode == VERITY_COMPARE);
        struct verity_layout layout;
        int r = verity_layout_compute(p, &layout);
        if (r < 0)
                return r;
        if (mode != VERITY_ROOT_ONLY) {
                if (fd < 0 || hash_offset % p->hash_block_size)
                        return -EINVAL;
                if (hash_offset > INT64_MAX - layout.area_size)
                        return -EFBIG;
        }
        _cleanup_(verity_tree_freep) struct verity_tree *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->p = *p;
        t->layout = layout;
        t->mode = mode;
        t->fd = mode == VERITY_ROOT_ONLY ? -1 : fd;
        t->hash_offset = hash_offset;
        t->md = EVP_MD_fetch(NULL, "SHA256", NULL);
        t->data_ctx = EVP_MD_CTX_new();
        t->block_ctx = EVP_MD_CTX_new();
        if (!t->md || !t->data_ctx || !t->block_ctx)
                return -ENOMEM;
        uint64_t max_run = 0;
        for (unsigned i = 0; i < layout.levels; i++) {
                struct level *l = &t->levels[i];
                l->run_cap = MIN(layout.level_blocks[i], MAX(1u, RUN_BYTES / p->hash_block_size));
                l->run = calloc(l->run_cap, p->hash_block_size);
                if (!l->run)
                        return -ENOMEM;
                max_run = MAX(max_run, l->run_cap);
        }
        if (mode == VERITY_COMPARE && max_run) {
                t->scratch = malloc(max_run * p->hash_block_size);
                if (!t->scratch)
                        return -ENOMEM;
        }
        if (mode == VERITY_WRITE && p->superblock) {
                _cleanup_free_ uint8_t *sb = calloc(1, p->hash_block_size);
                if (!sb)
                        return -ENOMEM;
                r = verity_superblock_build(p, sb);
                if (r < 0)
                        return r;
                r = pwrite_full(fd, sb, p->hash_block_size, hash_offset);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* Describe the first difference between the run of level i as computed (l->run) and as found (t->scratch). */
static void note_mismatch(struct verity_tree *t, unsigned i) {
        const struct level *l = &t->levels[i];
        uint32_t bs = t->p.hash_block_size, per = bs / VERITY_DIGEST_SIZE;
        uint64_t children = i == 0 ? t->p.data_blocks : t->layout.level_blocks[i - 1];
        size_t b = 0;
        while (b + 1 < l->fill / bs && memcmp(l->run + b * bs, t->scratch + b * bs, bs) == 0)
                b++;
        struct verity_mismatch m = { .level = (int)i, .hash_block = l->run_first + b };
        m.offset = t->hash_offset + t->layout.level_offset[i] + m.hash_block * bs;
        uint64_t first_child = m.hash_block * per, used = MIN((uint64_t)per, children - first_child);
        m.padding = true;
        for (uint64_t k = 0; k < used; k++)
                if (memcmp(l->run + b * bs + k * VERITY_DIGEST_SIZE, t->scratch + b * bs + k * VERITY_DIGEST_SIZE,
                           VERITY_DIGEST_SIZE) != 0) {
                        m.padding = false;
                        if (i == 0) {
                                m.data_known = true;
                                m.data_block = first_child + k;
                        }
                        break;
                }
        t->mismatch = m;
        t->have_mismatch = true;
}

/* Write out or compare the run of level i (whole blocks) and start the next one. */
static int flush_run(struct verity_tree *t, unsigned i) {
        struct level *l = &t->levels[i];
        uint32_t bs = t->p.hash_block_size;
        assert(l->fill % bs == 0);
        if (l->fill == 0)
                return 0;
        uint64_t off = t->hash_offset + t->layout.level_offset[i] + l->run_first * bs;
        int r = 0;
        if (t->mode == VERITY_WRITE)
                r = pwrite_full(t->fd, l->run, l->fill, off);
        else if (t->mode == VERITY_COMPARE) {
                r = pread_full(t->fd, t->scratch, l->fill, off);
                if (r >= 0 && memcmp(l->run, t->scratch, l->fill) != 0) {
                        note_mismatch(t, i);
                        r = -EBADMSG;
                }
        }
        if (r < 0)
                return r;
        l->run_first += l->fill / bs;
        memset(l->run, 0, l->fill);
        l->fill = 0;
        return 0;
}

static int add_digest(struct verity_tree *t, unsigned i, const uint8_t d[VERITY_DIGEST_SIZE]);

/* Block (l->fill - bs .. l->fill) of level i is complete: hash it, flush the run if full (or final), then hand
 * the hash up. Lower levels are flushed before the levels above see their hash, so a compare names the lowest
 * differing level first. */
static int block_done(struct verity_tree *t, unsigned i, bool final) {
        struct level *l = &t->levels[i];
        uint32_t bs = t->p.hash_block_size;
        uint8_t d[VERITY_DIGEST_SIZE];
        int r = salted_init(t, t->block_ctx);
        if (r < 0)
                return r;
        if (EVP_DigestUpdate(t->block_ctx, l->run + l->fill - bs, bs) != 1)
                return -EIO;
        r = digest_final(t->block_ctx, d);
        if (r < 0)
                return r;
        l->done++;
        if (final || l->fill == l->run_cap * bs) {
                r = flush_run(t, i);
                if (r < 0)
                        return r;
        }
        if (i + 1 == t->layout.levels) {
                assert(l->done == 1);
                memcpy(t->root, d, sizeof d);
                t->have_root = true;
                return 0;
        }
        return add_digest(t, i + 1, d);
}

static int add_digest(struct verity_tree *t, unsigned i, const uint8_t d[VERITY_DIGEST_SIZE]) {
        struct level *l = &t->levels[i];
        uint32_t bs = t->p.hash_block_size;
        assert(l->fill < l->run_cap * bs);
        memcpy(l->run + l->fill, d, VERITY_DIGEST_SIZE);
        l->fill += VERITY_DIGEST_SIZE;
        return l->fill % bs == 0 ? block_done(t, i, false) : 0;
}

int verity_tree_update(struct verity_tree *t, const void *buf, size_t len) {
        assert(t);
        assert(buf || len == 0);
        const uint8_t *p = buf;
        uint32_t bs = t->p.data_block_size;
        while (len > 0 && t->error == 0) {
                if (t->data_done == t->p.data_blocks) {
                        t->error = -EFBIG;
                        break;
                }
                int r = 0;
                /* A whole zero block (free space of a file system, mostly): its hash is always the same. Telling it
                 * costs a memcmp, which stops at the first non-zero byte of any other block. */
                if (t->data_fill == 0 && len >= bs && p[0] == 0 && memcmp(p, p + 1, bs - 1) == 0) {
                        if (!t->have_zero) {
                                r = salted_init(t, t->data_ctx);
                                if (r >= 0 && EVP_DigestUpdate(t->data_ctx, p, bs) != 1)
                                        r = -EIO;
                                if (r >= 0)
                                        r = digest_final(t->data_ctx, t->zero_digest);
                                t->have_zero = r >= 0;
                        }
                        p += bs;
                        len -= bs;
                        t->data_done++;
                        if (r >= 0 && t->layout.levels == 0) {
                                memcpy(t->root, t->zero_digest, VERITY_DIGEST_SIZE);
                                t->have_root = true;
                        } else if (r >= 0)
                                r = add_digest(t, 0, t->zero_digest);
                        if (r < 0)
                                t->error = r;
                        continue;
                }
                if (t->data_fill == 0)
                        r = salted_init(t, t->data_ctx);
                size_t n = MIN(len, (size_t)(bs - t->data_fill));
                if (r >= 0 && EVP_DigestUpdate(t->data_ctx, p, n) != 1)
                        r = -EIO;
                p += n;
                len -= n;
                t->data_fill += (uint32_t)n;
                if (r >= 0 && t->data_fill == bs) {
                        uint8_t d[VERITY_DIGEST_SIZE];
                        t->data_fill = 0;
                        t->data_done++;
                        r = digest_final(t->data_ctx, d);
                        if (r >= 0 && t->layout.levels == 0) {
                                memcpy(t->root, d, sizeof d);
                                t->have_root = true;
                        } else if (r >= 0)
                                r = add_digest(t, 0, d);
                }
                if (r < 0)
                        t->error = r;
        }
        return t->error;
}

int verity_tree_finish(struct verity_tree *t, uint8_t ret_root[VERITY_DIGEST_SIZE]) {
        assert(t && ret_root);
        if (t->error)
                return t->error;
        if (t->data_done != t->p.data_blocks || t->data_fill)
                return (t->error = -ENODATA);
        uint32_t bs = t->p.hash_block_size;
        for (unsigned i = 0; i < t->layout.levels; i++) {
                struct level *l = &t->levels[i];
                int r = 0;
                if (l->fill % bs) {
                        l->fill = ALIGN_UP(l->fill, bs); /* the rest of the block is zero already */
                        r = block_done(t, i, true);
                } else
                        r = flush_run(t, i);
                if (r < 0)
                        return (t->error = r);
                if (l->done != t->layout.level_blocks[i])
                        return (t->error = -EIO); /* cannot happen: the layout and the stream disagree */
        }
        if (!t->have_root)
                return (t->error = -EIO);
        memcpy(ret_root, t->root, VERITY_DIGEST_SIZE);
        return 0;
}

int verity_tree_mismatch(const struct verity_tree *t, struct verity_mismatch *ret) {
        assert(t && ret);
        if (!t->have_mismatch)
                return -ENOENT;
        *ret = t->mismatch;
        return 0;
}

int verity_hash_fd(const struct verity_params *p, int data_fd, uint64_t data_offset, enum verity_mode mode,
                   int hash_fd, uint64_t hash_offset, uint8_t ret_root[VERITY_DIGEST_SIZE],
                   struct verity_mismatch *mismatch_out) {
        assert(p && data_fd >= 0 && ret_root);
        _cleanup_(verity_tree_freep) struct verity_tree *t = NULL;
        int r = verity_tree_new(p, mode, hash_fd, hash_offset, &t);
        if (r < 0)
                return r;
        uint64_t left = p->data_blocks * p->data_block_size; /* fits: verity_tree_new() checked */
        if (data_offset > INT64_MAX - left)
                return -EFBIG;
        _cleanup_free_ uint8_t *buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        (void)posix_fadvise(data_fd, (off_t)data_offset, (off_t)left, POSIX_FADV_SEQUENTIAL);
        for (uint64_t off = data_offset; left > 0;) {
                size_t n = (size_t)MIN(left, (uint64_t)READ_CHUNK);
                r = pread_full(data_fd, buf, n, off);
                if (r >= 0)
                        r = verity_tree_update(t, buf, n);
                if (r < 0)
                        break;
                off += n;
                left -= n;
        }
        uint8_t root[VERITY_DIGEST_SIZE];
        if (r >= 0)
                r = verity_tree_finish(t, root);
        if (r == -EBADMSG && mismatch_out)
                (void)verity_tree_mismatch(t, mismatch_out);
        if (r < 0)
                return r;
        memcpy(ret_root, root, sizeof root);
        return 0;
}
