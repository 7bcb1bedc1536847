/* tpm/replay.h — replaying event logs into PCR values (PCR = H(PCR || digest), per bank, per PCR) and comparing
 * the result with a TPM's PCRs. */
#pragma once

#include "alg.h"
#include "eventlog.h"

struct replay {
        struct pcr_banks pcrs; /* mask = PCRs with at least one extending event */
        /* PCRs where some event lacked this bank's digest, and the first such event's record number. */
        uint32_t missing[TPM_MAX_BANKS];
        size_t missing_record[TPM_MAX_BANKS][TPM_PCRS];
        size_t n_events; /* events folded so far (across logs) */
};

/* Start from the reset values (0…0; PCR 17-22 read as FF…FF) for these banks. -EOPNOTSUPP for a bank we cannot
 * hash. */
int replay_init(struct replay *r, const uint16_t *algs, size_t n, struct tpm_error *err) _warn_unused_result_;
/* Fold every event of log into r. EV_NO_ACTION is never extended (as the TCG spec says; tpm2_eventlog 5.4
 * differs, which is why our log contains none), except the StartupLocality event, which sets PCR 0's initial
 * value. */
int replay_log(struct replay *r, const struct eventlog *log, struct tpm_error *err) _warn_unused_result_;

struct replay_mismatch {
        unsigned pcr;
        uint16_t alg;
        uint8_t replayed[TPM_MAX_DIGEST];
        uint8_t tpm[TPM_MAX_DIGEST];
        bool missing_digest; /* some event had no digest for this bank */
        size_t missing_record;
};

/* Compare the PCRs in mask of every bank of r with tpm (which must hold them), PCR by PCR in bank order.
 * 0 if all equal; -EBADMSG (TPM_ERR_MISMATCH) with the first disagreeing PCR and bank in ret_mismatch. */
int replay_compare(const struct replay *r, const struct pcr_banks *tpm, uint32_t mask,
                   struct replay_mismatch *ret_mismatch, struct tpm_error *err) _warn_unused_result_;
