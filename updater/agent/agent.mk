# updater/agent/agent.mk — the host agent: cairn-updated, cairnctl, their unit test and the Omaha response fuzzer.
AGENT_LIB_SRCS = updater/agent/agent.c updater/agent/check.c updater/agent/revoked.c updater/agent/manifest.c updater/agent/update.c updater/agent/postboot.c updater/agent/config.c updater/agent/state.c updater/agent/http.c \
	updater/agent/omaha-client.c updater/agent/apply.c updater/agent/delta.c updater/agent/health.c updater/agent/daemon.c \
	updater/agent/window.c updater/agent/reboot.c updater/agent/reboot-status.c updater/agent/hook-env.c \
	updater/agent/measure.c updater/agent/measure-record.c \
	image/verity.c $(OMAHA_LIB_SRCS) $(PAYLOAD_LIB_SRCS) $(BOOTCFG_LIB_SRCS) $(LOCK_LIB_SRCS)
AGENT_LIBS = -lcurl $(OMAHA_LIBS) $(PAYLOAD_LIBS) $(BOOTCFG_LIBS) $(LOCK_LIBS)

BINS += cairn-updated cairnctl
cairn-updated_SRCS = updater/agent/updated.c $(AGENT_LIB_SRCS)
cairn-updated_LIBS = $(AGENT_LIBS)
# cairnctl prints the agent's state (state file, config, the reboot block): no libcurl, json-c, expat, zstd or
# pthread. Its lock verbs run cairn-lockctl (the lock library and update.conf's lock settings).
cairnctl_SRCS = updater/agent/cairnctl.c updater/agent/state.c updater/agent/config.c updater/agent/window.c \
	updater/agent/reboot-status.c updater/agent/measure-record.c $(OMAHA_VERSION_SRCS)
cairnctl_LIBS =
BINS += cairn-lockctl
cairn-lockctl_SRCS = updater/agent/lockctl-main.c updater/agent/config.c updater/agent/window.c \
	$(OMAHA_VERSION_SRCS) $(LOCK_CLI_SRCS) $(LOCK_LIB_SRCS)
cairn-lockctl_LIBS = $(LOCK_LIBS)

UNIT_TESTS += test-agent
test-agent_SRCS = tests/unit/test-agent.c $(AGENT_LIB_SRCS)
test-agent_LIBS = $(AGENT_LIBS)

FUZZERS += fuzz-omaha-response
fuzz-omaha-response_SRCS = tests/fuzz/fuzz-omaha-response.c updater/agent/omaha-client.c $(OMAHA_LIB_SRCS)
fuzz-omaha-response_LIBS = $(OMAHA_LIBS)

# The streaming apply pipeline end to end (a payload over HTTP from a server thread into a disk file); also
# built with ThreadSanitizer by `make check` (SAN=thread).
UNIT_TESTS += test-apply
test-apply_SRCS = tests/unit/test-apply.c $(AGENT_LIB_SRCS)
test-apply_LIBS = $(AGENT_LIBS)

UNIT_TESTS += test-agent-reboot
test-agent-reboot_SRCS = tests/unit/test-agent-reboot.c $(AGENT_LIB_SRCS)
test-agent-reboot_LIBS = $(AGENT_LIBS)

FUZZERS += fuzz-window
fuzz-window_SRCS = tests/fuzz/fuzz-window.c updater/agent/window.c
fuzz-window_LIBS =

UNIT_TESTS += test-agent-delta
test-agent-delta_SRCS = tests/unit/test-agent-delta.c $(AGENT_LIB_SRCS)
test-agent-delta_LIBS = $(AGENT_LIBS)

# Measured boot in the agent (measure.c, measure-record.c): the record, its status block, the <cairnpcrs> element.
UNIT_TESTS += test-agent-measure
test-agent-measure_SRCS = tests/unit/test-agent-measure.c updater/agent/measure-record.c $(OMAHA_LIB_SRCS)
test-agent-measure_LIBS = $(OMAHA_LIBS)

FUZZERS += fuzz-measure-record
fuzz-measure-record_SRCS = tests/fuzz/fuzz-measure-record.c updater/agent/measure-record.c $(OMAHA_VERSION_SRCS)
fuzz-measure-record_LIBS =
UNIT_TESTS += test-agent-measure-flow
test-agent-measure-flow_SRCS = tests/unit/test-agent-measure-flow.c $(AGENT_LIB_SRCS)
test-agent-measure-flow_LIBS = $(AGENT_LIBS)
