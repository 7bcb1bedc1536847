/* tests/unit/test-payload.c — payload format round trips, key handling and every tamper case. */
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "unit.h"
#include "fileio.h"
#include "payload/payload.h"

static EVP_PKEY *k1, *k2;
static CairnKeyring ring1;  /* trusts k1 */
static CairnKeyring ring2;  /* trusts k2 */
static CairnKeyring ring12; /* trusts both */

/* An image with every kind of chunk: text-like (zstd), random (stored), zero, and a short last chunk. */
#define CS 4096u
static uint8_t image[CS * 9 + 1234];

static void make_image(void) {
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof image; i++) {
                size_t c = i / CS;
                if (c == 2 || c == 3 || c == 7)
                        image[i] = 0;
                else if (c == 4 || c == 5) {
                        x = x * 1103515245u + 12345u;
                        image[i] = (uint8_t)(x >> 16);
                } else
                        image[i] = "cairn payload test line\n"[i % 24] ^ (uint8_t)(i / 97 % 3);
        }
}

static char *tmp_path(const char *name) {
        static char buf[8][512];
        static int n;
        char *p = buf[n++ % 8];
        snprintf(p, 512, "%s/%s", unit_tmpdir(), name);
        return p;
}

static void write_file(const char *path, const void *data, size_t len) {
        CHECK(write_file_atomic(path, data, len, 0644) == 0);
}

/* Build a payload of `image` into memory. */
static uint8_t *build(PayloadBuildOptions *o, size_t *ret_len) {
        const char *ip = tmp_path("image"), *op = tmp_path("out");
        write_file(ip, image, sizeof image);
        int ifd = open(ip, O_RDONLY | O_CLOEXEC);
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        uint64_t size = 0;
        int r = payload_create(ifd, ofd, o, &size);
        CHECK_EQ(r, 0);
        close(ifd);
        close(ofd);
        char *buf = NULL;
        size_t len = 0;
        CHECK(read_file_bounded(op, 1 << 26, &buf, &len) == 0);
        CHECK_EQ(len, size);
        *ret_len = len;
        return (uint8_t *)buf;
}

static PayloadBuildOptions default_opts(EVP_PKEY **keys, size_t n) {
        return (PayloadBuildOptions){
                .version = "1.2.3", .board = "amd64-usr", .chunk_size = CS, .threads = 2,
                .compression = PAYLOAD_METHOD_ZSTD, .keys = keys, .n_keys = n,
        };
}

static uint8_t *build_default(size_t *ret_len) {
        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        return build(&o, ret_len);
}

static int load_fd_of(const uint8_t *buf, size_t len, const CairnKeyring *kr, Payload **ret) {
        const char *path = tmp_path("load");
        write_file(path, buf, len);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int r = payload_load_fd(fd, kr, ret);
        close(fd);
        return r;
}

static int verify_buf(const uint8_t *buf, size_t len, const CairnKeyring *kr, uint32_t *bad) {
        const char *path = tmp_path("verify");
        write_file(path, buf, len);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        Payload *p = NULL;
        int r = payload_load_fd(fd, kr, &p);
        if (r >= 0)
                r = payload_verify_data(p, fd, -1, false, bad);
        payload_free(p);
        close(fd);
        return r;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) {
        return le32(p) | (uint64_t)le32(p + 4) << 32;
}
static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> 8 * i);
}

/* Pieces of a payload the tamper tests rebuild: manifest bytes (editable), chunk data. */
typedef struct Parts {
        uint8_t *manifest;
        uint32_t mlen;
        const uint8_t *data;
        size_t data_len;
} Parts;

static Parts split(const uint8_t *buf, size_t len) {
        Parts p = {};
        p.mlen = le32(buf + 16);
        uint32_t slen = le32(buf + 20);
        p.manifest = malloc(p.mlen);
        memcpy(p.manifest, buf + 32, p.mlen);
        p.data = buf + 32 + p.mlen + slen;
        p.data_len = len - (32 + p.mlen + slen);
        return p;
}

static size_t table_offset(const uint8_t *m) {
        return ALIGN_UP(224u + m[74] + m[75] + 8u * (m[76] | m[77] << 8), 8);
}

/* Reassemble with the given signers; fixes data_offset, chunk offsets and payload size unless raw.
 * ids (optional) overrides each signature's key id. */
static uint8_t *assemble(Parts *pt, EVP_PKEY **signers, size_t n, const uint8_t (*ids)[8], bool raw,
                         size_t *ret_len) {
        uint32_t slen = 8 + 72 * (uint32_t)n;
        uint64_t data_off = 32 + pt->mlen + slen;
        uint8_t *m = pt->manifest;
        if (!raw && pt->mlen >= 224) {
                int64_t delta = (int64_t)data_off - (int64_t)le64(m + 56);
                put64(m + 56, data_off);
                put64(m + 64, le64(m + 64) + (uint64_t)delta);
                uint32_t count = le32(m + 52);
                size_t t = table_offset(m);
                for (uint32_t i = 0; i < count && t + 56 * (i + 1) <= pt->mlen; i++)
                        put64(m + t + 56 * i, le64(m + t + 56 * i) + (uint64_t)delta);
        }
        size_t len = data_off + pt->data_len;
        uint8_t *b = calloc(1, len);
        memcpy(b, PAYLOAD_MAGIC, 8);
        put32(b + 8, 1);
        put32(b + 12, 32);
        put32(b + 16, pt->mlen);
        put32(b + 20, slen);
        memcpy(b + 32, m, pt->mlen);
        uint8_t *sb = b + 32 + pt->mlen;
        memcpy(sb, "CSIG", 4);
        put32(sb + 4, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
                uint8_t *e = sb + 8 + 72 * i;
                if (ids)
                        memcpy(e, ids[i], 8);
                else
                        CHECK(key_id(signers[i], e) == 0);
                CHECK(sign_ed25519(signers[i], m, pt->mlen, e + 8) == 0);
        }
        memcpy(b + data_off, pt->data, pt->data_len);
        *ret_len = len;
        return b;
}

static void test_keys(void) {
        uint8_t id1[8], id1b[8];
        char hex[17];
        CHECK(key_id(k1, id1) == 0);
        const char *kp = tmp_path("k.key"), *pp = tmp_path("k.pub");
        CHECK(key_save_private(kp, k1) == 0);
        CHECK(key_save_public(pp, k1) == 0);
        struct stat st;
        CHECK(stat(kp, &st) == 0 && (st.st_mode & 0777) == 0600);
        EVP_PKEY *priv = NULL, *pub = NULL;
        CHECK(key_load_private(kp, &priv) == 0);
        CHECK(key_load_public(pp, &pub) == 0);
        CHECK(key_id(pub, id1b) == 0);
        CHECK(memcmp(id1, id1b, 8) == 0);
        uint8_t id2[8];
        CHECK(key_id_from_hex(key_id_to_hex(id1, hex), id2) == 0 && memcmp(id1, id2, 8) == 0);
        CHECK_EQ(key_id_from_hex("0123", id2), -EINVAL);
        CHECK_EQ(key_id_from_hex("0123456789abcdeg", id2), -EINVAL);

        /* Signatures are deterministic and bound to the message. */
        uint8_t s1[64], s2[64];
        CHECK(sign_ed25519(priv, "abc", 3, s1) == 0);
        CHECK(sign_ed25519(priv, "abc", 3, s2) == 0);
        CHECK(memcmp(s1, s2, 64) == 0);
        CHECK_EQ(verify_ed25519(pub, "abc", 3, s1), 0);
        CHECK_EQ(verify_ed25519(pub, "abd", 3, s1), -EKEYREJECTED);
        s1[10] ^= 1;
        CHECK_EQ(verify_ed25519(pub, "abc", 3, s1), -EKEYREJECTED);
        EVP_PKEY_free(priv);

        /* A public key file is not a private key; garbage is not a key; an EC key is not Ed25519. */
        EVP_PKEY *x = NULL;
        CHECK_EQ(key_load_private(pp, &x), -EBADMSG);
        write_file(tmp_path("garbage.pub"), "hello\n", 6);
        CHECK_EQ(key_load_public(tmp_path("garbage.pub"), &x), -EBADMSG);
        EVP_PKEY *ec = EVP_EC_gen("P-256");
        CHECK(ec != NULL);
        BIO *bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, ec);
        char *pem;
        long n = BIO_get_mem_data(bio, &pem);
        CHECK_EQ(key_parse_public(pem, (size_t)n, &x), -EKEYREJECTED);
        BIO_free(bio);
        EVP_PKEY_free(ec);
        static char big[CAIRN_KEY_FILE_MAX + 10];
        memset(big, 'A', sizeof big);
        write_file(tmp_path("big.pub"), big, sizeof big);
        CHECK_EQ(key_load_public(tmp_path("big.pub"), &x), -EFBIG);
        CHECK(x == NULL);

        /* Key directories. */
        CairnKeyring kr;
        keyring_init(&kr);
        const char *d = tmp_path("keys");
        CHECK(mkdir(d, 0755) == 0);
        CHECK_EQ(keyring_load_dir(&kr, d, NULL), -ENOKEY);
        char p1[600];
        snprintf(p1, sizeof p1, "%s/a.pub", d);
        CHECK(key_save_public(p1, pub) == 0);
        snprintf(p1, sizeof p1, "%s/b.pub", d);
        CHECK(key_save_public(p1, pub) == 0); /* same key twice: one entry */
        snprintf(p1, sizeof p1, "%s/notakey.txt", d);
        write_file(p1, "x", 1);
        CHECK_EQ(keyring_load_dir(&kr, d, NULL), 0);
        CHECK_EQ(kr.n_keys, 1);
        CHECK(keyring_find(&kr, id1) != NULL);
        keyring_done(&kr);
        snprintf(p1, sizeof p1, "%s/c.pub", d);
        write_file(p1, "junk", 4);
        char *bad = NULL;
        CHECK_EQ(keyring_load_dir(&kr, d, &bad), -EBADMSG);
        CHECK_STREQ(bad, "c.pub");
        free(bad);
        keyring_done(&kr);
        EVP_PKEY_free(pub);
}

static void check_roundtrip(PayloadBuildOptions *o) {
        size_t len;
        uint8_t *buf = build(o, &len);
        Payload *p = NULL;
        CHECK_EQ(load_fd_of(buf, len, &ring1, &p), 0);
        if (!p) {
                free(buf);
                return;
        }
        CHECK(p->verified);
        CHECK_STREQ(p->version, "1.2.3");
        CHECK_STREQ(p->board, "amd64-usr");
        CHECK_EQ(p->image_size, sizeof image);
        CHECK_EQ(p->chunk_size, CS);
        CHECK_EQ(p->chunk_count, 10);
        CHECK_EQ(p->payload_size, len);
        CHECK_EQ(p->chunks[2].method, PAYLOAD_METHOD_ZERO);
        CHECK_EQ(p->chunks[2].stored_len, 0);
        CHECK_EQ(p->chunks[4].method, PAYLOAD_METHOD_NONE); /* random data does not compress */
        CHECK_EQ(p->chunks[9].raw_len, 1234);
        if (o->compression != PAYLOAD_METHOD_NONE) {
                CHECK_EQ(p->chunks[0].method, o->compression);
                CHECK(p->chunks[0].stored_len < CS);
        }
        uint8_t md[32];
        EVP_Digest(image, sizeof image, md, NULL, EVP_sha256(), NULL);
        CHECK(memcmp(md, p->image_sha256, 32) == 0);

        /* Streaming API: decode each chunk from its bytes. */
        uint8_t out[CS];
        for (uint32_t i = 0; i < p->chunk_count; i++) {
                const PayloadChunk *c = &p->chunks[i];
                CHECK_EQ(payload_chunk_decode(p, i, buf + c->offset, c->stored_len, out, c->raw_len), 0);
                CHECK(memcmp(out, image + (size_t)i * CS, c->raw_len) == 0);
        }
        CHECK_EQ(payload_chunk_decode(p, 10, buf, 0, out, CS), -EINVAL);
        CHECK_EQ(payload_chunk_decode(p, 0, buf + p->chunks[0].offset, p->chunks[0].stored_len, out, CS - 1), -EINVAL);
        if (p->chunks[1].stored_len > 0 && p->chunks[1].method != PAYLOAD_METHOD_ZERO) /* chunk 1's bytes as chunk 0 */
                CHECK(payload_chunk_decode(p, 0, buf + p->chunks[1].offset, p->chunks[0].stored_len, out, CS) < 0);

        /* Whole-file verify and extract. */
        const char *pp = tmp_path("rt.cairn"), *ip = tmp_path("rt.img");
        write_file(pp, buf, len);
        int fd = open(pp, O_RDONLY | O_CLOEXEC);
        int ofd = open(ip, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK_EQ(payload_verify_data(p, fd, ofd, true, NULL), 0);
        close(fd);
        close(ofd);
        char *img = NULL;
        size_t ilen = 0;
        CHECK(read_file_bounded(ip, 1 << 20, &img, &ilen) == 0);
        CHECK_EQ(ilen, sizeof image);
        CHECK(img && memcmp(img, image, sizeof image) == 0);
        free(img);
        payload_free(p);
        free(buf);
}

static void test_roundtrip_zstd(void) {
        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        check_roundtrip(&o);
}

static void test_roundtrip_zlib_none(void) {
        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        o.compression = PAYLOAD_METHOD_ZLIB;
        check_roundtrip(&o);
        o.compression = PAYLOAD_METHOD_NONE;
        check_roundtrip(&o);
}

static void test_reproducible(void) {
        EVP_PKEY *keys[] = {k1, k2};
        PayloadBuildOptions o = default_opts(keys, 2);
        size_t l1, l2, l3;
        o.threads = 1;
        uint8_t *a = build(&o, &l1);
        o.threads = 5;
        uint8_t *b = build(&o, &l2);
        CHECK(l1 == l2 && memcmp(a, b, l1) == 0);
        o.chunk_size = 8192;
        uint8_t *c = build(&o, &l3);
        CHECK(l1 != l3 || memcmp(a, c, l1) != 0);
        free(a);
        free(b);
        free(c);
}

static void test_optional_fields(void) {
        EVP_PKEY *keys[] = {k1, k2};
        PayloadBuildOptions o = default_opts(keys, 2);
        uint8_t verity[32], kern[32];
        memset(verity, 0xab, 32);
        memset(kern, 0x11, 32);
        uint8_t rev[2][8] = {{1, 2, 3, 4, 5, 6, 7, 8}, {9, 9, 9, 9, 9, 9, 9, 9}};
        o.verity_root = verity;
        o.kernel_sha256 = kern;
        o.revoked = (const uint8_t(*)[8])rev;
        o.n_revoked = 2;
        size_t len;
        uint8_t *buf = build(&o, &len);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring12, &p), 0);
        if (p) {
                CHECK(p->has_verity_root && memcmp(p->verity_root, verity, 32) == 0);
                CHECK(memcmp(p->kernel_sha256, kern, 32) == 0);
                CHECK_EQ(p->n_revoked, 2);
                CHECK(memcmp(p->revoked[1], rev[1], 8) == 0);
                CHECK_EQ(p->n_signatures, 2);
                CHECK_EQ(p->signatures[0].status, 1);
                CHECK_EQ(p->signatures[1].status, 1);
        }
        payload_free(p);
        /* Only k2 trusted: the k1 signature is ignored, k2's carries it. */
        CHECK_EQ(payload_load(buf, len, &ring2, &p), 0);
        if (p)
                CHECK_EQ(p->signatures[0].status, -1);
        payload_free(p);
        free(buf);
}

static void test_bad_options(void) {
        EVP_PKEY *keys[] = {k1, k1};
        PayloadBuildOptions o = default_opts(keys, 2);
        int ifd = open("/dev/null", O_RDONLY | O_CLOEXEC), ofd = -1;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -ENOTUNIQ);
        o.n_keys = 0;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -E2BIG);
        o.n_keys = 1;
        o.version = "1.0 beta";
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        o.version = "1";
        o.chunk_size = 5000;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EINVAL);
        o.chunk_size = CS;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EBADFD); /* /dev/null: not a file or block device */
        close(ifd);
        const char *ep = tmp_path("empty");
        write_file(ep, "", 0);
        ifd = open(ep, O_RDONLY | O_CLOEXEC);
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -ENODATA);
        close(ifd);
}

/* Every single-bit flip in header, manifest or signature block is rejected before anything is used. */
static void test_flip_prefix(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        size_t prefix;
        CHECK_EQ(payload_prefix_size(buf, len, &prefix), 0);
        CHECK(prefix < len);
        uint32_t mlen0 = le32(buf + 16);
        size_t accepted = 0, manifest_not_rejected = 0;
        for (size_t i = 0; i < prefix; i++) {
                uint8_t bit = (uint8_t)(1u << (i % 8));
                buf[i] ^= bit;
                Payload *p = NULL;
                int r = payload_load(buf, len, &ring1, &p);
                if (r >= 0)
                        accepted++;
                /* inside the manifest, the signature check is what catches it */
                if (i >= 32 && i < 32 + mlen0 && r != -EKEYREJECTED)
                        manifest_not_rejected++;
                payload_free(p);
                buf[i] ^= bit;
        }
        CHECK_EQ(manifest_not_rejected, 0);
        CHECK_EQ(accepted, 0);
        /* Specific places, specific errors. */
        uint32_t mlen = le32(buf + 16);
        buf[0] ^= 1;
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -EBADMSG);
        buf[0] ^= 1;
        buf[8] = 3;
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -EPROTONOSUPPORT);
        buf[8] = 2; /* the delta format in the header, a full payload's manifest (signed): they disagree */
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -EBADMSG);
        buf[8] = 1;
        buf[32 + mlen + 8 + 8 + 5] ^= 0x20; /* inside the signature bytes */
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -EKEYREJECTED);
        buf[32 + mlen + 8 + 8 + 5] ^= 0x20;
        buf[32 + mlen + 8 + 3] ^= 0x01; /* inside the key id: now unknown */
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -ENOKEY);
        buf[32 + mlen + 8 + 3] ^= 0x01;
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring1, &p), 0);
        payload_free(p);
        free(buf);
}

static void test_flip_chunk(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring1, &p), 0);
        uint32_t bad = 0;
        CHECK_EQ(verify_buf(buf, len, &ring1, &bad), 0);
        for (uint32_t c = 0; p && c < p->chunk_count; c++) {
                if (p->chunks[c].stored_len == 0)
                        continue;
                size_t at = p->chunks[c].offset + p->chunks[c].stored_len / 2;
                buf[at] ^= 0x04;
                bad = 12345;
                CHECK_EQ(verify_buf(buf, len, &ring1, &bad), -EILSEQ);
                CHECK_EQ(bad, c);
                buf[at] ^= 0x04;
        }
        payload_free(p);
        free(buf);
}

static void test_truncated(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        size_t prefix;
        CHECK_EQ(payload_prefix_size(buf, len, &prefix), 0);
        size_t cuts[] = {0, 1, 31, 32, 100, prefix - 1, prefix, prefix + 1, len - 1};
        for (size_t i = 0; i < ELEMENTSOF(cuts); i++) {
                Payload *p = NULL;
                uint32_t bad;
                CHECK_EQ(load_fd_of(buf, cuts[i], &ring1, &p), -ENODATA);
                CHECK_EQ(verify_buf(buf, cuts[i], &ring1, &bad), -ENODATA);
                CHECK(p == NULL);
        }
        /* In-memory prefix shorter than the header says. */
        CHECK_EQ(payload_load(buf, prefix - 1, &ring1, &(Payload *){NULL}), -ENODATA);
        /* Trailing garbage is not covered by any signature. */
        uint8_t *longer = calloc(1, len + 1);
        memcpy(longer, buf, len);
        CHECK_EQ(load_fd_of(longer, len + 1, &ring1, &(Payload *){NULL}), -EBADMSG);
        free(longer);
        free(buf);
}

static void test_keys_policy(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        Parts pt = split(buf, len);
        Payload *p = NULL;
        /* Wrong key: signed by k1, only k2 trusted. */
        CHECK_EQ(payload_load(buf, len, &ring2, &p), -ENOKEY);
        /* A signature by k2 that claims k1's key id. */
        uint8_t id1[1][8];
        CHECK(key_id(k1, id1[0]) == 0);
        size_t l;
        uint8_t *b = assemble(&pt, &k2, 1, (const uint8_t(*)[8])id1, false, &l);
        CHECK_EQ(payload_load(b, l, &ring1, &p), -EKEYREJECTED);
        free(b);
        /* Unsigned. */
        b = assemble(&pt, NULL, 0, NULL, false, &l);
        CHECK_EQ(payload_load(b, l, &ring12, &p), -ENOKEY);
        free(b);
        /* Duplicate signatures by the same key. */
        EVP_PKEY *dup[] = {k1, k1};
        b = assemble(&pt, dup, 2, NULL, false, &l);
        CHECK_EQ(payload_load(b, l, &ring1, &p), -ENOTUNIQ);
        free(b);
        /* One good and one unknown signature: fine; a good and a bad one from trusted keys: rejected. */
        EVP_PKEY *both[] = {k1, k2};
        b = assemble(&pt, both, 2, NULL, false, &l);
        CHECK_EQ(payload_load(b, l, &ring1, &p), 0);
        payload_free(p);
        p = NULL;
        b[32 + pt.mlen + 8 + 72 + 8 + 1] ^= 1;
        CHECK_EQ(payload_load(b, l, &ring1, &p), 0);     /* k2 is not trusted: its bad signature is ignored */
        payload_free(p);
        p = NULL;
        CHECK_EQ(payload_load(b, l, &ring12, &p), -EKEYREJECTED);
        free(b);
        /* Nine signatures exceed the limit. */
        EVP_PKEY *nine[9] = {k1, k1, k1, k1, k1, k1, k1, k1, k1};
        b = assemble(&pt, nine, 9, NULL, false, &l);
        CHECK_EQ(payload_load(b, l, &ring1, &p), -E2BIG);
        free(b);
        /* Revocation by the keyring, and by the release itself. */
        CairnKeyring kr;
        keyring_init(&kr);
        EVP_PKEY_up_ref(k1);
        CHECK(keyring_add(&kr, k1) == 0);
        CHECK(keyring_revoke(&kr, id1[0]) == 0);
        CHECK_EQ(payload_load(buf, len, &kr, &p), -EKEYREVOKED);
        keyring_done(&kr);
        free(pt.manifest);
        free(buf);

        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        o.revoked = (const uint8_t(*)[8])id1;
        o.n_revoked = 1;
        buf = build(&o, &len);
        CHECK_EQ(payload_load(buf, len, &ring1, &p), -EKEYREVOKED);
        free(buf);
        EVP_PKEY *keys2[] = {k1, k2};
        o.keys = keys2;
        o.n_keys = 2;
        buf = build(&o, &len);
        CHECK_EQ(payload_load(buf, len, &ring12, &p), 0); /* k2 still carries the release that revokes k1 */
        if (p) {
                CHECK_EQ(p->signatures[0].status, -2);
                CHECK_EQ(p->signatures[1].status, 1);
        }
        payload_free(p);
        free(buf);
}

/* Re-signed manifests with bad contents: the signature is fine, the structure is not. */
static int resigned_bad(const uint8_t *buf, size_t len, void (*edit)(uint8_t *m, uint32_t mlen), bool raw,
                        uint32_t *ret_bad) {
        Parts pt = split(buf, len);
        edit(pt.manifest, pt.mlen);
        size_t l;
        uint8_t *b = assemble(&pt, &k1, 1, NULL, raw, &l);
        Payload *p = NULL;
        int r = load_fd_of(b, l, &ring1, &p);
        if (r >= 0) {
                /* whole-file verify of the accepted payload decides */
                uint32_t bad = 0;
                r = verify_buf(b, l, &ring1, &bad);
                if (ret_bad)
                        *ret_bad = bad;
        }
        payload_free(p);
        free(b);
        free(pt.manifest);
        return r;
}

static int resigned(const uint8_t *buf, size_t len, void (*edit)(uint8_t *m, uint32_t mlen), bool raw) {
        return resigned_bad(buf, len, edit, raw, NULL);
}

static void e_nothing(uint8_t *m, uint32_t mlen) {}
static void e_image_over_max(uint8_t *m, uint32_t mlen) {
        put64(m + 8, PAYLOAD_IMAGE_SIZE_MAX + 1);
}
/* chunk 1's data hash and zero chunk 7's hash both wrong: the zero-chunk check runs before any data is read */
static void e_zero_sha_and_data_sha(uint8_t *m, uint32_t mlen) {
        m[table_offset(m) + 56 * 1 + 30] ^= 1;
        m[table_offset(m) + 56 * 7 + 30] ^= 1;
}
static void e_chunk_outside(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m) + 56 * 9; /* last chunk */
        put64(m + t, le64(m + t) + 1000000);
}
static void e_chunk_overlap(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m);
        put64(m + t + 56, le64(m + t)); /* chunk 1 starts where chunk 0 does */
}
static void e_chunk_long(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m) + 56 * 9;
        put32(m + t + 8, le32(m + t + 8) + 10); /* last chunk claims bytes past the end */
}
static void e_payload_size(uint8_t *m, uint32_t mlen) {
        put64(m + 64, le64(m + 64) + 4096);
}
static void e_count_huge(uint8_t *m, uint32_t mlen) {
        put32(m + 52, PAYLOAD_CHUNKS_MAX + 1);
}
static void e_count_small(uint8_t *m, uint32_t mlen) {
        put32(m + 52, 9);
}
static void e_image_size(uint8_t *m, uint32_t mlen) {
        put64(m + 8, le64(m + 8) + 1);
}
static void e_image_sha(uint8_t *m, uint32_t mlen) {
        m[20] ^= 1;
}
static void e_chunk_sha(uint8_t *m, uint32_t mlen) {
        m[table_offset(m) + 56 * 1 + 30] ^= 1;
}
static void e_chunk_size(uint8_t *m, uint32_t mlen) {
        put32(m + 48, 4097);
}
static void e_version_len(uint8_t *m, uint32_t mlen) {
        m[74] = 65;
}
static void e_version_char(uint8_t *m, uint32_t mlen) {
        m[224] = ' ';
}
static void e_revoked_count(uint8_t *m, uint32_t mlen) {
        m[76] = 65;
}
static void e_method(uint8_t *m, uint32_t mlen) {
        m[table_offset(m) + 16] = 9;
}
static void e_reserved(uint8_t *m, uint32_t mlen) {
        m[210] = 1;
}
static void e_verity_without_flag(uint8_t *m, uint32_t mlen) {
        m[90] = 1;
}
static void e_manifest_version(uint8_t *m, uint32_t mlen) {
        m[4] = 7;
}
static void e_data_offset(uint8_t *m, uint32_t mlen) {
        put64(m + 56, le64(m + 56) + 8);
}
static void e_zstd_stored_too_big(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m); /* chunk 0 is zstd; claim it is longer than the raw size */
        put32(m + t + 8, CS + 1);
}
static void e_zero_method_with_data(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m) + 56 * 2; /* chunk 2 is a zero chunk */
        put32(m + t + 8, 16);
}
static void e_chunk_method_zero(uint8_t *m, uint32_t mlen) {
        size_t t = table_offset(m) + 56 * 2; /* claim the zero chunk is stored (no data) */
        m[t + 16] = PAYLOAD_METHOD_NONE;
}

/* The dm-verity layout (hash offset at 208, salt length at 78, salt after the revoked ids). */
static void e_layout_without_root(uint8_t *m, uint32_t mlen) {
        m[73] = 0x02;
        memset(m + 80, 0, 32);
}
static void e_layout_offset_unaligned(uint8_t *m, uint32_t mlen) {
        put64(m + 208, le64(m + 208) + 512);
}
static void e_layout_offset_past_end(uint8_t *m, uint32_t mlen) {
        put64(m + 208, le64(m + 8));
}
static void e_layout_offset_zero(uint8_t *m, uint32_t mlen) {
        put64(m + 208, 0);
}
static void e_layout_salt_len(uint8_t *m, uint32_t mlen) {
        m[78] = 31; /* the table no longer starts where the sizes say */
}
static void e_layout_flag_cleared(uint8_t *m, uint32_t mlen) {
        m[73] = 0x01; /* offset and salt length left behind */
}
static void e_layout_reserved(uint8_t *m, uint32_t mlen) {
        m[220] = 1;
}

static void test_verity_layout(void) {
        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        uint8_t root[32], salt[32];
        memset(root, 0x5a, 32);
        for (int i = 0; i < 32; i++)
                salt[i] = (uint8_t)(i * 7 + 1);
        o.verity_root = root;
        o.verity_hash_offset = 2 * CS;
        o.verity_salt = salt;
        o.verity_salt_size = sizeof salt;
        size_t len;
        uint8_t *buf = build(&o, &len);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring1, &p), 0);
        if (p) {
                CHECK(p->has_verity_root && p->has_verity_layout);
                CHECK_EQ(p->verity_hash_offset, 2 * CS);
                CHECK_EQ(p->verity_salt_size, 32);
                CHECK(memcmp(p->verity_salt, salt, 32) == 0 && memcmp(p->verity_root, root, 32) == 0);
        }
        payload_free(p);
        CHECK_EQ(resigned(buf, len, e_nothing, false), 0);
        CHECK_EQ(resigned(buf, len, e_layout_without_root, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_layout_offset_unaligned, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_layout_offset_past_end, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_layout_offset_zero, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_layout_salt_len, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_layout_flag_cleared, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_layout_reserved, false), -EBADMSG);
        free(buf);
        /* no salt at all is a valid salt */
        o.verity_salt_size = 0;
        buf = build(&o, &len);
        CHECK_EQ(payload_load(buf, len, &ring1, &p), 0);
        if (p)
                CHECK(p->has_verity_layout && p->verity_salt_size == 0);
        payload_free(p);
        free(buf);
        /* the writer refuses what the reader would */
        const char *ip = tmp_path("image"), *op = tmp_path("out");
        write_file(ip, image, sizeof image);
        int ifd = open(ip, O_RDONLY | O_CLOEXEC);
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        o.verity_hash_offset = sizeof image;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -ERANGE);
        o.verity_hash_offset = CS + 1;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -ERANGE);
        o.verity_hash_offset = CS;
        o.verity_root = NULL;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -ERANGE);
        o.verity_root = root;
        o.verity_salt_size = PAYLOAD_VERITY_SALT_MAX + 1;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -E2BIG);
        close(ifd);
        close(ofd);
}

static void test_resigned_structure(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        CHECK_EQ(resigned(buf, len, e_nothing, false), 0);
        CHECK_EQ(resigned(buf, len, e_chunk_outside, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_chunk_overlap, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_chunk_long, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_payload_size, false), -ERANGE);
        CHECK_EQ(resigned(buf, len, e_count_huge, false), -E2BIG);
        CHECK_EQ(resigned(buf, len, e_count_small, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_image_size, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_chunk_size, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_version_len, false), -E2BIG);
        CHECK_EQ(resigned(buf, len, e_version_char, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_revoked_count, false), -E2BIG);
        CHECK_EQ(resigned(buf, len, e_method, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_reserved, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_verity_without_flag, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_manifest_version, false), -EPROTONOSUPPORT);
        CHECK_EQ(resigned(buf, len, e_data_offset, true), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_zstd_stored_too_big, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_zero_method_with_data, false), -EBADMSG);
        CHECK_EQ(resigned(buf, len, e_chunk_method_zero, false), -EBADMSG);
        /* Signed, well formed, but the data does not match: caught by the chunk or image digest. */
        CHECK_EQ(resigned(buf, len, e_image_sha, false), -EILSEQ);
        CHECK_EQ(resigned(buf, len, e_chunk_sha, false), -EILSEQ);
        /* limits and cheap checks first */
        CHECK_EQ(resigned(buf, len, e_image_over_max, false), -EFBIG);
        uint32_t bad = 0;
        CHECK_EQ(resigned_bad(buf, len, e_zero_sha_and_data_sha, false, &bad), -EILSEQ);
        CHECK_EQ(bad, 7);
        free(buf);
}

static void test_header_limits(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        size_t sz;
        uint8_t h[32];
        memcpy(h, buf, 32);
        CHECK_EQ(payload_prefix_size(h, 31, &sz), -ENODATA);
        put32(h + 16, PAYLOAD_MANIFEST_MAX + 1);
        CHECK_EQ(payload_prefix_size(h, 32, &sz), -E2BIG);
        put32(h + 16, 100);
        CHECK_EQ(payload_prefix_size(h, 32, &sz), -EBADMSG);
        memcpy(h, buf, 32);
        put32(h + 20, PAYLOAD_SIGBLOCK_MAX + 1);
        CHECK_EQ(payload_prefix_size(h, 32, &sz), -E2BIG);
        memcpy(h, buf, 32);
        h[12] = 33;
        CHECK_EQ(payload_prefix_size(h, 32, &sz), -EBADMSG);
        memcpy(h, buf, 32);
        h[30] = 1;
        CHECK_EQ(payload_prefix_size(h, 32, &sz), -EBADMSG);
        memcpy(h, buf, 32);
        CHECK_EQ(payload_prefix_size(h, 32, &sz), 0);
        CHECK_EQ(sz, 32 + le32(h + 16) + le32(h + 20));
        /* Signature block length that disagrees with its count. */
        uint32_t mlen = le32(buf + 16);
        put32(buf + 32 + mlen + 4, 2);
        CHECK_EQ(payload_load(buf, len, &ring1, &(Payload *){NULL}), -EBADMSG);
        free(buf);
}

static void test_unverified_parse(void) {
        size_t len;
        uint8_t *buf = build_default(&len);
        Payload *p = NULL;
        CHECK_EQ(payload_parse_unverified(buf, len, &p), 0);
        if (p) {
                CHECK(!p->verified);
                CHECK_EQ(p->signatures[0].status, -1);
                CHECK_EQ(payload_check_signatures(p, buf, len, &ring1), 0);
                CHECK_EQ(p->signatures[0].status, 1);
                CHECK_EQ(payload_check_signatures(p, buf, len, &ring2), 0);
                CHECK_EQ(p->signatures[0].status, -1);
                CHECK(!p->verified);
        }
        payload_free(p);
        free(buf);
}

static void test_image_size_limit(void) {
        /* create refuses an image above the format's maximum before reading it (a sparse file here) */
        const char *ip = tmp_path("huge"), *op = tmp_path("huge-out");
        int ifd = open(ip, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(ifd >= 0 && ofd >= 0);
        CHECK(ftruncate(ifd, (off_t)PAYLOAD_IMAGE_SIZE_MAX + 1) == 0);
        EVP_PKEY *keys[] = {k1};
        PayloadBuildOptions o = default_opts(keys, 1);
        o.chunk_size = PAYLOAD_CHUNK_SIZE_MAX;
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), -EFBIG);
        close(ifd);
        close(ofd);
        unlink(ip);
        CHECK(strstr(payload_strerror(-EFBIG), "64 GiB") != NULL);

        /* the bytes a sparse write stores: everything but the three zero chunks */
        size_t len;
        uint8_t *buf = build_default(&len);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring1, &p), 0);
        if (p)
                CHECK_EQ(payload_nonzero_bytes(p), sizeof image - 3 * CS);
        payload_free(p);
        free(buf);
}

static void test_strings(void) {
        CHECK_STREQ(payload_method_to_string(PAYLOAD_METHOD_ZSTD), "zstd");
        CHECK_EQ(payload_method_from_string("zlib"), PAYLOAD_METHOD_ZLIB);
        CHECK_EQ(payload_method_from_string("zero"), -EINVAL);
        CHECK(strstr(payload_strerror(-EKEYREJECTED), "signature") != NULL);
        uint8_t d[2];
        CHECK_EQ(hex_decode("a0ff", d, 2), 0);
        CHECK(d[0] == 0xa0 && d[1] == 0xff);
        CHECK_EQ(hex_decode("a0f", d, 2), -EINVAL);
        CHECK_EQ(hex_decode("a0fg", d, 2), -EINVAL);
}

int main(void) {
        make_image();
        if (key_generate(&k1) < 0 || key_generate(&k2) < 0) {
                fprintf(stderr, "cannot generate keys\n");
                return 1;
        }
        keyring_init(&ring1);
        keyring_init(&ring2);
        keyring_init(&ring12);
        EVP_PKEY_up_ref(k1);
        EVP_PKEY_up_ref(k2);
        EVP_PKEY_up_ref(k1);
        EVP_PKEY_up_ref(k2);
        if (keyring_add(&ring1, k1) < 0 || keyring_add(&ring2, k2) < 0 || keyring_add(&ring12, k1) < 0 ||
            keyring_add(&ring12, k2) < 0)
                return 1;

        RUN(test_strings);
        RUN(test_keys);
        RUN(test_roundtrip_zstd);
        RUN(test_roundtrip_zlib_none);
        RUN(test_reproducible);
        RUN(test_optional_fields);
        RUN(test_verity_layout);
        RUN(test_bad_options);
        RUN(test_flip_prefix);
        RUN(test_flip_chunk);
        RUN(test_truncated);
        RUN(test_keys_policy);
        RUN(test_resigned_structure);
        RUN(test_header_limits);
        RUN(test_unverified_parse);
        RUN(test_image_size_limit);

        keyring_done(&ring1);
        keyring_done(&ring2);
        keyring_done(&ring12);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(k2);
        return unit_main_end();
}
