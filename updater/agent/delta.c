/* updater/agent/delta.c — applying a delta payload (format 2) against the active slot: the plan (COPY chunks read
 * from the slot, PATCH and full chunks downloaded), the up-front check of every reference the rest of the apply
 * will use, and the per-chunk decode with its reference read from the active slot. The pipeline itself (workers,
 * checkpoints, read-back) is apply.c's. */
#include "agent.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>

#include "fileio.h"

static int delta_fail(AgentApply *a, int ec, int r, const char *fmt, ...) _printf_(4, 5);
static int delta_fail(AgentApply *a, int ec, int r, const char *fmt, ...) {
        if (!a->error[0]) { /* the first failure wins, as in apply.c */
                a->errcode = ec ? ec : AGENT_EC_ERROR;
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(a->error, sizeof a->error, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int source_mismatch(AgentApply *a, uint32_t idx, const PayloadChunk *c, const char *why) {
        a->source_mismatch = true;
        a->bad_chunk = idx;
        return delta_fail(a, AGENT_EC_PAYLOAD_HASH_MISMATCH, -ESTALE,
                          "chunk %u: the active slot is not this delta's source release (its reference, bytes %" PRIu64
                          "+%" PRIu32 " of the active slot, %s)", idx, c->ref_offset, c->ref_len, why);
}

/* Read chunk idx's reference from the active slot into ref. */
static int read_ref(AgentApply *a, uint32_t idx, uint8_t *ref) {
        const PayloadChunk *c = &a->p->chunks[idx];
        if (c->ref_offset > a->active_size || c->ref_len > a->active_size - c->ref_offset)
                return source_mismatch(a, idx, c, "lies beyond its end");
        int r = pread_full(a->fd, ref, c->ref_len, a->active_off + c->ref_offset);
        if (r < 0)
                return delta_fail(a, 0, r, "reading the active slot at byte %" PRIu64 ": %s",
                                  a->active_off + c->ref_offset, strerror(-r));
        return 0;
}

int agent_delta_plan(AgentApply *a, uint8_t *actions, uint32_t *src) {
        const Payload *p = a->p;
        if (a->active_size == 0) {
                a->source_mismatch = true;
                return delta_fail(a, AGENT_EC_PAYLOAD_HASH_MISMATCH, -ESTALE,
                                  "a delta payload needs the active slot as its source (delta use is off)");
        }
        _cleanup_free_ uint8_t *ref = malloc(MIN((uint64_t)PAYLOAD_REF_CHUNKS_MAX * p->chunk_size, PAYLOAD_REF_MAX));
        if (!ref)
                return delta_fail(a, 0, -ENOMEM, "out of memory");
        /* Every reference the apply will use is checked now, before anything of the delta beyond its manifest is
         * downloaded: a host whose active slot is not the source finds out at once (and falls back to the full
         * payload). The workers check each reference again when they use it. */
        for (uint32_t i = 0; i < p->chunk_count; i++) {
                const PayloadChunk *c = &p->chunks[i];
                src[i] = 0;
                if (i < a->start_chunk) {
                        actions[i] = AGENT_CHUNK_DONE;
                        continue;
                }
                actions[i] = c->method == PAYLOAD_METHOD_ZERO   ? AGENT_CHUNK_ZERO
                             : c->method == PAYLOAD_METHOD_COPY ? AGENT_CHUNK_COPY
                                                                : AGENT_CHUNK_DOWNLOAD;
                if (c->ref_len == 0)
                        continue;
                if (agent_cancelled())
                        return delta_fail(a, 0, -ECANCELED, "interrupted (stop requested) while checking the active slot");
                int r = read_ref(a, i, ref);
                if (r < 0)
                        return r;
                uint8_t h[SHA256_SIZE];
                if (!EVP_Digest(ref, c->ref_len, h, NULL, EVP_sha256(), NULL))
                        return delta_fail(a, 0, -EIO, "hashing the active slot failed");
                if (CRYPTO_memcmp(h, c->ref_sha256, SHA256_SIZE) != 0)
                        return source_mismatch(a, i, c, "has a different SHA-256");
        }
        return 0;
}

int agent_delta_decode(AgentApply *a, uint32_t idx, const uint8_t *untrusted_stored, size_t len, uint8_t *ref,
                       uint8_t *out) {
        const PayloadChunk *c = &a->p->chunks[idx];
        if (c->ref_len) {
                int r = read_ref(a, idx, ref);
                if (r < 0)
                        return r;
        }
        int r = payload_chunk_decode_ref(a->p, idx, untrusted_stored, len, ref, c->ref_len, out, c->raw_len);
        if (r == -ESTALE)
                return source_mismatch(a, idx, c, "changed since it was checked");
        if (r < 0)
                return delta_fail(a, r == -EILSEQ ? AGENT_EC_OPERATION_HASH_MISMATCH : AGENT_EC_ERROR, r,
                                  "chunk %u of the payload: %s", idx, payload_strerror(r));
        return 0;
}
