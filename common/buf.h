/* common/buf.h — a growable text buffer with a hard size cap, like curl's dynbuf: every append checks the cap,
 * errors are sticky (append freely, check .err or the last call's result once at the end). The data is always
 * NUL-terminated. Used for Omaha XML, JSON output, HTTP response bodies and recipe parsing. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct Buf {
        char *data;
        size_t len, cap, max;
        int err;
} Buf;
void buf_init(Buf *b, size_t max);
void buf_free(Buf *b);
int buf_put(Buf *b, const char *s, size_t n);
int buf_puts(Buf *b, const char *s);
int buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
/* s escaped for an XML attribute value or text (&, <, >, ", ' and control characters). */
int buf_put_xml(Buf *b, const char *s);
/* An XML attribute: space, name="value" with value escaped (NULL: empty). */
int buf_put_attr(Buf *b, const char *name, const char *value);
/* s as a JSON string literal, quotes included (", \, control characters escaped; s must be UTF-8). */
int buf_put_json(Buf *b, const char *s);
static inline void buf_freep(Buf *b) {
        buf_free(b);
}
#define _cleanup_buf_ _cleanup_(buf_freep)
/* Takes the data out of b (the caller frees it); b is left empty. NULL if nothing was appended. */
char *buf_steal(Buf *b);
