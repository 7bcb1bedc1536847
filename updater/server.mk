# updater/server.mk — cairn-server (Omaha v3 update server), the Omaha library's unit test and the fuzzers of what
# the server parses (Omaha requests, Range headers).
SERVER_LIB_SRCS := updater/omaha.c updater/server-channels.c updater/server-db.c updater/server-update.c \
	updater/server-http.c updater/http-range.c

BINS += cairn-server
cairn-server_SRCS := updater/server.c $(SERVER_LIB_SRCS)
cairn-server_LIBS := -lmicrohttpd -lexpat -lsqlite3 -lcrypto -lpthread

UNIT_TESTS += test-omaha
test-omaha_SRCS := tests/unit/test-omaha.c updater/omaha.c updater/server-channels.c updater/http-range.c
test-omaha_LIBS := -lexpat -lcrypto -lpthread

FUZZERS += fuzz-omaha
fuzz-omaha_SRCS := tests/fuzz/fuzz-omaha.c updater/omaha.c
fuzz-omaha_LIBS := -lexpat

FUZZERS += fuzz-range
fuzz-range_SRCS := tests/fuzz/fuzz-range.c updater/http-range.c
fuzz-range_LIBS :=
