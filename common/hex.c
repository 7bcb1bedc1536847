/* common/hex.c — lowercase hex encoding and strict decoding. */
#include "hex.h"

#include <errno.h>
#include <string.h>

char *hex_encode(const uint8_t *data, size_t len, char *buf) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                buf[2 * i] = digits[data[i] >> 4];
                buf[2 * i + 1] = digits[data[i] & 15];
        }
        buf[2 * len] = 0;
        return buf;
}

int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode_n(const char *s, uint8_t *out, size_t len) {
        for (size_t i = 0; i < len; i++) {
                int hi = hex_digit(s[2 * i]);
                int lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
                if (lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

int hex_decode(const char *s, uint8_t *out, size_t len) {
        if (strnlen(s, 2 * len + 1) != 2 * len)
                return -EINVAL;
        return hex_decode_n(s, out, len);
}
