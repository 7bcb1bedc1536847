/* updater/payload/delta.c — the delta half of the payload format (format 2): a chunk made from reference bytes of
 * the source image (COPY, or a zstd PATCH frame with the reference as its prefix), the reference checks, and the
 * patch encoder the writer uses. */
#include "payload.h"
#include "payload-internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "fileio.h"

/* Smallest window log whose window holds the reference and the chunk (a zstd prefix counts against the window). */
unsigned patch_window_log(size_t ref_len, size_t raw_len) {
        unsigned wl = 10; /* ZSTD_WINDOWLOG_ABSOLUTEMIN */
        while (wl < PATCH_WINDOW_LOG_MAX && ((size_t)1 << wl) < ref_len + raw_len)
                wl++;
        return wl;
}

int payload_chunk_decode_ref(const Payload *p, uint32_t idx, const void *untrusted_data, size_t len,
                             const void *untrusted_ref, size_t ref_len, void *out, size_t out_len) {
        if (idx >= p->chunk_count)
                return -EINVAL;
        const PayloadChunk *c = &p->chunks[idx];
        if (c->method != PAYLOAD_METHOD_COPY && c->method != PAYLOAD_METHOD_PATCH)
                return payload_chunk_decode(p, idx, untrusted_data, len, out, out_len);
        if (len != c->stored_len || out_len != c->raw_len || ref_len != c->ref_len || !untrusted_ref)
                return -EINVAL;
        /* The reference first: bytes from a slot that is not the delta's source are never decoded against. */
        uint8_t md[SHA256_SIZE];
        int r = sha256(untrusted_ref, ref_len, md);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(md, c->ref_sha256, SHA256_SIZE) != 0)
                return -ESTALE;
        if (c->method == PAYLOAD_METHOD_COPY) {
                memcpy(out, untrusted_ref, out_len); /* ref_len == raw_len and same SHA-256 (manifest rule) */
        } else {
                /* Exactly one frame that fills out exactly. The decoder refers to the prefix in place and writes
                 * into out directly: no window buffer beyond these two, whatever the frame header claims. */
                size_t fl = ZSTD_findFrameCompressedSize(untrusted_data, len);
                if (ZSTD_isError(fl) || fl != len)
                        return -EILSEQ;
                ZSTD_DCtx *dc = ZSTD_createDCtx();
                if (!dc)
                        return -ENOMEM;
                size_t n = ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, PATCH_WINDOW_LOG_MAX);
                if (!ZSTD_isError(n))
                        n = ZSTD_DCtx_refPrefix(dc, untrusted_ref, ref_len);
                if (!ZSTD_isError(n))
                        n = ZSTD_decompressDCtx(dc, out, out_len, untrusted_data, len);
                ZSTD_freeDCtx(dc);
                if (ZSTD_isError(n) || n != out_len)
                        return -EILSEQ;
        }
        r = sha256(out, out_len, md);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(md, c->sha256, SHA256_SIZE) != 0)
                return -EILSEQ;
        return 0;
}

int payload_source_check(const Payload *p, int source_fd) {
        if (!p->is_delta)
                return 0;
        uint64_t size;
        bool regular;
        int r = fd_size(source_fd, &size, &regular);
        if (r < 0)
                return r;
        if (size < p->source_size)
                return -ESTALE;
        const size_t bs = 1u << 20;
        _cleanup_free_ uint8_t *buf = malloc(bs);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -ENOMEM;
        for (uint64_t done = 0; done < p->source_size;) {
                size_t n = (size_t)MIN((uint64_t)bs, p->source_size - done);
                r = pread_full(source_fd, buf, n, done);
                if (r < 0)
                        return r == -EIO ? -ESTALE : r;
                if (!EVP_DigestUpdate(ctx, buf, n))
                        return -EIO;
                done += n;
        }
        uint8_t md[SHA256_SIZE];
        if (!EVP_DigestFinal_ex(ctx, md, NULL))
                return -EIO;
        return CRYPTO_memcmp(md, p->source_sha256, SHA256_SIZE) == 0 ? 0 : -ESTALE;
}

size_t patch_encode(ZSTD_CCtx *zc, int level, const void *ref, size_t ref_len, const void *src, size_t src_len,
                    void *out, size_t cap) {
        ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
        if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 0)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_contentSizeFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog, (int)patch_window_log(ref_len, src_len))) ||
            ZSTD_isError(ZSTD_CCtx_refPrefix(zc, ref, ref_len)))
                return SIZE_MAX;
        size_t n = ZSTD_compress2(zc, out, cap, src, src_len);
        return ZSTD_isError(n) ? SIZE_MAX : n;
}
