# updater/agent/agent.mk — the host agent: cairn-updated, cairnctl, their unit test and the Omaha response fuzzer.
AGENT_LIB_SRCS = updater/agent/agent.c updater/agent/config.c updater/agent/state.c updater/agent/http.c \
	updater/agent/omaha-client.c updater/agent/apply.c updater/agent/delta.c updater/agent/health.c updater/agent/daemon.c \
	$(OMAHA_LIB_SRCS) $(PAYLOAD_LIB_SRCS) $(BOOTCFG_LIB_SRCS)
AGENT_LIBS = -lcurl $(OMAHA_LIBS) $(PAYLOAD_LIBS) $(BOOTCFG_LIBS)

BINS += cairn-updated cairnctl
cairn-updated_SRCS = updater/agent/updated.c $(AGENT_LIB_SRCS)
cairn-updated_LIBS = $(AGENT_LIBS)
# cairnctl prints the agent's state: the state file reader and the version rule, nothing that fetches or writes.
cairnctl_SRCS = updater/agent/cairnctl.c updater/agent/state.c $(OMAHA_VERSION_SRCS)
cairnctl_LIBS =

UNIT_TESTS += test-agent
test-agent_SRCS = tests/unit/test-agent.c $(AGENT_LIB_SRCS)
test-agent_LIBS = $(AGENT_LIBS)

FUZZERS += fuzz-omaha-response
fuzz-omaha-response_SRCS = tests/fuzz/fuzz-omaha-response.c updater/agent/omaha-client.c $(OMAHA_LIB_SRCS)
fuzz-omaha-response_LIBS = $(OMAHA_LIBS)

UNIT_TESTS += test-agent-delta
test-agent-delta_SRCS = tests/unit/test-agent-delta.c $(AGENT_LIB_SRCS)
test-agent-delta_LIBS = $(AGENT_LIBS)
