/* tpm/error.h — the error detail every tpm/ function fills: a -errno code, a kind and one line of text. */
#pragma once

#include "macro.h"

/* What went wrong, so callers and tests can tell the cases apart without parsing text. */
enum tpm_error_kind {
        TPM_ERR_NONE = 0,
        TPM_ERR_IO,             /* reading or writing a file */
        TPM_ERR_TRUNCATED,      /* a record ends before one of its fields */
        TPM_ERR_NO_SPEC_HEADER, /* the first record is not the EV_NO_ACTION spec header (or the log is empty) */
        TPM_ERR_SIGNATURE,      /* the spec header's signature is not "Spec ID Event03" */
        TPM_ERR_HEADER,         /* the spec header's fields are inconsistent (version, sizes, counts) */
        TPM_ERR_ALG_SIZE,       /* an algorithm's digest size disagrees with the known size, or is absurd */
        TPM_ERR_DUP_ALG,        /* an algorithm listed twice (header) or digested twice (record) */
        TPM_ERR_UNKNOWN_ALG,    /* a record digest with an algorithm the header does not list */
        TPM_ERR_DIGEST_COUNT,   /* a record's digest count is 0, exceeds the header's algorithms, or is short */
        TPM_ERR_EVENT_SIZE,     /* a record's event data runs past the end of the log */
        TPM_ERR_TOO_LARGE,      /* an absurd size: log, event data, number of records */
        TPM_ERR_BAD_PCR,        /* a PCR index outside 0..23 */
        TPM_ERR_NO_ACTION,      /* an EV_NO_ACTION record after the header in our own log */
        TPM_ERR_UNSUPPORTED,    /* an algorithm we cannot compute (no OpenSSL digest) */
        TPM_ERR_NO_TPM,         /* no TPM reachable through the TCTI */
        TPM_ERR_TPM,            /* a TPM command failed */
        TPM_ERR_MISMATCH,       /* a replayed PCR differs from the TPM's */
        TPM_ERR_BANKS,          /* our log's banks differ from the TPM's active banks */
        TPM_ERR_INVALID,        /* a bad argument */
        TPM_ERR_LOG_AHEAD,      /* our log record was written, then the extend failed */
};

struct tpm_error {
        int code; /* -errno */
        enum tpm_error_kind kind;
        char msg[512];
};

/* Record an error in err (if non-NULL) and return code (negative). */
int tpm_error_set(struct tpm_error *err, int code, enum tpm_error_kind kind, const char *fmt, ...) _printf_(4, 5);
const char *tpm_error_kind_name(enum tpm_error_kind kind);
