/* tpm/ourlog.h — Cairn's own event log file (header + EV_EVENT_TAG records, appended under a lock before each
 * extend), and bounded loading of log files from disk. */
#pragma once

#include "eventlog.h"
#include "tpm.h"

#define CAIRN_TPM_LOG_DEFAULT "/run/cairn/tpm-events.log"
#define FIRMWARE_LOG_DEFAULT "/sys/kernel/security/tpm0/binary_bios_measurements"

/* Read and parse a log file (at most EVENTLOG_MAX_SIZE bytes). -ENOENT (TPM_ERR_IO) if it does not exist,
 * -ENODATA (TPM_ERR_NO_SPEC_HEADER) if it is empty (our log between its creation and its header). */
int eventlog_load(const char *path, unsigned flags, struct eventlog **ret, struct tpm_error *err)
        _warn_unused_result_;

struct ourlog_append {
        bool created;  /* the log did not exist and was created with a header */
        size_t record; /* the new record's number (1 = first after the header) */
        size_t offset; /* its byte offset */
};

/* Our log, open and exclusively locked (flock) for an append. */
struct ourlog {
        int fd;
        char *path;
};

/* Open (creating it empty if absent, with its directories) and lock our log. Take the lock before opening the TPM:
 * a TPM without a resource manager (swtpm) serves one client at a time, so lock-then-TPM is the one order. */
int ourlog_lock(const char *path, struct ourlog **ret, struct tpm_error *err) _warn_unused_result_;
void ourlog_unlock(struct ourlog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ourlog *, ourlog_unlock);
#define _cleanup_ourlog_ _cleanup_(ourlog_unlockp)

/* Measure into pcr: write the spec header for d's banks if the log is empty, append the record
 * {pcr, type, d, event}, fsync, then extend the TPM with d. d must hold one digest per active bank of t, in any
 * order; an existing log must list exactly those banks. If the extend fails after the record was written, the
 * record stays (the TPM may or may not have executed the extend) and the error kind is TPM_ERR_LOG_AHEAD. */
int ourlog_extend(struct ourlog *l, struct tpm *t, unsigned pcr, uint32_t type, const struct tpm_digests *d,
                  const void *event, size_t event_len, struct ourlog_append *ret, struct tpm_error *err)
        _warn_unused_result_;
