/* tests/unit/test-delta.c — delta payloads (format 2): creation and application round trips, every reference-hash
 * failure path, a patch chunk whose output does not match, and the manifest rules for references. */
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "unit.h"
#include "fileio.h"
#include "payload/payload.h"

#define CS 4096u
#define NCH 24u

static EVP_PKEY *key;
static CairnKeyring ring;
static uint8_t src_img[CS * NCH];
static uint8_t dst_img[CS * (NCH + 2) + 777]; /* grows by two chunks and a short last one */

static char *tmp_path(const char *name) {
        static char buf[8][512];
        static int n;
        char *p = buf[n++ % 8];
        snprintf(p, 512, "%s/%s", unit_tmpdir(), name);
        return p;
}

static uint32_t rnd(uint32_t *x) {
        *x = *x * 1103515245u + 12345u;
        return *x >> 16;
}

/* Source: text-like chunks, two random ones, zeros. Target: the same with a moved chunk, small edits (patch),
 * one new random chunk (full), a chunk zeroed, a shift inside one chunk, and two new chunks at the end. */
static void make_images(void) {
        uint32_t x = 777;
        for (size_t i = 0; i < sizeof src_img; i++) {
                size_t c = i / CS;
                if (c == 5 || c == 6)
                        src_img[i] = (uint8_t)rnd(&x);
                else if (c == 10 || c == 11)
                        src_img[i] = 0;
                else
                        src_img[i] = (uint8_t)("delta test line of text\n"[i % 24] ^ (c * 7 + i / 301) % 5);
        }
        memset(dst_img, 0, sizeof dst_img);
        memcpy(dst_img, src_img, sizeof src_img);
        memcpy(dst_img + 2 * CS, src_img + 14 * CS, CS);  /* chunk 2 = source chunk 14: COPY from elsewhere */
        for (int k = 0; k < 40; k++)                       /* chunk 3: edits: PATCH */
                dst_img[3 * CS + (size_t)k * 97] ^= 0x41;
        for (size_t i = 0; i < CS; i++)                    /* chunk 8: new random bytes: full */
                dst_img[8 * CS + i] = (uint8_t)rnd(&x);
        memset(dst_img + 12 * CS, 0, CS);                  /* chunk 12: zero */
        memmove(dst_img + 16 * CS + 100, src_img + 16 * CS, CS - 100); /* chunk 16: shifted by 100 bytes */
        for (size_t i = sizeof src_img; i < sizeof dst_img; i++)   /* new chunks: like the source's tail */
                dst_img[i] = src_img[i - 3 * CS];
}

static int open_file(const char *name, const void *data, size_t len) {
        const char *p = tmp_path(name);
        CHECK(write_file_atomic(p, data, len, 0644) == 0);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        return fd;
}

static uint8_t *build_delta(uint32_t window, unsigned threads, int level, size_t *ret_len) {
        int sfd = open_file("src.img", src_img, sizeof src_img), ifd = open_file("dst.img", dst_img, sizeof dst_img);
        const char *op = tmp_path("delta.cairn");
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        EVP_PKEY *keys[] = {key};
        PayloadBuildOptions o = {
                .version = "2.0.0", .board = "amd64", .chunk_size = CS, .threads = threads,
                .compression = PAYLOAD_METHOD_ZSTD, .level = level, .keys = keys, .n_keys = 1,
                .delta = true, .source_fd = sfd, .window = window,
        };
        uint64_t size = 0;
        CHECK_EQ(payload_create(ifd, ofd, &o, &size), 0);
        close(sfd);
        close(ifd);
        close(ofd);
        char *buf = NULL;
        size_t len = 0;
        CHECK(read_file_bounded(op, 1 << 24, &buf, &len) == 0);
        CHECK_EQ(len, size);
        *ret_len = len;
        return (uint8_t *)buf;
}

static Payload *load(const uint8_t *buf, size_t len) {
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring, &p), 0);
        return p;
}

/* Whole-file verify against a source; out (optional) receives the image. */
static int verify_with(const uint8_t *buf, size_t len, const void *source, size_t source_len, uint8_t *out,
                       uint32_t *bad) {
        int pfd = open_file("v.cairn", buf, len);
        int sfd = source ? open_file("v-src.img", source, source_len) : -1;
        const char *ip = tmp_path("v-out.img");
        int ofd = out ? open(ip, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        Payload *p = NULL;
        int r = payload_load_fd(pfd, &ring, &p);
        if (r >= 0)
                r = payload_verify_data_source(p, pfd, sfd, ofd, false, bad);
        if (r >= 0 && out)
                r = pread_full(ofd, out, p->image_size, 0);
        payload_free(p);
        close(pfd);
        if (sfd >= 0)
                close(sfd);
        if (ofd >= 0)
                close(ofd);
        return r;
}

static void count_methods(const Payload *p, unsigned n[_PAYLOAD_METHOD_MAX]) {
        memset(n, 0, sizeof(unsigned) * _PAYLOAD_METHOD_MAX);
        for (uint32_t i = 0; i < p->chunk_count; i++)
                n[p->chunks[i].method]++;
}

static void test_roundtrip(void) {
        static uint8_t out[sizeof dst_img];
        for (uint32_t window = 0; window <= CS; window += CS) {
                size_t len;
                uint8_t *buf = build_delta(window, 2, 19, &len);
                Payload *p = load(buf, len);
                if (!p) {
                        free(buf);
                        continue;
                }
                CHECK(p->is_delta);
                CHECK_EQ(p->manifest_version, PAYLOAD_FORMAT_DELTA);
                CHECK_EQ(p->source_size, sizeof src_img);
                uint8_t md[32];
                EVP_Digest(src_img, sizeof src_img, md, NULL, EVP_sha256(), NULL);
                CHECK(memcmp(md, p->source_sha256, 32) == 0);
                CHECK_EQ(p->image_size, sizeof dst_img);
                unsigned n[_PAYLOAD_METHOD_MAX];
                count_methods(p, n);
                CHECK(n[PAYLOAD_METHOD_COPY] >= 15);
                CHECK(n[PAYLOAD_METHOD_PATCH] >= 2);
                CHECK(n[PAYLOAD_METHOD_ZERO] >= 3);
                CHECK_EQ(p->chunks[2].method, PAYLOAD_METHOD_COPY);
                CHECK_EQ(p->chunks[2].ref_offset, 14 * CS); /* found elsewhere in the source by its hash */
                CHECK_EQ(p->chunks[3].method, PAYLOAD_METHOD_PATCH);
                CHECK(p->chunks[8].method == PAYLOAD_METHOD_NONE || p->chunks[8].method == PAYLOAD_METHOD_ZSTD);
                CHECK_EQ(p->chunks[12].method, PAYLOAD_METHOD_ZERO);
                CHECK_EQ(p->chunks[3].ref_len, window ? 3 * CS : CS);
                CHECK_EQ(p->chunks[3].ref_offset, window ? 2 * CS : 3 * CS);
                /* Chunks beyond the source's end are patched against its last bytes. */
                for (uint32_t i = NCH; i < p->chunk_count; i++)
                        if (p->chunks[i].method == PAYLOAD_METHOD_PATCH)
                                CHECK(p->chunks[i].ref_offset + p->chunks[i].ref_len == sizeof src_img);
                memset(out, 0xee, sizeof out);
                uint32_t bad = 7;
                CHECK_EQ(verify_with(buf, len, src_img, sizeof src_img, out, &bad), 0);
                CHECK(memcmp(out, dst_img, sizeof dst_img) == 0);
                /* Chunk by chunk, as the agent does. */
                static uint8_t ref[3 * CS];
                uint8_t raw[CS];
                for (uint32_t i = 0; i < p->chunk_count; i++) {
                        const PayloadChunk *c = &p->chunks[i];
                        if (c->ref_len)
                                memcpy(ref, src_img + c->ref_offset, c->ref_len);
                        CHECK_EQ(payload_chunk_decode_ref(p, i, buf + c->offset, c->stored_len, ref, c->ref_len, raw,
                                                          c->raw_len), 0);
                        CHECK(memcmp(raw, dst_img + (size_t)i * CS, c->raw_len) == 0);
                }
                printf("# window %u: delta %zu bytes for a %zu-byte image\n", window, len, sizeof dst_img);
                payload_free(p);
                free(buf);
        }
}

static void test_reproducible(void) {
        size_t l1, l2;
        uint8_t *a = build_delta(CS, 1, 5, &l1), *b = build_delta(CS, 3, 5, &l2);
        CHECK_EQ(l1, l2);
        CHECK(l1 == l2 && memcmp(a, b, l1) == 0);
        free(a);
        free(b);
}

/* Every way a reference can fail its hash: in the chunk decoder, and for the whole source. */
static void test_reference_failures(void) {
        size_t len;
        uint8_t *buf = build_delta(CS, 2, 3, &len);
        Payload *p = load(buf, len);
        if (!p)
                return;
        static uint8_t ref[3 * CS];
        uint8_t raw[CS];
        const PayloadChunk *copy = &p->chunks[2], *patch = &p->chunks[3];
        CHECK_EQ(copy->method, PAYLOAD_METHOD_COPY);
        CHECK_EQ(patch->method, PAYLOAD_METHOD_PATCH);
        /* A COPY reference that differs by one byte. */
        memcpy(ref, src_img + copy->ref_offset, copy->ref_len);
        ref[100] ^= 1;
        CHECK_EQ(payload_chunk_decode_ref(p, 2, NULL, 0, ref, copy->ref_len, raw, CS), -ESTALE);
        /* A PATCH reference that differs in its last byte (outside the same-offset chunk). */
        memcpy(ref, src_img + patch->ref_offset, patch->ref_len);
        ref[patch->ref_len - 1] ^= 0x80;
        CHECK_EQ(payload_chunk_decode_ref(p, 3, buf + patch->offset, patch->stored_len, ref, patch->ref_len, raw, CS),
                 -ESTALE);
        /* The wrong length, or none. */
        memcpy(ref, src_img + patch->ref_offset, patch->ref_len);
        CHECK_EQ(payload_chunk_decode_ref(p, 3, buf + patch->offset, patch->stored_len, ref, patch->ref_len - CS, raw,
                                          CS), -EINVAL);
        CHECK_EQ(payload_chunk_decode_ref(p, 3, buf + patch->offset, patch->stored_len, NULL, patch->ref_len, raw, CS),
                 -EINVAL);
        /* Without the reference API. */
        CHECK_EQ(payload_chunk_decode(p, 3, buf + patch->offset, patch->stored_len, raw, CS), -EDESTADDRREQ);
        CHECK_EQ(payload_chunk_decode(p, 2, NULL, 0, raw, CS), -EDESTADDRREQ);

        /* Whole source: none, the wrong image, one byte changed, too short. */
        uint32_t bad = 0;
        CHECK_EQ(verify_with(buf, len, NULL, 0, NULL, &bad), -EDESTADDRREQ);
        bad = 0;
        CHECK_EQ(verify_with(buf, len, dst_img, sizeof dst_img, NULL, &bad), -ESTALE);
        CHECK_EQ(bad, UINT32_MAX);
        static uint8_t changed[sizeof src_img];
        memcpy(changed, src_img, sizeof changed);
        changed[20 * CS + 5] ^= 1;
        CHECK_EQ(verify_with(buf, len, changed, sizeof changed, NULL, &bad), -ESTALE);
        CHECK_EQ(verify_with(buf, len, src_img, sizeof src_img - CS, NULL, &bad), -ESTALE);
        /* A longer source (a slot bigger than the image) is fine: only source_size bytes count. */
        static uint8_t longer[sizeof src_img + CS];
        memcpy(longer, src_img, sizeof src_img);
        CHECK_EQ(verify_with(buf, len, longer, sizeof longer, NULL, &bad), 0);
        payload_free(p);
        free(buf);
}

/* Re-sign edited manifest bytes in place (the manifest length is unchanged). */
static void resign(uint8_t *buf) {
        uint32_t mlen = buf[16] | buf[17] << 8 | buf[18] << 16 | (uint32_t)buf[19] << 24;
        CHECK(sign_ed25519(key, buf + 32, mlen, buf + 32 + mlen + 8 + 8) == 0);
}

static size_t entry_off(const uint8_t *buf, uint32_t i) {
        const uint8_t *m = buf + 32;
        return 32 + ALIGN_UP(272u + m[74] + m[75], 8) + (size_t)i * 104;
}

static void test_patch_output_mismatch(void) {
        size_t len;
        uint8_t *buf = build_delta(0, 2, 3, &len);
        static uint8_t ref[CS];
        uint8_t raw[CS];
        /* Signed, but the chunk's SHA-256 is not what the patch decodes to. */
        uint8_t *e = buf + entry_off(buf, 3);
        CHECK_EQ(e[16], PAYLOAD_METHOD_PATCH);
        e[24] ^= 1;
        resign(buf);
        Payload *p = load(buf, len);
        if (p) {
                const PayloadChunk *c = &p->chunks[3];
                memcpy(ref, src_img + c->ref_offset, c->ref_len);
                CHECK_EQ(payload_chunk_decode_ref(p, 3, buf + c->offset, c->stored_len, ref, c->ref_len, raw, CS), -EILSEQ);
                uint32_t bad = 0;
                CHECK_EQ(verify_with(buf, len, src_img, sizeof src_img, NULL, &bad), -EILSEQ);
                CHECK_EQ(bad, 3);
                payload_free(p);
        }
        e[24] ^= 1;
        resign(buf);
        /* Patch bytes damaged in transit (the data is not signed; the decoder or the hash catches it). */
        p = load(buf, len);
        if (p) {
                const PayloadChunk *c = &p->chunks[3];
                memcpy(ref, src_img + c->ref_offset, c->ref_len);
                for (uint32_t k = 0; k < c->stored_len; k += 7) {
                        buf[c->offset + k] ^= 0x10;
                        CHECK(payload_chunk_decode_ref(p, 3, buf + c->offset, c->stored_len, ref, c->ref_len, raw, CS) < 0);
                        buf[c->offset + k] ^= 0x10;
                }
                CHECK_EQ(payload_chunk_decode_ref(p, 3, buf + c->offset, c->stored_len, ref, c->ref_len, raw, CS), 0);
                /* Two frames where one must be: the frame followed by trailing bytes. */
                static uint8_t two[2 * CS];
                memcpy(two, buf + c->offset, c->stored_len);
                CHECK(payload_chunk_decode_ref(p, 3, two, c->stored_len - 1, ref, c->ref_len, raw, CS) < 0);
                payload_free(p);
        }
        /* A signed reference hash that is not the source's: -ESTALE against the true source. */
        e[72] ^= 1;
        resign(buf);
        uint32_t bad = 0;
        CHECK_EQ(verify_with(buf, len, src_img, sizeof src_img, NULL, &bad), -ESTALE);
        CHECK_EQ(bad, 3);
        free(buf);
}

/* The manifest's reference rules, each broken in a re-signed delta. */
static void test_manifest_rules(void) {
        size_t len;
        uint8_t *buf = build_delta(CS, 2, 3, &len);
        uint8_t *copy = buf + entry_off(buf, 2), *patch = buf + entry_off(buf, 3), *zero = buf + entry_off(buf, 12);
        CHECK_EQ(copy[16], PAYLOAD_METHOD_COPY);
        CHECK_EQ(zero[16], PAYLOAD_METHOD_ZERO);
        struct {
                uint8_t *at;
                uint8_t xor;
                const char *what;
        } cases[] = {
                { copy + 64, 0x01, "COPY reference length != chunk length" },
                { copy + 72, 0x01, "COPY reference hash != chunk hash" },
                { patch + 56, 0x01, "reference offset not 4K-aligned" },
                { patch + 62, 0x01, "reference beyond the source" },
                { patch + 66, 0x01, "reference longer than three chunks" },
                { patch + 68, 0x01, "reserved bytes of a reference" },
                { zero + 60, 0x01, "a zero chunk with a reference offset" },
                { zero + 80, 0x01, "a zero chunk with a reference hash" },
                { buf + 32 + 232, 0x01, "reserved bytes after the source size" },
                { buf + 32 + 226, 0x01, "source size smaller (references now beyond it)" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                *cases[i].at ^= cases[i].xor;
                resign(buf);
                Payload *p = NULL;
                int r = payload_load(buf, len, &ring, &p);
                if (r != -EBADMSG)
                        fprintf(stderr, "# %s: %d\n", cases[i].what, r);
                CHECK_EQ(r, -EBADMSG);
                payload_free(p);
                *cases[i].at ^= cases[i].xor;
        }
        /* Header format and manifest version must agree. */
        buf[8] = 1;
        resign(buf);
        CHECK_EQ(payload_load(buf, len, &ring, &(Payload *){NULL}), -EBADMSG);
        buf[8] = 2;
        resign(buf);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring, &p), 0);
        payload_free(p);
        free(buf);
}

/* A full (format 1) payload cannot carry COPY or PATCH chunks. */
static void test_full_payload_refuses_delta_methods(void) {
        int ifd = open_file("full-src.img", src_img, sizeof src_img);
        const char *op = tmp_path("full.cairn");
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        EVP_PKEY *keys[] = {key};
        PayloadBuildOptions o = { .version = "1.0.0", .board = "amd64", .chunk_size = CS, .threads = 1,
                                  .compression = PAYLOAD_METHOD_ZSTD, .keys = keys, .n_keys = 1 };
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), 0);
        close(ifd);
        close(ofd);
        char *b = NULL;
        size_t len = 0;
        CHECK(read_file_bounded(op, 1 << 24, &b, &len) == 0);
        uint8_t *buf = (uint8_t *)b, *m = buf + 32;
        size_t e = 32 + ALIGN_UP(224u + m[74] + m[75], 8) + 10 * 56; /* chunk 10: zero */
        CHECK_EQ(buf[e + 16], PAYLOAD_METHOD_ZERO);
        for (uint8_t method = PAYLOAD_METHOD_COPY; method <= PAYLOAD_METHOD_PATCH + 1; method++) {
                buf[e + 16] = method;
                resign(buf);
                CHECK_EQ(payload_load(buf, len, &ring, &(Payload *){NULL}), -EBADMSG);
        }
        free(buf);
        /* Bad delta options. */
        int sfd = open_file("o-src.img", src_img, sizeof src_img);
        ifd = open_file("o-dst.img", dst_img, sizeof dst_img);
        ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        o.delta = true;
        o.source_fd = -1;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        o.source_fd = sfd;
        o.window = CS + 4096;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        o.window = 100;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        o.window = 0;
        o.compression = PAYLOAD_METHOD_ZLIB;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        close(sfd);
        close(ifd);
        close(ofd);
}

int main(void) {
        make_images();
        if (key_generate(&key) < 0)
                return 1;
        keyring_init(&ring);
        EVP_PKEY_up_ref(key);
        if (keyring_add(&ring, key) < 0)
                return 1;
        RUN(test_roundtrip);
        RUN(test_reproducible);
        RUN(test_reference_failures);
        RUN(test_patch_output_mismatch);
        RUN(test_manifest_rules);
        RUN(test_full_payload_refuses_delta_methods);
        keyring_done(&ring);
        EVP_PKEY_free(key);
        return unit_main_end();
}
