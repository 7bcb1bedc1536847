# common/outfile.mk — atomic output files with signal-time cleanup (used by cairn-mkimage and cairn-release).
COMMON_SRCS += common/outfile.c

UNIT_TESTS += test-outfile
test-outfile_SRCS = tests/unit/test-outfile.c
