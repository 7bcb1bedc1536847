# tpm/tpm.mk — measured boot: the event-log library, TPM access (tpm2-tss ESAPI) and cairn-tpm.
TPM_LOG_SRCS = tpm/error.c tpm/algtab.c tpm/alg.c tpm/eventlog.c tpm/replay.c
TPM_LOG_LIBS = -lcrypto

UNIT_TESTS += test-tpm-eventlog
test-tpm-eventlog_SRCS = tests/unit/test-tpm-eventlog.c $(TPM_LOG_SRCS)
test-tpm-eventlog_LIBS = $(TPM_LOG_LIBS)

FUZZERS += fuzz-eventlog
fuzz-eventlog_SRCS = tests/fuzz/fuzz-eventlog.c $(TPM_LOG_SRCS)
fuzz-eventlog_LIBS = $(TPM_LOG_LIBS)

TPM_LIB_SRCS = $(TPM_LOG_SRCS) tpm/esys.c tpm/ourlog.c
# tctildr dlopen()s the TCTI named by the string; linking the device TCTI explicitly (not as-needed) makes it a
# dependency ldd sees, so scripts/build-image.sh copies it into the image with the rest.
TPM_LIBS = $(shell pkg-config --libs tss2-esys tss2-tctildr tss2-rc) \
	-Wl,--push-state,--no-as-needed -ltss2-tcti-device -Wl,--pop-state -lcrypto

# predict: the disk (GPT, the ESP's FAT and grubenv through bootcfg, the slot's ext4 through libext2fs).
TPM_PREDICT_SRCS = tpm/predict.c tpm/slotid.c $(BOOTCFG_LIB_SRCS)
TPM_PREDICT_LIBS = -lext2fs -lcom_err $(BOOTCFG_LIBS)

BINS += cairn-tpm
cairn-tpm_SRCS = tpm/main.c $(TPM_LIB_SRCS) $(TPM_PREDICT_SRCS)
cairn-tpm_LIBS = $(TPM_LIBS) $(TPM_PREDICT_LIBS)

# The initramfs's PCR 11 measurer: static, no tpm2-tss and no OpenSSL (raw TPM commands, tpm/minisha.c).
BINS += cairn-tpm-initrd
cairn-tpm-initrd_SRCS = tpm/initrd.c tpm/minisha.c tpm/slotid.c tpm/eventlog.c tpm/error.c tpm/algtab.c common/gpt.c
cairn-tpm-initrd_LIBS = -lz
cairn-tpm-initrd_STATIC = 1

UNIT_TESTS += test-tpm-predict
test-tpm-predict_SRCS = tests/unit/test-tpm-predict.c tpm/minisha.c $(TPM_LOG_SRCS) $(TPM_PREDICT_SRCS)
test-tpm-predict_LIBS = $(TPM_LOG_LIBS) $(TPM_PREDICT_LIBS)

FUZZERS += fuzz-tpm-initrd
fuzz-tpm-initrd_SRCS = tests/fuzz/fuzz-tpm-initrd.c tpm/slotid.c
fuzz-tpm-initrd_LIBS =
