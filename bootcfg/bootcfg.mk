# bootcfg/bootcfg.mk — A/B boot selection: cairn-bootcfg and its tests.
BOOTCFG_LIB_SRCS = bootcfg/state.c bootcfg/bootcfg.c bootcfg/grubenv.c bootcfg/envblock.c bootcfg/gptattr.c bootcfg/fat.c common/gpt.c $(HASH_SRCS)
BOOTCFG_LIBS = -lblkid -lcrypto -lz

BINS += cairn-bootcfg
cairn-bootcfg_SRCS = bootcfg/main.c image/verity-slot.c image/verity.c $(BOOTCFG_LIB_SRCS)
cairn-bootcfg_LIBS = $(BOOTCFG_LIBS)

UNIT_TESTS += test-bootcfg
test-bootcfg_SRCS = tests/unit/test-bootcfg.c $(BOOTCFG_LIB_SRCS)
test-bootcfg_LIBS = $(BOOTCFG_LIBS)
# status shows each slot's version and dm-verity root hash from its root-hash block (image/verity-slot.h).
