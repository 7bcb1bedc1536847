# image/disk.mk — GPT library users: cairn-mkdisk (disk assembly), cairn-growroot (static, first boot), GPT tests.
BINS += cairn-mkdisk cairn-growroot
cairn-mkdisk_SRCS = image/mkdisk.c image/diskbios.c image/diskguid.c common/gpt.c
cairn-mkdisk_LIBS = -lz -lcrypto
cairn-growroot_SRCS = image/growroot.c common/gpt.c
cairn-growroot_LIBS = -lz
cairn-growroot_STATIC = 1

UNIT_TESTS += test-gpt
test-gpt_SRCS = tests/unit/test-gpt.c common/gpt.c image/diskbios.c image/diskguid.c
test-gpt_LIBS = -lz -lcrypto

BINS += cairn-findpart
cairn-findpart_SRCS = image/findpart.c common/gpt.c
cairn-findpart_LIBS = -lz
cairn-findpart_STATIC = 1
