/* updater/server/fleetlock.c — cairn-server's FleetLock semaphores: one per configured group, owned and
 * recursive, max set by the operator (--lock-group NAME=MAX). Two stores behind the same answers: SQLite
 * (default; a connection of its own to cairn-server's database, one IMMEDIATE transaction per change) or etcd
 * (--lock-etcd; locksmith's keys and value through updater/lock/etcd.c, the code cairn-lockctl and the agent
 * use, one pooled connection per request in flight). */
#include "fleetlock.h"
#include "sqlite-errno.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <time.h>

#include "log.h"
#include "parse.h"

#define POOL_IDLE_MAX 16 /* idle etcd connections kept per group */

typedef struct Group {
        FleetLockGroup g;
        /* etcd */
        pthread_mutex_t lock;
        Lock *idle[POOL_IDLE_MAX];
        size_t n_idle;
        bool max_synced; /* the configured max is in etcd (checked after start, before the first change) */
} Group;

struct FleetLock {
        bool etcd;
        LockOptions etcd_opts;
        Group groups[FLEETLOCK_MAX_GROUPS];
        size_t n_groups;
        unsigned max_inflight;
        atomic_uint inflight;
        /* SQLite */
        pthread_mutex_t dblock;
        sqlite3 *db;
};

/* ---- configuration ---- */

int fleetlock_config_add_group(FleetLockConfig *c, const char *arg) {
        const char *eq = strrchr(arg, '=');
        if (!eq || eq == arg || (size_t)(eq - arg) > FLEETLOCK_GROUP_MAX)
                return -EINVAL;
        char name[FLEETLOCK_GROUP_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
        if (!fleetlock_group_valid(name))
                return -EINVAL;
        uint64_t max;
        int r = parse_u64_range(eq + 1, 0, SEMAPHORE_MAX_MAX, &max);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_groups; i++)
                if (strcmp(c->groups[i].name, name) == 0) {
                        c->groups[i].max = (int64_t)max;
                        return 0;
                }
        if (c->n_groups >= FLEETLOCK_MAX_GROUPS)
                return -E2BIG;
        FleetLockGroup *g = &c->groups[c->n_groups++];
        snprintf(g->name, sizeof g->name, "%s", name);
        g->max = (int64_t)max;
        return 0;
}

int fleetlock_config_option(FleetLockConfig *c, const char *name, char *arg, char *err, size_t errlen) {
        char safe[160];
        log_safe(safe, sizeof safe, arg);
        int r = 0;
        if (strcmp(name, "lock-group") == 0) {
                r = fleetlock_config_add_group(c, arg);
                if (r == -E2BIG)
                        snprintf(err, errlen, "--lock-group: more than %u groups", FLEETLOCK_MAX_GROUPS);
                else if (r < 0)
                        snprintf(err, errlen, "--lock-group '%s': expected NAME=MAX, NAME of [a-zA-Z0-9.-] (1..%u bytes), "
                                 "MAX 0..%d", safe, FLEETLOCK_GROUP_MAX, SEMAPHORE_MAX_MAX);
        } else if (strcmp(name, "lock-etcd") == 0) {
                r = lock_options_add_endpoints(&c->etcd, arg);
                for (size_t i = 0; r >= 0 && i < c->etcd.n_endpoints; i++)
                        if (strncmp(c->etcd.endpoints[i], "http://", 7) != 0 && strncmp(c->etcd.endpoints[i], "https://", 8) != 0)
                                r = -EINVAL;
                if (r < 0 || c->etcd.n_endpoints == 0) {
                        snprintf(err, errlen, "--lock-etcd '%s': expected a comma list of http:// or https:// URLs "
                                 "(at most %d)", safe, LOCK_MAX_ENDPOINTS);
                        r = -EINVAL;
                }
        } else if (strcmp(name, "lock-etcd-cacert") == 0)
                c->etcd.ca_file = arg;
        else if (strcmp(name, "lock-etcd-cert") == 0)
                c->etcd.cert_file = arg;
        else if (strcmp(name, "lock-etcd-key") == 0)
                c->etcd.key_file = arg;
        else if (strcmp(name, "lock-etcd-user") == 0) {
                char *colon = strchr(arg, ':');
                if (!colon || colon == arg) {
                        snprintf(err, errlen, "--lock-etcd-user: expected USER:PASS");
                        return -EINVAL;
                }
                *colon = 0;
                c->etcd.user = arg;
                c->etcd.password = colon + 1;
        } else if (strcmp(name, "lock-etcd-timeout") == 0) {
                uint64_t v;
                r = parse_seconds_range(arg, 1, 3600, &v);
                if (r < 0)
                        snprintf(err, errlen, "--lock-etcd-timeout '%s': expected seconds 1..3600 (suffix s, m or h allowed)",
                                 safe);
                else
                        c->etcd.timeout = (unsigned)v;
        } else {
                snprintf(err, errlen, "unknown option --%s", name);
                r = -EINVAL;
        }
        return r < 0 ? r : 0;
}

int fleetlock_config_check(const FleetLockConfig *c, char *err, size_t errlen) {
        bool tls = c->etcd.ca_file || c->etcd.cert_file || c->etcd.key_file || c->etcd.user;
        if (tls && c->etcd.n_endpoints == 0) {
                snprintf(err, errlen, "--lock-etcd-cacert/-cert/-key/-user need --lock-etcd ENDPOINTS");
                return -EINVAL;
        }
        if ((c->etcd.cert_file == NULL) != (c->etcd.key_file == NULL)) {
                snprintf(err, errlen, "--lock-etcd-cert and --lock-etcd-key go together");
                return -EINVAL;
        }
        return 0;
}

static Group *find_group(FleetLock *fl, const char *name) {
        for (size_t i = 0; i < fl->n_groups; i++)
                if (strcmp(fl->groups[i].g.name, name) == 0)
                        return &fl->groups[i];
        return NULL;
}

/* ---- SQLite ---- */

/* The visit store's mapping, but a busy database is -EAGAIN (retried): -EBUSY means "no slot free" here. */
static int sqlite_errno(int rc) {
        int r = server_sqlite_errno(rc);
        return r == -EBUSY ? -EAGAIN : r;
}

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS fleetlock_groups(name TEXT PRIMARY KEY, max INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS fleetlock_holders(grp TEXT NOT NULL, id TEXT NOT NULL, since INTEGER NOT NULL,"
        " PRIMARY KEY(grp, id));";

static int db_exec(FleetLock *fl, const char *sql) {
        return sqlite_errno(sqlite3_exec(fl->db, sql, NULL, NULL, NULL));
}

/* Run one statement with text parameters ?1, ?2 (NULL: unbound) and an integer ?3; *ret_int gets column 0 of
 * the first row (0 if none), *ret_changes the rows changed. */
static int db_run(FleetLock *fl, const char *sql, const char *a, const char *b, int64_t c, int64_t *ret_int,
                  int *ret_changes) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(fl->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        if (a)
                sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        if (b)
                sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
        if (sqlite3_bind_parameter_count(st) >= 3)
                sqlite3_bind_int64(st, 3, c);
        rc = sqlite3_step(st);
        if (ret_int)
                *ret_int = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return sqlite_errno(rc);
        if (ret_changes)
                *ret_changes = sqlite3_changes(fl->db);
        return 0;
}

static int db_begin(FleetLock *fl) {
        return db_exec(fl, "BEGIN IMMEDIATE");
}

static int db_end(FleetLock *fl, int r) {
        if (r >= 0) {
                int c = db_exec(fl, "COMMIT");
                if (c >= 0)
                        return r;
                r = c;
        }
        if (!sqlite3_get_autocommit(fl->db))
                db_exec(fl, "ROLLBACK");
        return r;
}

/* 1 taken, 0 already held, -EBUSY full (*ret_n and *ret_max say how full). */
static int db_take(FleetLock *fl, const Group *g, const char *id, int64_t *ret_n, int64_t *ret_max) {
        pthread_mutex_lock(&fl->dblock);
        int r = db_begin(fl);
        if (r < 0)
                goto out;
        int64_t has = 0, n = 0, max = 0;
        r = db_run(fl, "SELECT 1 FROM fleetlock_holders WHERE grp = ?1 AND id = ?2", g->g.name, id, 0, &has, NULL);
        if (r >= 0 && !has)
                r = db_run(fl, "SELECT count(*) FROM fleetlock_holders WHERE grp = ?1", g->g.name, NULL, 0, &n, NULL);
        if (r >= 0 && !has)
                r = db_run(fl, "SELECT max FROM fleetlock_groups WHERE name = ?1", g->g.name, NULL, 0, &max, NULL);
        if (r >= 0 && !has) {
                if (n >= max) {
                        *ret_n = n;
                        *ret_max = max;
                        r = -EBUSY;
                } else
                        r = db_run(fl, "INSERT INTO fleetlock_holders(grp, id, since) VALUES(?1, ?2, ?3)", g->g.name, id,
                                   (int64_t)time(NULL), NULL, NULL);
                if (r >= 0)
                        r = 1;
        }
        r = db_end(fl, r);
out:
        pthread_mutex_unlock(&fl->dblock);
        return r;
}

/* 1 released, 0 id held none. */
static int db_release(FleetLock *fl, const Group *g, const char *id) {
        pthread_mutex_lock(&fl->dblock);
        int changes = 0;
        int r = db_begin(fl);
        if (r >= 0)
                r = db_run(fl, "DELETE FROM fleetlock_holders WHERE grp = ?1 AND id = ?2", g->g.name, id, 0, NULL, &changes);
        r = db_end(fl, r < 0 ? r : changes > 0);
        pthread_mutex_unlock(&fl->dblock);
        return r;
}

static int db_open(FleetLock *fl, const char *path, int busy_timeout_ms) {
        int rc = sqlite3_open_v2(path, &fl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_busy_timeout(fl->db, busy_timeout_ms);
        int r = db_exec(fl, "PRAGMA journal_mode = WAL");
        if (r >= 0)
                r = db_exec(fl, "PRAGMA synchronous = NORMAL");
        if (r < 0)
                return r;
        r = db_begin(fl);
        if (r >= 0)
                r = db_exec(fl, schema);
        for (size_t i = 0; i < fl->n_groups && r >= 0; i++)
                r = db_run(fl,
                           "INSERT INTO fleetlock_groups(name, max) VALUES(?1, ?3)"
                           " ON CONFLICT(name) DO UPDATE SET max = excluded.max",
                           fl->groups[i].g.name, NULL, fl->groups[i].g.max, NULL, NULL);
        return db_end(fl, r);
}

/* ---- etcd ---- */

static int pool_get(FleetLock *fl, Group *g, Lock **ret) {
        pthread_mutex_lock(&g->lock);
        Lock *l = g->n_idle ? g->idle[--g->n_idle] : NULL;
        pthread_mutex_unlock(&g->lock);
        if (l) {
                *ret = l;
                return 0;
        }
        LockOptions o = fl->etcd_opts;
        /* FleetLock's "default" group is locksmith's (and cairn's etcd-lock) default semaphore. */
        o.group = strcmp(g->g.name, FLEETLOCK_DEFAULT_GROUP) == 0 ? NULL : g->g.name;
        return lock_backend_etcd.open(&o, ret);
}

static void pool_put(Group *g, Lock *l) {
        pthread_mutex_lock(&g->lock);
        if (g->n_idle < POOL_IDLE_MAX) {
                g->idle[g->n_idle++] = l;
                l = NULL;
        }
        pthread_mutex_unlock(&g->lock);
        if (l)
                lock_backend_etcd.close(l);
}

/* After start, before the group's first change: make etcd's max the configured one (a missing key is created
 * with it). A value that does not parse fails here, unchanged. */
static int etcd_sync_max(Group *g, Lock *l) {
        pthread_mutex_lock(&g->lock);
        bool synced = g->max_synced;
        pthread_mutex_unlock(&g->lock);
        if (synced)
                return 0;
        _cleanup_semaphore_ Semaphore s = { 0 };
        int r = lock_backend_etcd.status(l, &s);
        if (r < 0)
                return r;
        if (s.max != g->g.max) {
                int64_t old = 0;
                r = lock_backend_etcd.set_max(l, g->g.max, &old);
                if (r < 0)
                        return r;
                log_msg("fleetlock group '%s': max %" PRId64 " -> %" PRId64 " in etcd key '%s' (--lock-group)", g->g.name,
                        old, g->g.max, lock_backend_etcd.name_of(l));
        }
        pthread_mutex_lock(&g->lock);
        g->max_synced = true;
        pthread_mutex_unlock(&g->lock);
        return 0;
}

/* ---- open, close ---- */

int fleetlock_open(const FleetLockConfig *c, const char *dbpath, int busy_timeout_ms, FleetLock **ret) {
        FleetLock *fl = calloc(1, sizeof *fl);
        if (!fl)
                return -ENOMEM;
        pthread_mutex_init(&fl->dblock, NULL);
        fl->max_inflight = c->max_inflight;
        if (c->n_groups == 0) {
                snprintf(fl->groups[0].g.name, sizeof fl->groups[0].g.name, "%s", FLEETLOCK_DEFAULT_GROUP);
                fl->groups[0].g.max = 1;
                fl->n_groups = 1;
        } else {
                for (size_t i = 0; i < c->n_groups; i++)
                        fl->groups[i].g = c->groups[i];
                fl->n_groups = c->n_groups;
        }
        for (size_t i = 0; i < fl->n_groups; i++)
                pthread_mutex_init(&fl->groups[i].lock, NULL);
        int r = 0;
        if (c->etcd.n_endpoints > 0) {
                fl->etcd = true;
                fl->etcd_opts = c->etcd;
                if (!fl->etcd_opts.timeout)
                        fl->etcd_opts.timeout = 5;
                /* Check the options once (URLs, cert+key) so a mistake is a start-up error. */
                Lock *l = NULL;
                r = lock_backend_etcd.open(&fl->etcd_opts, &l);
                if (r >= 0)
                        pool_put(&fl->groups[0], l);
        } else
                r = db_open(fl, dbpath, busy_timeout_ms);
        if (r < 0) {
                fleetlock_close(fl);
                return r;
        }
        *ret = fl;
        return 0;
}

void fleetlock_close(FleetLock *fl) {
        if (!fl)
                return;
        for (size_t i = 0; i < fl->n_groups; i++) {
                for (size_t k = 0; k < fl->groups[i].n_idle; k++)
                        lock_backend_etcd.close(fl->groups[i].idle[k]);
                pthread_mutex_destroy(&fl->groups[i].lock);
        }
        if (fl->db)
                sqlite3_close(fl->db);
        pthread_mutex_destroy(&fl->dblock);
        free(fl);
}

const char *fleetlock_backend_name(const FleetLock *fl) {
        return fl->etcd ? "etcd" : "sqlite";
}

/* ---- answers ---- */

static unsigned answer_error(Buf *out, unsigned status, const char *kind, char *note, size_t note_size,
                             const char *fmt, ...) _printf_(6, 7);
static unsigned answer_error(Buf *out, unsigned status, const char *kind, char *note, size_t note_size,
                             const char *fmt, ...) {
        char value[900];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(value, sizeof value, fmt, ap);
        va_end(ap);
        fleetlock_error_json(out, kind, value);
        snprintf(note, note_size, "fleetlock %s: %s", kind, value);
        return status;
}

/* The store could not decide: the backend is unreachable or busy (503, try again) or broken (500). */
static bool unavailable(int r) {
        return r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ECONNRESET ||
               r == -ENOSPC;
}

static unsigned answer(FleetLock *fl, const char *path, const char *method, const char *protocol_header,
                       const char *body, size_t len, bool too_big, Buf *out, char *note, size_t note_size) {
        bool lock = strcmp(path, "/v1/pre-reboot") == 0;
        if (strcmp(method, "POST") != 0)
                return answer_error(out, 405, "method_not_allowed", note, note_size, "%s takes POST", path);
        if (too_big)
                return answer_error(out, 413, "request_too_large", note, note_size,
                                    "request body larger than %u bytes", FLEETLOCK_MAX_BODY);
        if (!protocol_header || strcmp(protocol_header, "true") != 0)
                return answer_error(out, 400, "invalid_client_identity", note, note_size,
                                    "failed to validate client identity: missing or wrong 'fleet-lock-protocol' header "
                                    "(must be 'true')");
        FleetLockParams p;
        char why[300];
        int r = fleetlock_parse_params(body ? body : "", len, &p, why, sizeof why);
        if (r == -EMSGSIZE)
                return answer_error(out, 413, "request_too_large", note, note_size, "%s", why);
        if (r < 0)
                return answer_error(out, 400, "invalid_client_identity", note, note_size,
                                    "failed to validate client identity: %s", r == -ENOMEM ? "out of memory" : why);
        Group *g = find_group(fl, p.group);
        if (!g)
                return answer_error(out, 400, "unknown_group", note, note_size, "unknown group \"%s\"", p.group);

        int64_t n = 0, max = g->g.max;
        const char *detail = NULL;
        Lock *l = NULL;
        if (fl->etcd) {
                r = pool_get(fl, g, &l);
                if (r >= 0) {
                        r = etcd_sync_max(g, l);
                        if (r >= 0 && lock) {
                                r = lock_backend_etcd.take(l, p.id);
                                if (r == -EBUSY) {
                                        _cleanup_semaphore_ Semaphore s = { 0 };
                                        if (lock_backend_etcd.status(l, &s) >= 0)
                                                n = (int64_t)s.n_holders, max = s.max;
                                }
                        } else if (r >= 0)
                                r = lock_backend_etcd.release(l, p.id);
                        if (r < 0)
                                detail = lock_backend_etcd.error(l);
                }
        } else
                r = lock ? db_take(fl, g, p.id, &n, &max) : db_release(fl, g, p.id);

        char errbuf[LOCK_ERROR_MAX + 64];
        if (r < 0 && r != -EBUSY) {
                if (!detail) {
                        snprintf(errbuf, sizeof errbuf, "%s: %s", fl->etcd ? "etcd" : "database", strerror(-r));
                        detail = errbuf;
                } else {
                        snprintf(errbuf, sizeof errbuf, "%s", detail);
                        detail = errbuf;
                }
        }
        if (l)
                pool_put(g, l);

        if (r == -EBUSY)
                return answer_error(out, 409, "failed_lock_semaphore_full", note, note_size,
                                    "semaphore currently full: all %" PRId64 " slots of group '%s' are locked (%" PRId64
                                    " holders)", max, p.group, n);
        if (r < 0 && unavailable(r))
                return answer_error(out, 503, "lock_backend_unavailable", note, note_size,
                                    "%s %s: %s; nothing changed, try again later", lock ? "lock" : "unlock", p.group, detail);
        if (r < 0)
                return answer_error(out, 500, lock ? "failed_lock" : "failed_unlock", note, note_size, "%s %s: %s",
                                    lock ? "lock" : "unlock", p.group, detail);
        const char *result = lock ? (r > 0 ? "locked" : "already-held") : (r > 0 ? "released" : "not-held");
        buf_puts(out, "{\"result\":\"");
        buf_puts(out, result);
        buf_puts(out, "\",\"group\":");
        buf_put_json(out, p.group);
        buf_puts(out, ",\"id\":");
        buf_put_json(out, p.id);
        buf_puts(out, "}\n");
        char safe[96];
        snprintf(note, note_size, "fleetlock %s %s: %s", p.group, log_safe(safe, sizeof safe, p.id), result);
        return 200;
}

unsigned fleetlock_answer(FleetLock *fl, const char *path, const char *method, const char *protocol_header,
                          const char *body, size_t len, bool too_big, Buf *out, char *note, size_t note_size) {
        unsigned n = atomic_fetch_add(&fl->inflight, 1);
        unsigned status;
        /* etcd only: an answer there can take --lock-etcd-timeout per endpoint; SQLite answers in well under a
         * millisecond (its lock wait is bounded by --busy-timeout). */
        if (fl->etcd && fl->max_inflight && n >= fl->max_inflight && strcmp(method, "POST") == 0)
                status = answer_error(out, 503, "lock_backend_unavailable", note, note_size,
                                      "%u FleetLock requests are already waiting for etcd; try again later", n);
        else
                status = answer(fl, path, method, protocol_header, body, len, too_big, out, note, note_size);
        atomic_fetch_sub(&fl->inflight, 1);
        return status;
}

/* ---- GET /api/v1/locks ---- */

static int status_group_db(FleetLock *fl, const Group *g, Buf *out) {
        sqlite3_stmt *st = NULL;
        int64_t max = g->g.max, n = 0;
        pthread_mutex_lock(&fl->dblock);
        int r = db_run(fl, "SELECT max FROM fleetlock_groups WHERE name = ?1", g->g.name, NULL, 0, &max, NULL);
        int rc = r < 0 ? SQLITE_ERROR
                       : sqlite3_prepare_v2(fl->db, "SELECT id, since FROM fleetlock_holders WHERE grp = ?1 ORDER BY id",
                                            -1, &st, NULL);
        if (r >= 0 && rc != SQLITE_OK)
                r = sqlite_errno(rc);
        Buf h;
        buf_init(&h, 8u << 20);
        if (r >= 0) {
                sqlite3_bind_text(st, 1, g->g.name, -1, SQLITE_STATIC);
                buf_puts(&h, "[");
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        buf_puts(&h, n++ ? ",{\"id\":" : "{\"id\":");
                        fleetlock_put_json_text(&h, (const char *)sqlite3_column_text(st, 0));
                        buf_printf(&h, ",\"since\":%lld}", (long long)sqlite3_column_int64(st, 1));
                }
                buf_puts(&h, "]");
                if (rc != SQLITE_DONE)
                        r = sqlite_errno(rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&fl->dblock);
        buf_puts(out, "{\"group\":");
        buf_put_json(out, g->g.name);
        if (r < 0 || h.err) {
                buf_puts(out, ",\"error\":");
                buf_put_json(out, strerror(-(r < 0 ? r : h.err)));
        } else
                buf_printf(out, ",\"max\":%" PRId64 ",\"semaphore\":%" PRId64 ",\"holders\":%s", max, max - n, h.data);
        buf_free(&h);
        return buf_puts(out, "}");
}

static int status_group_etcd(FleetLock *fl, Group *g, Buf *out) {
        Lock *l = NULL;
        _cleanup_semaphore_ Semaphore s = { 0 };
        int r = pool_get(fl, g, &l);
        char err[LOCK_ERROR_MAX];
        if (r >= 0) {
                r = lock_backend_etcd.status(l, &s);
                if (r < 0)
                        snprintf(err, sizeof err, "%s", lock_backend_etcd.error(l));
        } else
                snprintf(err, sizeof err, "%s", strerror(-r));
        buf_puts(out, "{\"group\":");
        buf_put_json(out, g->g.name);
        if (l) {
                buf_puts(out, ",\"key\":");
                buf_put_json(out, lock_backend_etcd.name_of(l));
                pool_put(g, l);
        }
        if (r < 0) {
                buf_puts(out, ",\"error\":");
                fleetlock_put_json_text(out, err);
                return buf_puts(out, "}");
        }
        buf_printf(out, ",\"max\":%" PRId64 ",\"configured_max\":%" PRId64 ",\"semaphore\":%" PRId64 ",\"holders\":[",
                   s.max, g->g.max, s.semaphore);
        for (size_t i = 0; i < s.n_holders; i++) {
                buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
                fleetlock_put_json_text(out, s.holders[i]);
                buf_puts(out, "}");
        }
        return buf_puts(out, "]}");
}

int fleetlock_status_json(FleetLock *fl, Buf *out) {
        buf_printf(out, "{\"backend\":\"%s\",\"groups\":[", fleetlock_backend_name(fl));
        for (size_t i = 0; i < fl->n_groups; i++) {
                if (i)
                        buf_puts(out, ",");
                buf_puts(out, "\n");
                if (fl->etcd)
                        status_group_etcd(fl, &fl->groups[i], out);
                else
                        status_group_db(fl, &fl->groups[i], out);
        }
        buf_puts(out, "\n]}\n");
        return out->err;
}
