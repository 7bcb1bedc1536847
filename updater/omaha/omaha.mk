# updater/omaha/omaha.mk — the Omaha v3 request/response library (parse and write) and its fuzzer.
# omaha/version.c (the version rule) stands alone so status readers need not link expat.
OMAHA_VERSION_SRCS = updater/omaha/version.c
OMAHA_LIB_SRCS = updater/omaha/omaha.c $(OMAHA_VERSION_SRCS)
OMAHA_LIBS = -lexpat

FUZZERS += fuzz-omaha
fuzz-omaha_SRCS = tests/fuzz/fuzz-omaha.c $(OMAHA_LIB_SRCS)
fuzz-omaha_LIBS = $(OMAHA_LIBS)
