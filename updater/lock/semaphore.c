/* updater/lock/semaphore.c — locksmith's semaphore value: strict JSON parse (json-c), canonical format, mutations. */
#include "semaphore.h"
#include "json-strict.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>

#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

void semaphore_init_default(Semaphore *s) {
        *s = (Semaphore){ .semaphore = 1, .max = 1 };
}

void semaphore_done(Semaphore *s) {
        for (size_t i = 0; i < s->n_holders; i++)
                free(s->holders[i]);
        free(s->holders);
        *s = (Semaphore){ 0 };
}

bool semaphore_id_valid(const char *id) {
        size_t n = strnlen(id, SEMAPHORE_ID_MAX + 1);
        if (n == 0 || n > SEMAPHORE_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)id[i];
                if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
                        return false;
        }
        return true;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int get_int(json_object *o, const char *name, int64_t min, int64_t max, int64_t *ret, char *err, size_t errlen) {
        if (!json_object_is_type(o, json_type_int))
                return json_bad(err, errlen, "\"%s\" is %s, not an integer", name, json_type_to_name(json_object_get_type(o)));
        int64_t v = json_object_get_int64(o); /* json-c clamps out-of-range numbers to INT64_MIN/MAX */
        if (v < min || v > max)
                return json_bad(err, errlen, "\"%s\" is %" PRId64 ", outside %" PRId64 "..%" PRId64, name, v, min, max);
        *ret = v;
        return 0;
}

int semaphore_parse(const char *untrusted, size_t len, Semaphore *ret, char *err, size_t errlen) {
        if (len > SEMAPHORE_MAX_BYTES) {
                if (err && errlen)
                        snprintf(err, errlen, "value is %zu bytes, more than the %u allowed", len, SEMAPHORE_MAX_BYTES);
                return -E2BIG;
        }
        if (len == 0)
                return json_bad(err, errlen, "value is empty");
        _cleanup_(json_object_putp) json_object *root = NULL;
        int r = json_parse_strict_object(untrusted, len, 4, "value", &root, err, errlen);
        if (r < 0)
                return r;

        json_object *jsem = NULL, *jmax = NULL, *jholders = NULL;
        bool have_holders = false;
        json_object_object_foreach(root, k, v) {
                if (strcmp(k, "semaphore") == 0)
                        jsem = v;
                else if (strcmp(k, "max") == 0)
                        jmax = v;
                else if (strcmp(k, "holders") == 0) {
                        jholders = v;
                        have_holders = true;
                } else {
                        char safe[64];
                        return json_bad(err, errlen, "unknown member \"%s\"", log_safe(safe, sizeof safe, k));
                }
        }
        if (!jsem || !jmax || !have_holders)
                return json_bad(err, errlen, "member \"%s\" missing", !jsem ? "semaphore" : !jmax ? "max" : "holders");

        int64_t sem, max;
        r = get_int(jmax, "max", 0, SEMAPHORE_MAX_MAX, &max, err, errlen);
        if (r < 0)
                return r;
        r = get_int(jsem, "semaphore", -(int64_t)SEMAPHORE_MAX_HOLDERS, SEMAPHORE_MAX_MAX, &sem, err, errlen);
        if (r < 0)
                return r;

        size_t n = 0;
        if (jholders) { /* NULL: JSON null, Go's encoding of an empty slice */
                if (!json_object_is_type(jholders, json_type_array))
                        return json_bad(err, errlen, "\"holders\" is %s, not a list",
                                    json_type_to_name(json_object_get_type(jholders)));
                n = json_object_array_length(jholders);
                if (n > SEMAPHORE_MAX_HOLDERS) {
                        if (err && errlen)
                                snprintf(err, errlen, "%zu holders, more than the %u allowed", n, SEMAPHORE_MAX_HOLDERS);
                        return -E2BIG;
                }
        }
        _cleanup_(semaphore_donep) Semaphore s = { .semaphore = sem, .max = max };
        if (n > 0) {
                s.holders = calloc(n, sizeof *s.holders);
                if (!s.holders)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *h = json_object_array_get_idx(jholders, i);
                if (!json_object_is_type(h, json_type_string))
                        return json_bad(err, errlen, "holder %zu is %s, not a string", i,
                                    json_type_to_name(json_object_get_type(h)));
                const char *id = json_object_get_string(h);
                if ((size_t)json_object_get_string_len(h) != strlen(id) || !semaphore_id_valid(id)) {
                        char safe[80];
                        return json_bad(err, errlen, "holder %zu \"%s\" is not a valid id (1..%u printable bytes)", i,
                                    log_safe_n(safe, sizeof safe, id, (size_t)json_object_get_string_len(h)),
                                    SEMAPHORE_ID_MAX);
                }
                s.holders[i] = strdup(id);
                if (!s.holders[i])
                        return -ENOMEM;
                s.n_holders++;
        }
        if (n > 1)
                qsort(s.holders, n, sizeof *s.holders, cmp_str);
        for (size_t i = 1; i < n; i++)
                if (strcmp(s.holders[i - 1], s.holders[i]) == 0)
                        return json_bad(err, errlen, "holder \"%s\" listed twice", s.holders[i]);
        if (sem != max - (int64_t)n)
                return json_bad(err, errlen, "\"semaphore\" is %" PRId64 " but max %" PRId64 " minus %zu holders is %" PRId64,
                            sem, max, n, max - (int64_t)n);
        *ret = s;
        s = (Semaphore){ 0 };
        return 0;
}

int semaphore_format(const Semaphore *s, char **ret) {
        size_t cap = 64;
        for (size_t i = 0; i < s->n_holders; i++)
                cap += strlen(s->holders[i]) + 3;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        size_t o = (size_t)snprintf(buf, cap, "{\"semaphore\":%" PRId64 ",\"max\":%" PRId64 ",\"holders\":[", s->semaphore,
                                    s->max);
        for (size_t i = 0; i < s->n_holders; i++)
                o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\"", i ? "," : "", s->holders[i]);
        o += (size_t)snprintf(buf + o, cap - o, "]}");
        if (o >= cap)
                return -EOVERFLOW;
        *ret = TAKE_PTR(buf);
        return 0;
}

static ssize_t find(const Semaphore *s, const char *id) {
        for (size_t i = 0; i < s->n_holders; i++)
                if (strcmp(s->holders[i], id) == 0)
                        return (ssize_t)i;
        return -1;
}

bool semaphore_holds(const Semaphore *s, const char *id) {
        return find(s, id) >= 0;
}

int semaphore_take(Semaphore *s, const char *id) {
        if (!semaphore_id_valid(id))
                return -EINVAL;
        if (find(s, id) >= 0)
                return 0;
        if (s->semaphore <= 0)
                return -EBUSY;
        if (s->n_holders >= SEMAPHORE_MAX_HOLDERS)
                return -E2BIG;
        char **h = realloc(s->holders, (s->n_holders + 1) * sizeof *h);
        if (!h)
                return -ENOMEM;
        s->holders = h;
        char *d = strdup(id);
        if (!d)
                return -ENOMEM;
        size_t i = s->n_holders;
        while (i > 0 && strcmp(h[i - 1], id) > 0) { /* keep sorted */
                h[i] = h[i - 1];
                i--;
        }
        h[i] = d;
        s->n_holders++;
        s->semaphore--;
        return 1;
}

int semaphore_release(Semaphore *s, const char *id) {
        ssize_t i = find(s, id);
        if (i < 0)
                return 0;
        free(s->holders[i]);
        memmove(s->holders + i, s->holders + i + 1, (s->n_holders - (size_t)i - 1) * sizeof *s->holders);
        s->n_holders--;
        s->semaphore++;
        return 1;
}

int semaphore_set_max(Semaphore *s, int64_t max) {
        if (max < 0 || max > SEMAPHORE_MAX_MAX)
                return -ERANGE;
        s->semaphore += max - s->max;
        s->max = max;
        return 0;
}
