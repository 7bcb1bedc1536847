/* updater/payload/payload-write.c — the payload writer: chunks compressed by a pool of worker threads, the
 * manifest, its signatures, and the file in one sequential write. */
#include "payload.h"
#include "payload-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "fileio.h"

typedef struct Slot {
        uint8_t *raw, *out;
        size_t out_len;
        uint32_t raw_len;
        uint8_t method;
        uint8_t sha256[SHA256_SIZE];
        uint64_t ref_offset; /* delta: COPY/PATCH reference */
        uint32_t ref_len;
        uint8_t ref_sha256[SHA256_SIZE];
        bool done;
} Slot;

/* A source chunk's SHA-256, for finding a target chunk's bytes anywhere in the source (COPY). */
typedef struct SrcEntry {
        uint8_t sha256[SHA256_SIZE];
        uint32_t idx;
} SrcEntry;

/* What a worker owns for a delta: the reference it reads and the patch it tries. */
typedef struct WorkerBufs {
        uint8_t *ref, *patch;
} WorkerBufs;

typedef struct Job {
        int image_fd;
        uint64_t image_size;
        uint32_t cs, count;
        PayloadMethod compression;
        int level;
        uint8_t zero_sha[SHA256_SIZE]; /* SHA-256 of cs zero bytes */
        size_t out_cap;
        unsigned window;
        Slot *slots;
        /* Delta: the source image, its chunks' hashes (by index and sorted), the window each side. */
        bool delta;
        int src_fd;
        uint64_t src_size;
        uint32_t src_count;
        uint8_t (*src_sha)[SHA256_SIZE];
        SrcEntry *src_sorted;
        uint32_t n_sorted;
        uint32_t delta_window;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        uint32_t next, written;
        int err;
} Job;

static int src_cmp(const void *a, const void *b) {
        const SrcEntry *x = a, *y = b;
        int c = memcmp(x->sha256, y->sha256, SHA256_SIZE);
        return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* The first full-size source chunk with this SHA-256, or -1. */
static int64_t src_find(const Job *j, const uint8_t sha[SHA256_SIZE]) {
        size_t lo = 0, hi = j->n_sorted;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(j->src_sorted[mid].sha256, sha, SHA256_SIZE);
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < j->n_sorted && memcmp(j->src_sorted[lo].sha256, sha, SHA256_SIZE) == 0 ? (int64_t)j->src_sorted[lo].idx : -1;
}

static uint32_t src_chunk_len(const Job *j, uint32_t k) {
        return (uint32_t)MIN((uint64_t)j->cs, j->src_size - (uint64_t)k * j->cs);
}

/* A delta's first choice for a non-zero chunk (s->raw, s->sha256 set): COPY of the same-offset source chunk or of
 * any source chunk with its bytes. True when it is one (nothing to compress). */
static bool delta_copy(Job *j, uint32_t idx, Slot *s) {
        int64_t from = -1;
        if (idx < j->src_count && src_chunk_len(j, idx) == s->raw_len &&
            memcmp(j->src_sha[idx], s->sha256, SHA256_SIZE) == 0)
                from = idx;
        else if (s->raw_len == j->cs)
                from = src_find(j, s->sha256);
        if (from >= 0) {
                s->method = PAYLOAD_METHOD_COPY;
                s->out_len = 0;
                s->ref_offset = (uint64_t)from * j->cs;
                s->ref_len = s->raw_len;
                memcpy(s->ref_sha256, s->sha256, SHA256_SIZE);
                return true;
        }
        return false;
}

/* Else PATCH against the source around the same offset, if that is smaller than the full encoding already in
 * s->out (out_len). */
static int delta_patch(Job *j, ZSTD_CCtx *zc, WorkerBufs *wb, uint32_t idx, Slot *s) {
        uint64_t off = (uint64_t)idx * j->cs;
        uint64_t lo = off > j->delta_window ? off - j->delta_window : 0;
        uint64_t hi = MIN(off + s->raw_len + j->delta_window, j->src_size);
        if (lo >= hi) {
                /* Beyond the end of the source (the image grew): the source's last window instead. */
                uint64_t want = MIN((uint64_t)s->raw_len + 2ull * j->delta_window, j->src_size);
                hi = j->src_size;
                lo = (hi - want) / PAYLOAD_CHUNK_SIZE_ALIGN * PAYLOAD_CHUNK_SIZE_ALIGN;
        }
        uint32_t ref_len = (uint32_t)MIN(hi - lo, ref_len_max(j->cs));
        int r = pread_full(j->src_fd, wb->ref, ref_len, lo);
        if (r < 0)
                return r == -EIO ? -ENODATA : r;
        size_t n = patch_encode(zc, j->level, wb->ref, ref_len, s->raw, s->raw_len, wb->patch, j->out_cap);
        if (n == SIZE_MAX || n >= s->out_len)
                return 0; /* the full encoding is no larger: keep it */
        memcpy(s->out, wb->patch, n);
        s->out_len = n;
        s->method = PAYLOAD_METHOD_PATCH;
        s->ref_offset = lo;
        s->ref_len = ref_len;
        return sha256(wb->ref, ref_len, s->ref_sha256);
}

static int chunk_encode(Job *j, ZSTD_CCtx *zc, WorkerBufs *wb, uint32_t idx, Slot *s) {
        uint64_t off = (uint64_t)idx * j->cs;
        s->raw_len = (uint32_t)MIN((uint64_t)j->cs, j->image_size - off);
        int r = pread_full(j->image_fd, s->raw, s->raw_len, off);
        if (r < 0)
                return r == -EIO ? -ENODATA : r; /* the image shrank under us */
        s->ref_offset = 0;
        s->ref_len = 0;
        memset(s->ref_sha256, 0, SHA256_SIZE);
        if (all_zero(s->raw, s->raw_len)) {
                s->method = PAYLOAD_METHOD_ZERO;
                s->out_len = 0;
                if (s->raw_len == j->cs)
                        memcpy(s->sha256, j->zero_sha, SHA256_SIZE);
                else if ((r = sha256(s->raw, s->raw_len, s->sha256)) < 0)
                        return r;
                return 0;
        }
        r = sha256(s->raw, s->raw_len, s->sha256);
        if (r < 0)
                return r;
        if (j->delta && delta_copy(j, idx, s))
                return 0;
        size_t n = 0;
        if (j->compression == PAYLOAD_METHOD_ZSTD) {
                if (j->delta) { /* patch_encode() changed the parameters */
                        ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
                        if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, j->level)) ||
                            ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 0)) ||
                            ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_contentSizeFlag, 1)))
                                return -EINVAL;
                }
                n = ZSTD_compress2(zc, s->out, j->out_cap, s->raw, s->raw_len);
                if (ZSTD_isError(n))
                        n = SIZE_MAX;
        } else if (j->compression == PAYLOAD_METHOD_ZLIB) {
                uLongf dlen = j->out_cap;
                n = compress2(s->out, &dlen, s->raw, s->raw_len, j->level) == Z_OK ? dlen : SIZE_MAX;
        } else
                n = SIZE_MAX;
        if (n < s->raw_len) {
                s->method = (uint8_t)j->compression;
                s->out_len = n;
        } else {
                s->method = PAYLOAD_METHOD_NONE;
                s->out_len = s->raw_len;
        }
        return j->delta ? delta_patch(j, zc, wb, idx, s) : 0;
}

static void *worker(void *arg) {
        Job *j = arg;
        ZSTD_CCtx *zc = ZSTD_createCCtx();
        WorkerBufs wb = { 0 };
        if (j->delta) {
                wb.ref = malloc(ref_len_max(j->cs));
                wb.patch = malloc(j->out_cap);
        }
        int r = 0;
        if (!zc || (j->delta && (!wb.ref || !wb.patch)))
                r = -ENOMEM;
        else if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, j->level)) ||
                 ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 0)) ||
                 ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_contentSizeFlag, 1)))
                r = -EINVAL;
        pthread_mutex_lock(&j->mu);
        if (r < 0 && !j->err)
                j->err = r;
        while (!j->err && j->next < j->count) {
                if (j->next >= j->written + j->window) {
                        pthread_cond_wait(&j->cv, &j->mu);
                        continue;
                }
                uint32_t idx = j->next++;
                Slot *s = &j->slots[idx % j->window];
                pthread_mutex_unlock(&j->mu);
                r = chunk_encode(j, zc, &wb, idx, s);
                pthread_mutex_lock(&j->mu);
                if (r < 0 && !j->err)
                        j->err = r;
                s->done = true;
                pthread_cond_broadcast(&j->cv);
        }
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        ZSTD_freeCCtx(zc);
        free(wb.ref);
        free(wb.patch);
        return NULL;
}

static int build_manifest(const PayloadBuildOptions *o, const Job *j, const PayloadChunk *chunks,
                          const uint8_t image_sha[SHA256_SIZE], const uint8_t source_sha[SHA256_SIZE],
                          uint64_t data_offset, uint64_t payload_size, uint8_t *m, size_t mlen) {
        size_t vlen = strlen(o->version), blen = strlen(o->board);
        size_t fixed = manifest_fixed_size(j->delta), esize = chunk_entry_size(j->delta);
        memset(m, 0, mlen);
        memcpy(m, MANIFEST_MAGIC, 4);
        put_le32(m + 4, j->delta ? PAYLOAD_FORMAT_DELTA : PAYLOAD_FORMAT_VERSION);
        if (j->delta) {
                put_le64(m + 224, j->src_size);
                memcpy(m + 240, source_sha, SHA256_SIZE);
        }
        put_le64(m + 8, j->image_size);
        memcpy(m + 16, image_sha, SHA256_SIZE);
        put_le32(m + 48, j->cs);
        put_le32(m + 52, j->count);
        put_le64(m + 56, data_offset);
        put_le64(m + 64, payload_size);
        m[72] = (uint8_t)j->compression;
        m[73] = (o->verity_root ? MANIFEST_FLAG_VERITY : 0) | (o->verity_hash_offset ? MANIFEST_FLAG_VERITY_LAYOUT : 0);
        m[74] = (uint8_t)vlen;
        m[75] = (uint8_t)blen;
        put_le16(m + 76, (uint16_t)o->n_revoked);
        if (o->verity_root)
                memcpy(m + 80, o->verity_root, SHA256_SIZE);
        if (o->verity_hash_offset) {
                put_le16(m + 78, (uint16_t)o->verity_salt_size);
                put_le64(m + 208, o->verity_hash_offset);
        }
        if (o->kernel_sha256)
                memcpy(m + 112, o->kernel_sha256, SHA256_SIZE);
        if (o->initrd_sha256)
                memcpy(m + 144, o->initrd_sha256, SHA256_SIZE);
        if (o->cmdline_sha256)
                memcpy(m + 176, o->cmdline_sha256, SHA256_SIZE);
        uint8_t *v = m + fixed;
        memcpy(v, o->version, vlen);
        memcpy(v + vlen, o->board, blen);
        for (size_t i = 0; i < o->n_revoked; i++)
                memcpy(v + vlen + blen + i * CAIRN_KEY_ID_SIZE, o->revoked[i], CAIRN_KEY_ID_SIZE);
        size_t salt_len = o->verity_hash_offset ? o->verity_salt_size : 0;
        if (salt_len)
                memcpy(v + vlen + blen + o->n_revoked * CAIRN_KEY_ID_SIZE, o->verity_salt, salt_len);
        uint8_t *t = m + ALIGN_UP(fixed + vlen + blen + o->n_revoked * CAIRN_KEY_ID_SIZE + salt_len, 8);
        for (uint32_t i = 0; i < j->count; i++) {
                uint8_t *e = t + (size_t)i * esize;
                put_le64(e, chunks[i].offset);
                put_le32(e + 8, chunks[i].stored_len);
                put_le32(e + 12, chunks[i].raw_len);
                e[16] = chunks[i].method;
                memcpy(e + 24, chunks[i].sha256, SHA256_SIZE);
                if (j->delta && chunks[i].ref_len) {
                        put_le64(e + 56, chunks[i].ref_offset);
                        put_le32(e + 64, chunks[i].ref_len);
                        memcpy(e + 72, chunks[i].ref_sha256, SHA256_SIZE);
                }
        }
        return 0;
}

static int options_check(const PayloadBuildOptions *o, uint32_t cs) {
        if (!o->version || !valid_string((const uint8_t *)o->version, strlen(o->version)) || !o->board ||
            !valid_string((const uint8_t *)o->board, strlen(o->board)))
                return -EINVAL;
        if (!chunk_size_valid(cs))
                return -EINVAL;
        if (o->n_keys < 1 || o->n_keys > PAYLOAD_SIGNATURES_MAX || o->n_revoked > PAYLOAD_REVOKED_MAX ||
            o->verity_salt_size > PAYLOAD_VERITY_SALT_MAX)
                return -E2BIG;
        if (o->compression != PAYLOAD_METHOD_NONE && o->compression != PAYLOAD_METHOD_ZSTD &&
            o->compression != PAYLOAD_METHOD_ZLIB)
                return -EINVAL;
        if (o->delta && (o->source_fd < 0 || o->compression != PAYLOAD_METHOD_ZSTD || o->window > cs ||
                         o->window % PAYLOAD_CHUNK_SIZE_ALIGN))
                return -EINVAL;
        return 0;
}

/* One pass over the delta's source: its SHA-256 and every chunk's. */
static int source_index(Job *j, uint8_t source_sha[SHA256_SIZE]) {
        uint64_t size;
        bool regular;
        int r = fd_size(j->src_fd, &size, &regular);
        if (r < 0)
                return r;
        if (size == 0)
                return -ENODATA;
        if (size > PAYLOAD_IMAGE_SIZE_MAX)
                return -EFBIG;
        j->src_size = size;
        uint64_t count = (size + j->cs - 1) / j->cs;
        if (count > PAYLOAD_CHUNKS_MAX)
                return -E2BIG;
        j->src_count = (uint32_t)count;
        j->src_sha = calloc(count, SHA256_SIZE);
        j->src_sorted = calloc(count, sizeof *j->src_sorted);
        _cleanup_free_ uint8_t *buf = malloc(j->cs);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!j->src_sha || !j->src_sorted || !buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -ENOMEM;
        (void)posix_fadvise(j->src_fd, 0, (off_t)size, POSIX_FADV_SEQUENTIAL);
        for (uint32_t k = 0; k < j->src_count; k++) {
                uint32_t len = src_chunk_len(j, k);
                r = pread_full(j->src_fd, buf, len, (uint64_t)k * j->cs);
                if (r < 0)
                        return r == -EIO ? -ENODATA : r;
                if (!EVP_DigestUpdate(ctx, buf, len))
                        return -EIO;
                r = sha256(buf, len, j->src_sha[k]);
                if (r < 0)
                        return r;
                if (len == j->cs) {
                        memcpy(j->src_sorted[j->n_sorted].sha256, j->src_sha[k], SHA256_SIZE);
                        j->src_sorted[j->n_sorted++].idx = k;
                }
        }
        if (!EVP_DigestFinal_ex(ctx, source_sha, NULL))
                return -EIO;
        qsort(j->src_sorted, j->n_sorted, sizeof *j->src_sorted, src_cmp);
        return 0;
}

/* The key ids of the signing keys; -ENOTUNIQ when one key is given twice. */
static int signing_key_ids(const PayloadBuildOptions *o, uint8_t key_ids[][CAIRN_KEY_ID_SIZE]) {
        int r;
        for (size_t i = 0; i < o->n_keys; i++) {
                r = key_id(o->keys[i], key_ids[i]);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (memcmp(key_ids[k], key_ids[i], CAIRN_KEY_ID_SIZE) == 0)
                                return -ENOTUNIQ;
        }

        return 0;
}

/* The writer: take the chunks in order from the workers, hash the image, append the stored bytes at *at. */
static int write_chunks(Job *j, int out_fd, EVP_MD_CTX *ctx, PayloadChunk *chunks, uint64_t *at_io) {
        Slot *slots = j->slots;
        uint64_t at = *at_io;
        int r = 0;
        for (uint32_t i = 0; i < j->count; i++) {
                Slot *s = &slots[i % j->window];
                pthread_mutex_lock(&j->mu);
                while (!s->done && !j->err)
                        pthread_cond_wait(&j->cv, &j->mu);
                r = j->err;
                pthread_mutex_unlock(&j->mu);
                if (r < 0)
                        break;
                if (!EVP_DigestUpdate(ctx, s->raw, s->raw_len))
                        r = -EIO;
                if (r >= 0 && s->out_len > 0)
                        r = pwrite_full(out_fd, s->method == PAYLOAD_METHOD_NONE ? s->raw : s->out, s->out_len, at);
                chunks[i] = (PayloadChunk){
                        .offset = at, .stored_len = (uint32_t)s->out_len, .raw_len = s->raw_len, .method = s->method};
                memcpy(chunks[i].sha256, s->sha256, SHA256_SIZE);
                chunks[i].ref_offset = s->ref_offset;
                chunks[i].ref_len = s->ref_len;
                memcpy(chunks[i].ref_sha256, s->ref_sha256, SHA256_SIZE);
                at += s->out_len;
                pthread_mutex_lock(&j->mu);
                if (r < 0 && !j->err)
                        j->err = r;
                s->done = false;
                j->written = i + 1;
                pthread_cond_broadcast(&j->cv);
                pthread_mutex_unlock(&j->mu);
                if (r < 0)
                        break;
        }
        *at_io = at;
        return r;
}

/* Header, manifest and signature block at the start of the file (the chunks are already behind them). */
static int write_prefix(const PayloadBuildOptions *o, bool delta, uint8_t key_ids[][CAIRN_KEY_ID_SIZE], const uint8_t *manifest,
                        uint32_t mlen, uint32_t slen, int out_fd) {
        int r;
        uint8_t head[PAYLOAD_HEADER_SIZE + PAYLOAD_SIGBLOCK_MAX] = {};
        memcpy(head, PAYLOAD_MAGIC, 8);
        put_le32(head + 8, delta ? PAYLOAD_FORMAT_DELTA : PAYLOAD_FORMAT_VERSION);
        put_le32(head + 12, PAYLOAD_HEADER_SIZE);
        put_le32(head + 16, mlen);
        put_le32(head + 20, slen);
        uint8_t *sb = head + PAYLOAD_HEADER_SIZE;
        memcpy(sb, SIGBLOCK_MAGIC, 4);
        put_le32(sb + 4, (uint32_t)o->n_keys);
        for (size_t i = 0; i < o->n_keys; i++) {
                uint8_t *e = sb + PAYLOAD_SIGBLOCK_FIXED_SIZE + i * PAYLOAD_SIG_ENTRY_SIZE;
                memcpy(e, key_ids[i], CAIRN_KEY_ID_SIZE);
                r = sign_ed25519(o->keys[i], manifest, mlen, e + CAIRN_KEY_ID_SIZE);
                if (r < 0)
                        return r;
        }
        r = pwrite_full(out_fd, head, PAYLOAD_HEADER_SIZE, 0);
        if (r >= 0)
                r = pwrite_full(out_fd, manifest, mlen, PAYLOAD_HEADER_SIZE);
        if (r >= 0)
                r = pwrite_full(out_fd, sb, slen, PAYLOAD_HEADER_SIZE + mlen);
        return r;
}

int payload_create(int image_fd, int out_fd, const PayloadBuildOptions *o, uint64_t *ret_size) {
        uint32_t cs = o->chunk_size ? o->chunk_size : PAYLOAD_CHUNK_SIZE_DEFAULT;
        int r = options_check(o, cs);
        if (r < 0)
                return r;

        uint8_t key_ids[PAYLOAD_SIGNATURES_MAX][CAIRN_KEY_ID_SIZE];
        r = signing_key_ids(o, key_ids);
        if (r < 0)
                return r;

        uint64_t image_size;
        bool regular;
        r = fd_size(image_fd, &image_size, &regular);
        if (r < 0)
                return r;
        if (image_size == 0)
                return -ENODATA;
        if (image_size > PAYLOAD_IMAGE_SIZE_MAX)
                return -EFBIG;
        uint64_t count = (image_size + cs - 1) / cs;
        if (count > PAYLOAD_CHUNKS_MAX)
                return -E2BIG;
        if (o->verity_hash_offset && (!o->verity_root || o->verity_hash_offset % VERITY_BLOCK ||
                                      o->verity_hash_offset >= image_size))
                return -ERANGE;
        uint64_t mlen = manifest_size_v(o->delta, strlen(o->version), strlen(o->board), o->n_revoked,
                                        o->verity_hash_offset ? o->verity_salt_size : 0, count);
        if (mlen > PAYLOAD_MANIFEST_MAX)
                return -E2BIG;
        uint32_t slen = PAYLOAD_SIGBLOCK_FIXED_SIZE + (uint32_t)o->n_keys * PAYLOAD_SIG_ENTRY_SIZE;
        uint64_t data_offset = PAYLOAD_HEADER_SIZE + mlen + slen;

        unsigned threads = o->threads;
        if (threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                threads = n > 0 ? (unsigned)n : 1;
        }
        threads = MIN(threads, 64u);

        Job j = {
                .image_fd = image_fd,
                .image_size = image_size,
                .cs = cs,
                .count = (uint32_t)count,
                .compression = o->compression,
                .level = o->level ? o->level : (o->compression == PAYLOAD_METHOD_ZLIB ? 6 : o->delta ? 19 : 3),
                .out_cap = o->compression == PAYLOAD_METHOD_ZLIB ? compressBound(cs) : ZSTD_compressBound(cs),
                .window = threads * 4 + 2, /* slack so one slow chunk or a descheduled writer stalls no one */
                .delta = o->delta,
                .src_fd = o->delta ? o->source_fd : -1,
                .delta_window = o->window,
        };
        uint8_t source_sha[SHA256_SIZE] = { 0 };
        _cleanup_free_ void *src_sha_mem = NULL, *src_sorted_mem = NULL;
        if (j.delta) {
                r = source_index(&j, source_sha);
                src_sha_mem = j.src_sha;
                src_sorted_mem = j.src_sorted;
                if (r < 0)
                        return r;
        }
        _cleanup_free_ PayloadChunk *chunks = calloc(count, sizeof *chunks);
        _cleanup_free_ uint8_t *manifest = malloc(mlen);
        _cleanup_free_ Slot *slots = calloc(j.window, sizeof *slots);
        _cleanup_free_ uint8_t *zeros = calloc(1, cs);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!chunks || !manifest || !slots || !zeros || !ctx)
                return -ENOMEM;
        j.slots = slots;
        r = sha256(zeros, cs, j.zero_sha);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < j.window && r >= 0; i++) {
                slots[i].raw = malloc(cs);
                slots[i].out = malloc(j.out_cap);
                if (!slots[i].raw || !slots[i].out)
                        r = -ENOMEM;
        }
        if (r >= 0 && !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                r = -EIO;

        pthread_t tids[64];
        unsigned started = 0;
        pthread_mutex_init(&j.mu, NULL);
        pthread_cond_init(&j.cv, NULL);
        if (r < 0)
                j.err = r;
        for (; started < threads; started++)
                if (pthread_create(&tids[started], NULL, worker, &j) != 0) {
                        pthread_mutex_lock(&j.mu);
                        j.err = -EAGAIN;
                        pthread_cond_broadcast(&j.cv);
                        pthread_mutex_unlock(&j.mu);
                        break;
                }

        uint64_t at = data_offset;
        if (r >= 0)
                r = write_chunks(&j, out_fd, ctx, chunks, &at);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        pthread_mutex_destroy(&j.mu);
        pthread_cond_destroy(&j.cv);
        for (unsigned i = 0; i < j.window; i++) {
                free(slots[i].raw);
                free(slots[i].out);
        }

        if (r >= 0)
                r = j.err;
        if (r < 0)
                return r;

        uint8_t image_sha[SHA256_SIZE];
        if (!EVP_DigestFinal_ex(ctx, image_sha, NULL))
                return -EIO;
        uint64_t payload_size = at;
        build_manifest(o, &j, chunks, image_sha, source_sha, data_offset, payload_size, manifest, mlen);

        r = write_prefix(o, j.delta, key_ids, manifest, (uint32_t)mlen, slen, out_fd);
        if (r >= 0 && ftruncate(out_fd, (off_t)payload_size) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(out_fd) < 0)
                r = negative_errno();
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = payload_size;
        return 0;
}
