# updater/server/server.mk — cairn-server (the Omaha v3 update server), its unit test and the Range fuzzer.
SERVER_LIB_SRCS = updater/server/channels.c updater/server/statcache.c updater/server/db.c updater/server/sqlite-errno.c updater/server/update.c \
	updater/server/http.c updater/server/range.c updater/server/fleetlock.c updater/server/fleetlock-proto.c \
	$(LOCK_LIB_SRCS) $(OMAHA_LIB_SRCS)

BINS += cairn-server
cairn-server_SRCS = updater/server/main.c $(SERVER_LIB_SRCS)
cairn-server_LIBS = -lmicrohttpd -lsqlite3 -lcrypto -lpthread $(OMAHA_LIBS) $(LOCK_LIBS)

UNIT_TESTS += test-omaha
test-omaha_SRCS = tests/unit/test-omaha.c updater/server/channels.c updater/server/statcache.c updater/server/range.c $(OMAHA_LIB_SRCS)
test-omaha_LIBS = -lcrypto -lpthread $(OMAHA_LIBS)

FUZZERS += fuzz-range
fuzz-range_SRCS = tests/fuzz/fuzz-range.c updater/server/range.c
fuzz-range_LIBS =

FUZZERS += fuzz-fleetlock
fuzz-fleetlock_SRCS = tests/fuzz/fuzz-fleetlock.c updater/server/fleetlock-proto.c updater/lock/semaphore.c updater/lock/json-strict.c
fuzz-fleetlock_LIBS = -ljson-c

# scripts/bench/fleetlock.sh's load generator (not installed).
BINS += cairn-fleetlock-bench
cairn-fleetlock-bench_SRCS = updater/tools/fleetlock-bench.c updater/tools/latency.c
cairn-fleetlock-bench_LIBS = -lcurl -lpthread
