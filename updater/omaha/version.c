/* updater/omaha/version.c — the rules Omaha fields follow, apart from omaha.c so programs that only check them
 * (cairnctl, reading update.conf and the state file) need not link the XML parser: versions (dotted decimal, at
 * most 8 parts of at most 9 digits, compared part by part), names (channels, boards) and machine ids. */
#include "omaha.h"

#include <string.h>

bool omaha_version_valid(const char *v) {
        int parts = 0;
        const char *p = v;
        if (!p || !*p)
                return false;
        for (;;) {
                size_t digits = strspn(p, "0123456789");
                if (digits == 0 || digits > 9)
                        return false;
                if (++parts > 8)
                        return false;
                p += digits;
                if (*p == 0)
                        return true;
                if (*p != '.')
                        return false;
                p++;
        }
}

int omaha_version_cmp(const char *a, const char *b) {
        while (*a || *b) {
                unsigned long x = 0, y = 0;
                while (*a >= '0' && *a <= '9')
                        x = x * 10 + (unsigned long)(*a++ - '0');
                while (*b >= '0' && *b <= '9')
                        y = y * 10 + (unsigned long)(*b++ - '0');
                if (x != y)
                        return x < y ? -1 : 1;
                if (*a == '.')
                        a++;
                if (*b == '.')
                        b++;
        }
        return 0;
}

bool omaha_name_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max || s[0] == '.')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

bool omaha_machineid_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789{}-") == n;
}
