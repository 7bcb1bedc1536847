COMMON_SRCS += common/log.c common/fileio.c common/parse.c common/hex.c common/buf.c

UNIT_TESTS += test-parse
test-parse_SRCS := tests/unit/test-parse.c
