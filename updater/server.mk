# updater/server.mk — cairn-server (Omaha v3 update server), the Omaha library's unit test and fuzzer.
SERVER_LIB_SRCS := updater/omaha.c updater/server-channels.c updater/server-db.c updater/server-update.c \
	updater/server-http.c

BINS += cairn-server
cairn-server_SRCS := updater/server.c $(SERVER_LIB_SRCS)
cairn-server_LIBS := -lmicrohttpd -lexpat -lsqlite3 -lcrypto -lpthread

UNIT_TESTS += test-omaha
test-omaha_SRCS := tests/unit/test-omaha.c updater/omaha.c updater/server-channels.c
test-omaha_LIBS := -lexpat -lcrypto -lpthread

FUZZERS += fuzz-omaha
fuzz-omaha_SRCS := tests/fuzz/fuzz-omaha.c updater/omaha.c
fuzz-omaha_LIBS := -lexpat
