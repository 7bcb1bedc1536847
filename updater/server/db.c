/* updater/server/db.c — cairn-server's SQLite store (WAL; queued visits committed in batches by a writer thread): instances, events, grants. */
#include "db.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <time.h>

#include "log.h"
#include "sqlite-errno.h"

#define EVENTS_KEPT_PER_MACHINE 100

enum {
        ST_INSTANCE_UPSERT,
        ST_INSTANCE_EVENT,
        ST_EVENT_INSERT,
        ST_EVENT_TRIM,
        ST_GRANT_HAS,
        ST_GRANT_COUNT,
        ST_GRANT_INSERT,
        ST_GRANT_ENSURE,
        _ST_MAX,
};

static const char *const stmt_sql[_ST_MAX] = {
        [ST_INSTANCE_UPSERT] =
                "INSERT INTO instances(machine_id, alias, appid, version, channel, board, ip, first_seen, last_seen,"
                " last_check, last_answer, offered_version)"
                " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, CASE WHEN ?9 THEN ?8 END, ?10, ?11)"
                " ON CONFLICT(machine_id) DO UPDATE SET"
                " alias = coalesce(excluded.alias, alias), appid = excluded.appid,"
                " version = coalesce(excluded.version, version), channel = coalesce(excluded.channel, channel),"
                " board = coalesce(excluded.board, board), ip = excluded.ip, last_seen = excluded.last_seen,"
                " last_check = coalesce(excluded.last_check, last_check),"
                " last_answer = coalesce(excluded.last_answer, last_answer),"
                " offered_version = CASE WHEN excluded.last_answer IS NULL THEN offered_version"
                "                   ELSE excluded.offered_version END",
        [ST_INSTANCE_EVENT] = "UPDATE instances SET last_event_type = ?2, last_event_result = ?3,"
                              " last_error_code = ?4, last_event_time = ?5 WHERE machine_id = ?1",
        [ST_EVENT_INSERT] = "INSERT INTO events(machine_id, time, version, type, result, errorcode, previous_version)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [ST_EVENT_TRIM] = "DELETE FROM events WHERE machine_id = ?1 AND id < (SELECT id FROM events"
                          " WHERE machine_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        [ST_GRANT_HAS] = "SELECT 1 FROM grants WHERE channel = ?1 AND version = ?2 AND machine_id = ?3",
        [ST_GRANT_COUNT] = "SELECT count(*) FROM grants WHERE channel = ?1 AND version = ?2 AND granted_at >= ?3",
        [ST_GRANT_INSERT] = "INSERT INTO grants(channel, version, machine_id, granted_at) VALUES(?1, ?2, ?3, ?4)",
        /* Unlimited channels: nothing to decide, one statement (a machine keeps its first granted_at). */
        [ST_GRANT_ENSURE] = "INSERT OR IGNORE INTO grants(channel, version, machine_id, granted_at)"
                            " VALUES(?1, ?2, ?3, ?4)",
};

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS instances("
        " machine_id TEXT PRIMARY KEY, alias TEXT, appid TEXT, version TEXT, channel TEXT, board TEXT, ip TEXT,"
        " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_check INTEGER, last_answer TEXT,"
        " offered_version TEXT, last_event_type INTEGER, last_event_result INTEGER, last_error_code INTEGER,"
        " last_event_time INTEGER);"
        "CREATE INDEX IF NOT EXISTS instances_channel ON instances(channel, version);"
        "CREATE INDEX IF NOT EXISTS instances_seen ON instances(last_seen);"
        "CREATE TABLE IF NOT EXISTS events("
        " id INTEGER PRIMARY KEY, machine_id TEXT NOT NULL, time INTEGER NOT NULL, version TEXT,"
        " type INTEGER NOT NULL, result INTEGER NOT NULL, errorcode INTEGER NOT NULL, previous_version TEXT);"
        "CREATE INDEX IF NOT EXISTS events_machine ON events(machine_id, id);"
        "CREATE TABLE IF NOT EXISTS grants("
        " channel TEXT NOT NULL, version TEXT NOT NULL, machine_id TEXT NOT NULL, granted_at INTEGER NOT NULL,"
        " PRIMARY KEY(channel, version, machine_id));"
        "CREATE INDEX IF NOT EXISTS grants_time ON grants(channel, version, granted_at);"
        "PRAGMA user_version = 1;";

/* A visit that needs no decision from the DB (no grant), queued for the writer thread. */
typedef struct Queued {
        struct Queued *next;
        DbVisit v;
        OmahaEvent events[OMAHA_MAX_EVENTS];
        char pool[9 * (OMAHA_ATTR_MAX + 1)]; /* the 9 strings of a DbVisit */
} Queued;

/* The writer lets a batch grow for up to BATCH_LINGER_NS or BATCH_WANT visits before committing: one commit
 * per few hundred visits instead of one per visit or two keeps the writer's CPU (WAL pages, locks) off the
 * request threads' cores. A kill -9 loses at most the visits of the last few milliseconds. */
#define BATCH_WANT 512
#define BATCH_LINGER_NS (4 * 1000 * 1000L)
/* After a failed write the writer retries after RETRY_MIN_MS, doubling up to RETRY_MAX_MS. */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000
/* At shutdown a failing write is tried this many times before the queued visits are given up (and counted). */
#define STOP_ATTEMPTS 3

struct ServerDb {
        sqlite3 *db;
        pthread_mutex_t lock;           /* the connection; taken before qlock, never after */
        sqlite3_stmt *st[_ST_MAX];
        pthread_mutex_t qlock;          /* the queue and every counter below */
        pthread_cond_t qcond;
        Queued *head, *tail;
        size_t queued, queue_max;
        bool stop;
        bool writer_started;
        pthread_t writer;
        /* Write health (docs/server.md, GET /api/v1/health). A burst starts with the first failed write and
         * ends with the next successful one; each is logged once. */
        bool failing;
        int last_error;                 /* -errno of the last failed write */
        int64_t failing_since;          /* Unix time the burst started */
        uint64_t write_failures;        /* failed write transactions, ever */
        uint64_t written;               /* visits committed, ever */
        uint64_t dropped;               /* visits dropped (queue bound exceeded while failing, or at shutdown) */
        uint64_t refused;               /* visits answered 503 because the queue was full while writes worked */
        uint64_t burst_failures, burst_dropped;
        bool drop_logged, refuse_logged;
        uint64_t unwritten_at_exit;     /* visits given up at shutdown */
};

static int exec(ServerDb *db, const char *sql) {
        return server_sqlite_errno(sqlite3_exec(db->db, sql, NULL, NULL, NULL));
}

static void *writer_main(void *arg);
static void queue_free(Queued *q);

int server_db_close(ServerDb *db) {
        if (!db)
                return 0;
        if (db->writer_started) {
                pthread_mutex_lock(&db->qlock);
                db->stop = true;
                pthread_cond_signal(&db->qcond);
                pthread_mutex_unlock(&db->qlock);
                pthread_join(db->writer, NULL); /* it writes what is still queued */
        }
        queue_free(db->head);
        pthread_cond_destroy(&db->qcond);
        pthread_mutex_destroy(&db->qlock);
        for (size_t i = 0; i < _ST_MAX; i++)
                sqlite3_finalize(db->st[i]);
        sqlite3_close(db->db);
        pthread_mutex_destroy(&db->lock);
        int r = db->unwritten_at_exit ? (db->last_error < 0 ? db->last_error : -EIO) : 0;
        free(db);
        return r;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ServerDb *, server_db_close);

int server_db_open(const char *path, int busy_timeout_ms, size_t queue_max, ServerDb **ret) {
        _cleanup_(server_db_closep) ServerDb *db = calloc(1, sizeof *db);
        if (!db)
                return -ENOMEM;
        db->queue_max = MAX(queue_max, (size_t)1);
        pthread_mutex_init(&db->lock, NULL);
        pthread_mutex_init(&db->qlock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&db->qcond, &ca);
        pthread_condattr_destroy(&ca);
        int rc = sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc != SQLITE_OK)
                return server_sqlite_errno(rc);
        if (sqlite3_db_readonly(db->db, "main") == 1)
                return -EROFS;
        sqlite3_busy_timeout(db->db, busy_timeout_ms);
        sqlite3_extended_result_codes(db->db, 1);
        int r = exec(db, "PRAGMA journal_mode = WAL");
        if (r < 0)
                return r;
        /* WAL + NORMAL: a killed process never loses or tears a committed transaction. */
        r = exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF");
        if (r < 0)
                return r;
        r = exec(db, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = exec(db, schema);
        if (r < 0) {
                exec(db, "ROLLBACK");
                return r;
        }
        r = exec(db, "COMMIT");
        if (r < 0) {
                exec(db, "ROLLBACK");
                return r;
        }
        for (size_t i = 0; i < _ST_MAX; i++) {
                rc = sqlite3_prepare_v3(db->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL);
                if (rc != SQLITE_OK)
                        return server_sqlite_errno(rc);
        }
        if (pthread_create(&db->writer, NULL, writer_main, db) != 0)
                return -EAGAIN;
        db->writer_started = true;
        *ret = TAKE_PTR(db);
        return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
        if (v && *v)
                sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(s, i);
}

/* Binds the parameters 1.. of s from the arguments, one letter of types each: 't' a const char * (NULL or ""
 * binds NULL), 'i' an int, 'I' an int64_t. Returns s, for step_done()/step_int(). */
static sqlite3_stmt *bind(sqlite3_stmt *s, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        for (int i = 1; types[i - 1]; i++)
                switch (types[i - 1]) {
                case 't': bind_text(s, i, va_arg(ap, const char *)); break;
                case 'i': sqlite3_bind_int(s, i, va_arg(ap, int)); break;
                case 'I': sqlite3_bind_int64(s, i, va_arg(ap, int64_t)); break;
                default: abort(); /* a programming error in this file */
                }
        va_end(ap);
        return s;
}

/* Step a statement that returns no rows (or whose rows we ignore), then reset it. */
static int step_done(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : server_sqlite_errno(rc);
}

/* Step a statement returning one integer in column 0 (0 when there is no row). */
static int step_int(sqlite3_stmt *s, int64_t *ret) {
        int rc = sqlite3_step(s);
        int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return server_sqlite_errno(rc);
        *ret = v;
        return 0;
}

static bool event_is_noise(const OmahaEvent *ev) {
        /* update_engine sends 3/2 with an empty or 0.0.0.0 previousversion on every check (Nebraska PR #309). */
        return ev->type == OMAHA_EVENT_UPDATE_COMPLETE && ev->result == OMAHA_RESULT_SUCCESS_REBOOT &&
               (!ev->previousversion[0] || strcmp(ev->previousversion, "0.0.0.0") == 0);
}

/* A grant row for this machine (ST_GRANT_ENSURE: unlimited, or ST_GRANT_INSERT: within the period's limit). */
static int grant_record(ServerDb *db, int st, const DbVisit *v) {
        return step_done(bind(db->st[st], "tttI", v->channel, v->grant_version, v->machine_id, (int64_t)v->now));
}

/* Decides a limited grant: already granted to this machine, or fewer than max_per_period granted this period. */
static int grant_limited(ServerDb *db, const DbVisit *v, bool *ret_granted) {
        int64_t has = 0, count = 0;
        int r = step_int(bind(db->st[ST_GRANT_HAS], "ttt", v->channel, v->grant_version, v->machine_id), &has);
        if (r < 0 || has) {
                *ret_granted = has;
                return r;
        }
        r = step_int(bind(db->st[ST_GRANT_COUNT], "ttI", v->channel, v->grant_version, (int64_t)v->period_start),
                     &count);
        if (r < 0 || count >= (int64_t)v->max_per_period) {
                *ret_granted = false;
                return r;
        }
        *ret_granted = true;
        return grant_record(db, ST_GRANT_INSERT, v);
}

static int event_record(ServerDb *db, const DbVisit *v, const OmahaEvent *ev) {
        int r = step_done(bind(db->st[ST_EVENT_INSERT], "tItiiit", v->machine_id, (int64_t)v->now, v->version,
                               (int)ev->type, (int)ev->result, (int)ev->errorcode, ev->previousversion));
        if (r >= 0)
                r = step_done(bind(db->st[ST_INSTANCE_EVENT], "tiiiI", v->machine_id, (int)ev->type, (int)ev->result,
                                   (int)ev->errorcode, (int64_t)v->now));
        if (r >= 0)
                r = step_done(bind(db->st[ST_EVENT_TRIM], "ti", v->machine_id, EVENTS_KEPT_PER_MACHINE - 1));
        return r;
}

static int visit_locked(ServerDb *db, const DbVisit *v, bool *ret_granted) {
        int r;
        bool granted = false;
        const char *answer = v->answer;

        if (v->grant_version && v->max_per_period == 0) {
                if ((r = grant_record(db, ST_GRANT_ENSURE, v)) < 0)
                        return r;
                granted = true;
        } else if (v->grant_version) {
                if ((r = grant_limited(db, v, &granted)) < 0)
                        return r;
                if (!granted)
                        answer = "limit";
        }

        r = step_done(bind(db->st[ST_INSTANCE_UPSERT], "tttttttIitt", v->machine_id, v->alias, v->appid, v->version,
                           v->channel, v->board, v->ip, (int64_t)v->now, (int)v->updatecheck,
                           v->updatecheck ? answer : NULL, granted ? v->grant_version : NULL));
        if (r < 0)
                return r;

        for (size_t i = 0; i < v->n_events; i++)
                if (!event_is_noise(&v->events[i]) && (r = event_record(db, v, &v->events[i])) < 0)
                        return r;
        *ret_granted = granted;
        return 0;
}

static void queue_free(Queued *q) {
        while (q) {
                Queued *n = q->next;
                free(q);
                q = n;
        }
}

/* Drop the n oldest queued visits: counted, and logged once per failure burst. qlock held. */
static void drop_oldest_locked(ServerDb *db, size_t n) {
        for (size_t i = 0; i < n && db->head; i++) {
                Queued *q = db->head;
                db->head = q->next;
                if (!db->head)
                        db->tail = NULL;
                db->queued--;
                free(q);
                db->dropped++;
                db->burst_dropped++;
        }
        if (!db->drop_logged) {
                db->drop_logged = true;
                log_msg("database write queue full (%zu visits) while writes fail: dropping the oldest queued visits "
                        "(counted as \"dropped\" in /api/v1/health) until the database takes writes again",
                        db->queue_max);
        }
}

static void write_failed_locked(ServerDb *db, int r) {
        db->write_failures++;
        db->burst_failures++;
        db->last_error = r;
        if (!db->failing) {
                db->failing = true;
                db->failing_since = (int64_t)time(NULL);
                log_msg("database write failed: %s; visits are kept in memory (at most %zu) and retried, "
                        "GET /api/v1/health shows the state", strerror(-r), db->queue_max);
        }
}

static void write_ok_locked(ServerDb *db, size_t n) {
        db->written += n;
        if (db->failing) {
                log_msg("database writes recovered after %" PRIu64 " failed attempts (%" PRId64 " s): %zu queued "
                        "visits written; %" PRIu64 " visits were dropped",
                        db->burst_failures, (int64_t)time(NULL) - db->failing_since, n, db->burst_dropped);
                db->failing = false;
                db->burst_failures = db->burst_dropped = 0;
                db->drop_logged = false;
        }
        if (db->queued < db->queue_max / 2)
                db->refuse_logged = false;
}

/* Apply every queued visit, oldest first, then (if v) v, in one transaction. Called with db->lock held, so
 * whoever holds the connection takes everything queued so far and the order of visits is kept. On failure
 * the queued visits are put back in front of anything queued meanwhile, to be retried; if that exceeds the
 * queue bound, the oldest are dropped (and counted). */
static int flush_locked(ServerDb *db, const DbVisit *v, bool *ret_granted) {
        pthread_mutex_lock(&db->qlock);
        Queued *list = db->head;
        size_t n = db->queued;
        db->head = db->tail = NULL;
        db->queued = 0;
        pthread_mutex_unlock(&db->qlock);
        if (!list && !v)
                return 0;

        int r = exec(db, "BEGIN IMMEDIATE");
        if (r >= 0) {
                bool granted = false;
                for (Queued *q = list; q && r >= 0; q = q->next)
                        r = visit_locked(db, &q->v, &granted);
                if (r >= 0 && v)
                        r = visit_locked(db, v, &granted);
                if (r >= 0)
                        r = exec(db, "COMMIT");
                if (r < 0) {
                        if (!sqlite3_get_autocommit(db->db))
                                exec(db, "ROLLBACK");
                } else if (ret_granted)
                        *ret_granted = granted;
        }
        pthread_mutex_lock(&db->qlock);
        if (r < 0) {
                write_failed_locked(db, r);
                if (list) {
                        Queued *last = list;
                        while (last->next)
                                last = last->next;
                        last->next = db->head;
                        if (!db->head)
                                db->tail = last;
                        db->head = list;
                        db->queued += n;
                        if (db->queued > db->queue_max)
                                drop_oldest_locked(db, db->queued - db->queue_max);
                }
        } else
                write_ok_locked(db, n + (v ? 1 : 0));
        pthread_mutex_unlock(&db->qlock);
        if (r >= 0)
                queue_free(list);
        return r;
}

/* Wait ms on qcond, or less if stop is set. qlock held. */
static void wait_ms_locked(ServerDb *db, long ms) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        while (!db->stop && pthread_cond_timedwait(&db->qcond, &db->qlock, &until) == 0)
                ;
}

static void *writer_main(void *arg) {
        ServerDb *db = arg;
        long retry_ms = RETRY_MIN_MS;
        unsigned stop_attempts = 0;
        for (;;) {
                pthread_mutex_lock(&db->qlock);
                while (!db->head && !db->stop)
                        pthread_cond_wait(&db->qcond, &db->qlock);
                if (db->head && !db->stop && db->queued < BATCH_WANT) {
                        /* Let the batch grow a little; enqueue() wakes us early when it is big enough. */
                        struct timespec until;
                        clock_gettime(CLOCK_MONOTONIC, &until);
                        until.tv_nsec += BATCH_LINGER_NS;
                        if (until.tv_nsec >= 1000000000L) {
                                until.tv_sec++;
                                until.tv_nsec -= 1000000000L;
                        }
                        while (db->queued > 0 && db->queued < BATCH_WANT && !db->stop &&
                               pthread_cond_timedwait(&db->qcond, &db->qlock, &until) == 0)
                                ;
                }
                bool stop = db->stop, empty = !db->head;
                pthread_mutex_unlock(&db->qlock);
                if (stop && empty)
                        return NULL;
                pthread_mutex_lock(&db->lock);
                int r = flush_locked(db, NULL, NULL);
                pthread_mutex_unlock(&db->lock);
                if (r >= 0) {
                        retry_ms = RETRY_MIN_MS;
                        continue;
                }
                pthread_mutex_lock(&db->qlock);
                if (stop && ++stop_attempts >= STOP_ATTEMPTS) {
                        /* Nothing else can keep them: say how many are lost, and why. */
                        db->unwritten_at_exit = db->queued;
                        db->dropped += db->queued;
                        log_msg("%zu queued visits could not be written before exit: %s", db->queued, strerror(-r));
                        queue_free(db->head);
                        db->head = db->tail = NULL;
                        db->queued = 0;
                        pthread_mutex_unlock(&db->qlock);
                        return NULL;
                }
                if (stop)
                        retry_ms = 100;
                /* At shutdown wait_ms_locked returns at once: sleep without it. */
                if (!db->stop)
                        wait_ms_locked(db, retry_ms);
                pthread_mutex_unlock(&db->qlock);
                if (stop)
                        usleep((useconds_t)retry_ms * 1000);
                retry_ms = MIN(retry_ms * 2, (long)RETRY_MAX_MS);
        }
}

static const char *pool_add(char **pool, const char *s) {
        if (!s)
                return NULL;
        size_t n = strnlen(s, OMAHA_ATTR_MAX);
        char *d = *pool;
        memcpy(d, s, n);
        d[n] = 0;
        *pool += n + 1;
        return d;
}

static int enqueue(ServerDb *db, const DbVisit *v) {
        Queued *q = malloc(sizeof *q);
        if (!q)
                return -ENOMEM;
        q->next = NULL;
        q->v = *v;
        char *pool = q->pool;
        q->v.machine_id = pool_add(&pool, v->machine_id);
        q->v.alias = pool_add(&pool, v->alias);
        q->v.appid = pool_add(&pool, v->appid);
        q->v.version = pool_add(&pool, v->version);
        q->v.channel = pool_add(&pool, v->channel);
        q->v.board = pool_add(&pool, v->board);
        q->v.ip = pool_add(&pool, v->ip);
        q->v.answer = pool_add(&pool, v->answer);
        q->v.grant_version = pool_add(&pool, v->grant_version); /* the request's memory is gone when it is written */
        size_t ne = MIN(v->n_events, (size_t)OMAHA_MAX_EVENTS);
        memcpy(q->events, v->events, ne * sizeof(OmahaEvent));
        q->v.events = q->events;
        q->v.n_events = ne;

        pthread_mutex_lock(&db->qlock);
        if (db->queued >= db->queue_max) {
                if (db->failing)
                        /* Writes fail: answering keeps hosts updating; the oldest visit makes room (counted). */
                        drop_oldest_locked(db, db->queued - db->queue_max + 1);
                else {
                        /* Writes work but lag behind: push back (503) until the writer catches up. */
                        db->refused++;
                        if (!db->refuse_logged) {
                                db->refuse_logged = true;
                                log_msg("database write queue full (%zu visits): answering 503 until the writer "
                                        "catches up", db->queue_max);
                        }
                        pthread_mutex_unlock(&db->qlock);
                        free(q);
                        return -EBUSY;
                }
        }
        if (db->tail)
                db->tail->next = q;
        else
                db->head = q;
        db->tail = q;
        db->queued++;
        /* Wake the writer when it waits for work (queue was empty) or for a batch to fill. */
        if (db->queued == 1 || db->queued == BATCH_WANT)
                pthread_cond_signal(&db->qcond);
        pthread_mutex_unlock(&db->qlock);
        return 0;
}

int server_db_visit(ServerDb *db, const DbVisit *v, bool *ret_granted) {
        if (!v->grant_version || v->max_per_period == 0) {
                /* Nothing to decide (no grant, or an unlimited one that is always given): the writer thread
                 * records it, in batched commits. */
                int r = enqueue(db, v);
                if (r >= 0 && ret_granted)
                        *ret_granted = v->grant_version != NULL;
                return r;
        }
        pthread_mutex_lock(&db->lock);
        int r = flush_locked(db, v, ret_granted);
        pthread_mutex_unlock(&db->lock);
        return r;
}

int server_db_flush(ServerDb *db) {
        pthread_mutex_lock(&db->lock);
        int r = flush_locked(db, NULL, NULL);
        pthread_mutex_unlock(&db->lock);
        return r;
}

static void json_column(Buf *out, sqlite3_stmt *s, int i) {
        switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL:
                buf_puts(out, "null");
                break;
        case SQLITE_INTEGER:
                buf_printf(out, "%lld", (long long)sqlite3_column_int64(s, i));
                break;
        default:
                buf_put_json(out, (const char *)sqlite3_column_text(s, i));
        }
}

/* Run sql (with an optional text parameter ?1 and integer limit ?2) and append its rows as JSON objects. */
static int rows_json(ServerDb *db, Buf *out, const char *sql, const char *param, unsigned limit) {
        sqlite3_stmt *s = NULL;
        pthread_mutex_lock(&db->lock);
        /* Show what was answered so far. If that cannot be written, the visits stay queued (the writer retries,
         * /api/v1/health says so) and what is stored is shown. */
        (void)flush_locked(db, NULL, NULL);
        int rc = sqlite3_prepare_v2(db->db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK) {
                pthread_mutex_unlock(&db->lock);
                return server_sqlite_errno(rc);
        }
        if (param)
                sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, (int)limit);
        buf_puts(out, "[");
        bool first = true;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                buf_puts(out, first ? "\n{" : ",\n{");
                first = false;
                int n = sqlite3_column_count(s);
                for (int i = 0; i < n; i++) {
                        if (i)
                                buf_puts(out, ",");
                        buf_put_json(out, sqlite3_column_name(s, i));
                        buf_puts(out, ":");
                        json_column(out, s, i);
                }
                buf_puts(out, "}");
                if (out->err)
                        break;
        }
        int r = out->err ? out->err : rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : server_sqlite_errno(rc);
        sqlite3_finalize(s);
        pthread_mutex_unlock(&db->lock);
        buf_puts(out, "\n]\n");
        return r < 0 ? r : out->err;
}

int server_db_instances_json(ServerDb *db, Buf *out, const char *channel, unsigned limit) {
        return rows_json(db, out,
                         "SELECT machine_id, alias, appid, version, channel, board, ip, first_seen, last_seen,"
                         " last_check, last_answer, offered_version, last_event_type, last_event_result,"
                         " last_error_code, last_event_time FROM instances WHERE ?1 IS NULL OR channel = ?1"
                         " ORDER BY last_seen DESC, machine_id LIMIT ?2",
                         channel, limit);
}

int server_db_events_json(ServerDb *db, Buf *out, const char *machine_id, unsigned limit) {
        return rows_json(db, out,
                         "SELECT id, machine_id, time, version, type, result, errorcode, previous_version"
                         " FROM events WHERE ?1 IS NULL OR machine_id = ?1 ORDER BY id DESC LIMIT ?2",
                         machine_id, limit);
}

int server_db_channel_stats(ServerDb *db, const char *channel, const char *version, int64_t period_start,
                            DbChannelStats *ret) {
        static const char *const sql[4] = {
                "SELECT count(*) FROM grants WHERE channel = ?1 AND version = ?2 AND granted_at >= ?3",
                "SELECT count(*) FROM grants WHERE channel = ?1 AND version = ?2",
                "SELECT count(*) FROM instances WHERE channel = ?1 AND version = ?2",
                "SELECT count(*) FROM instances WHERE channel = ?1",
        };
        int64_t v[4] = { 0 };
        pthread_mutex_lock(&db->lock);
        (void)flush_locked(db, NULL, NULL); /* as in rows_json() */
        int r = 0;
        for (size_t i = 0; i < 4 && r >= 0; i++) {
                sqlite3_stmt *s = NULL;
                int rc = sqlite3_prepare_v2(db->db, sql[i], -1, &s, NULL);
                if (rc != SQLITE_OK) {
                        r = server_sqlite_errno(rc);
                        break;
                }
                sqlite3_bind_text(s, 1, channel, -1, SQLITE_STATIC);
                if (i < 3)
                        sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
                if (i == 0)
                        sqlite3_bind_int64(s, 3, period_start);
                r = step_int(s, &v[i]);
                sqlite3_finalize(s);
        }
        pthread_mutex_unlock(&db->lock);
        if (r < 0)
                return r;
        *ret = (DbChannelStats){ .granted_period = v[0], .granted_total = v[1], .on_version = v[2], .instances = v[3] };
        return 0;
}

int server_db_health_json(ServerDb *db, Buf *out, bool *ret_failing) {
        pthread_mutex_lock(&db->qlock);
        bool failing = db->failing;
        buf_printf(out, "{\"status\":\"%s\",\"db\":{\"writing\":\"%s\",\"last_error\":", failing ? "failing" : "ok",
                    failing ? "failing" : "ok");
        if (db->last_error < 0)
                buf_put_json(out, strerror(-db->last_error));
        else
                buf_puts(out, "null");
        if (failing)
                buf_printf(out, ",\"failing_since\":%" PRId64, db->failing_since);
        else
                buf_puts(out, ",\"failing_since\":null");
        buf_printf(out,
                    ",\"write_failures\":%" PRIu64 ",\"written\":%" PRIu64 ",\"queued\":%zu,\"queue_max\":%zu"
                    ",\"dropped\":%" PRIu64 ",\"refused\":%" PRIu64 "}}\n",
                    db->write_failures, db->written, db->queued, db->queue_max, db->dropped, db->refused);
        pthread_mutex_unlock(&db->qlock);
        *ret_failing = failing;
        return out->err;
}

/* ---- Measured boot: the PCR values hosts report (docs/server.md "PCR reports") ----
 * One row per (machine, kind, bank, pcr): a new report of a kind replaces that machine's previous one. The table is
 * created on first use, so databases made before it exist keep working. */

static const char pcr_schema[] =
        "CREATE TABLE IF NOT EXISTS pcr_reports("
        " machine_id TEXT NOT NULL, kind TEXT NOT NULL, slot TEXT NOT NULL, version TEXT NOT NULL,"
        " bank TEXT NOT NULL, pcr INTEGER NOT NULL, value TEXT NOT NULL, time INTEGER NOT NULL,"
        " PRIMARY KEY(machine_id, kind, bank, pcr));";

static int pcr_table_locked(ServerDb *db) {
        return server_sqlite_errno(sqlite3_exec(db->db, pcr_schema, NULL, NULL, NULL));
}

int server_db_pcr_report(ServerDb *db, const char *machine_id, const OmahaPcrReport *p, int64_t now) {
        if (p->invalid || p->n == 0)
                return -EINVAL;
        pthread_mutex_lock(&db->lock);
        int r = pcr_table_locked(db);
        if (r >= 0)
                r = server_sqlite_errno(sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
        if (r < 0) {
                pthread_mutex_unlock(&db->lock);
                return r;
        }
        sqlite3_stmt *del = NULL, *ins = NULL;
        int rc = sqlite3_prepare_v2(db->db, "DELETE FROM pcr_reports WHERE machine_id = ?1 AND kind = ?2", -1, &del,
                                    NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db->db,
                                        "INSERT INTO pcr_reports(machine_id, kind, slot, version, bank, pcr, value, time)"
                                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                        -1, &ins, NULL);
        r = server_sqlite_errno(rc);
        if (r >= 0) {
                r = server_sqlite_errno(sqlite3_step(bind(del, "tt", machine_id, p->kind)));
        }
        for (size_t i = 0; r >= 0 && i < p->n; i++) {
                sqlite3_reset(ins);
                /* every field is non-empty: the parser refuses a report without them */
                r = server_sqlite_errno(sqlite3_step(bind(ins, "tttttitI", machine_id, p->kind, p->slot, p->version,
                                                          p->pcr[i].bank, (int)p->pcr[i].index, p->pcr[i].value,
                                                          (int64_t)now)));
        }
        sqlite3_finalize(del);
        sqlite3_finalize(ins);
        int rc2 = sqlite3_exec(db->db, r >= 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        if (r >= 0)
                r = server_sqlite_errno(rc2);
        pthread_mutex_unlock(&db->lock);
        return r;
}

int server_db_pcrs_json(ServerDb *db, Buf *out, const char *machine_id, unsigned limit) {
        pthread_mutex_lock(&db->lock);
        int r = pcr_table_locked(db);
        pthread_mutex_unlock(&db->lock);
        if (r < 0)
                return r;
        return rows_json(db, out,
                         "SELECT machine_id, kind, slot, version, bank, pcr, value, time FROM pcr_reports"
                         " WHERE ?1 IS NULL OR machine_id = ?1 ORDER BY machine_id, kind, bank, pcr LIMIT ?2",
                         machine_id, limit);
}
