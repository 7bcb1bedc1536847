/* updater/agent/agent.h — the host update agent (cairn-updated): config, state file, Omaha client, fetch, apply, health gate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include "macro.h"
#include "omaha/omaha.h"
#include "payload/payload.h"
#include "window.h"

#define AGENT_APPID "{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}"
#define AGENT_VERSION_MAX 64
#define AGENT_ERROR_MAX 320
#define AGENT_LOCK_NOTE_MAX 720    /* etcd's reasons name every endpoint tried */
#define AGENT_FAILED_MAX 16        /* versions remembered as failed (never retried automatically) */
#define AGENT_CONF_MAX (64u * 1024u)
#define AGENT_STATE_MAX (16u * 1024u)

/* ---- Config (agent-config.c) ---- */

typedef enum AgentRebootStrategy {
        AGENT_REBOOT_REBOOT = 0,
        AGENT_REBOOT_OFF = 1,
        AGENT_REBOOT_ETCD_LOCK = 2,  /* locksmith's semaphore in etcd (updater/lock/etcd.c) */
        AGENT_REBOOT_FLEETLOCK = 3,  /* a FleetLock server (updater/lock/fleetlock-client.c) */
        _AGENT_REBOOT_MAX,
} AgentRebootStrategy;

typedef struct AgentConfig {
        char group[65];              /* GROUP (Omaha track), default "stable" */
        char server[1024];           /* SERVER: the Omaha URL (…/v1/update/) */
        AgentRebootStrategy reboot_strategy;
        char reboot_command[512];    /* REBOOT_COMMAND, default "reboot" (run with /bin/sh -c) */
        uint64_t rate_limit;         /* DOWNLOAD_RATE_LIMIT bytes/s (K/M/G suffixes), 0 = unlimited */
        char proxy[1024];            /* PROXY, "" = libcurl's default (environment) */
        char ca_file[1024];          /* CA_FILE, "" = system store */
        unsigned check_interval;     /* CHECK_INTERVAL seconds, default 3600 (jittered ±10%) */
        unsigned first_check_delay;  /* FIRST_CHECK_DELAY seconds, default 300 (jittered) */
        unsigned health_delay;       /* HEALTH_DELAY seconds after start before the post-boot gate, default 45 */
        unsigned backoff_base;       /* BACKOFF_BASE seconds, default 60: first retry after a failure */
        unsigned backoff_max;        /* BACKOFF_MAX seconds, default 14400 */
        unsigned health_timeout;     /* HEALTH_TIMEOUT seconds per check script, default 60 */
        unsigned http_timeout;       /* HTTP_STALL_TIMEOUT: the low-speed window in seconds, default 60 */
        uint64_t low_speed_limit;    /* HTTP_LOW_SPEED_LIMIT bytes/s averaged over that window, default 1K */
        unsigned transfer_timeout;   /* HTTP_TRANSFER_TIMEOUT seconds for one whole transfer, default 1800 */
        /* Reboot coordination (reboot.c; docs/reboot.md). Each key is also read under locksmith's name. */
        AgentWindow window;          /* REBOOT_WINDOW_START + REBOOT_WINDOW_LENGTH; days 0 = no window */
        char window_start[64];       /* as written ("" unset), and where: for the both-or-neither check */
        char window_length[64];
        unsigned window_start_line, window_length_line;
        int window_start_file, window_length_file; /* index into the config files; -1: this text */
        char etcd_endpoints[1024];   /* ETCD_ENDPOINTS (LOCKSMITHD_ENDPOINT), comma list, default http://127.0.0.1:2379 */
        char lock_group[128];        /* LOCK_GROUP (LOCKSMITHD_GROUP); "" the default semaphore */
        char etcd_ca[512], etcd_cert[512], etcd_key[512]; /* ETCD_CAFILE, ETCD_CERTFILE, ETCD_KEYFILE */
        char etcd_user[128], etcd_password[256];          /* ETCD_USERNAME, ETCD_PASSWORD */
        char fleetlock_url[1024];    /* FLEETLOCK_URL: the FleetLock server's base URL */
        unsigned pre_reboot_timeout; /* PRE_REBOOT_TIMEOUT seconds per pre-reboot.d hook, default 600 */
        unsigned post_boot_timeout;  /* POST_BOOT_TIMEOUT seconds per post-boot.d hook, default 300 */
        unsigned lock_retry_min;     /* LOCK_RETRY_MIN seconds, default 5: first retry after the lock was refused */
        unsigned lock_retry_max;     /* LOCK_RETRY_MAX seconds, default 300 */
} AgentConfig;

/* Limits of the numeric settings (docs/agent.md lists them). */
#define AGENT_RATE_LIMIT_MAX (1ULL << 40)        /* DOWNLOAD_RATE_LIMIT, HTTP_LOW_SPEED_LIMIT: 1 TiB/s */
#define AGENT_TRANSFER_TIMEOUT_MAX (7u * 86400u)

/* Why a config file was refused. */
typedef struct AgentConfigError {
        const char *path;            /* agent_config_load: the file (static buffer) */
        unsigned line;               /* 1-based; 0: the file itself could not be read */
        char key[64];                /* "" when the line is not KEY=VALUE */
        char value[160];             /* the value as written, escaped for a log line */
        const char *why;             /* "is not a number", "is out of range (1..3600 s)", … (static) */
} AgentConfigError;
/* "config "PATH" line N: KEY="VALUE" is out of range (…)" (or the line/file problem) into buf. */
void agent_config_error_format(const AgentConfigError *e, int r, char *buf, size_t size);

void agent_config_init(AgentConfig *c);
/* Apply one KEY=VALUE text (later calls override earlier ones). Unknown keys are ignored; '#' comments; values
 * may be quoted. -EINVAL on a bad value (-ERANGE for a number out of range), -EOPNOTSUPP for a reboot strategy
 * that is not implemented yet, with *ret_err (may be NULL) saying which line, key and value. */
int agent_config_parse(AgentConfig *c, const char *text, size_t len, AgentConfigError *ret_err);
/* Load ROOT/usr/share/cairn/update.conf < ROOT/oem/update.conf < ROOT/etc/cairn/update.conf (missing files are
 * skipped). On error *ret_err (may be NULL) names the file, line, key and value. */
int agent_config_load(AgentConfig *c, const char *root, AgentConfigError *ret_err);
/* The checks across keys and files, after the last parse (agent_config_load calls it): REBOOT_WINDOW_START and
 * _LENGTH both or neither (then c->window is set), fleetlock needs FLEETLOCK_URL, user/password and cert/key in
 * pairs. -EINVAL with *ret_err naming the key (root: for the file name). */
int agent_config_finish(AgentConfig *c, const char *root, AgentConfigError *ret_err);
const char *agent_reboot_strategy_name(AgentRebootStrategy s);

/* ---- Persistent state (agent-state.c) ---- */

typedef enum AgentStatus {
        AGENT_IDLE,
        AGENT_CHECKING,
        AGENT_DOWNLOADING,
        AGENT_VERIFYING,
        AGENT_FINALIZING,
        AGENT_UPDATED_NEED_REBOOT,
        AGENT_REPORTING_ERROR,
        _AGENT_STATUS_MAX,
} AgentStatus;
const char *agent_status_name(AgentStatus s);
int agent_status_from_name(const char *s);

/* Where this host is in the reboot lifecycle (reboot.c). Saved before each step, so a restart knows whether it
 * may hold the cluster lock and what to do about it (docs/reboot.md, "Crashes"). */
typedef enum AgentLockPhase {
        AGENT_LOCK_NONE = 0,      /* holds nothing */
        AGENT_LOCK_ACQUIRING,     /* asked for the lock (it may or may not have been granted) */
        AGENT_LOCK_PRE_REBOOT,    /* holds the lock; pre-reboot hooks running */
        AGENT_LOCK_REBOOTING,     /* holds the lock; hooks passed, reboot command run */
        AGENT_LOCK_POST_BOOT,     /* holds the lock in the new boot; post-boot hooks, then release */
        _AGENT_LOCK_PHASE_MAX,
} AgentLockPhase;
const char *agent_lock_phase_name(AgentLockPhase p);

typedef struct AgentState {
        AgentStatus status;
        char current_version[AGENT_VERSION_MAX + 1];
        char new_version[AGENT_VERSION_MAX + 1];
        uint64_t new_size;
        uint32_t chunks_done, chunks_total;
        int64_t last_check;                 /* Unix seconds of the last completed check, 0 never */
        char last_error[AGENT_ERROR_MAX];
        unsigned failures;                  /* consecutive failed cycles (backoff) */
        uint64_t bytes_downloaded, bytes_reused; /* of the last apply */
        /* A slot written and made next, waiting for the reboot. */
        char staged_version[AGENT_VERSION_MAX + 1];
        int staged_slot;                    /* -1 none */
        char staged_boot_id[64];
        char staged_verity_root[2 * SHA256_SIZE + 1]; /* the staged slot's signed dm-verity root hash, "" none */
        char previous_version[AGENT_VERSION_MAX + 1]; /* the version we updated from (event 3 previousversion) */
        size_t n_failed;
        char failed[AGENT_FAILED_MAX][AGENT_VERSION_MAX + 1];
        /* Resume record of an interrupted apply: chunks [0, resume_next) of resume_slot are written and synced. */
        char resume_version[AGENT_VERSION_MAX + 1];
        uint8_t resume_image_sha256[SHA256_SIZE];
        uint64_t resume_payload_size;
        int resume_slot;                    /* -1 none */
        uint32_t resume_next;
        /* Reboot coordination (reboot.c). */
        AgentLockPhase lock_phase;
        char lock_boot_id[64];              /* the boot in which lock_phase was entered */
        bool reboot_requested;              /* cairnctl reboot: now, without waiting for the window */
        unsigned lock_failures;             /* consecutive failed attempts (lock refused, hook failed): backoff */
        char lock_note[AGENT_LOCK_NOTE_MAX]; /* why there was no reboot yet, or what happened last */
        /* What the lock is held for (saved when it is asked for; the hooks' CAIRN_OLD/NEW_VERSION and
         * CAIRN_ROLLED_BACK in the new boot, hook-env.c): the version rebooted from, the one staged ("" none:
         * cairnctl reboot without an update) and its slot (-1 none). */
        char lock_from_version[AGENT_VERSION_MAX + 1];
        char lock_to_version[AGENT_VERSION_MAX + 1];
        int lock_to_slot;
        /* The instant picked inside a reboot window (Unix seconds) and the end of that window (0: none), so a
         * restarted agent keeps its place in the window instead of drawing again (reboot.c). */
        int64_t window_pick, window_pick_close;
        /* Not saved: what agent_state_parse() reset because its value was invalid ("" none), for the top level to
         * log once. */
        char load_note[AGENT_ERROR_MAX];
} AgentState;

/* Ranges of the state file's numbers: anything outside is reset to its default (with a note), never used. */
#define AGENT_TIME_MAX INT64_C(253402300799)   /* 9999-12-31T23:59:59Z: fits time_t and gmtime()/localtime() */
#define AGENT_FAILURES_MAX 1000000u

void agent_state_init(AgentState *s);

/* Forgets the staged slot (after it booted and was marked good, or was given up): no slot, version, boot id or
 * dm-verity root hash is staged any more. */
void agent_state_forget_staged(AgentState *s);
/* Parse the state file text; unknown keys ignored. A line that is not KEY=VALUE (or too long, or holding a NUL)
 * is -EBADMSG; a bad value (not a number, out of range, too long, not a slot/state name) resets that field to its
 * default and is described in s->load_note. */
int agent_state_parse(AgentState *s, const char *text, size_t len);
/* KEY=VALUE text of the state (caller frees). */
int agent_state_format(const AgentState *s, char **ret_text, size_t *ret_len);
/* Read DIR/state (missing file: a fresh state, 0) / write it atomically (temp + fsync + rename + fsync dir). */
int agent_state_load(AgentState *s, const char *dir);
int agent_state_save(const AgentState *s, const char *dir);
bool agent_state_is_failed(const AgentState *s, const char *version);
void agent_state_add_failed(AgentState *s, const char *version);
/* Human (multi-line) or JSON text of the state for `cairnctl status`; daemon_running is shown as is. */
int agent_status_text(const AgentState *s, bool json, bool daemon_running, char **ret_text);

/* ---- Scheduling (agent-config.c) ---- */

/* base ± pct% uniformly from rnd (any 32-bit random value). */
unsigned agent_jitter(unsigned base, unsigned pct, uint32_t rnd);
/* Delay before the next try after `failures` (>= 1) consecutive failures: base·2^(failures-1) capped at max,
 * then jittered into [d/2, d]. */
unsigned agent_backoff(unsigned failures, unsigned base, unsigned max, uint32_t rnd);

/* ---- HTTP (agent-http.c, libcurl; CURLcode converted here only) ---- */

typedef struct AgentHttp AgentHttp;
typedef struct AgentHttpOptions {
        uint64_t rate_limit;        /* bytes/s, 0 unlimited */
        const char *proxy;          /* NULL/"" default */
        const char *ca_file;        /* NULL/"" system */
        unsigned stall_timeout;     /* window (seconds) of the low-speed check */
        uint64_t low_speed_limit;   /* bytes/s averaged over stall_timeout below which a transfer is abandoned */
        unsigned transfer_timeout;  /* seconds one whole transfer may take (0: none) */
        unsigned connect_timeout;   /* seconds */
} AgentHttpOptions;

int agent_http_new(const AgentHttpOptions *o, AgentHttp **ret);
void agent_http_free(AgentHttp *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentHttp *, agent_http_free);
#define _cleanup_http_ _cleanup_(agent_http_freep)
/* Detail of the last failure ("HTTP 500 from '…'", "Timeout was reached", …). */
const char *agent_http_error(const AgentHttp *h);
/* HTTP status of the last exchange (0: no answer). */
long agent_http_status(const AgentHttp *h);
/* POST body (text/xml) and collect at most max bytes of a 200 answer into out. */
int agent_http_post(AgentHttp *h, const char *url, const char *body, size_t len, size_t max, Buf *out);
/* GET bytes [off, off+len) with a Range request and hand them to sink in pieces; exactly len bytes must come
 * (206, or 200 only when the range is the whole file). sink returns < 0 to abort with that error. Counts the
 * received bytes into *bytes_counter (may be NULL). */
typedef int (*agent_sink_fn)(void *userdata, const uint8_t *data, size_t n);
int agent_http_get_range(AgentHttp *h, const char *url, uint64_t off, uint64_t len, agent_sink_fn sink,
                         void *userdata, uint64_t *bytes_counter);

/* ---- Cancellation (agent-http.c): every long loop (download, apply, read-back, health checks) asks this ---- */

/* From now on, a pending signal of set (blocked by the caller, e.g. SIGTERM/SIGINT) counts as a stop request. */
void agent_cancel_watch(const sigset_t *set);
/* Ask every loop to stop (tests, or a signal handler: async-signal-safe). */
void agent_cancel_request(void);
/* True once a stop was requested; the loops then end with -ECANCELED after saving their checkpoint. */
bool agent_cancelled(void);

/* update_engine's error codes (action_processor.h, Flatcar's numbering) used in event 3/0. */
enum {
        AGENT_EC_ERROR = 1,
        AGENT_EC_OMAHA_REQUEST = 2,
        AGENT_EC_INSTALL_DEVICE_OPEN = 7,
        AGENT_EC_DOWNLOAD_TRANSFER = 9,
        AGENT_EC_PAYLOAD_HASH_MISMATCH = 10,
        AGENT_EC_PAYLOAD_SIZE_MISMATCH = 11,
        AGENT_EC_PAYLOAD_VERIFICATION = 12,
        AGENT_EC_DOWNLOAD_WRITE = 14,
        AGENT_EC_NEW_ROOTFS_VERIFICATION = 15,
        AGENT_EC_OPERATION_HASH_MISMATCH = 29,
        AGENT_EC_OMAHA_XML_PARSE = 31,
        AGENT_EC_OMAHA_RESPONSE_INVALID = 34,
        AGENT_EC_ROLLBACK = 44,
        AGENT_EC_PCR_MISMATCH = 3000,    /* Cairn: the TPM's PCRs differ from the prediction (measure.c) */
        AGENT_EC_OMAHA_HTTP_BASE = 2000, /* + the HTTP status of the update check */
};

/* ---- Omaha client (agent-omaha.c) ---- */

typedef struct AgentRequest {
        const char *appid, *version, *track, *machineid, *board, *bootid, *oem;
        bool interactive;       /* installsource ondemandupdate instead of scheduler */
        bool updatecheck;
        bool ping;
        bool delta_okay;        /* delta_okay="true": a delta payload from this version is welcome */
        int event_type;         /* 0: no event */
        int event_result;
        int event_errorcode;
        const char *previousversion;
        const char *event_xml;  /* child elements of <event> (measure.c's <cairnpcrs>), or NULL */
} AgentRequest;
int agent_omaha_request_xml(const AgentRequest *r, Buf *out);

/* A validated update offer. */
typedef struct AgentOffer {
        bool update;            /* false: noupdate */
        char version[AGENT_VERSION_MAX + 1];
        /* The payload's URL at each usable <url codebase> (package name appended), in the answer's order; tried in
         * turn when a transfer fails; url_index is the one in use. */
        size_t n_urls, url_index;
        char urls[OMAHA_MAX_URLS][OMAHA_URL_MAX + OMAHA_ATTR_MAX + 2];
        uint64_t size;
        unsigned poll_interval;
} AgentOffer;
static inline const char *agent_offer_url(const AgentOffer *o) {
        return o->urls[o->url_index < OMAHA_MAX_URLS ? o->url_index : 0];
}
/* Turn a parsed response into an offer: -EPROTO (with *ret_what, a static per-thread text with the server's words
 * escaped) for an app or updatecheck error status (named), no usable url (http/https, no control characters),
 * an invalid name, size or version. The postinstall sha256 is not required (docs/agent.md says why). */
int agent_offer_from_response(const OmahaResponse *resp, AgentOffer *ret, const char **ret_what);

/* ---- Delta planning and apply (agent-apply.c) ---- */

enum {
        AGENT_CHUNK_DOWNLOAD = 0,
        AGENT_CHUNK_COPY = 1,   /* identical chunk in the active slot */
        AGENT_CHUNK_ZERO = 2,
        AGENT_CHUNK_DONE = 3,   /* already written (resume) */
};

/* SHA-256 of every whole chunk-size block of the active slot, sorted for lookup. */
typedef struct AgentIndexEntry {
        uint8_t sha256[SHA256_SIZE];
        uint32_t block;
} AgentIndexEntry;
typedef struct AgentIndex {
        size_t n;
        AgentIndexEntry *e;
} AgentIndex;
void agent_index_free(AgentIndex *x);
/* Hash the blocks of [off, off+size) of fd (at most PAYLOAD_CHUNKS_MAX blocks). */
int agent_index_build(int fd, uint64_t off, uint64_t size, uint32_t block_size, AgentIndex *ret);
/* From entries filled by the caller (tests): sort them. */
void agent_index_sort(AgentIndex *x);
/* Block holding a chunk with this hash, or -ENOENT. */
int64_t agent_index_find(const AgentIndex *x, const uint8_t sha256[SHA256_SIZE]);

/* For each chunk: DONE below start, ZERO for zero chunks, COPY (src[i] = block in the active slot) when the active
 * index has the hash and raw_len is a whole block, else DOWNLOAD. Returns the number of chunks to download. */
int64_t agent_plan(const Payload *p, const AgentIndex *active, uint32_t start, uint8_t *actions, uint32_t *src);

typedef struct AgentApply {
        AgentHttp *http;
        const char *const *urls;   /* tried in turn: a transfer that fails moves on to the next one */
        size_t n_urls;
        size_t url_index;          /* in: the first to use; out: the one in use at the end */
        const Payload *p;
        int fd;                    /* disk (or slot device) */
        uint64_t active_off, active_size;   /* active_size 0: no delta source */
        uint64_t target_off, target_size;
        uint32_t start_chunk;      /* resume point */
        /* Called after chunks [0, next) are written and synced; < 0 aborts. */
        int (*checkpoint)(void *userdata, uint32_t next);
        void (*progress)(void *userdata, uint32_t done, uint32_t total);
        void *userdata;
        uint64_t checkpoint_bytes; /* sync + checkpoint at least every this many image bytes (0: 32 MiB) */
        uint64_t range_max;        /* bytes of one Range request (0: 64 MiB) */
        /* Results. */
        uint64_t bytes_downloaded, bytes_copied, bytes_zero;
        uint32_t chunks_downloaded, chunks_copied;
        uint32_t bad_chunk;        /* on -EILSEQ: the chunk that failed, UINT32_MAX for the whole image */
        bool readback_done;        /* the whole slot was read back and hashed during the apply */
        uint8_t readback_sha256[SHA256_SIZE];
        uint8_t readback_verity_root[SHA256_SIZE]; /* with a verity layout in the manifest: the root of the data */
        int errcode;               /* AGENT_EC_* of the failure */
        char error[AGENT_ERROR_MAX];
        bool source_mismatch;      /* delta: -ESTALE, the active slot is not the delta's source (fall back to full) */
} AgentApply;

/* Write the image of a verified payload into the target: stream chunks, copy/zero/download per plan, check each
 * chunk before writing it, sync + checkpoint as it goes. Does not touch the boot selection. */
int agent_apply(AgentApply *a);
/* Compare the slot as read back from the device, [target_off, +image_size), with the image SHA-256 (-EILSEQ on
 * mismatch). agent_apply() re-reads and hashes the slot behind its writers as they advance (readback_done); if it
 * did not get to the end, the whole slot is re-read here. */
int agent_apply_verify(AgentApply *a);
/* ---- Delta payloads (delta.c) ---- */
/* The plan for a delta payload (p->is_delta) from a->start_chunk on, after checking every COPY/PATCH reference in
 * the active slot against its SHA-256 in the manifest: -ESTALE with source_mismatch set (and a->error naming the
 * chunk) if one differs; nothing is downloaded before this. */
int agent_delta_plan(AgentApply *a, uint8_t *actions, uint32_t *src);
/* Decode chunk idx of a delta: its reference (if any) read from the active slot into ref (ref_len_max bytes),
 * checked, then the output checked (payload_chunk_decode_ref). Errors are recorded in a. */
int agent_delta_decode(AgentApply *a, uint32_t idx, const uint8_t *untrusted_stored, size_t len, uint8_t *ref,
                       uint8_t *out);

/* SHA-256 of [off, off+size) of fd. */
int agent_hash_range(int fd, uint64_t off, uint64_t size, uint8_t ret[SHA256_SIZE]);

/* ---- Health gate and reboot backends (agent-health.c) ---- */

/* Run every executable regular file in the dirs (sorted by name; a name in an earlier dir masks the same name in
 * later ones), each with a timeout. 0 when all exit 0; else -ETIMEDOUT/-ECHILD (exit != 0) with *ret_failed
 * (static) naming the script. */
int agent_health_run(const char *const *dirs, size_t n_dirs, unsigned timeout_sec, const char **ret_failed);
/* The same for hooks: with envp non-NULL each runs with exactly that environment, from "/". */
int agent_hooks_run(const char *const *dirs, size_t n_dirs, unsigned timeout_sec, char *const *envp,
                    const char **ret_failed);

int agent_run_command(const char *command);
/* In a forked child before exec: unblock every signal and set every disposition back to SIG_DFL, so a child
 * does not inherit the daemon's blocked SIGTERM/SIGINT or ignored SIGPIPE/SIGXFSZ. */
void agent_child_reset_signals(void);

/* ---- The agent (agent.c) ---- */

typedef struct AgentOptions {
        const char *root;          /* prefix for every default path ("" = /) */
        const char *disk;          /* --disk for bootcfg; NULL: live discovery */
        int backend;               /* enum bootcfg_backend_id */
        const char *cmdline;       /* file with the kernel command line (booted slot) */
        int booted;                /* -1: from the command line */
        const char *state_dir;     /* default ROOT/var/lib/cairn */
        const char *keys_dir;      /* default ROOT/usr/share/cairn/keys */
        const char *machine_id;    /* default from ROOT/etc/machine-id */
        const char *os_version;    /* default VERSION_ID of ROOT/usr/lib/os-release */
        const char *board;         /* default CAIRN_BOARD of os-release, else "amd64" */
        const char *boot_id;       /* default /proc/sys/kernel/random/boot_id */
        const char *server;        /* overrides SERVER */
        const char *group;         /* overrides GROUP */
        const char *reboot_cmd;    /* overrides REBOOT_COMMAND */
        const char *health_dirs[2];/* default ROOT/etc/cairn/health.d, ROOT/usr/lib/cairn/health.d */
        bool no_delta;
        bool no_nice;
} AgentOptions;

typedef struct Agent Agent;
int agent_new(const AgentOptions *o, Agent **ret, char *err, size_t errsize);
void agent_free(Agent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Agent *, agent_free);
#define _cleanup_agent_ _cleanup_(agent_freep)
const char *agent_error(const Agent *a);
AgentState *agent_state(Agent *a);
const AgentConfig *agent_config(const Agent *a);

/* Progress sink for interactive updates. */
typedef void (*agent_progress_fn)(void *userdata, const AgentState *s);
void agent_set_progress(Agent *a, agent_progress_fn fn, void *userdata);

/* After boot: rollback detection and health gate → mark-good + event. 0 nothing to do or done, < 0 error. */
int agent_post_boot(Agent *a);
/* True until agent_post_boot() has succeeded once in this process (the daemon runs the gate once a boot). */
bool agent_post_boot_pending(const Agent *a);
/* One update check. *ret_offer (may be NULL) gets the offer. 1 = an update we would apply, 0 = none. */
int agent_check(Agent *a, bool interactive, AgentOffer *ret_offer);
/* Check and, when an update is offered, download, verify, write, set next; then the reboot strategy.
 * force: also apply a version that failed before. Returns 1 updated (UPDATED_NEED_REBOOT), 0 nothing to do. */
int agent_update(Agent *a, bool interactive, bool force);
int agent_mark_good(Agent *a);
int agent_rollback(Agent *a);
/* Save the state file now. */
int agent_save(Agent *a);
const char *agent_state_path(const Agent *a);
const char *agent_machine_id(const Agent *a);
const char *agent_boot_id(const Agent *a);
const char *agent_root(const Agent *a);  /* "" for / */
const char *agent_state_dir(const Agent *a);
/* measure.c: before the reboot into the staged slot, make sure its PCR prediction is recorded (the state lock
 * held; best effort). */
int agent_measure_ensure(Agent *a);
/* Take the state directory's lock (as every writer does); -EAGAIN with agent_error() when another process has it. */
int agent_lock_state_dir(Agent *a, int *ret_fd);

/* ---- Reboot lifecycle (reboot.c): window → lock → pre-reboot hooks → reboot → health gate → post-boot hooks →
 * release; docs/reboot.md ---- */

typedef struct AgentReboot AgentReboot;
int agent_reboot_new(AgentReboot **ret);
void agent_reboot_free(AgentReboot *r);
AgentReboot *agent_reboot(Agent *a);
/* Test seams: the wall clock and the random source (NULL: time() and getrandom()). */
void agent_reboot_set_clock(Agent *a, time_t (*clock)(void), uint32_t (*rnd)(void));
/* Where the lifecycle's messages go (one line each; NULL: nowhere, they are still in lock_note). */
void agent_reboot_set_log(Agent *a, void (*log)(const char *line));
/* The post-boot gate has judged this boot (agent_post_boot calls it). */
void agent_reboot_gate_done(Agent *a);
/* Do what is due now, taking the state directory's lock; _locked: the caller holds it. */
void agent_reboot_tick(Agent *a);
void agent_reboot_step_locked(Agent *a);
/* CLOCK_MONOTONIC milliseconds at which the lifecycle wants to run again; -1: nothing pending. */
int64_t agent_reboot_due_ms(const Agent *a);
/* cairnctl reboot: reboot now (no window), through the strategy's lock; saved, so it survives a restart. */
int agent_reboot_request(Agent *a);
/* The environment of a pre-reboot.d or post-boot.d hook (hook is "pre-reboot" or "post-boot"; hook-env.c,
 * docs/reboot.md "Hook environment"): PATH, HOME, TZ (if set) and the CAIRN_* variables, NULL-terminated;
 * free with agent_hook_env_free(). */
int agent_hook_env(Agent *a, const char *hook, unsigned timeout, char ***ret);
void agent_hook_env_free(char **env);

/* What the daemon last read of the lock, for status (also filled by cairnctl lock-status). */
#define AGENT_HOLDERS_TEXT_MAX 2048
typedef struct AgentLockView {
        int64_t at;                     /* Unix time of the read; 0 never */
        int64_t max, available;
        size_t n_holders;
        char holders[AGENT_HOLDERS_TEXT_MAX]; /* newline-separated ids (cut at a whole id when too many) */
        char error[AGENT_LOCK_NOTE_MAX]; /* the last failure to reach the lock ("" none) */
} AgentLockView;
const AgentLockView *agent_reboot_view(const Agent *a);
/* The status text with the reboot block added (strategy, window, next opening, lock phase, holders, reason):
 * human lines after agent_status_text()'s, or a "reboot" member in its JSON object. view may be NULL (offline). */
int agent_status_text_full(const AgentState *s, const AgentConfig *c, const AgentLockView *view, bool json,
                           bool daemon_running, time_t now, char **ret_text);

/* Seconds until the next check the server asked for in its last answer (Omaha PollInterval); 0 = none. */
unsigned agent_poll_interval(const Agent *a);
/* The shortest interval taken from a server, so a mistaken channel setting cannot make a fleet hammer it. */
#define AGENT_POLL_INTERVAL_MIN 60

/* ---- Daemon (agent-daemon.c) ---- */
typedef struct AgentDaemonOptions {
        const char *socket_path;   /* default ROOT/run/cairn/updated.sock */
        bool once;                 /* one cycle (post-boot, check, apply) then exit */
} AgentDaemonOptions;
/* Run until SIGTERM/SIGINT. Returns 0, or with once the cycle's result. */
int agent_daemon_run(Agent *a, const AgentDaemonOptions *o);
