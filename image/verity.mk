# image/verity.mk — the dm-verity hash tree builder (image/verity.c), cairn-veritytree, its unit test and the
# superblock parser's fuzzer.
VERITY_LIB_SRCS = image/verity.c
VERITY_LIBS = -lcrypto

BINS += cairn-veritytree
cairn-veritytree_SRCS = image/veritytree.c $(VERITY_LIB_SRCS)
cairn-veritytree_LIBS = $(VERITY_LIBS)

UNIT_TESTS += test-verity
test-verity_SRCS = tests/unit/test-verity.c $(VERITY_LIB_SRCS)
test-verity_LIBS = $(VERITY_LIBS)

FUZZERS += fuzz-verity-sb
fuzz-verity-sb_SRCS = tests/fuzz/fuzz-verity-sb.c $(VERITY_LIB_SRCS)
fuzz-verity-sb_LIBS = $(VERITY_LIBS)

# The initramfs's activation of the /usr slot (device-mapper ioctls); static like cairn-findpart.
BINS += cairn-dmverity
cairn-dmverity_SRCS = image/dmverity.c image/verity-slot.c $(VERITY_LIB_SRCS)
cairn-dmverity_LIBS = $(VERITY_LIBS)
cairn-dmverity_STATIC = 1

FUZZERS += fuzz-verity-slot
fuzz-verity-slot_SRCS = tests/fuzz/fuzz-verity-slot.c image/verity-slot.c $(VERITY_LIB_SRCS)
fuzz-verity-slot_LIBS = $(VERITY_LIBS)
