# updater/agent.mk — the update agent: cairn-updated, cairnctl, their unit tests and the Omaha response fuzzer.
AGENT_LIB_SRCS = updater/agent.c updater/agent-config.c updater/agent-state.c updater/agent-http.c \
	updater/agent-omaha.c updater/agent-apply.c updater/agent-health.c updater/agent-daemon.c updater/omaha.c \
	image/verity.c $(PAYLOAD_LIB_SRCS) $(BOOTCFG_LIB_SRCS)
AGENT_LIBS = -lcurl -lexpat -lcrypto -lzstd -lz -lpthread $(BOOTCFG_LIBS)

BINS += cairn-updated cairnctl
cairn-updated_SRCS = updater/updated.c $(AGENT_LIB_SRCS)
cairn-updated_LIBS = $(AGENT_LIBS)
cairnctl_SRCS = updater/cairnctl.c updater/agent-state.c updater/omaha.c updater/payload.c updater/sign.c
cairnctl_LIBS = -lexpat -lcrypto -lzstd -lz -lpthread

UNIT_TESTS += test-agent
test-agent_SRCS = tests/unit/test-agent.c $(AGENT_LIB_SRCS)
test-agent_LIBS = $(AGENT_LIBS)

FUZZERS += fuzz-omaha-response
fuzz-omaha-response_SRCS = tests/fuzz/fuzz-omaha-response.c updater/omaha.c updater/agent-omaha.c
fuzz-omaha-response_LIBS = -lexpat -lcrypto

# dm-verity root of the written slot (image/verity.h): only agent-apply.c includes it.
$(BUILD)/obj/updater/agent-apply.o: CPPFLAGS += -Iimage
