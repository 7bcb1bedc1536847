/* updater/server/fleetlock.h — cairn-server's FleetLock server (POST /v1/pre-reboot, /v1/steady-state; the
 * protocol of Zincati and airlock): request parsing and error bodies (fleetlock-proto.c), and the per-group
 * semaphores in cairn-server's SQLite database or in etcd with locksmith's keys and value (fleetlock.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "lock/lock.h"

#define FLEETLOCK_MAX_BODY 4096u      /* bytes of JSON in one request (Zincati sends about 90) */
#define FLEETLOCK_GROUP_MAX 128u      /* bytes in a group name */
#define FLEETLOCK_MAX_GROUPS 64u      /* --lock-group options */
#define FLEETLOCK_DEFAULT_GROUP "default"

/* ---- the protocol (fleetlock-proto.c; no I/O, fuzzed by tests/fuzz/fuzz-fleetlock.c) ---- */

typedef struct FleetLockParams {
        char id[SEMAPHORE_ID_MAX + 1];
        char group[FLEETLOCK_GROUP_MAX + 1];
} FleetLockParams;

/* The protocol's group grammar, ^[a-zA-Z0-9.-]+$, at most FLEETLOCK_GROUP_MAX bytes. */
bool fleetlock_group_valid(const char *group);

/* Parse a request body {"client_params":{"id":"…","group":"…"}}: one JSON object (strict JSON, nothing after
 * it, nesting at most 3), client_params an object, id and group non-empty strings without NUL; id a valid
 * holder id (semaphore_id_valid), group as above. Other members are ignored (as airlock does), so a client
 * that sends more still works. -EBADMSG with a one-line reason in err; -EMSGSIZE above FLEETLOCK_MAX_BODY. */
int fleetlock_parse_params(const char *untrusted, size_t len, FleetLockParams *ret, char *err, size_t errlen)
        _warn_unused_result_;

/* Is s valid UTF-8? And s as a JSON string, any invalid UTF-8 byte replaced by '?'. */
bool fleetlock_utf8_valid(const char *s);
int fleetlock_put_json_text(Buf *out, const char *s);

/* Append the protocol's error body {"kind":…,"value":…} (both non-empty strings; value made valid UTF-8
 * printable text). */
int fleetlock_error_json(Buf *out, const char *kind, const char *value);

/* ---- the server ---- */

typedef struct FleetLockGroup {
        char name[FLEETLOCK_GROUP_MAX + 1];
        int64_t max;
} FleetLockGroup;

typedef struct FleetLockConfig {
        FleetLockGroup groups[FLEETLOCK_MAX_GROUPS]; /* none: "default" with max 1 */
        size_t n_groups;
        LockOptions etcd;   /* n_endpoints > 0: the semaphores live in etcd */
        unsigned max_inflight; /* etcd: FleetLock requests answered at once (0: no limit); more get 503 at once,
                                * so a stalled etcd cannot take every HTTP thread from the Omaha endpoint */
} FleetLockConfig;

/* "NAME=MAX" (MAX 0..SEMAPHORE_MAX_MAX; 0 = nobody may reboot). A second option for one group replaces the
 * first. -EINVAL (bad syntax or name), -ERANGE (max), -E2BIG (too many groups). */
int fleetlock_config_add_group(FleetLockConfig *c, const char *arg);

/* One cairn-server option (name without "--": lock-group, lock-etcd, lock-etcd-cacert, lock-etcd-cert,
 * lock-etcd-key, lock-etcd-user, lock-etcd-timeout). arg is kept (pointers into it), and may be modified.
 * < 0 with one line for the user in err. */
int fleetlock_config_option(FleetLockConfig *c, const char *name, char *arg, char *err, size_t errlen);
/* Options that only make sense together. < 0 with one line in err. */
int fleetlock_config_check(const FleetLockConfig *c, char *err, size_t errlen);

typedef struct FleetLock FleetLock;

/* SQLite: a connection of its own to dbpath (the file cairn-server's other tables live in), tables
 * fleetlock_groups and fleetlock_holders created if missing, every configured group's max written. etcd: a
 * pool of connections per group; nothing is contacted until the first request. */
int fleetlock_open(const FleetLockConfig *c, const char *dbpath, int busy_timeout_ms, FleetLock **ret);
void fleetlock_close(FleetLock *fl);
const char *fleetlock_backend_name(const FleetLock *fl);

/* Answer one FleetLock request (path "/v1/pre-reboot" or "/v1/steady-state"). Returns the HTTP status and
 * appends the body (JSON) to out; note gets a short text for the request log. Thread-safe. */
unsigned fleetlock_answer(FleetLock *fl, const char *path, const char *method, const char *protocol_header,
                          const char *body, size_t len, bool too_big, Buf *out, char *note, size_t note_size);

/* GET /api/v1/locks: {"backend":…,"groups":[{"group","max","semaphore","holders":[…]} or {"group","error"}]}. */
int fleetlock_status_json(FleetLock *fl, Buf *out);
