# Cairn — top-level build. Each component adds its binaries and tests in its own rules.mk:
#   BINS += name            name_SRCS := a.c b.c    name_LIBS := -lfoo   (name_STATIC := 1 for a static binary)
#   UNIT_TESTS += test-x    test-x_SRCS := tests/unit/test-x.c lib.c     test-x_LIBS := ...
#   FUZZERS += fuzz-x       fuzz-x_SRCS := tests/fuzz/fuzz-x.c lib.c     fuzz-x_LIBS := ...
# `make` builds every binary into build/bin/; `make SAN=1 BUILD=build/asan` builds with ASan+UBSan.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2 -g
SAN     ?=
CSTD    := -std=gnu17
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wformat=2
CPPFLAGS += -I. -Icommon -Iupdater -Itests/lib -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64
# Hardening for everything (most of it parses network or disk input, much of it runs as root): fortified libc
# calls, stack protector, position-independent executables, full RELRO. The sanitized build keeps only what
# ASan tolerates (no _FORTIFY_SOURCE: ASan intercepts those calls itself).
HARDEN_CFLAGS  := -fstack-protector-strong -fPIE -fstack-clash-protection
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else ifeq ($(SAN),thread)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
OPT := -O1 -g
else
HARDEN_CPPFLAGS := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3
endif
ALL_CFLAGS = $(CSTD) $(WARN) $(OPT) $(SANFLAGS) $(HARDEN_CFLAGS) $(HARDEN_CPPFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS)

BINS :=
UNIT_TESTS :=
FUZZERS :=
COMMON_SRCS :=

# Every component keeps its rules in <dir>/*.mk (one file per owner of a part).
include $(sort $(wildcard common/*.mk image/*.mk bootcfg/*.mk updater/*/*.mk tpm/*.mk provision/*.mk tests/*.mk))

.PHONY: all clean check check-long image run bench deps unit tsan-unit fuzz-replay
all: $(addprefix $(BUILD)/bin/,$(BINS))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The sanitizer runtimes cannot be linked statically: sanitized builds of static tools are dynamic.
STATIC_FLAG := $(if $(SAN),,-static-pie)
define bin_rule
$(BUILD)/bin/$(1): $(call obj,$($(1)_SRCS) $(COMMON_SRCS))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) $(if $($(1)_STATIC),$(STATIC_FLAG)) -o $$@ $$^ $($(1)_LIBS)
endef
$(foreach b,$(BINS),$(eval $(call bin_rule,$(b))))

define test_rule
$(BUILD)/tests/$(1): $(call obj,$($(1)_SRCS) $(COMMON_SRCS) tests/lib/unit.c)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $($(1)_LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call test_rule,$(t))))

unit: all $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

# The unit tests that run threads, for the ThreadSanitizer build (make SAN=thread BUILD=build/tsan tsan-unit).
TSAN_TESTS := test-apply test-payload
tsan-unit: $(addprefix $(BUILD)/tests/,$(TSAN_TESTS))

# libFuzzer targets: built with clang, replayed over their committed corpora by `make check`.
FUZZ_CC ?= clang
FUZZ_FLAGS := $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS)
define fuzz_rule
$(BUILD)/fuzz/$(1): $($(1)_SRCS) $(COMMON_SRCS)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) -o $$@ $$^ $($(1)_LIBS)
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(f))))
fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZERS))

deps:
	@scripts/deps.sh

# The default bootable image: out/cairn.img and out/cairn.qcow2.
image: deps
	$(MAKE) -j2 all
	@scripts/build-image.sh

run:
	@scripts/run-vm.sh out/cairn.img

# The whole suite: builds (plain, ASan+UBSan, fuzzers), the default image, then every test.
check: deps
	$(MAKE) -j2 all unit
	$(MAKE) -j2 SAN=1 BUILD=build/asan unit
	$(MAKE) -j2 SAN=thread BUILD=build/tsan tsan-unit
	$(MAKE) -j2 fuzz
	@scripts/build-image.sh
	@tests/run.sh

check-long: check
	@CAIRN_LONG=1 tests/run.sh --long

bench:
	@scripts/deps.sh --bench
	$(MAKE) -j2 all
	@scripts/bench/run.sh

# build/keys (the development release key the images trust) survives: hosts built from it still need it.
clean:
	rm -rf out $(filter-out build/keys,$(wildcard build/*))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
