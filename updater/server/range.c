/* updater/server/range.c — the HTTP Range header of a request for one file, as cairn-server serves it. */
#include "range.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* An optional decimal number at *p: false only when it overflows. */
static bool read_number(const char **p, uint64_t *ret, bool *ret_has) {
        if (**p < '0' || **p > '9')
                return true;
        char *end;
        errno = 0;
        *ret = strtoull(*p, &end, 10);
        if (errno)
                return false;
        *ret_has = true;
        *p = end;
        return true;
}

int http_range_parse(const char *h, uint64_t size, uint64_t *ret_start, uint64_t *ret_len) {
        if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
                return 0;
        const char *p = h + 6;
        while (*p == ' ')
                p++;
        uint64_t a = 0, b = 0;
        bool has_a = false, has_b = false;
        if (!read_number(&p, &a, &has_a) || *p++ != '-' || !read_number(&p, &b, &has_b))
                return 0;
        while (*p == ' ')
                p++;
        if (*p || (!has_a && !has_b))
                return 0;
        if (!has_a) { /* suffix: last b bytes */
                if (b == 0 || size == 0)
                        return -ERANGE;
                b = MIN(b, size);
                *ret_start = size - b;
                *ret_len = b;
                return 1;
        }
        if (has_b && b < a)
                return 0;
        if (a >= size)
                return -ERANGE;
        if (!has_b || b >= size)
                b = size - 1;
        *ret_start = a;
        *ret_len = b - a + 1;
        return 1;
}
