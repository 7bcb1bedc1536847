# updater/payload.mk — release payload library, cairn-keygen, cairn-release, their unit test and fuzzer.
PAYLOAD_LIB_SRCS := updater/payload.c updater/sign.c
PAYLOAD_LIBS := -lcrypto -lzstd -lz -lpthread

BINS += cairn-keygen cairn-release
cairn-keygen_SRCS := updater/keygen.c updater/sign.c
cairn-keygen_LIBS := -lcrypto
# create fills the manifest's kernel/initrd/cmdline digests from the image (tpm/bootdigest.c, libext2fs).
cairn-release_SRCS := updater/release.c $(PAYLOAD_LIB_SRCS) tpm/bootdigest.c
cairn-release_LIBS := $(PAYLOAD_LIBS) -lext2fs -lcom_err
$(BUILD)/obj/updater/release.o: CPPFLAGS += -Itpm

UNIT_TESTS += test-payload
test-payload_SRCS := tests/unit/test-payload.c $(PAYLOAD_LIB_SRCS)
test-payload_LIBS := $(PAYLOAD_LIBS)

FUZZERS += fuzz-manifest
fuzz-manifest_SRCS := tests/fuzz/fuzz-manifest.c $(PAYLOAD_LIB_SRCS)
fuzz-manifest_LIBS := $(PAYLOAD_LIBS)
