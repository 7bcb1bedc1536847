/* updater/lock/json-strict.h — JSON from the network or etcd, parsed strictly (json-c's strict mode plus what it
 * lets through: single-quoted strings, NUL bytes, trailing bytes), for locksmith's semaphore value and the FleetLock
 * request body. */
#pragma once

#include <stddef.h>

#include <json-c/json.h>

#include "macro.h"

/* Parses untrusted[0..len) as one JSON object nested at most depth deep into *ret (put it with json_object_put).
 * -EBADMSG with a sentence starting with what ("value", "body") in err; -ENOMEM. */
int json_parse_strict_object(const char *untrusted, size_t len, int depth, const char *what, json_object **ret,
                             char *err, size_t errlen);

/* The refusal of an untrusted JSON value: the sentence into err (when given) and -EBADMSG, for the parsers of
 * the semaphore value and the FleetLock body to return. */
int json_bad(char *err, size_t errlen, const char *fmt, ...) _printf_(3, 4);
