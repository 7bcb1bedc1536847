/* tpm/tpm.h — access to a TPM 2.0 through tpm2-tss ESAPI: open by TCTI string, active PCR banks, read, extend. */
#pragma once

#include "alg.h"
#include "error.h"

#define TPM_DEFAULT_TCTI "device:/dev/tpmrm0"

struct tpm;

/* Open the TPM behind tcti (NULL: $CAIRN_TPM_TCTI, else TPM_DEFAULT_TCTI) and probe it with one command.
 * -ENODEV with TPM_ERR_NO_TPM when nothing answers (TCTI cannot start, device absent, connection refused). */
int tpm_open(const char *tcti, struct tpm **ret, struct tpm_error *err) _warn_unused_result_;
void tpm_close(struct tpm *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tpm *, tpm_close);
#define _cleanup_tpm_ _cleanup_(tpm_closep)
/* The TCTI string in use. */
const char *tpm_tcti(const struct tpm *t);

/* The active (allocated) PCR banks, in the TPM's order. */
int tpm_banks(struct tpm *t, uint16_t *ret_algs, size_t *ret_n, struct tpm_error *err) _warn_unused_result_;
/* Read the PCRs in mask of every active bank into ret (bank[i].mask == mask on success). */
int tpm_pcr_read(struct tpm *t, uint32_t mask, struct pcr_banks *ret, struct tpm_error *err) _warn_unused_result_;
/* Extend pcr with one digest per bank (all in one TPM2_PCR_Extend). */
int tpm_pcr_extend(struct tpm *t, unsigned pcr, const struct tpm_digests *d, struct tpm_error *err)
        _warn_unused_result_;
