/* tpm/alg.c — hashing for the TPM algorithms (tpm/algtab.c has the table): the one place OpenSSL's EVP hashing (and its error queue) is used. */
#include "alg.h"

#include <openssl/err.h>
#include <openssl/evp.h>


static const EVP_MD *md_of(uint16_t alg) {
        const char *name = tpm_alg_evp_name(alg);
        if (!name)
                return NULL;
        const EVP_MD *md = EVP_get_digestbyname(name);
        if (!md || (unsigned)EVP_MD_get_size(md) != tpm_alg_size(alg)) {
                ERR_clear_error();
                return NULL;
        }
        return md;
}

bool tpm_alg_supported(uint16_t alg) {
        return md_of(alg) != NULL;
}

/* The one conversion of OpenSSL's error queue: the first queued reason goes into the message. */
static int openssl_error(struct tpm_error *err, const char *what) {
        unsigned long e = ERR_get_error();
        char buf[256] = "unknown error";
        if (e)
                ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        return tpm_error_set(err, -EIO, TPM_ERR_IO, "OpenSSL %s failed: %s", what, buf);
}


struct hashers {
        size_t n;
        EVP_MD_CTX *ctx[TPM_MAX_BANKS];
};

static void hashers_free(struct hashers *h) {
        for (size_t i = 0; i < h->n; i++)
                EVP_MD_CTX_free(h->ctx[i]);
        h->n = 0;
}

static int hashers_init(struct hashers *h, const uint16_t *alg, size_t n, struct tpm_error *err) {
        if (n > TPM_MAX_BANKS)
                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "%zu hash algorithms (at most %d)", n,
                                     TPM_MAX_BANKS);
        h->n = 0;
        for (size_t i = 0; i < n; i++) {
                const EVP_MD *md = md_of(alg[i]);
                if (!md)
                        return tpm_error_set(err, -EOPNOTSUPP, TPM_ERR_UNSUPPORTED,
                                             "hash algorithm 0x%04x (%s) is not available here", alg[i],
                                             tpm_alg_name(alg[i]) ?: "unknown");
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                if (!c)
                        return openssl_error(err, "EVP_MD_CTX_new");
                h->ctx[h->n++] = c;
                if (EVP_DigestInit_ex(c, md, NULL) != 1)
                        return openssl_error(err, "EVP_DigestInit_ex");
        }
        return 0;
}

static int hashers_update(struct hashers *h, const void *p, size_t len, struct tpm_error *err) {
        for (size_t i = 0; i < h->n; i++)
                if (EVP_DigestUpdate(h->ctx[i], p, len) != 1)
                        return openssl_error(err, "EVP_DigestUpdate");
        return 0;
}

static int hashers_final(struct hashers *h, const uint16_t *alg, struct tpm_digests *ret, struct tpm_error *err) {
        struct tpm_digests out = { .n = h->n };
        for (size_t i = 0; i < h->n; i++) {
                unsigned len = 0;
                if (EVP_DigestFinal_ex(h->ctx[i], out.d[i].bytes, &len) != 1)
                        return openssl_error(err, "EVP_DigestFinal_ex");
                out.d[i].alg = alg[i];
                out.d[i].size = (uint16_t)len;
        }
        *ret = out;
        return 0;
}

int tpm_hash_data(const uint16_t *alg, size_t n, const void *data, size_t len, struct tpm_digests *ret,
                  struct tpm_error *err) {
        _cleanup_(hashers_free) struct hashers h = { 0 };
        int r = hashers_init(&h, alg, n, err);
        if (r < 0)
                return r;
        r = hashers_update(&h, data, len, err);
        if (r < 0)
                return r;
        return hashers_final(&h, alg, ret, err);
}

int tpm_hash_fd(const uint16_t *alg, size_t n, int fd, struct tpm_digests *ret, struct tpm_error *err) {
        _cleanup_(hashers_free) struct hashers h = { 0 };
        int r = hashers_init(&h, alg, n, err);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(1 << 16);
        if (!buf)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        for (;;) {
                ssize_t k = read(fd, buf, 1 << 16);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        return tpm_error_set(err, r, TPM_ERR_IO, "read failed: %s", strerror(-r));
                }
                if (k == 0)
                        break;
                r = hashers_update(&h, buf, (size_t)k, err);
                if (r < 0)
                        return r;
        }
        return hashers_final(&h, alg, ret, err);
}

int tpm_fold(uint16_t alg, uint8_t *value, const uint8_t *digest, struct tpm_error *err) {
        _cleanup_(hashers_free) struct hashers h = { 0 };
        int r = hashers_init(&h, &alg, 1, err);
        if (r < 0)
                return r;
        unsigned size = tpm_alg_size(alg);
        r = hashers_update(&h, value, size, err);
        if (r < 0)
                return r;
        r = hashers_update(&h, digest, size, err);
        if (r < 0)
                return r;
        struct tpm_digests d;
        r = hashers_final(&h, &alg, &d, err);
        if (r < 0)
                return r;
        memcpy(value, d.d[0].bytes, size);
        return 0;
}

