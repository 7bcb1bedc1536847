/* updater/lock/lock.h — the cluster reboot lock: a counting semaphore with owned, recursive slots, behind a small
 * backend table (etcd v3 today; FleetLock is the second backend). Functions return >= 0 or -errno; the
 * backend keeps a one-line explanation of the last failure, lock_error(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "semaphore.h"
#include "macro.h"

#define LOCK_ERROR_MAX 768
#define LOCK_MAX_ENDPOINTS 16

typedef struct LockOptions {
        const char *endpoints[LOCK_MAX_ENDPOINTS]; /* tried in turn, starting with the last one that answered */
        size_t n_endpoints;
        const char *group;      /* NULL or "": the default semaphore */
        const char *ca_file;    /* TLS: CA bundle to verify the server with */
        const char *cert_file;  /* TLS client certificate and key */
        const char *key_file;
        const char *user;       /* etcd user/password auth (both or neither) */
        const char *password;
        unsigned timeout;          /* seconds for one request to one endpoint (default 10) */
        unsigned connect_timeout;  /* seconds (default 3) */
        unsigned max_attempts;     /* compare-and-swap attempts before giving up (default LOCK_DEFAULT_ATTEMPTS) */
} LockOptions;

/* Conflicting transactions (another writer changed the key between our read and our write) are retried this
 * often, sleeping a random time between 1 ms and a cap that doubles from 5 ms to 100 ms, and reading the key afresh, then the operation
 * fails with -EAGAIN (the caller, e.g. the agent, retries later with its own backoff). */
#define LOCK_DEFAULT_ATTEMPTS 32

typedef struct LockStats {
        uint64_t requests;  /* HTTP requests sent */
        uint64_t conflicts; /* transactions that lost a compare */
} LockStats;

typedef struct Lock Lock;

typedef struct LockBackend {
        const char *name;
        int (*open)(const LockOptions *o, Lock **ret);
        void (*close)(Lock *l);
        /* 1 slot taken, 0 id already held one (nothing written), -EBUSY no slot free. */
        int (*take)(Lock *l, const char *id);
        /* The holder gives its own slot back: 1 released, 0 id held none (nothing written). */
        int (*release)(Lock *l, const char *id);
        /* The operator frees another machine's slot: 1 released, -ENOENT id held none. */
        int (*evict)(Lock *l, const char *id);
        /* Read the semaphore (a missing key reads as locksmith's default, max 1, without writing it). */
        int (*status)(Lock *l, Semaphore *ret);
        /* Set max; *ret_old gets the previous max. */
        int (*set_max)(Lock *l, int64_t max, int64_t *ret_old);
        const char *(*error)(const Lock *l);
        void (*stats)(const Lock *l, LockStats *ret);
        /* What the lock is called in the backend (the etcd key), for messages. */
        const char *(*name_of)(const Lock *l);
} LockBackend;

extern const LockBackend lock_backend_etcd;
/* FleetLock client (fleetlock-client.c): endpoints[0] is the server's base URL, group defaults to "default";
 * status, evict and set_max are -EOPNOTSUPP (the protocol has only lock and unlock). */
extern const LockBackend lock_backend_fleetlock;
/* A FleetLock error body {"kind":"…","value":"…"} (untrusted, at most 64 KiB; strict JSON, one object, kind not
 * empty): both strings escaped for a log line into kind/value. -EBADMSG for anything else. */
int lock_fleetlock_parse_error(const char *untrusted, size_t len, char *kind, size_t kind_size, char *value,
                               size_t value_size) _warn_unused_result_;
/* A FleetLock group: 1..127 of A-Za-z0-9.- (the protocol's ^[a-zA-Z0-9.-]+$). */
bool lock_fleetlock_group_valid(const char *g);

/* The etcd key of a group's semaphore (locksmith's names; the group query-escaped like Go's url.QueryEscape). */
int lock_etcd_key(const char *group, char *buf, size_t size);

/* Split a comma-separated endpoint list into o->endpoints (pointers into list, which is modified). */
int lock_options_add_endpoints(LockOptions *o, char *list);
