/* common/buf.c — the size-capped growable buffer (see buf.h). */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(Buf *b, size_t max) {
        *b = (Buf){ .max = max };
}

void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf){ .max = b->max };
}

static int buf_reserve(Buf *b, size_t n) {
        if (b->err)
                return b->err;
        if (n > b->max || b->len + n > b->max)
                return (b->err = -ENOBUFS);
        size_t need = b->len + n + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = MAX(b->cap * 2, (size_t)256);
        while (cap < need)
                cap *= 2;
        cap = MIN(cap, b->max + 1);
        char *d = realloc(b->data, cap);
        if (!d)
                return (b->err = -ENOMEM);
        b->data = d;
        b->cap = cap;
        return 0;
}

int buf_put(Buf *b, const char *s, size_t n) {
        int r = buf_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

int buf_puts(Buf *b, const char *s) {
        return buf_put(b, s, strlen(s));
}

int buf_printf(Buf *b, const char *fmt, ...) {
        char small[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0)
                return (b->err = b->err ?: -EINVAL);
        if ((size_t)n < sizeof small)
                return buf_put(b, small, (size_t)n);
        int r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

int buf_put_xml(Buf *b, const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                switch (c) {
                case '&': buf_puts(b, "&amp;"); break;
                case '<': buf_puts(b, "&lt;"); break;
                case '>': buf_puts(b, "&gt;"); break;
                case '"': buf_puts(b, "&quot;"); break;
                case '\'': buf_puts(b, "&apos;"); break;
                default:
                        if (c < 0x20)
                                buf_printf(b, "&#%u;", c);
                        else
                                buf_put(b, (const char *)&c, 1);
                }
        }
        return b->err;
}

int buf_put_json(Buf *b, const char *s) {
        buf_put(b, "\"", 1);
        for (; s && *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"')
                        buf_puts(b, "\\\"");
                else if (c == '\\')
                        buf_puts(b, "\\\\");
                else if (c == '\n')
                        buf_puts(b, "\\n");
                else if (c < 0x20 || c == 0x7f)
                        buf_printf(b, "\\u%04x", c);
                else
                        buf_put(b, (const char *)&c, 1);
        }
        return buf_put(b, "\"", 1);
}

char *buf_steal(Buf *b) {
        char *d = b->data;
        *b = (Buf){ .max = b->max };
        return d;
}

int buf_put_attr(Buf *b, const char *name, const char *value) {
        buf_printf(b, " %s=\"", name);
        buf_put_xml(b, value ? value : "");
        return buf_put(b, "\"", 1);
}
