/* tests/fuzz/fuzz-manifest.c — libFuzzer target for the payload header, signature block and manifest parser
 * (full payloads, format 1, and delta payloads, format 2). */
#include <stdint.h>

#include "payload/payload.h"

static CairnKeyring ring;
static bool ready;

/* The public half of the key that signed the committed seeds (its private half was thrown away), so the
 * seeds take payload_load()'s whole verified path and mutants exercise the rejection paths. */
static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MCowBQYDK2VwAyEA56ZEXq//tYldbztIuLJj6Cxx7COi0x/ZKYwYrKSSbL0=\n"
                              "-----END PUBLIC KEY-----\n";
/* The same for the delta (format 2) seeds, delta-*.cairn. */
static const char pub_delta_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                    "MCowBQYDK2VwAyEAKwkOghlHVFsovXKoxRXrlvpjXweDB8UW7JIOhf2mtVM=\n"
                                    "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!ready) {
                keyring_init(&ring);
                EVP_PKEY *k = NULL;
                if (key_parse_public(pub_pem, sizeof pub_pem - 1, &k) < 0 || keyring_add(&ring, k) < 0)
                        __builtin_trap(); /* the embedded key must load */
                if (key_parse_public(pub_delta_pem, sizeof pub_delta_pem - 1, &k) < 0 || keyring_add(&ring, k) < 0)
                        __builtin_trap();
                ready = true;
        }
        if (size > PAYLOAD_PREFIX_MAX)
                return 0;

        size_t prefix;
        (void)payload_prefix_size(data, size, &prefix);

        Payload *p = NULL;
        if (payload_load(data, size, &ring, &p) >= 0) {
                if (!p->verified || p->chunk_count == 0)
                        __builtin_trap();
                payload_free(p);
                p = NULL;
        }

        if (payload_parse_unverified(data, size, &p) >= 0) {
                (void)payload_check_signatures(p, data, size, &ring);
                /* Walk the chunk table as a consumer would: decode chunks whose bytes are in the input. */
                uint8_t out[PAYLOAD_CHUNK_SIZE_MIN];
                for (uint32_t i = 0; i < p->chunk_count && i < 64; i++) {
                        const PayloadChunk *c = &p->chunks[i];
                        if (c->raw_len <= sizeof out && c->offset <= size && c->stored_len <= size - c->offset)
                                (void)payload_chunk_decode(p, i, data + c->offset, c->stored_len, out, c->raw_len);
                        /* Delta chunks: the reference from the input's own bytes where it fits (its hash decides;
                         * mutants of the seeds reach the checks behind it). */
                        if (p->is_delta && c->raw_len <= sizeof out && c->offset <= size &&
                            c->stored_len <= size - c->offset && c->ref_len <= size)
                                (void)payload_chunk_decode_ref(p, i, data + c->offset, c->stored_len, data, c->ref_len,
                                                               out, c->raw_len);
                }
                payload_free(p);
        }
        return 0;
}
