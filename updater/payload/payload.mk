# updater/payload/payload.mk — the payload library (reader/verifier, writer, signing keys), its unit test and fuzzer.
PAYLOAD_LIB_SRCS = updater/payload/payload.c updater/payload/payload-write.c updater/payload/delta.c \
	updater/payload/sign.c $(HASH_SRCS)
PAYLOAD_LIBS = -lcrypto -lzstd -lz -lpthread

UNIT_TESTS += test-payload
test-payload_SRCS = tests/unit/test-payload.c $(PAYLOAD_LIB_SRCS)
test-payload_LIBS = $(PAYLOAD_LIBS)

FUZZERS += fuzz-manifest
fuzz-manifest_SRCS = tests/fuzz/fuzz-manifest.c $(PAYLOAD_LIB_SRCS)
fuzz-manifest_LIBS = $(PAYLOAD_LIBS)

UNIT_TESTS += test-delta
test-delta_SRCS = tests/unit/test-delta.c $(PAYLOAD_LIB_SRCS)
test-delta_LIBS = $(PAYLOAD_LIBS)
