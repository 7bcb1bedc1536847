/* tests/fuzz/fuzz-window.c — libFuzzer target for the reboot window values of update.conf (updater/agent/window.c):
 * the input is "START\nLENGTH". Accepted values are in range, and for an accepted pair every instant picked lies
 * inside a window and not before the instant it was picked at. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int tz_set;
        if (!tz_set) {
                setenv("TZ", "UTC", 1);
                tzset();
                tz_set = 1;
        }
        if (size > 256)
                return 0;
        char buf[257];
        memcpy(buf, data, size);
        buf[size] = 0;
        char *nl = strchr(buf, '\n');
        const char *len_text = "1h";
        if (nl) {
                *nl = 0;
                len_text = nl + 1;
        }
        uint8_t days = 0;
        unsigned start = 0, length = 0;
        int r1 = agent_window_parse_start(buf, &days, &start);
        int r2 = agent_window_parse_length(len_text, &length);
        if (r1 != 0 && r1 != -EINVAL)
                abort();
        if (r2 != 0 && r2 != -EINVAL && r2 != -ERANGE)
                abort();
        if (r1 == 0 && (days == 0 || days > AGENT_WINDOW_DAILY || start > 1439))
                abort();
        if (r2 == 0 && (length == 0 || length > AGENT_WINDOW_LENGTH_MAX))
                abort();
        if (r1 == 0 && r2 == 0) {
                AgentWindow w = { .days = days, .start = start, .length = length };
                uint32_t seed = (uint32_t)size * 2654435761u;
                for (int i = 0; i < 4; i++) {
                        seed = seed * 1664525u + 1013904223u;
                        time_t now = 1796256000 + (time_t)(seed % (30u * 86400u));
                        time_t p = agent_window_pick(&w, now, seed ^ 0x9e3779b9u);
                        if (p < now || !agent_window_contains(&w, p))
                                abort();
                }
                char out[96];
                agent_window_format(&w, out, sizeof out);
                if (!memchr(out, 0, sizeof out))
                        abort();
        }
        return 0;
}
