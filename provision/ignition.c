/* provision/ignition.c — parse, validate, stage and apply the Ignition spec 3.x subset Cairn supports
 * (passwd.users/groups, storage.files/directories/links); see docs/provisioning.md for the exact subset. */
#include "ignition.h"

#include <ctype.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "fileio.h"
#include "macro.h"

#define MAX_ENTRIES 4096         /* files + directories + links + users + groups */
#define MAX_KEYS 256             /* sshAuthorizedKeys per user */
#define MAX_FIELD 4096           /* any string field but contents.source */
#define MAX_ACCOUNT_FILE (1u << 20)
#define FIRST_UID 1000

enum kind { K_DIR, K_FILE, K_SYMLINK, K_HARDLINK };

struct owner {
        long long uid, gid; /* -1: not given */
        char *user, *group;
};

struct node {
        enum kind kind;
        char *path, *target, *source, *where;
        int mode;
        bool overwrite, gzip;
        int hash_alg; /* 0, 256 or 512 */
        unsigned char hash[64];
        struct owner own;
        char *data;
        size_t len;
        bool have_data;
        /* staged */
        uid_t uid;
        gid_t gid;
        bool exists;  /* directory already there */
        int link_src; /* K_HARDLINK: index of the staged file it links to, or -1 */
        char *tmp;    /* apply: temporary name */
};

struct user {
        char *name, *hash, *gecos, *home, *shell;
        long long uid;
        char **keys, **groups;
        size_t nkeys, ngroups;
};

struct group {
        char *name, *hash;
        long long gid;
};

struct prov_plan {
        struct node *cfg; /* from storage.* */
        size_t ncfg;
        struct user *users;
        size_t nusers;
        struct group *groups;
        size_t ngroups;
        size_t total;
        size_t nfiles, ndirs, nlinks;
        /* staged: every node to create, in order */
        struct node *ops;
        size_t nops;
};

static int fail(struct prov_err *err, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(struct prov_err *err, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        return r;
}

/* An untrusted string made printable for a log line (at most ~64 characters shown). */
static const char *esc(const char *s, char buf[static 300]) {
        size_t o = 0;
        for (size_t i = 0; s[i] && o < 280; i++) {
                unsigned char c = (unsigned char)s[i];
                if (i >= 64) {
                        o += (size_t)snprintf(buf + o, 300 - o, "...");
                        break;
                }
                if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')
                        o += (size_t)snprintf(buf + o, 300 - o, "\\x%02x", c);
                else
                        buf[o++] = (char)c;
        }
        buf[o] = 0;
        return buf;
}

/* ---- plan memory ---- */

static void node_free(struct node *n) {
        free(n->path);
        free(n->target);
        free(n->source);
        free(n->where);
        free(n->own.user);
        free(n->own.group);
        free(n->data);
        free(n->tmp);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void prov_plan_free(struct prov_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->ncfg; i++)
                node_free(&p->cfg[i]);
        free(p->cfg);
        for (size_t i = 0; i < p->nops; i++)
                node_free(&p->ops[i]);
        free(p->ops);
        for (size_t i = 0; i < p->nusers; i++) {
                struct user *u = &p->users[i];
                free(u->name);
                free(u->hash);
                free(u->gecos);
                free(u->home);
                free(u->shell);
                strv_free(u->keys, u->nkeys);
                strv_free(u->groups, u->ngroups);
        }
        free(p->users);
        for (size_t i = 0; i < p->ngroups; i++) {
                free(p->groups[i].name);
                free(p->groups[i].hash);
        }
        free(p->groups);
        free(p);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct prov_plan *, prov_plan_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

/* ---- small decoders ---- */

static int b64val(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

static int hexval(unsigned char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (unsigned char)tolower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* RFC 2397 data: URL → bytes. Base64 (padding optional, nothing but the alphabet) or percent-encoded. */
int prov_data_url_decode(const char *url, char **ret, size_t *ret_len) {
        if (strncmp(url, "data:", 5) != 0)
                return -EINVAL;
        const char *comma = strchr(url + 5, ',');
        if (!comma)
                return -EINVAL;
        size_t hl = (size_t)(comma - (url + 5));
        bool b64 = hl >= 7 && strncmp(comma - 7, ";base64", 7) == 0;
        const char *s = comma + 1;
        size_t n = strlen(s);
        _cleanup_free_ char *out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        if (b64) {
                size_t pad = 0;
                while (n > 0 && s[n - 1] == '=' && pad < 2)
                        n--, pad++;
                if (pad && (n + pad) % 4 != 0)
                        return -EINVAL;
                uint32_t acc = 0;
                int bits = 0;
                for (size_t i = 0; i < n; i++) {
                        int v = b64val((unsigned char)s[i]);
                        if (v < 0)
                                return -EINVAL;
                        acc = (acc << 6) | (uint32_t)v;
                        bits += 6;
                        if (bits >= 8) {
                                bits -= 8;
                                out[o++] = (char)((acc >> bits) & 0xff);
                        }
                }
                if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0) /* a lone 6-bit group, or stray bits set */
                        return -EINVAL;
        } else {
                for (size_t i = 0; i < n; i++) {
                        if (s[i] == '%') {
                                int h, l;
                                if (i + 2 >= n || (h = hexval((unsigned char)s[i + 1])) < 0 ||
                                    (l = hexval((unsigned char)s[i + 2])) < 0)
                                        return -EINVAL;
                                out[o++] = (char)(h * 16 + l);
                                i += 2;
                        } else
                                out[o++] = s[i];
                }
        }
        out[o] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

static int gunzip(const char *in, size_t inlen, size_t max, char **ret, size_t *ret_len) {
        z_stream z = { 0 };
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        size_t cap = 4096, len = 0;
        char *out = malloc(cap);
        int r = -EBADMSG;
        if (!out) {
                inflateEnd(&z);
                return -ENOMEM;
        }
        z.next_in = (unsigned char *)(uintptr_t)in;
        z.avail_in = (uInt)inlen;
        for (;;) {
                if (len == cap) {
                        if (cap >= max + 1) {
                                r = -EFBIG;
                                goto out;
                        }
                        size_t nc = MIN(cap * 2, max + 1);
                        char *t = realloc(out, nc);
                        if (!t) {
                                r = -ENOMEM;
                                goto out;
                        }
                        out = t, cap = nc;
                }
                z.next_out = (unsigned char *)out + len;
                z.avail_out = (uInt)(cap - len);
                int zr = inflate(&z, Z_NO_FLUSH);
                len = cap - z.avail_out;
                if (len > max) {
                        r = -EFBIG;
                        goto out;
                }
                if (zr == Z_STREAM_END) {
                        r = z.avail_in == 0 ? 0 : -EBADMSG;
                        break;
                }
                if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0))
                        goto out;
                if (z.avail_in == 0 && z.avail_out != 0)
                        goto out; /* truncated */
        }
out:
        inflateEnd(&z);
        if (r < 0) {
                free(out);
                return r;
        }
        *ret = out;
        *ret_len = len;
        return 0;
}

/* ---- JSON helpers ---- */

/* null, false, "", [] and objects of only such values count as "not used". */
static bool is_empty(json_object *v) {
        if (!v)
                return true;
        switch (json_object_get_type(v)) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return !json_object_get_boolean(v);
        case json_type_string:
                return json_object_get_string_len(v) == 0;
        case json_type_array:
                return json_object_array_length(v) == 0;
        case json_type_object: {
                json_object_object_foreach(v, k, val) {
                        (void)k;
                        if (!is_empty(val))
                                return false;
                }
                return true;
        }
        default:
                return false;
        }
}

static bool in_list(const char *k, const char *const *l) {
        for (; l && *l; l++)
                if (strcmp(k, *l) == 0)
                        return true;
        return false;
}

/* Every key of o must be supported, or unsupported-but-unused; otherwise one line naming the field. */
static int check_keys(json_object *o, const char *where, const char *const *sup, const char *const *unsup,
                      struct prov_err *err) {
        char e[300];
        json_object_object_foreach(o, k, v) {
                if (in_list(k, sup))
                        continue;
                if (in_list(k, unsup)) {
                        if (is_empty(v))
                                continue;
                        return fail(err, -EOPNOTSUPP,
                                    "unsupported field '%s%s%s' (Cairn provisions passwd users/groups and storage "
                                    "files/directories/links only; see docs/provisioning.md)",
                                    where, *where ? "." : "", k);
                }
                return fail(err, -EINVAL, "unknown field '%s%s%s' (not in Ignition spec 3.x)", where, *where ? "." : "",
                            esc(k, e));
        }
        return 0;
}

static int want_object(json_object *v, const char *where, struct prov_err *err) {
        if (!json_object_is_type(v, json_type_object))
                return fail(err, -EINVAL, "'%s' must be an object", where);
        return 0;
}

/* Optional string member; NULL when absent or null. Rejects NUL bytes and over-long values. */
static int get_str(json_object *o, const char *key, const char *where, size_t max, char **ret,
                   struct prov_err *err) {
        json_object *v;
        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return fail(err, -EINVAL, "'%s.%s' must be a string", where, key);
        size_t n = (size_t)json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        if (memchr(s, 0, n))
                return fail(err, -EINVAL, "'%s.%s' contains a NUL byte", where, key);
        if (n > max)
                return fail(err, -E2BIG, "'%s.%s' is longer than %zu bytes", where, key, max);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_int(json_object *o, const char *key, const char *where, long long lo, long long hi, long long *ret,
                   struct prov_err *err) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return fail(err, -EINVAL, "'%s.%s' must be an integer", where, key);
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno || x < lo || x > hi)
                return fail(err, -ERANGE, "'%s.%s' is out of range (%lld..%lld)", where, key, lo, hi);
        *ret = x;
        return 0;
}

static int get_bool(json_object *o, const char *key, const char *where, bool *ret, struct prov_err *err) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return fail(err, -EINVAL, "'%s.%s' must be true or false", where, key);
        *ret = json_object_get_boolean(v);
        return 0;
}

/* Optional array member: *ret NULL when absent/null. */
static int get_array(json_object *o, const char *key, const char *where, json_object **ret, struct prov_err *err) {
        json_object *v;
        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return fail(err, -EINVAL, "'%s.%s' must be an array", where, key);
        *ret = v;
        return 0;
}

static int get_object(json_object *o, const char *key, const char *where, json_object **ret, struct prov_err *err) {
        json_object *v;
        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        char w[256];
        snprintf(w, sizeof w, "%s%s%s", where, *where ? "." : "", key);
        int r = want_object(v, w, err);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* ---- names and paths ---- */

static bool valid_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 32 || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || (c == '$' && i == n - 1)))
                        return false;
        }
        return strspn(s, "0123456789") != n; /* not all digits: that would read as an id */
}

/* A passwd/shadow field: no ':' and no line breaks or other control characters. */
static bool valid_field(const char *s) {
        for (; *s; s++)
                if (*s == ':' || (unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* Absolute, clean (no empty, "." or ".." components, no trailing '/'), and below one of the writable trees. */
bool prov_path_allowed(const char *path) {
        static const char *const tops[] = { "/etc/", "/var/", "/home/", "/root/", "/opt/" };
        size_t n = strlen(path);
        if (n < 2 || n > 1024 || path[0] != '/' || path[n - 1] == '/')
                return false;
        for (const char *c = path; *c;) {
                c++; /* past '/' */
                const char *e = strchrnul(c, '/');
                size_t l = (size_t)(e - c);
                if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.') || l > 255)
                        return false;
                c = e;
        }
        for (size_t i = 0; i < ELEMENTSOF(tops); i++)
                if (strncmp(path, tops[i], strlen(tops[i])) == 0)
                        return true;
        return false;
}

static int get_path(json_object *o, const char *key, const char *where, char **ret, struct prov_err *err) {
        char e[300];
        int r = get_str(o, key, where, MAX_FIELD, ret, err);
        if (r < 0)
                return r;
        if (!*ret)
                return fail(err, -EINVAL, "'%s.%s' is required", where, key);
        if (!prov_path_allowed(*ret)) {
                r = fail(err, -EPERM,
                         "'%s.%s' '%s' is not allowed: paths must be absolute, clean and under /etc, /var, /home, /root "
                         "or /opt (/usr is read-only)",
                         where, key, esc(*ret, e));
                free(*ret);
                *ret = NULL;
                return r;
        }
        return 0;
}

static int parse_owner(json_object *o, const char *where, struct owner *own, struct prov_err *err) {
        static const char *const sup[] = { "id", "name", NULL };
        own->uid = own->gid = -1;
        const char *key[2] = { "user", "group" };
        for (int i = 0; i < 2; i++) {
                json_object *x;
                char w[256];
                snprintf(w, sizeof w, "%s.%s", where, key[i]);
                int r = get_object(o, key[i], where, &x, err);
                if (r < 0)
                        return r;
                if (!x)
                        continue;
                if ((r = check_keys(x, w, sup, NULL, err)) < 0)
                        return r;
                long long id = -1;
                char *name = NULL;
                if ((r = get_int(x, "id", w, 0, 4294967294LL, &id, err)) < 0 ||
                    (r = get_str(x, "name", w, 32, &name, err)) < 0)
                        return r;
                if (name && !valid_name(name)) {
                        free(name);
                        return fail(err, -EINVAL, "'%s.name' is not a valid name", w);
                }
                if (i == 0)
                        own->uid = id, own->user = name;
                else
                        own->gid = id, own->group = name;
        }
        return 0;
}

static int parse_hash(const char *s, const char *where, struct node *n, struct prov_err *err) {
        char e[300];
        size_t want;
        if (strncmp(s, "sha512-", 7) == 0)
                n->hash_alg = 512, want = 64;
        else if (strncmp(s, "sha256-", 7) == 0)
                n->hash_alg = 256, want = 32;
        else
                return fail(err, -EINVAL, "'%s' '%s': only sha512-HEX and sha256-HEX are supported", where, esc(s, e));
        const char *h = s + 7;
        if (strlen(h) != want * 2)
                return fail(err, -EINVAL, "'%s': a %s hash has %zu hex digits", where, n->hash_alg == 512 ? "sha512" : "sha256",
                            want * 2);
        for (size_t i = 0; i < want; i++) {
                int a = hexval((unsigned char)h[2 * i]), b = hexval((unsigned char)h[2 * i + 1]);
                if (a < 0 || b < 0)
                        return fail(err, -EINVAL, "'%s' is not hexadecimal", where);
                n->hash[i] = (unsigned char)(a * 16 + b);
        }
        return 0;
}

static int check_hash(const struct node *n, const char *where, struct prov_err *err) {
        if (!n->hash_alg)
                return 0;
        unsigned char md[64];
        unsigned int mdlen = 0;
        if (!EVP_Digest(n->data, n->len, md, &mdlen, n->hash_alg == 512 ? EVP_sha512() : EVP_sha256(), NULL))
                return fail(err, -EIO, "cannot compute a hash");
        if (mdlen != (n->hash_alg == 512 ? 64u : 32u) || memcmp(md, n->hash, mdlen) != 0)
                return fail(err, -EBADMSG, "%s: contents do not match contents.verification.hash (sha%d)", where,
                            n->hash_alg);
        return 0;
}

/* Decompress (gzip) if asked and check the hash; n->data holds the final contents afterwards. */
static int finish_contents(struct prov_plan *p, struct node *n, struct prov_err *err) {
        if (n->gzip) {
                char *out;
                size_t olen;
                int r = gunzip(n->data, n->len, PROV_FILE_MAX, &out, &olen);
                if (r == -EFBIG)
                        return fail(err, r, "%s: contents larger than %u MiB after gunzip", n->where, PROV_FILE_MAX >> 20);
                if (r < 0)
                        return fail(err, r, "%s: contents are not valid gzip data (contents.compression is gzip)", n->where);
                free(n->data);
                n->data = out, n->len = olen;
        }
        if (n->len > PROV_FILE_MAX)
                return fail(err, -EFBIG, "%s: contents larger than %u MiB", n->where, PROV_FILE_MAX >> 20);
        p->total += n->len;
        if (p->total > PROV_TOTAL_MAX)
                return fail(err, -EFBIG, "files larger than %u MiB in total", PROV_TOTAL_MAX >> 20);
        n->have_data = true;
        return check_hash(n, n->where, err);
}

/* ---- sections ---- */

static int parse_ignition(json_object *ig, struct prov_err *err) {
        static const char *const sup[] = { "version", "timeouts", NULL };
        static const char *const unsup[] = { "config", "security", "proxy", NULL };
        char *ver = NULL, e[300];
        int r = check_keys(ig, "ignition", sup, unsup, err);
        if (r < 0)
                return r;
        if ((r = get_str(ig, "version", "ignition", 64, &ver, err)) < 0)
                return r;
        if (!ver)
                return fail(err, -EINVAL, "'ignition.version' is required");
        static const char *const ok[] = { "3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", NULL };
        if (!in_list(ver, ok)) {
                r = fail(err, -EPROTONOSUPPORT,
                         "config spec version '%s' is not supported (Cairn reads Ignition spec 3.0.0 to 3.4.0)",
                         esc(ver, e));
                free(ver);
                return r;
        }
        free(ver);
        json_object *t;
        if ((r = get_object(ig, "timeouts", "ignition", &t, err)) < 0)
                return r;
        if (t) {
                static const char *const ts[] = { "httpResponseHeaders", "httpTotal", NULL };
                long long x;
                if ((r = check_keys(t, "ignition.timeouts", ts, NULL, err)) < 0 ||
                    (r = get_int(t, "httpResponseHeaders", "ignition.timeouts", 0, 86400, &x, err)) < 0 ||
                    (r = get_int(t, "httpTotal", "ignition.timeouts", 0, 86400, &x, err)) < 0)
                        return r;
        }
        return 0;
}

static struct node *add_node(struct prov_plan *p, enum kind k, const char *where, struct prov_err *err) {
        if (p->ncfg + p->nusers + p->ngroups >= MAX_ENTRIES) {
                fail(err, -E2BIG, "more than %d entries", MAX_ENTRIES);
                return NULL;
        }
        struct node *t = realloc(p->cfg, (p->ncfg + 1) * sizeof *t);
        if (!t) {
                fail(err, -ENOMEM, "out of memory");
                return NULL;
        }
        p->cfg = t;
        struct node *n = &p->cfg[p->ncfg++];
        *n = (struct node){ .kind = k, .mode = -1, .link_src = -1, .own = { .uid = -1, .gid = -1 } };
        n->where = strdup(where);
        if (!n->where) {
                fail(err, -ENOMEM, "out of memory");
                return NULL;
        }
        return n;
}

static int parse_contents(struct prov_plan *p, json_object *c, const char *where, struct node *n, struct prov_err *err) {
        static const char *const sup[] = { "source", "compression", "verification", NULL };
        static const char *const unsup[] = { "httpHeaders", NULL };
        char e[300], *comp = NULL;
        int r = check_keys(c, where, sup, unsup, err);
        if (r < 0)
                return r;
        if ((r = get_str(c, "compression", where, 64, &comp, err)) < 0)
                return r;
        if (comp && *comp && strcmp(comp, "gzip") != 0) {
                r = fail(err, -EOPNOTSUPP, "'%s.compression' '%s' is not supported (only gzip)", where, esc(comp, e));
                free(comp);
                return r;
        }
        n->gzip = comp && *comp;
        free(comp);
        json_object *v;
        if ((r = get_object(c, "verification", where, &v, err)) < 0)
                return r;
        if (v) {
                static const char *const vs[] = { "hash", NULL };
                char w[300], *h = NULL;
                snprintf(w, sizeof w, "%s.verification", where);
                if ((r = check_keys(v, w, vs, NULL, err)) < 0 || (r = get_str(v, "hash", w, 200, &h, err)) < 0)
                        return r;
                if (h) {
                        snprintf(w, sizeof w, "%s.verification.hash", where);
                        r = parse_hash(h, w, n, err);
                        free(h);
                        if (r < 0)
                                return r;
                }
        }
        if ((r = get_str(c, "source", where, PROV_CONFIG_MAX, &n->source, err)) < 0)
                return r;
        if (!n->source) {
                if (n->hash_alg)
                        return fail(err, -EINVAL, "'%s.verification' without a source", where);
                return 0;
        }
        if (strncmp(n->source, "data:", 5) == 0) {
                r = prov_data_url_decode(n->source, &n->data, &n->len);
                if (r == -ENOMEM)
                        return fail(err, r, "out of memory");
                if (r < 0)
                        return fail(err, r, "'%s.source': the data: URL does not decode (RFC 2397, base64 or %%-escapes)",
                                    where);
                return finish_contents(p, n, err);
        }
        if (strncmp(n->source, "http://", 7) == 0 || strncmp(n->source, "https://", 8) == 0)
                return 0; /* fetched by prov_stage() */
        const char *colon = strchr(n->source, ':');
        char scheme[32] = "";
        if (colon && colon - n->source < 20)
                snprintf(scheme, sizeof scheme, "%.*s", (int)(colon - n->source), n->source);
        return fail(err, -EOPNOTSUPP, "'%s.source': URL scheme '%s' is not supported (data:, http:, https:)", where,
                    esc(scheme, e));
}

static int parse_storage(struct prov_plan *p, json_object *st, struct prov_err *err) {
        static const char *const sup[] = { "files", "directories", "links", NULL };
        static const char *const unsup[] = { "disks", "raid", "filesystems", "luks", NULL };
        int r = check_keys(st, "storage", sup, unsup, err);
        if (r < 0)
                return r;
        static const char *const secs[] = { "files", "directories", "links" };
        static const char *const fsup[] = { "path", "overwrite", "contents", "mode", "user", "group", NULL };
        static const char *const funsup[] = { "append", NULL };
        static const char *const dsup[] = { "path", "overwrite", "mode", "user", "group", NULL };
        static const char *const lsup[] = { "path", "overwrite", "target", "hard", "user", "group", NULL };
        for (int s = 0; s < 3; s++) {
                json_object *a;
                if ((r = get_array(st, secs[s], "storage", &a, err)) < 0)
                        return r;
                size_t na = a ? json_object_array_length(a) : 0;
                for (size_t i = 0; i < na; i++) {
                        json_object *o = json_object_array_get_idx(a, i);
                        char w[128];
                        snprintf(w, sizeof w, "storage.%s[%zu]", secs[s], i);
                        if ((r = want_object(o, w, err)) < 0)
                                return r;
                        if ((r = check_keys(o, w, s == 0 ? fsup : s == 1 ? dsup : lsup, s == 0 ? funsup : NULL, err)) < 0)
                                return r;
                        struct node *n = add_node(p, s == 0 ? K_FILE : s == 1 ? K_DIR : K_SYMLINK, w, err);
                        if (!n)
                                return -ENOMEM;
                        long long mode = -1;
                        if ((r = get_path(o, "path", w, &n->path, err)) < 0 || (r = get_bool(o, "overwrite", w, &n->overwrite, err)) < 0 ||
                            (r = parse_owner(o, w, &n->own, err)) < 0)
                                return r;
                        if (s < 2) {
                                if ((r = get_int(o, "mode", w, 0, 07777, &mode, err)) < 0)
                                        return r;
                                n->mode = mode >= 0 ? (int)mode : s == 0 ? 0644 : 0755;
                        }
                        if (s == 0) {
                                json_object *c;
                                char cw[160];
                                snprintf(cw, sizeof cw, "%s.contents", w);
                                if ((r = get_object(o, "contents", w, &c, err)) < 0)
                                        return r;
                                if (c && (r = parse_contents(p, c, cw, n, err)) < 0)
                                        return r;
                                p->nfiles++;
                        } else if (s == 1) {
                                p->ndirs++;
                        } else {
                                bool hard = false;
                                if ((r = get_bool(o, "hard", w, &hard, err)) < 0 ||
                                    (r = get_str(o, "target", w, MAX_FIELD, &n->target, err)) < 0)
                                        return r;
                                if (!n->target || !*n->target)
                                        return fail(err, -EINVAL, "'%s.target' is required", w);
                                if (hard) {
                                        n->kind = K_HARDLINK;
                                        char e[300];
                                        if (!prov_path_allowed(n->target))
                                                return fail(err, -EPERM,
                                                            "'%s.target' '%s': a hard link target must be an allowed absolute path",
                                                            w, esc(n->target, e));
                                }
                                p->nlinks++;
                        }
                }
        }
        return 0;
}

static int parse_strv(json_object *o, const char *key, const char *where, size_t maxn, size_t maxl, char ***ret,
                      size_t *ret_n, struct prov_err *err) {
        json_object *a;
        int r = get_array(o, key, where, &a, err);
        if (r < 0 || !a)
                return r;
        size_t n = json_object_array_length(a);
        if (n > maxn)
                return fail(err, -E2BIG, "'%s.%s' has more than %zu entries", where, key, maxn);
        char **v = calloc(n + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_array_get_idx(a, i);
                size_t l = (size_t)json_object_get_string_len(x);
                const char *s = json_object_get_string(x);
                if (!json_object_is_type(x, json_type_string) || memchr(s, 0, l) || l > maxl ||
                    strpbrk(s, "\n\r")) {
                        strv_free(v, i);
                        return fail(err, -EINVAL, "'%s.%s[%zu]' must be a single-line string of at most %zu bytes", where,
                                    key, i, maxl);
                }
                v[i] = strdup(s);
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int parse_passwd(struct prov_plan *p, json_object *pw, struct prov_err *err) {
        static const char *const sup[] = { "users", "groups", NULL };
        static const char *const usup[] = { "name", "passwordHash", "sshAuthorizedKeys", "uid", "gecos", "homeDir",
                                             "groups", "shell", "shouldExist", NULL };
        static const char *const uunsup[] = { "noCreateHome", "primaryGroup", "noUserGroup", "noLogInit", "system", NULL };
        static const char *const gsup[] = { "name", "gid", "passwordHash", "shouldExist", NULL };
        static const char *const gunsup[] = { "system", NULL };
        char e[300];
        int r = check_keys(pw, "passwd", sup, NULL, err);
        if (r < 0)
                return r;
        json_object *a;
        if ((r = get_array(pw, "groups", "passwd", &a, err)) < 0)
                return r;
        size_t na = a ? json_object_array_length(a) : 0;
        if (na > MAX_ENTRIES)
                return fail(err, -E2BIG, "more than %d entries", MAX_ENTRIES);
        p->groups = calloc(na ? na : 1, sizeof *p->groups);
        if (!p->groups)
                return -ENOMEM;
        for (size_t i = 0; i < na; i++) {
                json_object *o = json_object_array_get_idx(a, i);
                char w[64];
                snprintf(w, sizeof w, "passwd.groups[%zu]", i);
                struct group *g = &p->groups[p->ngroups++];
                g->gid = -1;
                bool exist = true;
                if ((r = want_object(o, w, err)) < 0 || (r = check_keys(o, w, gsup, gunsup, err)) < 0 ||
                    (r = get_str(o, "name", w, 32, &g->name, err)) < 0 || (r = get_int(o, "gid", w, 0, 4294967294LL, &g->gid, err)) < 0 ||
                    (r = get_str(o, "passwordHash", w, 512, &g->hash, err)) < 0 || (r = get_bool(o, "shouldExist", w, &exist, err)) < 0)
                        return r;
                if (!exist)
                        return fail(err, -EOPNOTSUPP, "unsupported field '%s.shouldExist' (false: removing groups)", w);
                if (!g->name || !valid_name(g->name))
                        return fail(err, -EINVAL, "'%s.name' '%s' is not a valid group name", w, g->name ? esc(g->name, e) : "");
                if (g->hash && !valid_field(g->hash))
                        return fail(err, -EINVAL, "'%s.passwordHash' contains ':' or a control character", w);
        }
        if ((r = get_array(pw, "users", "passwd", &a, err)) < 0)
                return r;
        na = a ? json_object_array_length(a) : 0;
        if (na > MAX_ENTRIES)
                return fail(err, -E2BIG, "more than %d entries", MAX_ENTRIES);
        p->users = calloc(na ? na : 1, sizeof *p->users);
        if (!p->users)
                return -ENOMEM;
        for (size_t i = 0; i < na; i++) {
                json_object *o = json_object_array_get_idx(a, i);
                char w[64];
                snprintf(w, sizeof w, "passwd.users[%zu]", i);
                struct user *u = &p->users[p->nusers++];
                u->uid = -1;
                bool exist = true;
                if ((r = want_object(o, w, err)) < 0 || (r = check_keys(o, w, usup, uunsup, err)) < 0 ||
                    (r = get_str(o, "name", w, 32, &u->name, err)) < 0 || (r = get_int(o, "uid", w, 0, 4294967294LL, &u->uid, err)) < 0 ||
                    (r = get_str(o, "passwordHash", w, 512, &u->hash, err)) < 0 ||
                    (r = get_str(o, "gecos", w, 256, &u->gecos, err)) < 0 || (r = get_str(o, "homeDir", w, 1024, &u->home, err)) < 0 ||
                    (r = get_str(o, "shell", w, 256, &u->shell, err)) < 0 || (r = get_bool(o, "shouldExist", w, &exist, err)) < 0 ||
                    (r = parse_strv(o, "sshAuthorizedKeys", w, MAX_KEYS, 16384, &u->keys, &u->nkeys, err)) < 0 ||
                    (r = parse_strv(o, "groups", w, 64, 32, &u->groups, &u->ngroups, err)) < 0)
                        return r;
                if (!exist)
                        return fail(err, -EOPNOTSUPP, "unsupported field '%s.shouldExist' (false: removing users)", w);
                if (!u->name || !valid_name(u->name))
                        return fail(err, -EINVAL, "'%s.name' '%s' is not a valid user name", w, u->name ? esc(u->name, e) : "");
                if ((u->hash && !valid_field(u->hash)) || (u->gecos && !valid_field(u->gecos)) ||
                    (u->shell && !valid_field(u->shell)))
                        return fail(err, -EINVAL, "'%s': passwordHash, gecos and shell may not contain ':' or control characters", w);
                if (u->shell && u->shell[0] != '/')
                        return fail(err, -EINVAL, "'%s.shell' must be an absolute path", w);
                if (u->home && (!valid_field(u->home) || !prov_path_allowed(u->home)))
                        return fail(err, -EPERM, "'%s.homeDir' must be a clean path under /home, /root, /var, /etc or /opt", w);
                for (size_t k = 0; k < u->ngroups; k++)
                        if (!valid_name(u->groups[k]))
                                return fail(err, -EINVAL, "'%s.groups[%zu]' is not a valid group name", w, k);
                for (size_t k = 0; k < u->nkeys; k++)
                        if (!*u->keys[k])
                                return fail(err, -EINVAL, "'%s.sshAuthorizedKeys[%zu]' is empty", w, k);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(p->users[j].name, u->name) == 0)
                                return fail(err, -EINVAL, "'%s': user '%s' is listed twice", w, u->name);
        }
        return 0;
}

int prov_parse(const char *untrusted, size_t len, struct prov_plan **ret, struct prov_err *err) {
        if (len > PROV_CONFIG_MAX)
                return fail(err, -EFBIG, "config is larger than %u MiB", PROV_CONFIG_MAX >> 20);
        if (memchr(untrusted, 0, len))
                return fail(err, -EINVAL, "config is not valid JSON: it contains a NUL byte");
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        _cleanup_(json_object_putp) json_object *root = json_tokener_parse_ex(tok, untrusted, (int)len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        if (je == json_tokener_continue)
                return fail(err, -EINVAL, "config is not valid JSON: it ends early");
        if (je != json_tokener_success || !root)
                return fail(err, -EINVAL, "config is not valid JSON: %s at byte %zu", json_tokener_error_desc(je),
                            json_tokener_get_parse_end(tok));
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", untrusted[i]))
                        return fail(err, -EINVAL, "config is not valid JSON: text after the end at byte %zu", i);
        if (!json_object_is_type(root, json_type_object))
                return fail(err, -EINVAL, "config is not a JSON object");

        static const char *const sup[] = { "ignition", "storage", "passwd", NULL };
        static const char *const unsup[] = { "systemd", "kernelArguments", NULL };
        json_object *v;
        if (!json_object_object_get_ex(root, "ignition", &v) || want_object(v, "ignition", err) < 0)
                return fail(err, -EINVAL, "not an Ignition config: no 'ignition' object with a version");
        int r = parse_ignition(v, err);
        if (r < 0)
                return r;
        if ((r = check_keys(root, "", sup, unsup, err)) < 0)
                return r;
        _cleanup_(prov_plan_freep) struct prov_plan *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if ((r = get_object(root, "storage", "", &v, err)) < 0 || (v && (r = parse_storage(p, v, err)) < 0))
                return r == -ENOMEM ? fail(err, r, "out of memory") : r;
        if ((r = get_object(root, "passwd", "", &v, err)) < 0 || (v && (r = parse_passwd(p, v, err)) < 0))
                return r == -ENOMEM ? fail(err, r, "out of memory") : r;
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- staging: accounts ---- */

struct table {
        char **lines;
        size_t n;
};

static void table_free(struct table *t) {
        strv_free(t->lines, t->n);
        t->lines = NULL;
        t->n = 0;
}

static int table_add(struct table *t, char *line) {
        char **x = realloc(t->lines, (t->n + 1) * sizeof *x);
        if (!x) {
                free(line);
                return -ENOMEM;
        }
        t->lines = x;
        t->lines[t->n++] = line;
        return 0;
}

static int table_read(const char *root, const char *rel, bool must, struct table *t, struct prov_err *err) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", root, rel);
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, MAX_ACCOUNT_FILE, &buf, &len);
        if (r == -ENOENT && !must)
                return 0;
        if (r < 0)
                return fail(err, r, "cannot read '%s': %s", rel, strerror(-r));
        for (char *s = buf, *e; *s; s = e) {
                e = strchrnul(s, '\n');
                size_t l = (size_t)(e - s);
                if (*e)
                        e++;
                if (l == 0)
                        continue;
                char *x = strndup(s, l);
                if (!x || (r = table_add(t, x)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Field i (0-based) of a ':' line, copied into buf; false if there is none. */
static bool field(const char *line, int i, char *buf, size_t n) {
        for (; i > 0; i--) {
                line = strchr(line, ':');
                if (!line)
                        return false;
                line++;
        }
        size_t l = strcspn(line, ":");
        if (l >= n)
                l = n - 1;
        memcpy(buf, line, l);
        buf[l] = 0;
        return true;
}

static ssize_t table_find(const struct table *t, const char *name) {
        size_t nl = strlen(name);
        for (size_t i = 0; i < t->n; i++)
                if (strncmp(t->lines[i], name, nl) == 0 && t->lines[i][nl] == ':')
                        return (ssize_t)i;
        return -1;
}

static bool id_used(const struct table *t, int col, long long id) {
        char b[32];
        for (size_t i = 0; i < t->n; i++)
                if (field(t->lines[i], col, b, sizeof b) && *b && strtoll(b, NULL, 10) == id)
                        return true;
        return false;
}

static long long next_free(const struct table *t, int col, long long from) {
        while (id_used(t, col, from))
                from++;
        return from;
}

static char *table_text(const struct table *t, size_t *ret_len) {
        size_t n = 0;
        for (size_t i = 0; i < t->n; i++)
                n += strlen(t->lines[i]) + 1;
        char *s = malloc(n + 1), *o = s;
        if (!s)
                return NULL;
        for (size_t i = 0; i < t->n; i++)
                o = stpcpy(stpcpy(o, t->lines[i]), "\n");
        *o = 0;
        *ret_len = n;
        return s;
}

static struct node *add_op(struct prov_plan *p, enum kind k, const char *path, int mode, uid_t uid, gid_t gid,
                           const char *where) {
        struct node *t = realloc(p->ops, (p->nops + 1) * sizeof *t);
        if (!t)
                return NULL;
        p->ops = t;
        struct node *n = &p->ops[p->nops++];
        *n = (struct node){ .kind = k, .mode = mode, .uid = uid, .gid = gid, .link_src = -1, .own = { -1, -1, NULL, NULL } };
        n->path = strdup(path);
        n->where = strdup(where);
        if (!n->path || !n->where)
                return NULL;
        return n;
}

static int add_text_op(struct prov_plan *p, const char *path, int mode, uid_t uid, gid_t gid, char *text, size_t len,
                       const char *where) {
        struct node *n = add_op(p, K_FILE, path, mode, uid, gid, where);
        if (!n) {
                free(text);
                return -ENOMEM;
        }
        n->data = text, n->len = len, n->have_data = true, n->overwrite = true;
        return 0;
}

static int stage_accounts(struct prov_plan *p, const char *root, struct table *pw, struct table *gr, struct prov_err *err) {
        struct table sh = { 0 };
        int r;
        char b[4096], e[300];
        if ((r = table_read(root, "/etc/shadow", false, &sh, err)) < 0)
                goto out;
        for (size_t i = 0; i < p->ngroups; i++) {
                struct group *g = &p->groups[i];
                ssize_t at = table_find(gr, g->name);
                if (at >= 0) {
                        field(gr->lines[at], 2, b, sizeof b);
                        if (g->gid >= 0 && strtoll(b, NULL, 10) != g->gid) {
                                r = fail(err, -EEXIST, "passwd.groups[%zu]: group '%s' exists with gid %s", i, g->name, b);
                                goto out;
                        }
                        continue;
                }
                if (g->gid >= 0 && id_used(gr, 2, g->gid)) {
                        r = fail(err, -EEXIST, "passwd.groups[%zu]: gid %lld is taken", i, g->gid);
                        goto out;
                }
                long long gid = g->gid >= 0 ? g->gid : next_free(gr, 2, FIRST_UID);
                char *l;
                if (asprintf(&l, "%s:x:%lld:", g->name, gid) < 0 || (r = table_add(gr, l)) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (size_t i = 0; i < p->nusers; i++) {
                struct user *u = &p->users[i];
                ssize_t at = table_find(pw, u->name);
                long long uid, gid;
                char home[1100];
                if (at >= 0) {
                        field(pw->lines[at], 2, b, sizeof b);
                        uid = strtoll(b, NULL, 10);
                        field(pw->lines[at], 3, b, sizeof b);
                        gid = strtoll(b, NULL, 10);
                        field(pw->lines[at], 5, home, sizeof home);
                        if (u->uid >= 0 && u->uid != uid) {
                                r = fail(err, -EEXIST, "passwd.users[%zu]: user '%s' exists with uid %lld", i, u->name, uid);
                                goto out;
                        }
                } else {
                        if (u->uid >= 0 && id_used(pw, 2, u->uid)) {
                                r = fail(err, -EEXIST, "passwd.users[%zu]: uid %lld is taken", i, u->uid);
                                goto out;
                        }
                        uid = u->uid >= 0 ? u->uid : next_free(pw, 2, FIRST_UID);
                        if (table_find(gr, u->name) >= 0) {
                                r = fail(err, -EEXIST, "passwd.users[%zu]: a group named '%s' exists already", i, u->name);
                                goto out;
                        }
                        gid = id_used(gr, 2, uid) ? next_free(gr, 2, FIRST_UID) : uid;
                        snprintf(home, sizeof home, "%s", u->home ? u->home : "");
                        if (!*home)
                                snprintf(home, sizeof home, "/home/%s", u->name);
                        char *l;
                        if (asprintf(&l, "%s:x:%lld:%lld:%s:%s:%s", u->name, uid, gid, u->gecos ? u->gecos : "", home,
                                     u->shell ? u->shell : "/bin/sh") < 0 ||
                            (r = table_add(pw, l)) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        if (asprintf(&l, "%s:x:%lld:", u->name, gid) < 0 || (r = table_add(gr, l)) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        struct node *h = add_op(p, K_DIR, home, 0700, (uid_t)uid, (gid_t)gid, "home directory");
                        if (!h) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                /* shadow: the password hash, or "*" (no password; key logins still work) */
                ssize_t sat = table_find(&sh, u->name);
                if (sat < 0 || u->hash) {
                        char *l;
                        if (sat >= 0) {
                                const char *rest = strchr(strchr(sh.lines[sat], ':') + 1, ':');
                                if (asprintf(&l, "%s:%s%s", u->name, u->hash, rest ? rest : "::0:99999:7:::") < 0) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                free(sh.lines[sat]);
                                sh.lines[sat] = l;
                        } else if (asprintf(&l, "%s:%s::0:99999:7:::", u->name, u->hash ? u->hash : "*") < 0 ||
                                   (r = table_add(&sh, l)) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                for (size_t k = 0; k < u->ngroups; k++) {
                        ssize_t g = table_find(gr, u->groups[k]);
                        if (g < 0) {
                                r = fail(err, -ENOENT, "passwd.users[%zu].groups: group '%s' does not exist (declare it in passwd.groups)",
                                         i, esc(u->groups[k], e));
                                goto out;
                        }
                        field(gr->lines[g], 3, b, sizeof b);
                        bool member = false;
                        for (char *s = b, *t; s && *s; s = t) {
                                t = strchr(s, ',');
                                size_t l = t ? (size_t)(t - s) : strlen(s);
                                if (l == strlen(u->name) && strncmp(s, u->name, l) == 0)
                                        member = true;
                                if (t)
                                        t++;
                        }
                        if (member)
                                continue;
                        char *l;
                        const char *old = gr->lines[g];
                        size_t ol = strlen(old);
                        if (asprintf(&l, "%s%s%s", old, ol && old[ol - 1] != ':' ? "," : "", u->name) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        free(gr->lines[g]);
                        gr->lines[g] = l;
                }
                if (u->nkeys) {
                        char dir[1200], file[1300];
                        snprintf(dir, sizeof dir, "%s/.ssh", home);
                        snprintf(file, sizeof file, "%s/authorized_keys", dir);
                        if (!prov_path_allowed(file)) {
                                r = fail(err, -EPERM, "passwd.users[%zu]: home directory '%s' is outside the writable trees", i,
                                         esc(home, e));
                                goto out;
                        }
                        if (!add_op(p, K_DIR, dir, 0700, (uid_t)uid, (gid_t)gid, "ssh directory")) {
                                r = -ENOMEM;
                                goto out;
                        }
                        /* keep keys that are there already, add ours */
                        char full[4500];
                        snprintf(full, sizeof full, "%s%s", root, file);
                        _cleanup_free_ char *old = NULL;
                        size_t oldlen = 0;
                        r = read_file_bounded(full, MAX_ACCOUNT_FILE, &old, &oldlen);
                        if (r < 0 && r != -ENOENT) {
                                r = fail(err, r, "cannot read '%s': %s", file, strerror(-r));
                                goto out;
                        }
                        size_t n = oldlen + 2;
                        for (size_t k = 0; k < u->nkeys; k++)
                                n += strlen(u->keys[k]) + 1;
                        char *text = malloc(n), *o = text;
                        if (!text) {
                                r = -ENOMEM;
                                goto out;
                        }
                        if (old) {
                                o = mempcpy(o, old, oldlen);
                                if (oldlen && old[oldlen - 1] != '\n')
                                        *o++ = '\n';
                        }
                        for (size_t k = 0; k < u->nkeys; k++)
                                o = stpcpy(stpcpy(o, u->keys[k]), "\n");
                        if ((r = add_text_op(p, file, 0600, (uid_t)uid, (gid_t)gid, text, (size_t)(o - text), "authorized_keys")) < 0)
                                goto out;
                }
        }
        size_t len;
        char *t;
        if (!(t = table_text(pw, &len)) || (r = add_text_op(p, "/etc/passwd", 0644, 0, 0, t, len, "passwd")) < 0 ||
            !(t = table_text(gr, &len)) || (r = add_text_op(p, "/etc/group", 0644, 0, 0, t, len, "group")) < 0 ||
            !(t = table_text(&sh, &len)) || (r = add_text_op(p, "/etc/shadow", 0600, 0, 0, t, len, "shadow")) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = 0;
out:
        table_free(&sh);
        return r == -ENOMEM ? fail(err, r, "out of memory") : r;
}

static int resolve_owner(const struct owner *o, const struct table *pw, const struct table *gr, const char *where,
                         uid_t *ret_uid, gid_t *ret_gid, struct prov_err *err) {
        char b[32];
        long long uid = o->uid >= 0 ? o->uid : 0, gid = o->gid >= 0 ? o->gid : 0;
        if (o->user) {
                ssize_t at = table_find(pw, o->user);
                if (at < 0)
                        return fail(err, -ENOENT, "%s.user: no user '%s'", where, o->user);
                field(pw->lines[at], 2, b, sizeof b);
                uid = strtoll(b, NULL, 10);
        }
        if (o->group) {
                ssize_t at = table_find(gr, o->group);
                if (at < 0)
                        return fail(err, -ENOENT, "%s.group: no group '%s'", where, o->group);
                field(gr->lines[at], 2, b, sizeof b);
                gid = strtoll(b, NULL, 10);
        }
        *ret_uid = (uid_t)uid;
        *ret_gid = (gid_t)gid;
        return 0;
}

/* Every existing component above path must be a real directory (no symbolic links: they could lead out of
 * the allowed trees); the node itself may exist only as overwrite allows. */
static int check_node_path(const char *root, struct node *n, struct prov_err *err) {
        char full[4500], e[300];
        int rl = snprintf(full, sizeof full, "%s", root);
        struct stat st;
        for (const char *c = n->path + 1;; c++) {
                const char *s = strchrnul(c, '/');
                snprintf(full + rl, sizeof full - (size_t)rl, "%.*s", (int)(s - n->path), n->path);
                if (!*s)
                        break;
                if (lstat(full, &st) < 0) {
                        if (errno == ENOENT)
                                return 0; /* the rest will be created */
                        return fail(err, negative_errno(), "%s: cannot look at '%.*s': %m", n->where, (int)(s - n->path), n->path);
                }
                if (!S_ISDIR(st.st_mode))
                        return fail(err, -ENOTDIR, "%s: '%.*s' is %s, not a directory", n->where, (int)(s - n->path), n->path,
                                    S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
                c = s;
        }
        if (lstat(full, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return fail(err, negative_errno(), "%s: cannot look at '%s': %m", n->where, esc(n->path, e));
        }
        if (n->kind == K_DIR) {
                if (!S_ISDIR(st.st_mode))
                        return fail(err, -EEXIST, "%s: '%s' exists and is not a directory", n->where, esc(n->path, e));
                n->exists = true;
                return 0;
        }
        if (S_ISDIR(st.st_mode))
                return fail(err, -EISDIR, "%s: '%s' exists as a directory", n->where, esc(n->path, e));
        if (!n->overwrite)
                return fail(err, -EEXIST, "%s: '%s' exists already (set overwrite: true to replace it)", n->where,
                            esc(n->path, e));
        return 0;
}

static bool is_parent(const char *a, const char *b) { /* a is a proper ancestor of b */
        size_t l = strlen(a);
        return strncmp(a, b, l) == 0 && b[l] == '/';
}

static int move_cfg_nodes(struct prov_plan *p, enum kind k) {
        for (size_t i = 0; i < p->ncfg; i++) {
                if (p->cfg[i].kind != k)
                        continue;
                struct node *t = realloc(p->ops, (p->nops + 1) * sizeof *t);
                if (!t)
                        return -ENOMEM;
                p->ops = t;
                p->ops[p->nops++] = p->cfg[i];
                p->cfg[i] = (struct node){ 0 };
                p->cfg[i].kind = (enum kind)-1;
        }
        return 0;
}

int prov_stage(struct prov_plan *p, const char *root, prov_fetch_fn fetch, struct prov_err *err) {
        int r;
        char e[300];
        /* remote contents first: the slow part, and the one most likely to fail */
        for (size_t i = 0; i < p->ncfg; i++) {
                struct node *n = &p->cfg[i];
                if (n->kind != K_FILE || !n->source || n->have_data)
                        continue;
                if (!fetch)
                        return fail(err, -EOPNOTSUPP, "%s: cannot fetch '%s' here", n->where, esc(n->source, e));
                size_t left = PROV_TOTAL_MAX - p->total;
                if ((r = fetch(n->source, MIN(left, (size_t)PROV_FILE_MAX * 8), &n->data, &n->len, err)) < 0)
                        return r;
                if ((r = finish_contents(p, n, err)) < 0)
                        return r;
        }
        struct table pw = { 0 }, gr = { 0 };
        if ((r = table_read(root, "/etc/passwd", true, &pw, err)) < 0 || (r = table_read(root, "/etc/group", true, &gr, err)) < 0)
                goto out;
        if ((p->nusers || p->ngroups) && (r = stage_accounts(p, root, &pw, &gr, err)) < 0)
                goto out;
        for (size_t i = 0; i < p->ncfg; i++)
                if ((r = resolve_owner(&p->cfg[i].own, &pw, &gr, p->cfg[i].where, &p->cfg[i].uid, &p->cfg[i].gid, err)) < 0)
                        goto out;
        /* directories (shallow first), files, symbolic links, hard links */
        size_t first_cfg = p->nops;
        if ((r = move_cfg_nodes(p, K_DIR)) < 0 || (r = move_cfg_nodes(p, K_FILE)) < 0 || (r = move_cfg_nodes(p, K_SYMLINK)) < 0 ||
            (r = move_cfg_nodes(p, K_HARDLINK)) < 0) {
                r = fail(err, -ENOMEM, "out of memory");
                goto out;
        }
        for (size_t i = first_cfg; i < p->nops; i++)
                for (size_t j = i + 1; j < p->nops && p->ops[j].kind == K_DIR; j++)
                        if (strlen(p->ops[j].path) < strlen(p->ops[i].path) && p->ops[i].kind == K_DIR) {
                                struct node t = p->ops[i];
                                p->ops[i] = p->ops[j];
                                p->ops[j] = t;
                        }
        for (size_t i = 0; i < p->nops; i++) {
                struct node *n = &p->ops[i];
                for (size_t j = 0; j < i; j++) {
                        struct node *m = &p->ops[j];
                        if (strcmp(m->path, n->path) == 0) {
                                /* a generated directory (home, .ssh) may also be named in storage.directories */
                                if (m->kind == K_DIR && n->kind == K_DIR)
                                        continue;
                                r = fail(err, -EEXIST, "%s: path '%s' is also written by %s", n->where, esc(n->path, e), m->where);
                                goto out;
                        }
                        if ((m->kind != K_DIR && is_parent(m->path, n->path)) || (n->kind != K_DIR && is_parent(n->path, m->path))) {
                                r = fail(err, -ENOTDIR, "%s: '%s' and %s: '%s' cannot both exist (one is not a directory)",
                                         n->where, esc(n->path, e), m->where, m->path);
                                goto out;
                        }
                }
                if ((r = check_node_path(root, n, err)) < 0)
                        goto out;
                if (n->kind == K_FILE && !n->have_data)
                        n->have_data = true; /* no source: an empty file */
                if (n->kind == K_HARDLINK) {
                        for (size_t j = 0; j < p->nops; j++)
                                if (p->ops[j].kind == K_FILE && strcmp(p->ops[j].path, n->target) == 0)
                                        n->link_src = (int)j;
                        if (n->link_src < 0) {
                                char full[4500];
                                struct stat st;
                                snprintf(full, sizeof full, "%s%s", root, n->target);
                                if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
                                        r = fail(err, -ENOENT, "%s: hard link target '%s' is not an existing regular file",
                                                 n->where, esc(n->target, e));
                                        goto out;
                                }
                        }
                }
        }
        r = 0;
out:
        table_free(&pw);
        table_free(&gr);
        return r;
}

/* ---- apply ---- */

struct undo {
        char **dirs;
        size_t ndirs;
};

static int undo_add(struct undo *u, const char *path) {
        char **x = realloc(u->dirs, (u->ndirs + 1) * sizeof *x);
        if (!x)
                return -ENOMEM;
        u->dirs = x;
        if (!(u->dirs[u->ndirs] = strdup(path)))
                return -ENOMEM;
        u->ndirs++;
        return 0;
}

/* mkdir -p of the parents of full (below root), remembering each directory made. */
static int make_parents(const char *root, const char *full, struct undo *u) {
        char b[4500];
        size_t rl = strlen(root);
        snprintf(b, sizeof b, "%s", full);
        for (char *s = b + rl + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                if (mkdir(b, 0755) == 0) {
                        if (undo_add(u, b) < 0)
                                return -ENOMEM;
                } else if (errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        return 0;
}

static int write_tmp(struct node *n, const char *full) {
        for (int attempt = 0; attempt < 100; attempt++) {
                free(n->tmp);
                char *slash = strrchr(full, '/');
                if (asprintf(&n->tmp, "%.*s/.cairn-provision.%d.%s", (int)(slash - full), full, attempt, slash + 1) < 0) {
                        n->tmp = NULL;
                        return -ENOMEM;
                }
                int r = 0;
                if (n->kind == K_SYMLINK) {
                        if (symlink(n->target, n->tmp) < 0)
                                r = negative_errno();
                        else if (lchown(n->tmp, n->uid, n->gid) < 0)
                                r = negative_errno();
                } else if (n->kind == K_HARDLINK) {
                        if (link(n->target, n->tmp) < 0)
                                r = negative_errno();
                } else {
                        int fd = open(n->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                        if (fd < 0)
                                r = negative_errno();
                        else {
                                if ((r = write_full(fd, n->data, n->len)) >= 0 && (fchown(fd, n->uid, n->gid) < 0 ||
                                                                                     fchmod(fd, (mode_t)n->mode) < 0 || fsync(fd) < 0))
                                        r = negative_errno();
                                close(fd);
                        }
                }
                if (r == -EEXIST) {
                        continue;
                }
                if (r < 0) {
                        unlink(n->tmp);
                        free(n->tmp);
                        n->tmp = NULL;
                }
                return r;
        }
        return -EEXIST;
}

int prov_apply(struct prov_plan *p, const char *root, struct prov_err *err) {
        struct undo u = { 0 };
        int r = 0;
        char e[300];
        size_t i;
        for (i = 0; i < p->nops; i++) {
                struct node *n = &p->ops[i];
                char full[4500];
                snprintf(full, sizeof full, "%s%s", root, n->path);
                if ((r = make_parents(root, full, &u)) < 0) {
                        fail(err, r, "%s: cannot create the directories above '%s': %s", n->where, esc(n->path, e), strerror(-r));
                        break;
                }
                if (n->kind == K_DIR) {
                        if (mkdir(full, 0700) == 0) {
                                if ((r = undo_add(&u, full)) < 0)
                                        break;
                        } else if (errno != EEXIST) {
                                r = fail(err, negative_errno(), "%s: cannot create '%s': %m", n->where, esc(n->path, e));
                                break;
                        }
                        continue; /* owner and mode are set in the second pass */
                }
                if (n->kind == K_HARDLINK) {
                        char t[4500];
                        if (n->link_src >= 0)
                                snprintf(t, sizeof t, "%s", p->ops[n->link_src].tmp);
                        else
                                snprintf(t, sizeof t, "%s%s", root, n->target);
                        free(n->target);
                        if (!(n->target = strdup(t))) {
                                r = -ENOMEM;
                                break;
                        }
                }
                if ((r = write_tmp(n, full)) < 0) {
                        fail(err, r, "%s: cannot write '%s': %s", n->where, esc(n->path, e), strerror(-r));
                        break;
                }
        }
        if (r < 0) { /* undo: temporary files, then the directories we made, deepest first */
                for (size_t j = 0; j < p->nops; j++)
                        if (p->ops[j].tmp) {
                                unlink(p->ops[j].tmp);
                                free(p->ops[j].tmp);
                                p->ops[j].tmp = NULL;
                        }
                for (size_t j = u.ndirs; j-- > 0;)
                        rmdir(u.dirs[j]);
                goto out;
        }
        /* second pass: rename into place (files before the hard links that point at their temp names are
         * renamed: a hard link shares the inode, so order does not matter), then directory owners and modes */
        for (i = 0; i < p->nops; i++) {
                struct node *n = &p->ops[i];
                char full[4500];
                snprintf(full, sizeof full, "%s%s", root, n->path);
                if (n->kind == K_DIR) {
                        if (lchown(full, n->uid, n->gid) < 0 || chmod(full, (mode_t)n->mode) < 0)
                                r = fail(err, negative_errno(), "%s: cannot set the owner/mode of '%s': %m", n->where, n->path);
                } else if (rename(n->tmp, full) < 0)
                        r = fail(err, negative_errno(), "%s: cannot rename into '%s': %m", n->where, esc(n->path, e));
                else {
                        free(n->tmp);
                        n->tmp = NULL;
                }
                if (r < 0)
                        break;
                fsync_parent_dir(full);
        }
out:
        for (size_t j = 0; j < u.ndirs; j++)
                free(u.dirs[j]);
        free(u.dirs);
        return r;
}

void prov_summary(const struct prov_plan *p, char *buf, size_t n) {
        snprintf(buf, n, "%zu user(s), %zu group(s), %zu file(s), %zu directory(ies), %zu link(s)", p->nusers, p->ngroups,
                 p->nfiles, p->ndirs, p->nlinks);
}
