# updater/tools/tools.mk — release tools: cairn-keygen, cairn-release, and cairn-lock-bench (scripts/bench/lock.sh).
BINS += cairn-keygen cairn-release cairn-lock-bench
cairn-keygen_SRCS = updater/tools/keygen.c updater/payload/sign.c $(HASH_SRCS)
cairn-keygen_LIBS = -lcrypto
cairn-release_SRCS = updater/tools/release.c $(PAYLOAD_LIB_SRCS)
cairn-release_LIBS = $(PAYLOAD_LIBS)
cairn-lock-bench_SRCS = updater/tools/lock-bench.c $(LOCK_LIB_SRCS)
cairn-lock-bench_LIBS = $(LOCK_LIBS)
