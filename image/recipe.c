/* image/recipe.c — parses image recipes: tokenising, ${VAR} substitution, directive arguments and their checks. */
#include "recipe.h"

#include <ctype.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hex.h"
#include "macro.h"

#define MAX_TOKENS 16

const char *recipe_op_type_to_string(enum recipe_op_type t) {
        static const char *const names[] = {
                [RECIPE_DEB] = "deb",         [RECIPE_TAR] = "tar",     [RECIPE_DIR] = "dir",
                [RECIPE_EXCLUDE] = "exclude", [RECIPE_INCLUDE] = "include", [RECIPE_MKDIR] = "mkdir",
                [RECIPE_FILE] = "file",       [RECIPE_WRITE] = "write", [RECIPE_SYMLINK] = "symlink",
                [RECIPE_HARDLINK] = "hardlink", [RECIPE_ATTR] = "attr", [RECIPE_XATTR] = "xattr",
                [RECIPE_RM] = "rm",
        };
        return (size_t)t < ELEMENTSOF(names) ? names[t] : "?";
}

/* Directive table: fixed positional argument counts (min..max) and which key=value options it takes. */
static int fail(struct recipe_error *err, unsigned line, const char *fmt, ...) _printf_(3, 4);
static int fail(struct recipe_error *err, unsigned line, const char *fmt, ...) {
        va_list ap;
        err->line = line;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

void recipe_free(struct recipe *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_ops; i++) {
                free(r->ops[i].src);
                free(r->ops[i].dest);
                free(r->ops[i].arg);
                free(r->ops[i].data);
        }
        free(r->ops);
        free(r->path);
        free(r);
}

/* A growable byte string for building one token. */
struct buf {
        char *p;
        size_t len, cap;
        bool quoted; /* the token had quotes (so "" is a real, empty argument) */
};

static int buf_put(struct buf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 16);
                if (cap > RECIPE_MAX_SIZE * 2)
                        return -E2BIG;
                char *p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        return 0;
}

static const char *lookup_var(char *const *vars, size_t n_vars, const char *name, size_t name_len) {
        /* the last definition wins, so a later --var overrides an earlier one */
        for (size_t i = n_vars; i > 0; i--) {
                const char *v = vars[i - 1];
                if (strncmp(v, name, name_len) == 0 && v[name_len] == '=')
                        return v + name_len + 1;
        }
        return NULL;
}

/* Split one line into tokens: whitespace separated, "double quotes" with \n \t \\ \" \$ escapes,
 * ${NAME} substituted everywhere, '#' at the start of a token begins a comment. */
static int tokenize(const char *line, size_t len, unsigned lineno, char *const *vars, size_t n_vars,
                    struct buf tokens[static MAX_TOKENS], size_t *ret_n, struct recipe_error *err) {
        size_t n = 0, i = 0;
        int r;
        for (;;) {
                while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
                        i++;
                if (i >= len || line[i] == '#')
                        break;
                if (n == MAX_TOKENS)
                        return fail(err, lineno, "too many arguments");
                struct buf *t = &tokens[n++];
                t->len = 0;
                t->quoted = false;
                if ((r = buf_put(t, "", 0)) < 0)
                        return r;
                bool in_quotes = false;
                while (i < len) {
                        char c = line[i];
                        if (!in_quotes && (c == ' ' || c == '\t' || c == '\r'))
                                break;
                        if (c == '"') {
                                in_quotes = !in_quotes;
                                t->quoted = true;
                                i++;
                                continue;
                        }
                        if (c == '$' && i + 1 < len && line[i + 1] == '{') {
                                size_t start = i + 2, end = start;
                                while (end < len && line[end] != '}')
                                        end++;
                                if (end >= len)
                                        return fail(err, lineno, "unterminated ${ in \"%.*s\"", (int)MIN(len, 80), line);
                                size_t nl = end - start;
                                bool valid = nl > 0 && (isalpha((unsigned char)line[start]) || line[start] == '_');
                                for (size_t k = start; valid && k < end; k++)
                                        valid = isalnum((unsigned char)line[k]) || line[k] == '_';
                                if (!valid)
                                        return fail(err, lineno, "bad variable name \"${%.*s}\"", (int)MIN(nl, 64), line + start);
                                const char *v = lookup_var(vars, n_vars, line + start, nl);
                                if (!v)
                                        return fail(err, lineno, "undefined variable ${%.*s} (pass --var %.*s=VALUE)",
                                                    (int)nl, line + start, (int)nl, line + start);
                                if ((r = buf_put(t, v, strlen(v))) < 0)
                                        return r;
                                i = end + 1;
                                continue;
                        }
                        if (in_quotes && c == '\\') {
                                if (i + 1 >= len)
                                        return fail(err, lineno, "backslash at end of line");
                                char e = line[i + 1], out;
                                switch (e) {
                                case 'n': out = '\n'; break;
                                case 't': out = '\t'; break;
                                case '\\': out = '\\'; break;
                                case '"': out = '"'; break;
                                case '$': out = '$'; break;
                                default: return fail(err, lineno, "unknown escape \\%c", e);
                                }
                                if ((r = buf_put(t, &out, 1)) < 0)
                                        return r;
                                i += 2;
                                continue;
                        }
                        if ((r = buf_put(t, &c, 1)) < 0)
                                return r;
                        i++;
                }
                if (in_quotes)
                        return fail(err, lineno, "unterminated quote");
        }
        *ret_n = n;
        return 0;
}

static int parse_u32(const char *s, int base, uint32_t max, uint32_t *ret) {
        if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, base);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* A DEST path: non-empty, no NUL tricks, no ".." component. */
static bool image_path_ok(const char *p) {
        if (!*p)
                return false;
        for (const char *s = p; *s;) {
                while (*s == '/')
                        s++;
                const char *e = strchrnul(s, '/');
                if (e - s == 2 && s[0] == '.' && s[1] == '.')
                        return false;
                s = e;
        }
        return true;
}

static int hex_value(const char *s, uint8_t **ret, size_t *ret_len) {
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        size_t n = strlen(s);
        if (n == 0 || n % 2 || n / 2 > RECIPE_MAX_VALUE)
                return -EINVAL;
        _cleanup_free_ uint8_t *out = malloc(n / 2);
        if (!out)
                return -ENOMEM;
        if (hex_decode_n(s, out, n / 2) < 0)
                return -EINVAL;
        *ret = TAKE_PTR(out);
        *ret_len = n / 2;
        return 0;
}

static char *resolve_host_path(const char *base_dir, const char *p) {
        char *out;
        if (p[0] == '/' || !base_dir || !*base_dir)
                return strdup(p);
        if (asprintf(&out, "%s/%s", base_dir, p) < 0)
                return NULL;
        return out;
}

static bool has_glob_chars(const char *s) {
        return strpbrk(s, "*?[") != NULL;
}

/* Parse one tokenised directive into op. */
/* What a directive's handler gets: the tokens (tok[0] the directive), how many are positional, the line. */
typedef struct DirectiveCtx {
        struct buf *tok;
        size_t npos;
        unsigned line;
        const char *base_dir;
        const char *name;
        struct recipe_op *op;
        struct recipe_error *err;
} DirectiveCtx;

static int dir_deb(const DirectiveCtx *c) {
        _cleanup_free_ char *pattern = resolve_host_path(c->base_dir, c->tok[1].p);
        if (!pattern)
                return -ENOMEM;
        glob_t g = { 0 };
        int gr = glob(pattern, GLOB_NOSORT, NULL, &g);
        int r = 0;
        struct stat st;
        if (gr == GLOB_NOMATCH || (gr == 0 && g.gl_pathc == 0))
                r = fail(c->err, c->line, "deb: '%s' matches no file", pattern);
        else if (gr != 0)
                r = fail(c->err, c->line, "deb: cannot expand '%s'", pattern);
        else if (g.gl_pathc > 1)
                r = fail(c->err, c->line, "deb: '%s' matches %zu files ('%s', '%s', ...); it must match exactly one",
                         pattern, (size_t)g.gl_pathc, g.gl_pathv[0], g.gl_pathv[1]);
        /* glob() without magic characters returns the pattern even if the file is missing */
        else if (!has_glob_chars(pattern) && stat(pattern, &st) < 0)
                r = fail(c->err, c->line, "deb: '%s': %s", pattern, strerror(errno));
        else if (!(c->op->src = strdup(g.gl_pathv[0])))
                r = -ENOMEM;
        globfree(&g);
        return r;
}

/* tar SRC, dir SRC [DEST]: a host path (relative to the recipe) of the right kind. */
static int dir_tree(const DirectiveCtx *c) {
        struct recipe_op *op = c->op;
        const char *dest = c->npos >= 2 ? c->tok[2].p : NULL;
        struct stat st;
        op->src = resolve_host_path(c->base_dir, c->tok[1].p);
        if (!op->src)
                return -ENOMEM;
        if (stat(op->src, &st) < 0)
                return fail(c->err, c->line, "%s: '%s': %s", c->name, op->src, strerror(errno));
        if (op->type == RECIPE_DIR && !S_ISDIR(st.st_mode))
                return fail(c->err, c->line, "dir: '%s' is not a directory", op->src);
        if (op->type == RECIPE_TAR && S_ISDIR(st.st_mode))
                return fail(c->err, c->line, "tar: '%s' is a directory", op->src);
        if (dest && !image_path_ok(dest))
                return fail(c->err, c->line, "dir: bad destination \"%.64s\" (empty or has '..')", dest);
        op->dest = strdup(dest ? dest : "/");
        return op->dest ? 0 : -ENOMEM;
}

/* exclude/include PATTERN */
static int dir_pattern(const DirectiveCtx *c) {
        if (!*c->tok[1].p)
                return fail(c->err, c->line, "%s: empty pattern", c->name);
        c->op->dest = strdup(c->tok[1].p);
        return c->op->dest ? 0 : -ENOMEM;
}

/* The image path every other directive starts with. */
static int dest_path(const DirectiveCtx *c) {
        if (!image_path_ok(c->tok[1].p))
                return fail(c->err, c->line, "%s: bad path \"%.64s\" (empty or has '..')", c->name, c->tok[1].p);
        c->op->dest = strdup(c->tok[1].p);
        return c->op->dest ? 0 : -ENOMEM;
}

/* mkdir PATH, attr PATH, rm PATH */
static int dir_path(const DirectiveCtx *c) {
        return dest_path(c);
}

/* file PATH SRC */
static int dir_file(const DirectiveCtx *c) {
        struct stat st;
        c->op->src = resolve_host_path(c->base_dir, c->tok[2].p);
        if (!c->op->src)
                return -ENOMEM;
        if (stat(c->op->src, &st) < 0)
                return fail(c->err, c->line, "file: '%s': %s", c->op->src, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(c->err, c->line, "file: '%s' is not a regular file", c->op->src);
        return dest_path(c);
}

/* write PATH CONTENT */
static int dir_write(const DirectiveCtx *c) {
        int r = dest_path(c);
        if (r < 0)
                return r;
        if (c->tok[2].len > RECIPE_MAX_VALUE)
                return fail(c->err, c->line, "write: content longer than %d bytes", RECIPE_MAX_VALUE);
        c->op->data = malloc(c->tok[2].len + 1);
        if (!c->op->data)
                return -ENOMEM;
        memcpy(c->op->data, c->tok[2].p, c->tok[2].len + 1);
        c->op->data_len = c->tok[2].len;
        return 0;
}

/* symlink PATH TARGET */
static int dir_symlink(const DirectiveCtx *c) {
        int r = dest_path(c);
        if (r < 0)
                return r;
        const char *target = c->tok[2].p;
        if (!*target || strlen(target) >= 4096)
                return fail(c->err, c->line, "symlink: target must be 1..4095 bytes");
        c->op->arg = strdup(target);
        return c->op->arg ? 0 : -ENOMEM;
}

/* hardlink PATH EXISTING */
static int dir_hardlink(const DirectiveCtx *c) {
        int r = dest_path(c);
        if (r < 0)
                return r;
        if (!image_path_ok(c->tok[2].p))
                return fail(c->err, c->line, "hardlink: bad existing path \"%.64s\"", c->tok[2].p);
        c->op->arg = strdup(c->tok[2].p);
        return c->op->arg ? 0 : -ENOMEM;
}

/* xattr PATH NAME HEX */
static int dir_xattr(const DirectiveCtx *c) {
        int r = dest_path(c);
        if (r < 0)
                return r;
        const char *name = c->tok[2].p;
        if (strncmp(name, "security.", 9) != 0 && strncmp(name, "user.", 5) != 0 && strncmp(name, "trusted.", 8) != 0)
                return fail(c->err, c->line, "xattr: name \"%.64s\" must start with security., user. or trusted.", name);
        if (strlen(name) > 255)
                return fail(c->err, c->line, "xattr: name too long");
        c->op->arg = strdup(name);
        if (!c->op->arg)
                return -ENOMEM;
        r = hex_value(c->tok[3].p, &c->op->data, &c->op->data_len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(c->err, c->line, "xattr: bad hex value \"%.64s\"", c->tok[3].p);
        return 0;
}

static const struct directive {
        const char *name;
        enum recipe_op_type type;
        unsigned min_args, max_args;
        bool kv; /* accepts mode= uid= gid= */
        int (*parse)(const DirectiveCtx *c);
} directives[] = {
        { "deb", RECIPE_DEB, 1, 1, false, dir_deb },
        { "tar", RECIPE_TAR, 1, 1, false, dir_tree },
        { "dir", RECIPE_DIR, 1, 2, false, dir_tree },
        { "exclude", RECIPE_EXCLUDE, 1, 1, false, dir_pattern },
        { "include", RECIPE_INCLUDE, 1, 1, false, dir_pattern },
        { "mkdir", RECIPE_MKDIR, 1, 1, true, dir_path },
        { "file", RECIPE_FILE, 2, 2, true, dir_file },
        { "write", RECIPE_WRITE, 2, 2, true, dir_write },
        { "symlink", RECIPE_SYMLINK, 2, 2, false, dir_symlink },
        { "hardlink", RECIPE_HARDLINK, 2, 2, false, dir_hardlink },
        { "attr", RECIPE_ATTR, 1, 1, true, dir_path },
        { "xattr", RECIPE_XATTR, 3, 3, false, dir_xattr },
        { "rm", RECIPE_RM, 1, 1, false, dir_path },
};

/* The mode=, uid= and gid= options after a directive's positional arguments. */
static int parse_kv_options(const struct directive *d, struct buf *tok, size_t first, size_t ntok, unsigned lineno,
                            struct recipe_op *op, struct recipe_error *err) {
        for (size_t i = first; i < ntok; i++) {
                const char *kv = tok[i].p;
                if (!d->kv)
                        return fail(err, lineno, "%s: unexpected argument \"%.64s\"", d->name, kv);
                const char *eq = strchr(kv, '=');
                if (!eq)
                        return fail(err, lineno, "%s: unexpected argument \"%.64s\" (expected mode=, uid= or gid=)", d->name, kv);
                size_t kl = (size_t)(eq - kv);
                if (kl == 4 && strncmp(kv, "mode", 4) == 0) {
                        if (parse_u32(eq + 1, 8, 07777, &op->mode) < 0)
                                return fail(err, lineno, "bad mode \"%.64s\" (octal, at most 07777)", eq + 1);
                        op->has_mode = true;
                } else if (kl == 3 && strncmp(kv, "uid", 3) == 0) {
                        if (parse_u32(eq + 1, 10, UINT32_MAX - 1, &op->uid) < 0)
                                return fail(err, lineno, "bad uid \"%.64s\"", eq + 1);
                        op->has_uid = true;
                } else if (kl == 3 && strncmp(kv, "gid", 3) == 0) {
                        if (parse_u32(eq + 1, 10, UINT32_MAX - 1, &op->gid) < 0)
                                return fail(err, lineno, "bad gid \"%.64s\"", eq + 1);
                        op->has_gid = true;
                } else
                        return fail(err, lineno, "bad key=value \"%.64s\" (expected mode=, uid= or gid=)", kv);
        }
        if (d->type == RECIPE_ATTR && !op->has_mode && !op->has_uid && !op->has_gid)
                return fail(err, lineno, "attr: nothing to change (give mode=, uid= or gid=)");
        return 0;
}

static int parse_directive(struct buf *tok, size_t ntok, unsigned lineno, const char *base_dir, struct recipe_op *op,
                           struct recipe_error *err) {
        const struct directive *d = NULL;
        for (size_t i = 0; i < ELEMENTSOF(directives); i++)
                if (strcmp(tok[0].p, directives[i].name) == 0)
                        d = &directives[i];
        if (!d)
                return fail(err, lineno, "unknown directive \"%.64s\"", tok[0].p);

        /* positional arguments first, then key=value options */
        size_t npos = 0;
        while (1 + npos < ntok && (npos < d->min_args || (!d->kv || !strchr(tok[1 + npos].p, '=') || tok[1 + npos].quoted)) &&
               npos < d->max_args)
                npos++;
        if (npos < d->min_args)
                return fail(err, lineno, "%s: missing argument (needs %u)", d->name, d->min_args);
        int r = parse_kv_options(d, tok, 1 + npos, ntok, lineno, op, err);
        if (r < 0)
                return r;
        op->type = d->type;
        op->line = lineno;
        DirectiveCtx c = { .tok = tok, .npos = npos, .line = lineno, .base_dir = base_dir, .name = d->name, .op = op,
                           .err = err };
        return d->parse(&c);
}

int recipe_parse(const char *text, size_t len, const char *base_dir, char *const *vars, size_t n_vars,
                 struct recipe **ret, struct recipe_error *err) {
        struct recipe_error scratch;
        if (!err)
                err = &scratch;
        err->line = 0;
        err->msg[0] = 0;
        if (len > RECIPE_MAX_SIZE)
                return fail(err, 0, "larger than %d bytes", RECIPE_MAX_SIZE);
        for (size_t i = 0; i < n_vars; i++) {
                const char *eq = strchr(vars[i], '=');
                if (!eq || eq == vars[i])
                        return fail(err, 0, "bad --var \"%.64s\" (expected NAME=VALUE)", vars[i]);
        }

        struct recipe *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        struct buf tok[MAX_TOKENS] = { 0 };
        size_t cap = 0;
        int ret_code = 0;
        unsigned lineno = 0;
        for (size_t pos = 0; pos < len;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', len - pos);
                size_t ll = nl ? (size_t)(nl - line) : len - pos;
                pos += ll + (nl ? 1 : 0);
                lineno++;
                if (memchr(line, 0, ll)) {
                        ret_code = fail(err, lineno, "NUL byte in line");
                        break;
                }
                size_t ntok = 0;
                ret_code = tokenize(line, ll, lineno, vars, n_vars, tok, &ntok, err);
                if (ret_code < 0)
                        break;
                if (ntok == 0)
                        continue;
                if (r->n_ops == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct recipe_op *ops = realloc(r->ops, ncap * sizeof *ops);
                        if (!ops) {
                                ret_code = -ENOMEM;
                                break;
                        }
                        r->ops = ops;
                        cap = ncap;
                }
                struct recipe_op *op = &r->ops[r->n_ops++];
                memset(op, 0, sizeof *op);
                ret_code = parse_directive(tok, ntok, lineno, base_dir, op, err);
                if (ret_code < 0)
                        break;
        }
        for (size_t i = 0; i < MAX_TOKENS; i++)
                free(tok[i].p);
        if (ret_code < 0) {
                recipe_free(r);
                return ret_code;
        }
        *ret = r;
        return 0;
}

int recipe_load(const char *path, char *const *vars, size_t n_vars, struct recipe **ret, struct recipe_error *err) {
        struct recipe_error scratch;
        if (!err)
                err = &scratch;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, RECIPE_MAX_SIZE, &text, &len);
        if (r < 0) {
                err->line = 0;
                snprintf(err->msg, sizeof err->msg, "%s", r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return r;
        }
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        struct recipe *rec = NULL;
        r = recipe_parse(text, len, dirname(copy), vars, n_vars, &rec, err);
        if (r < 0)
                return r;
        rec->path = strdup(path);
        if (!rec->path) {
                recipe_free(rec);
                return -ENOMEM;
        }
        *ret = rec;
        return 0;
}
