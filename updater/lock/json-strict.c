/* updater/lock/json-strict.c — strict JSON objects from untrusted bytes (see json-strict.h). */
#include "json-strict.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

int json_bad(char *err, size_t errlen, const char *fmt, ...) {
        if (err && errlen) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

/* json-c's strict mode still takes single-quoted strings: outside double-quoted strings only JSON's own
 * characters may appear. */
static bool json_chars_only(const char *s, size_t len) {
        bool in_str = false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = false;
                } else if (c == '"')
                        in_str = true;
                else if (!strchr("{}[]:,-+.0123456789eEtruefalsn \t\r\n", c))
                        return false;
        }
        return true;
}

int json_parse_strict_object(const char *untrusted, size_t len, int depth, const char *what, json_object **ret,
                             char *err, size_t errlen) {
        if (memchr(untrusted, 0, len))
                return json_bad(err, errlen, "%s contains a NUL byte", what);
        if (!json_chars_only(untrusted, len))
                return json_bad(err, errlen, "%s is not JSON: unexpected characters", what);
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new_ex(depth);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        _cleanup_(json_object_putp) json_object *root = json_tokener_parse_ex(tok, untrusted, (int)len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        if (!root || je != json_tokener_success)
                return json_bad(err, errlen, "%s is not JSON: %s", what,
                            je == json_tokener_continue ? "truncated" : json_tokener_error_desc(je));
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", untrusted[i]))
                        return json_bad(err, errlen, "trailing bytes after the JSON object");
        if (!json_object_is_type(root, json_type_object))
                return json_bad(err, errlen, "%s is a JSON %s, not an object", what,
                            json_type_to_name(json_object_get_type(root)));
        *ret = TAKE_PTR(root);
        return 0;
}
