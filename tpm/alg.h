/* tpm/alg.h — TPM hash algorithms (ids, names, digest sizes), hashing with OpenSSL EVP, and PCR bank values. */
#pragma once

#include "hex.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TPM_PCRS 24
#define TPM_MAX_DIGEST 64 /* SHA-512 */
#define TPM_MAX_BANKS 8   /* most algorithms a log header or a TPM may list */

#define TPM_ALG_SHA1 0x0004
#define TPM_ALG_SHA256 0x000B
#define TPM_ALG_SHA384 0x000C
#define TPM_ALG_SHA512 0x000D
#define TPM_ALG_SM3_256 0x0012

/* The digest size of a known algorithm, or 0 if unknown. */
unsigned tpm_alg_size(uint16_t alg);
/* "sha256", or NULL if unknown. */
const char *tpm_alg_name(uint16_t alg);
/* OpenSSL's digest name ("SHA256"), or NULL if unknown (tpm/alg.c's use). */
const char *tpm_alg_evp_name(uint16_t alg);
/* Parse a name ("sha1", "sha256", …); -EINVAL if unknown. */
int tpm_alg_from_name(const char *name, uint16_t *ret_alg);
/* Whether OpenSSL can compute this algorithm here. */
bool tpm_alg_supported(uint16_t alg);

struct tpm_digest {
        uint16_t alg;
        uint16_t size;
        uint8_t bytes[TPM_MAX_DIGEST];
};

/* One digest per algorithm in algs[0..n). */
struct tpm_digests {
        size_t n;
        struct tpm_digest d[TPM_MAX_BANKS];
};

/* Hash data with each algorithm. -EOPNOTSUPP (TPM_ERR_UNSUPPORTED) for an algorithm OpenSSL lacks. */
int tpm_hash_data(const uint16_t *algs, size_t n, const void *data, size_t len, struct tpm_digests *ret,
                  struct tpm_error *err) _warn_unused_result_;
/* Hash a whole open file (streamed; no size limit, the file is not kept in memory). */
int tpm_hash_fd(const uint16_t *algs, size_t n, int fd, struct tpm_digests *ret, struct tpm_error *err)
        _warn_unused_result_;
/* value = H(value || digest), the PCR fold. value and digest are size(alg) bytes. */
int tpm_fold(uint16_t alg, uint8_t *value, const uint8_t *digest, struct tpm_error *err) _warn_unused_result_;

/* The values of some PCRs of one bank: value[i] is valid when mask bit i is set. */
struct pcr_bank {
        uint16_t alg;
        uint16_t size;
        uint32_t mask;
        uint8_t value[TPM_PCRS][TPM_MAX_DIGEST];
};

struct pcr_banks {
        size_t n;
        struct pcr_bank bank[TPM_MAX_BANKS];
};

/* The bank for alg in b, or NULL. */
const struct pcr_bank *pcr_banks_find(const struct pcr_banks *b, uint16_t alg);
/* Parse a PCR list "0,7,8-11" into a mask; -EINVAL/-ERANGE on anything else. */
int pcr_mask_parse(const char *s, uint32_t *ret_mask);
