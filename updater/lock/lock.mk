# updater/lock/lock.mk — the cluster reboot lock: locksmith's semaphore (value codec) and its etcd v3 client,
# the FleetLock client, the lock verbs (lockctl.c: cairnctl lock-status|lock|unlock|set-max; cairn-lockctl), the semaphore's unit test and fuzzer.
LOCK_LIB_SRCS = updater/lock/semaphore.c updater/lock/json-strict.c updater/lock/etcd.c updater/lock/curl-error.c updater/lock/fleetlock-client.c
LOCK_LIBS = -lcurl -ljson-c -lpthread

LOCK_CLI_SRCS = updater/lock/lockctl.c

UNIT_TESTS += test-lock-semaphore
test-lock-semaphore_SRCS = tests/unit/test-lock-semaphore.c updater/lock/semaphore.c updater/lock/json-strict.c
test-lock-semaphore_LIBS = -ljson-c

FUZZERS += fuzz-semaphore
fuzz-semaphore_SRCS = tests/fuzz/fuzz-semaphore.c updater/lock/semaphore.c updater/lock/json-strict.c
fuzz-semaphore_LIBS = -ljson-c

FUZZERS += fuzz-fleetlock-error
fuzz-fleetlock-error_SRCS = tests/fuzz/fuzz-fleetlock-error.c updater/lock/fleetlock-client.c updater/lock/curl-error.c updater/lock/semaphore.c updater/lock/json-strict.c
fuzz-fleetlock-error_LIBS = -lcurl -ljson-c -lpthread
