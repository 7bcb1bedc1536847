# provision/provision.mk — first-boot provisioning (Ignition subset), the sudo replacement, the installer; their
# unit test and the config parser's fuzzer.
PROVISION_LIB_SRCS = provision/ignition.c
PROVISION_LIBS = -ljson-c -lcrypto -lz

BINS += cairn-provision cairn-sudo
cairn-provision_SRCS = provision/provision.c provision/fetch.c $(PROVISION_LIB_SRCS)
cairn-provision_LIBS = $(PROVISION_LIBS) -lcurl
cairn-sudo_SRCS = provision/sudo.c
cairn-sudo_LIBS =

UNIT_TESTS += test-provision
test-provision_SRCS = tests/unit/test-provision.c $(PROVISION_LIB_SRCS)
test-provision_LIBS = $(PROVISION_LIBS)

FUZZERS += fuzz-ignition
fuzz-ignition_SRCS = tests/fuzz/fuzz-ignition.c $(PROVISION_LIB_SRCS)
fuzz-ignition_LIBS = $(PROVISION_LIBS)

# The installer: cairn-getrelease (C: a release's verified /usr image, from a payload file or an Omaha server,
# on the agent's Omaha/HTTP/apply code and the payload library) and cairn-install (shell: checks, layout, write,
# read-back), installed into build/bin like the C programs.
BINS += cairn-getrelease
cairn-getrelease_SRCS = provision/getrelease.c $(AGENT_LIB_SRCS)
cairn-getrelease_LIBS = $(AGENT_LIBS)
all: $(BUILD)/bin/cairn-install
$(BUILD)/bin/cairn-install: provision/cairn-install
	@mkdir -p $(dir $@)
	install -m 0755 $< $@
