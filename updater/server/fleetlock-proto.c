/* updater/server/fleetlock-proto.c — the FleetLock protocol's bytes: strict parse of the request body
 * (json-c) and the {"kind","value"} error body. No I/O; tests/fuzz/fuzz-fleetlock.c drives it. */
#include "fleetlock.h"
#include "lock/json-strict.h"

#include <json-c/json.h>
#include <stdarg.h>

#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

bool fleetlock_group_valid(const char *group) {
        size_t n = strnlen(group, FLEETLOCK_GROUP_MAX + 1);
        if (n == 0 || n > FLEETLOCK_GROUP_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = group[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
                        return false;
        }
        return true;
}

/* A member that must be a non-empty string of at most max bytes without NUL. */
static int get_string(json_object *obj, const char *name, size_t max, const char **ret, char *err, size_t errlen) {
        json_object *v;
        if (!json_object_object_get_ex(obj, name, &v) || !v)
                return json_bad(err, errlen, "\"client_params\" has no \"%s\"", name);
        if (!json_object_is_type(v, json_type_string))
                return json_bad(err, errlen, "\"%s\" is %s, not a string", name, json_type_to_name(json_object_get_type(v)));
        size_t n = (size_t)json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        if (n == 0)
                return json_bad(err, errlen, "\"%s\" is empty", name);
        if (strlen(s) != n)
                return json_bad(err, errlen, "\"%s\" contains a NUL character", name);
        if (n > max)
                return json_bad(err, errlen, "\"%s\" is %zu bytes, more than %zu", name, n, max);
        *ret = s;
        return 0;
}

int fleetlock_parse_params(const char *untrusted, size_t len, FleetLockParams *ret, char *err, size_t errlen) {
        if (len > FLEETLOCK_MAX_BODY) {
                if (err && errlen)
                        snprintf(err, errlen, "body is %zu bytes, more than %u", len, FLEETLOCK_MAX_BODY);
                return -EMSGSIZE;
        }
        if (len == 0)
                return json_bad(err, errlen, "empty body (expected {\"client_params\":{\"id\":…,\"group\":…}})");
        _cleanup_(json_object_putp) json_object *root = NULL;
        int r = json_parse_strict_object(untrusted, len, 3, "body", &root, err, errlen);
        if (r < 0)
                return r;
        json_object *cp;
        if (!json_object_object_get_ex(root, "client_params", &cp) || !cp)
                return json_bad(err, errlen, "no \"client_params\" object");
        if (!json_object_is_type(cp, json_type_object))
                return json_bad(err, errlen, "\"client_params\" is %s, not an object", json_type_to_name(json_object_get_type(cp)));
        const char *id, *group;
        r = get_string(cp, "id", SEMAPHORE_ID_MAX, &id, err, errlen);
        if (r < 0)
                return r;
        r = get_string(cp, "group", FLEETLOCK_GROUP_MAX, &group, err, errlen);
        if (r < 0)
                return r;
        char safe[96];
        if (!semaphore_id_valid(id) || !fleetlock_utf8_valid(id))
                return json_bad(err, errlen, "\"id\" \"%s\" has a control character, '\"', '\\' or invalid UTF-8",
                            log_safe(safe, sizeof safe, id));
        if (!fleetlock_group_valid(group))
                return json_bad(err, errlen, "\"group\" \"%s\" does not match ^[a-zA-Z0-9.-]+$",
                            log_safe(safe, sizeof safe, group));
        snprintf(ret->id, sizeof ret->id, "%s", id);
        snprintf(ret->group, sizeof ret->group, "%s", group);
        return 0;
}

/* Length of the valid UTF-8 sequence at s (shortest form, no surrogates, <= U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *s) {
        if (s[0] < 0x80)
                return 1;
        size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
        if (n == 0 || (n == 3 && s[0] > 0xef))
                return 0;
        for (size_t i = 1; i < n; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
            (s[0] == 0xf4 && s[1] >= 0x90))
                return 0;
        return n;
}

bool fleetlock_utf8_valid(const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
                size_t n = utf8_len(p);
                if (!n)
                        return false;
                p += n;
        }
        return true;
}

int fleetlock_put_json_text(Buf *out, const char *s) {
        char tmp[1024];
        size_t o = 0;
        const unsigned char *p = (const unsigned char *)s;
        if (fleetlock_utf8_valid(s))
                return buf_put_json(out, s);
        /* Invalid UTF-8 would make the whole answer invalid JSON: each bad byte becomes '?'. */
        while (*p && o + 5 < sizeof tmp) {
                size_t n = utf8_len(p);
                if (!n) {
                        tmp[o++] = '?';
                        p++;
                        continue;
                }
                memcpy(tmp + o, p, n);
                o += n;
                p += n;
        }
        tmp[o] = 0;
        return buf_put_json(out, tmp);
}

int fleetlock_error_json(Buf *out, const char *kind, const char *value) {
        buf_puts(out, "{\"kind\":");
        buf_put_json(out, kind && *kind ? kind : "generic_error");
        buf_puts(out, ",\"value\":");
        /* JSON-escaped, made valid UTF-8, never empty (client text in it was log_safe()d where quoted) */
        fleetlock_put_json_text(out, value && *value ? value : "generic error");
        return buf_puts(out, "}\n");
}
