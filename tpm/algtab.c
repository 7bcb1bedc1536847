/* tpm/algtab.c — the TPM hash algorithm table (ids, names, sizes), PCR-list parsing and hex: no OpenSSL, so the
 * static initramfs helper links it too. */
#include "alg.h"

#include "parse.h"

static const struct {
        uint16_t alg;
        uint16_t size;
        const char *name;
        const char *evp; /* OpenSSL digest name */
} algs[] = {
        { TPM_ALG_SHA1, 20, "sha1", "SHA1" },       { TPM_ALG_SHA256, 32, "sha256", "SHA256" },
        { TPM_ALG_SHA384, 48, "sha384", "SHA384" }, { TPM_ALG_SHA512, 64, "sha512", "SHA512" },
        { TPM_ALG_SM3_256, 32, "sm3_256", "SM3" },
};

static int find(uint16_t alg) {
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (algs[i].alg == alg)
                        return (int)i;
        return -1;
}

const char *tpm_alg_evp_name(uint16_t alg) {
        int i = find(alg);
        return i < 0 ? NULL : algs[i].evp;
}

unsigned tpm_alg_size(uint16_t alg) {
        int i = find(alg);
        return i < 0 ? 0 : algs[i].size;
}

const char *tpm_alg_name(uint16_t alg) {
        int i = find(alg);
        return i < 0 ? NULL : algs[i].name;
}

int tpm_alg_from_name(const char *name, uint16_t *ret_alg) {
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (strcmp(algs[i].name, name) == 0) {
                        *ret_alg = algs[i].alg;
                        return 0;
                }
        return -EINVAL;
}

const struct pcr_bank *pcr_banks_find(const struct pcr_banks *b, uint16_t alg) {
        for (size_t i = 0; i < b->n; i++)
                if (b->bank[i].alg == alg)
                        return &b->bank[i];
        return NULL;
}

int pcr_mask_parse(const char *s, uint32_t *ret_mask) {
        if (!s || !*s)
                return -EINVAL;
        _cleanup_free_ char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        uint32_t mask = 0;
        /* strtok_r would skip empty items ("1,,2"); walk by hand so they are errors. */
        char *p = copy;
        for (;;) {
                char *comma = strchr(p, ',');
                if (comma)
                        *comma = 0;
                char *dash = strchr(p, '-');
                unsigned lo, hi;
                int r;
                if (dash) {
                        *dash = 0;
                        r = parse_unsigned_range(p, 0, TPM_PCRS - 1, &lo);
                        if (r < 0)
                                return r;
                        r = parse_unsigned_range(dash + 1, 0, TPM_PCRS - 1, &hi);
                        if (r < 0)
                                return r;
                        if (hi < lo)
                                return -EINVAL;
                } else {
                        r = parse_unsigned_range(p, 0, TPM_PCRS - 1, &lo);
                        if (r < 0)
                                return r;
                        hi = lo;
                }
                for (unsigned i = lo; i <= hi; i++)
                        mask |= 1u << i;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret_mask = mask;
        return 0;
}

