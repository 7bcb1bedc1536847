COMMON_SRCS += common/log.c common/fileio.c common/parse.c common/hex.c common/buf.c common/kvfile.c

UNIT_TESTS += test-parse
test-parse_SRCS := tests/unit/test-parse.c

FUZZERS += fuzz-kvfile
fuzz-kvfile_SRCS = tests/fuzz/fuzz-kvfile.c
fuzz-kvfile_LIBS =

# SHA-256 helpers (need -lcrypto, so not in every program): add $(HASH_SRCS) where used.
HASH_SRCS = common/hash.c
