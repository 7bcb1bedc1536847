/* common/kvfile.c — the one KEY=VALUE parser (grammar in kvfile.h). */
#include "kvfile.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "parse.h"

static bool blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

static bool key_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int grammar_error(KvfileError *e, unsigned line, const char *text, size_t len, const char *why) {
        if (e) {
                e->line = line;
                e->why = why;
                log_safe_n(e->text, sizeof e->text, text, len);
        }
        return -EINVAL;
}

int kvfile_parse(const char *text, size_t len, KvfileFunc f, void *userdata, KvfileError *ret_err) {
        if (ret_err)
                *ret_err = (KvfileError){ 0 };
        unsigned lineno = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                size_t l = (size_t)(le - p);
                lineno++;
                if (l >= KVFILE_LINE_MAX)
                        return grammar_error(ret_err, lineno, p, l, "is longer than 4095 bytes");
                if (memchr(p, 0, l))
                        return grammar_error(ret_err, lineno, p, l, "holds a NUL byte");
                char line[KVFILE_LINE_MAX];
                memcpy(line, p, l);
                line[l] = 0;
                p = nl ? nl + 1 : end;

                char *s = line, *e = line + l;
                while (blank(*s))
                        s++;
                while (e > s && blank(e[-1]))
                        *--e = 0;
                if (*s == 0 || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        return grammar_error(ret_err, lineno, s, strlen(s), "is not KEY=VALUE");
                char *k = s, *ke = eq;
                while (ke > k && blank(ke[-1]))
                        ke--;
                *ke = 0;
                bool key_ok = ke > k && (size_t)(ke - k) <= KVFILE_KEY_MAX;
                for (const char *c = k; key_ok && c < ke; c++)
                        key_ok = key_char(*c);
                if (!key_ok) {
                        *eq = '=';
                        return grammar_error(ret_err, lineno, s, strlen(s),
                                             "is not KEY=VALUE (a key is 1-64 of A-Z a-z 0-9 _)");
                }
                char *v = eq + 1;
                while (blank(*v))
                        v++;
                size_t vl = strlen(v);
                if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                        v[vl - 1] = 0;
                        v++;
                }
                const char *why = NULL;
                int r = f(k, v, lineno, userdata, &why);
                if (r < 0) {
                        if (ret_err) {
                                ret_err->line = lineno;
                                ret_err->why = why;
                        }
                        return r;
                }
        }
        return 0;
}

typedef struct GetCtx {
        const char *key;
        char *buf;
        size_t size;
        int r;
} GetCtx;

static int get_one(const char *key, const char *value, unsigned line, void *userdata, const char **ret_why) {
        GetCtx *g = userdata;
        if (strcmp(key, g->key) != 0)
                return 0;
        g->r = kvfile_copy(g->buf, g->size, value);
        return 0;
}

int kvfile_get(const char *text, size_t len, const char *key, char *buf, size_t size) {
        GetCtx g = { .key = key, .buf = buf, .size = size, .r = -ENOENT };
        int r = kvfile_parse(text, len, get_one, &g, NULL);
        return r < 0 ? r : g.r;
}

int kvfile_copy(char *dst, size_t size, const char *value) {
        size_t n = strlen(value);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, value, n + 1);
        return 0;
}
