/* tpm/error.c — filling struct tpm_error. */
#include "error.h"

#include <stdarg.h>

int tpm_error_set(struct tpm_error *err, int code, enum tpm_error_kind kind, const char *fmt, ...) {
        if (code >= 0)
                code = -EIO;
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof err->msg, fmt, ap);
                va_end(ap);
                err->code = code;
                err->kind = kind;
        }
        return code;
}

const char *tpm_error_kind_name(enum tpm_error_kind kind) {
        static const char *const names[] = {
                [TPM_ERR_NONE] = "none",
                [TPM_ERR_IO] = "io",
                [TPM_ERR_TRUNCATED] = "truncated",
                [TPM_ERR_NO_SPEC_HEADER] = "no-spec-header",
                [TPM_ERR_SIGNATURE] = "signature",
                [TPM_ERR_HEADER] = "header",
                [TPM_ERR_ALG_SIZE] = "alg-size",
                [TPM_ERR_DUP_ALG] = "dup-alg",
                [TPM_ERR_UNKNOWN_ALG] = "unknown-alg",
                [TPM_ERR_DIGEST_COUNT] = "digest-count",
                [TPM_ERR_EVENT_SIZE] = "event-size",
                [TPM_ERR_TOO_LARGE] = "too-large",
                [TPM_ERR_BAD_PCR] = "bad-pcr",
                [TPM_ERR_NO_ACTION] = "no-action",
                [TPM_ERR_UNSUPPORTED] = "unsupported",
                [TPM_ERR_NO_TPM] = "no-tpm",
                [TPM_ERR_TPM] = "tpm",
                [TPM_ERR_MISMATCH] = "mismatch",
                [TPM_ERR_BANKS] = "banks",
                [TPM_ERR_INVALID] = "invalid",
                [TPM_ERR_LOG_AHEAD] = "log-ahead",
        };
        if ((size_t)kind < ELEMENTSOF(names) && names[kind])
                return names[kind];
        return "unknown";
}
