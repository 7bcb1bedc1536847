/* common/parse.c — strict number parsing and log-safe text (see parse.h for the grammar). */
#include "parse.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Digits only, accumulated with an overflow check; returns the number of digits consumed or an error. */
static int digits_u64(const char *s, uint64_t *ret, size_t *ret_len) {
        uint64_t v = 0;
        size_t n = 0;
        bool overflow = false;
        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                unsigned d = (unsigned)(s[n] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        v = v * 10 + d;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        *ret_len = n;
        return overflow ? -ERANGE : 0;
}

int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        if (!s)
                return -EINVAL;
        uint64_t v;
        size_t n;
        int r = digits_u64(s, &v, &n);
        if (r == -EINVAL || s[n] != 0)
                return -EINVAL;
        if (r < 0 || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_unsigned_range(const char *s, unsigned min, unsigned max, unsigned *ret) {
        uint64_t v;
        int r = parse_u64_range(s, min, max, &v);
        if (r < 0)
                return r;
        *ret = (unsigned)v;
        return 0;
}

static int scaled(const char *s, const char *const *suffixes, const uint64_t *factors, size_t n_suffixes,
                  uint64_t min, uint64_t max, uint64_t *ret) {
        if (!s)
                return -EINVAL;
        uint64_t v;
        size_t n;
        int r = digits_u64(s, &v, &n);
        if (r == -EINVAL)
                return -EINVAL;
        uint64_t f = 1;
        if (s[n] != 0) {
                size_t i;
                for (i = 0; i < n_suffixes; i++)
                        if (strcasecmp(s + n, suffixes[i]) == 0)
                                break;
                if (i == n_suffixes)
                        return -EINVAL;
                f = factors[i];
        }
        if (r < 0 || (v != 0 && v > UINT64_MAX / f))
                return -ERANGE;
        v *= f;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_size_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        static const char *const suf[] = { "K", "M", "G", "T" };
        static const uint64_t fac[] = { 1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40 };
        return scaled(s, suf, fac, 4, min, max, ret);
}

int parse_seconds_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        static const char *const suf[] = { "s", "m", "h", "d" };
        static const uint64_t fac[] = { 1, 60, 3600, 86400 };
        return scaled(s, suf, fac, 4, min, max, ret);
}

char *log_safe_n(char *dst, size_t size, const char *src, size_t len) {
        static const char hex[] = "0123456789abcdef";
        if (size == 0)
                return dst;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)src[i];
                char tmp[4];
                size_t k = 0;
                if (c == '\\') {
                        tmp[k++] = '\\';
                        tmp[k++] = '\\';
                } else if (c < 0x20 || c == 0x7f) {
                        tmp[k++] = '\\';
                        tmp[k++] = 'x';
                        tmp[k++] = hex[c >> 4];
                        tmp[k++] = hex[c & 15];
                } else
                        tmp[k++] = (char)c;
                if (o + k + 1 > size) {
                        /* Out of room: end in "..." where it fits. */
                        size_t end = o;
                        if (size >= 4 && end > size - 4)
                                end = size - 4;
                        if (size >= 4) {
                                memcpy(dst + end, "...", 3);
                                end += 3;
                        }
                        dst[end] = 0;
                        return dst;
                }
                memcpy(dst + o, tmp, k);
                o += k;
        }
        dst[o] = 0;
        return dst;
}

char *log_safe(char *dst, size_t size, const char *src) {
        return log_safe_n(dst, size, src ? src : "(null)", src ? strlen(src) : 6);
}
