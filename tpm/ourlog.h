/* tpm/ourlog.h — Cairn's own event log file (header + EV_EVENT_TAG records, appended under a lock before each
 * extend), and bounded loading of log files from disk. */
#pragma once

#include "eventlog.h"
#include "tpm.h"

#define CAIRN_TPM_LOG_DEFAULT "/run/cairn/tpm-events.log"
#define FIRMWARE_LOG_DEFAULT "/sys/kernel/security/tpm0/binary_bios_measurements"

/* Read and parse a log file (at most EVENTLOG_MAX_SIZE bytes). -ENOENT (TPM_ERR_IO) if it does not exist. */
int eventlog_load(const char *path, unsigned flags, struct eventlog **ret, struct tpm_error *err)
        _warn_unused_result_;

struct ourlog_append {
        bool created;  /* the log did not exist and was created with a header */
        size_t record; /* the new record's number (1 = first after the header) */
        size_t offset; /* its byte offset */
};

/* Measure into pcr: under an exclusive flock on the log at path (created with a spec header for the digests'
 * banks if absent), append the record {pcr, type, d, event}, fsync, then extend the TPM with d, then unlock.
 * d must hold one digest per active bank of t, in any order. If the extend fails after the record was written,
 * the record stays (the TPM may or may not have executed the extend) and the error kind is TPM_ERR_LOG_AHEAD. */
int ourlog_extend(struct tpm *t, const char *path, unsigned pcr, uint32_t type, const struct tpm_digests *d,
                  const void *event, size_t event_len, struct ourlog_append *ret, struct tpm_error *err)
        _warn_unused_result_;
