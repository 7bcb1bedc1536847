/* common/kvfile.h — KEY=VALUE files (update.conf, the agent's state file, channel files, os-release): one
 * grammar, one parser. The grammar (docs/architecture.md, "KEY=VALUE files"):
 *   - lines end at '\n'; a line holds at most KVFILE_LINE_MAX-1 bytes and no NUL byte;
 *   - blanks (space, tab, '\r') around the line, the key and the value are ignored;
 *   - an empty line, or one whose first non-blank character is '#', is skipped;
 *   - otherwise the line is KEY=VALUE: KEY is 1-64 of [A-Za-z0-9_] (the first '=' ends it), VALUE is the rest;
 *   - a VALUE that starts and ends with the same quote (" or ') loses that one pair; nothing else is unescaped.
 * What a key means, and whether an unknown one is an error, is the caller's business (its callback). */
#pragma once

#include <stddef.h>

#include "macro.h"

#define KVFILE_LINE_MAX 4096
#define KVFILE_KEY_MAX 64

typedef struct KvfileError {
        unsigned line;   /* 1-based line of the error; 0 if none */
        const char *why; /* static text, e.g. "is not KEY=VALUE" (grammar) or the callback's reason */
        char text[160];  /* grammar errors: the start of the line, escaped for a log line */
} KvfileError;

/* Called for each KEY=VALUE line, in order, with NUL-terminated key and value (valid during the call) and the
 * line's number (1-based). Return < 0 to stop parsing (that value is returned by kvfile_parse); set *ret_why to
 * say why. */
typedef int (*KvfileFunc)(const char *key, const char *value, unsigned line, void *userdata, const char **ret_why);

/* Parses text[0..len). -EINVAL on a grammar error (ret_err says which line and why), or the callback's error. */
int kvfile_parse(const char *text, size_t len, KvfileFunc f, void *userdata, KvfileError *ret_err)
        _warn_unused_result_;

/* The value of key in text (same grammar; the last occurrence wins) copied into buf; -ENOENT if absent,
 * -ENAMETOOLONG if it does not fit, -EINVAL on a grammar error. */
int kvfile_get(const char *text, size_t len, const char *key, char *buf, size_t size) _warn_unused_result_;

/* Copies a value into a fixed field of size bytes (NUL included); -ENAMETOOLONG, dst untouched, if it does not
 * fit. The one "value into a char array" step of the KEY=VALUE readers. */
int kvfile_copy(char *dst, size_t size, const char *value) _warn_unused_result_;
