/* updater/payload/payload-internal.h — what the payload reader (payload.c) and writer (payload-write.c) share:
 * the format's magic numbers and layout arithmetic. Not for other rooms. */
#pragma once

#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "hash.h"
#include "le.h"
#include "payload.h"

#define MANIFEST_MAGIC "CMAN"
#define SIGBLOCK_MAGIC "CSIG"
#define MANIFEST_FLAG_VERITY 0x01u
#define MANIFEST_FLAG_VERITY_LAYOUT 0x02u /* hash offset at 208, salt length at 78, salt after the revoked ids */
#define VERITY_BLOCK 4096u



static inline bool all_zero(const void *data, size_t len) {
        const uint8_t *p = data;
        if (len == 0)
                return true;
        return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

static inline int sha256(const void *data, size_t len, uint8_t out[SHA256_SIZE]) {
        return sha256_buf(data, len, out);
}


static inline size_t manifest_fixed_size(bool delta) {
        return delta ? PAYLOAD_MANIFEST_FIXED_SIZE_DELTA : PAYLOAD_MANIFEST_FIXED_SIZE;
}

static inline size_t chunk_entry_size(bool delta) {
        return delta ? PAYLOAD_CHUNK_ENTRY_SIZE_DELTA : PAYLOAD_CHUNK_ENTRY_SIZE;
}

/* The manifest's length: fixed part, version, board, revoked ids and the dm-verity salt (with the verity layout
 * flag; salt_len 0 otherwise), padded to 8, then the chunk table. */
static inline uint64_t manifest_size_v(bool delta, size_t vlen, size_t blen, size_t n_revoked, size_t salt_len,
                                       uint64_t n_chunks) {
        return ALIGN_UP((uint64_t)manifest_fixed_size(delta) + vlen + blen + n_revoked * CAIRN_KEY_ID_SIZE + salt_len, 8) +
               n_chunks * chunk_entry_size(delta);
}

/* The longest reference a patch chunk of a payload with chunk size cs may name. */
static inline uint64_t ref_len_max(uint32_t cs) {
        return MIN((uint64_t)PAYLOAD_REF_CHUNKS_MAX * cs, (uint64_t)PAYLOAD_REF_MAX);
}

static inline bool valid_string(const uint8_t *s, size_t len) {
        if (len < 1 || len > PAYLOAD_STRING_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return false;
        return true;
}

static inline bool chunk_size_valid(uint64_t cs) {
        return cs >= PAYLOAD_CHUNK_SIZE_MIN && cs <= PAYLOAD_CHUNK_SIZE_MAX && cs % PAYLOAD_CHUNK_SIZE_ALIGN == 0;
}

/* ---- delta (delta.c) ---- */

/* The largest zstd window a patch frame may use: a 64 MiB reference plus a 64 MiB chunk. */
#define PATCH_WINDOW_LOG_MAX 27
unsigned patch_window_log(size_t ref_len, size_t raw_len);
/* Compress src with ref as zstd prefix into out (cap bytes); SIZE_MAX on failure or when it does not fit. Resets zc's
 * parameters. */
size_t patch_encode(ZSTD_CCtx *zc, int level, const void *ref, size_t ref_len, const void *src, size_t src_len,
                    void *out, size_t cap);
