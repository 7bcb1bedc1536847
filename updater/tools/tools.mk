# updater/tools/tools.mk — release tools: cairn-keygen, cairn-release, and cairn-lock-bench (scripts/bench/lock.sh).
BINS += cairn-keygen cairn-release cairn-lock-bench
cairn-keygen_SRCS = updater/tools/keygen.c updater/payload/sign.c $(HASH_SRCS)
cairn-keygen_LIBS = -lcrypto
# create fills the manifest's kernel/initrd/cmdline digests from the image (tpm/bootdigest.c, libext2fs).
cairn-release_SRCS = updater/tools/release.c $(PAYLOAD_LIB_SRCS) tpm/bootdigest.c bootcfg/envblock.c
cairn-release_LIBS = $(PAYLOAD_LIBS) -lext2fs -lcom_err
cairn-lock-bench_SRCS = updater/tools/lock-bench.c updater/tools/latency.c $(LOCK_LIB_SRCS)
cairn-lock-bench_LIBS = $(LOCK_LIBS)
