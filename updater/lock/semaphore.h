/* updater/lock/semaphore.h — locksmith's reboot semaphore value {"semaphore":N,"max":M,"holders":[…]}: strict
 * parsing of untrusted bytes, canonical formatting, and the three mutations (take, release, set-max). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Bounds on what we accept from etcd (locksmith itself has none; these are far above any real fleet). */
#define SEMAPHORE_MAX_BYTES (256u * 1024u) /* the JSON value */
#define SEMAPHORE_MAX_HOLDERS 4096u
#define SEMAPHORE_MAX_MAX 1000000       /* largest "max" */
#define SEMAPHORE_ID_MAX 255u           /* bytes in one holder id */

typedef struct Semaphore {
        int64_t semaphore; /* available slots: always max - n_holders (negative after set-max below the holders) */
        int64_t max;
        size_t n_holders;
        char **holders; /* sorted, unique */
} Semaphore;

/* The value locksmith creates for a missing key: max 1, one slot free, no holders. */
void semaphore_init_default(Semaphore *s);
void semaphore_done(Semaphore *s);
static inline void semaphore_donep(Semaphore *s) {
        semaphore_done(s);
}
#define _cleanup_semaphore_ _cleanup_(semaphore_donep)

/* Is id acceptable as a holder: 1..SEMAPHORE_ID_MAX bytes, printable ASCII or UTF-8 bytes, no control
 * characters, no '"' or '\\' (so it never needs escaping in logs or shell). */
bool semaphore_id_valid(const char *id);

/* Parse len bytes of untrusted JSON. Rejects (-EBADMSG, with a one-line reason in err): anything but one object
 * with exactly the members semaphore (integer), max (integer >= 0), holders (array of strings, or null);
 * unknown or missing members, duplicate or invalid holder ids, semaphore != max - len(holders), trailing bytes,
 * NUL bytes, nesting. More than SEMAPHORE_MAX_BYTES or SEMAPHORE_MAX_HOLDERS: -E2BIG. */
int semaphore_parse(const char *untrusted, size_t len, Semaphore *ret, char *err, size_t errlen) _warn_unused_result_;

/* Canonical JSON (holders sorted; an empty list as [] — locksmith reads both [] and null). */
int semaphore_format(const Semaphore *s, char **ret) _warn_unused_result_;

/* Take a slot for id: 1 taken, 0 already a holder (nothing changed), -EBUSY no slot free, -E2BIG too many. */
int semaphore_take(Semaphore *s, const char *id) _warn_unused_result_;
/* Release id's slot: 1 released, 0 id held none (nothing changed). */
int semaphore_release(Semaphore *s, const char *id) _warn_unused_result_;
/* Set max, shifting the available count by the same difference (locksmith's SetMax). -ERANGE outside
 * 0..SEMAPHORE_MAX_MAX. Returns 0. */
int semaphore_set_max(Semaphore *s, int64_t max) _warn_unused_result_;
bool semaphore_holds(const Semaphore *s, const char *id);
