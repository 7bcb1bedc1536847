/* tests/lib/unit.c — shared state and scratch directory for the unit test harness. */
#include "unit.h"

#include <unistd.h>

int unit_failures = 0;
const char *unit_case = NULL;
static char tmpdir[256];

static void cleanup_tmp(void) {
        if (tmpdir[0] && !getenv("KEEP_TMP")) {
                char cmd[300];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", tmpdir);
        }
}

const char *unit_tmpdir(void) {
        if (!tmpdir[0]) {
                const char *base = getenv("TMPDIR");
                snprintf(tmpdir, sizeof tmpdir, "%s/cairn-unit-XXXXXX", base ? base : "/tmp");
                if (!mkdtemp(tmpdir)) {
                        perror("mkdtemp");
                        exit(2);
                }
                atexit(cleanup_tmp);
        }
        return tmpdir;
}

int unit_main_end(void) {
        return unit_failures ? 1 : 0;
}
