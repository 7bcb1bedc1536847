/* tests/fuzz/fuzz-fleetlock-error.c — libFuzzer target for the FleetLock client's reading of a server's error body
 * (updater/lock/fleetlock-client.c): only 0 or -EBADMSG; on 0 both outputs are NUL-terminated within their buffers
 * and free of control characters (they go into log lines and the state file). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock.h"

static void clean(const char *s, size_t size) {
        size_t n = strnlen(s, size);
        if (n == size)
                abort();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char kind[64], value[160];
        memset(kind, 'x', sizeof kind);
        memset(value, 'y', sizeof value);
        int r = lock_fleetlock_parse_error((const char *)data, size, kind, sizeof kind, value, sizeof value);
        if (r == 0) {
                clean(kind, sizeof kind);
                clean(value, sizeof value);
                if (!kind[0])
                        abort();
        } else if (r != -EBADMSG && r != -ENOMEM)
                abort();
        return 0;
}
