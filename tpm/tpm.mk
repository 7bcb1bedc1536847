# tpm/tpm.mk — measured boot: the event-log library, TPM access (tpm2-tss ESAPI) and cairn-tpm.
TPM_LOG_SRCS := tpm/error.c tpm/alg.c tpm/eventlog.c tpm/replay.c
TPM_LOG_LIBS := -lcrypto

UNIT_TESTS += test-tpm-eventlog
test-tpm-eventlog_SRCS := tests/unit/test-tpm-eventlog.c $(TPM_LOG_SRCS)
test-tpm-eventlog_LIBS := $(TPM_LOG_LIBS)

FUZZERS += fuzz-eventlog
fuzz-eventlog_SRCS := tests/fuzz/fuzz-eventlog.c $(TPM_LOG_SRCS)
fuzz-eventlog_LIBS := $(TPM_LOG_LIBS)
