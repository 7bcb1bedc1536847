/* tests/fuzz/fuzz-kvfile.c — libFuzzer target for the KEY=VALUE parser (common/kvfile). Contract: every pair the
 * callback sees has a key of 1-64 of [A-Za-z0-9_] and a value with no newline and no NUL; an error names a line
 * inside the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvfile.h"

static int check_kv(const char *k, const char *v, unsigned line, void *ud, const char **ret_why) {
        if (line < 1)
                abort();
        size_t kl = strlen(k);
        if (kl < 1 || kl > KVFILE_KEY_MAX || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != kl)
                abort();
        if (strchr(v, '\n'))
                abort();
        (*(unsigned *)ud)++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned pairs = 0, lines = 1;
        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        KvfileError e;
        int r = kvfile_parse((const char *)data, size, check_kv, &pairs, &e);
        if (r < 0 && (r != -EINVAL || e.line < 1 || e.line > lines || !e.why))
                abort();
        if (pairs > lines)
                abort();
        char buf[32];
        (void)kvfile_get((const char *)data, size, "VERSION_ID", buf, sizeof buf);
        return 0;
}
