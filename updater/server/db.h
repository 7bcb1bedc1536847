/* updater/server/db.h — cairn-server's SQLite store: instances, events, update grants. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "omaha/omaha.h"

typedef struct ServerDb ServerDb;

#define SERVER_DB_QUEUE_DEFAULT 16384

/* Open (create) the database in WAL mode and make sure it is writable. At most queue_max visits wait in memory
 * for the writer thread (see server_db_visit()).
 * -EROFS: read-only file or directory; -EBUSY: locked longer than busy_timeout_ms; other -errno. */
int server_db_open(const char *path, int busy_timeout_ms, size_t queue_max, ServerDb **ret);
/* Write what is queued (a failing write is tried 3 times), stop the writer, close. < 0 (the last write error)
 * when queued visits could not be written; they were counted and logged. */
int server_db_close(ServerDb *db);

/* One app's visit, recorded in one transaction. */
typedef struct DbVisit {
        const char *machine_id, *alias, *appid, *version, *channel, *board, *ip;
        int64_t now;
        bool updatecheck;
        const char *answer;          /* what we answered: "noupdate", "ok", "paused", "rollout", "error-…" */
        /* When the answer would be "ok": ask for a grant first. */
        const char *grant_version;   /* NULL: no grant needed */
        int64_t period_start;
        unsigned max_per_period;     /* 0 = unlimited */
        const OmahaEvent *events;
        size_t n_events;
} DbVisit;

/* Record the visit. Without grant_version, or with an unlimited one (max_per_period 0), the visit is copied
 * into a bounded queue and a writer thread commits queued visits in batches; reads below and granting visits
 * first write what is queued, in order. A failed write is logged once per burst of failures, counted, and
 * retried with its visits kept queued. When the queue is full: while writes fail, the oldest queued visit is
 * dropped (counted, logged once per burst); while they work but lag, -EBUSY. If grant_version is set, the machine is granted that version unless the channel's
 * max per period is reached by other machines (a machine already granted stays granted); *ret_granted
 * says which, and the answer is recorded as "limit" when refused. -EBUSY when the DB stays locked. */
int server_db_visit(ServerDb *db, const DbVisit *v, bool *ret_granted);

/* The writer's state as JSON for GET /api/v1/health: {"status","db":{"writing","last_error","failing_since",
 * "write_failures","written","queued","queue_max","dropped","refused"}}. Never touches SQLite, so it answers
 * while the DB is locked or full. *ret_failing: the last write failed. */
int server_db_health_json(ServerDb *db, Buf *out, bool *ret_failing);

/* Write everything queued now. */
int server_db_flush(ServerDb *db);

/* Append a JSON array of instances (most recently seen first, at most limit; of one channel if channel) to out. */
int server_db_instances_json(ServerDb *db, Buf *out, const char *channel, unsigned limit);
/* Append a JSON array of the last events (newest first, at most limit), of one machine if machine_id. */
int server_db_events_json(ServerDb *db, Buf *out, const char *machine_id, unsigned limit);

/* Measured boot: store a host's PCR report (the predicted values of its next boot, or the measured ones of a boot
 * that differed), replacing its previous report of that kind. -EINVAL for an invalid or empty report. */
int server_db_pcr_report(ServerDb *db, const char *machine_id, const OmahaPcrReport *p, int64_t now);
/* Append a JSON array of the stored PCR values (rows machine_id, kind, slot, version, bank, pcr, value, time), of one
 * machine if machine_id. */
int server_db_pcrs_json(ServerDb *db, Buf *out, const char *machine_id, unsigned limit);

typedef struct DbChannelStats {
        int64_t granted_period;  /* machines granted version in the current period */
        int64_t granted_total;   /* machines granted version ever */
        int64_t on_version;      /* instances of this channel reporting version */
        int64_t instances;       /* instances of this channel */
} DbChannelStats;
int server_db_channel_stats(ServerDb *db, const char *channel, const char *version, int64_t period_start,
                            DbChannelStats *ret);
