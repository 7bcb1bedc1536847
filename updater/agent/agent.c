/* updater/agent/agent.c — the agent's update flow: identity and paths, check, fetch + verify the manifest, guard rails,
 * apply with resume, set-next, reboot strategy, post-boot rollback detection and health gate, events. */
#include "agent.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "bootcfg/bootcfg.h"
#include "fileio.h"
#include "gpt.h"
#include "log.h"

struct Agent {
        AgentOptions o;
        AgentConfig cfg;
        AgentState st;
        AgentHttp *http;
        char root[PATH_MAX];
        char state_dir[PATH_MAX];
        char state_file[PATH_MAX];
        char bootcfg_dir[PATH_MAX];
        char keys_dir[PATH_MAX];
        char health[2][PATH_MAX];
        char machine_id[OMAHA_ATTR_MAX + 1];
        char os_version[AGENT_VERSION_MAX + 1];
        char board[PAYLOAD_STRING_MAX + 1];
        char boot_id[64];
        char oem[64];
        agent_progress_fn progress;
        void *progress_ud;
        char err[AGENT_ERROR_MAX];
        int errcode;            /* AGENT_EC_* of the failure in err (0: derived from the errno) */
        unsigned poll_interval; /* the server's PollInterval from the last good check; 0 = none */
        bool delta_refused;     /* ask with delta_okay="false" (the delta did not match the active slot) */
        bool delta_mismatch;    /* set by do_update(): the delta's references are not in the active slot */
};

/* snprintf that reports truncation (-ENAMETOOLONG) instead of warning about it at compile time. */
static int strf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static int strf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int fail(Agent *a, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(Agent *a, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, sizeof a->err, fmt, ap);
        va_end(ap);
        a->errcode = 0;
        return r;
}

/* fail() with the update_engine error code the event 3/0 reports. */
static int failc(Agent *a, int ec, int r, const char *fmt, ...) _printf_(4, 5);
static int failc(Agent *a, int ec, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, sizeof a->err, fmt, ap);
        va_end(ap);
        a->errcode = ec;
        return r;
}

const char *agent_error(const Agent *a) {
        return a->err;
}
AgentState *agent_state(Agent *a) {
        return &a->st;
}
const AgentConfig *agent_config(const Agent *a) {
        return &a->cfg;
}
unsigned agent_poll_interval(const Agent *a) {
        return a->poll_interval;
}
const char *agent_state_path(const Agent *a) {
        return a->state_file;
}
void agent_set_progress(Agent *a, agent_progress_fn fn, void *userdata) {
        a->progress = fn;
        a->progress_ud = userdata;
}

void agent_free(Agent *a) {
        if (!a)
                return;
        agent_http_free(a->http);
        free(a);
}

/* First line of a small file, trimmed. */
static int read_line(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_bounded(path, 4096, &data, &len);
        if (r < 0)
                return r;
        data[strcspn(data, "\r\n")] = 0;
        if (strlen(data) >= size)
                return -ENAMETOOLONG;
        strcpy(buf, data);
        return 0;
}

/* KEY=value from an os-release style file (quotes stripped); -ENOENT when the key is absent. */
static int os_release_get(const char *path, const char *key, char *buf, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_bounded(path, 64 * 1024, &data, &len);
        if (r < 0)
                return r;
        size_t kl = strlen(key);
        for (char *line = data; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
                        char *v = line + kl + 1;
                        size_t vl = strlen(v);
                        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                                v[vl - 1] = 0;
                                v++;
                        }
                        if (strlen(v) >= size)
                                return -ENAMETOOLONG;
                        strcpy(buf, v);
                        return 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

int agent_new(const AgentOptions *o, Agent **ret, char *err, size_t errsize) {
        _cleanup_agent_ Agent *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->o = *o;
        strf(a->root, sizeof a->root, "%s", o->root ? o->root : "");
        size_t rl = strlen(a->root);
        while (rl > 0 && a->root[rl - 1] == '/')
                a->root[--rl] = 0;
        const char *root = a->root;
        int r;

        agent_config_init(&a->cfg);
        AgentConfigError ce = { 0 };
        r = agent_config_load(&a->cfg, root, &ce);
        if (r < 0) {
                agent_config_error_format(&ce, r, err, errsize);
                return r;
        }
        if (o->server) {
                for (const char *q = o->server; *q; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                                strf(err, errsize, "--server holds a control character");
                                return -EINVAL;
                        }
                strf(a->cfg.server, sizeof a->cfg.server, "%s", o->server);
        }
        if (o->group) {
                if (!omaha_name_valid(o->group, 64)) {
                        strf(err, errsize, "group \"%s\" is not a valid channel name", o->group);
                        return -EINVAL;
                }
                strf(a->cfg.group, sizeof a->cfg.group, "%s", o->group);
        }
        if (o->reboot_cmd)
                strf(a->cfg.reboot_command, sizeof a->cfg.reboot_command, "%s", o->reboot_cmd);

        if (o->state_dir)
                strf(a->state_dir, sizeof a->state_dir, "%s", o->state_dir);
        else
                strf(a->state_dir, sizeof a->state_dir, "%s/var/lib/cairn", root);
        if (strf(a->state_file, sizeof a->state_file, "%s/state", a->state_dir) < 0 ||
            strf(a->bootcfg_dir, sizeof a->bootcfg_dir, "%s/bootcfg", a->state_dir) < 0) {
                strf(err, errsize, "state directory path \"%.64s…\" is too long", a->state_dir);
                return -ENAMETOOLONG;
        }
        if (o->keys_dir)
                strf(a->keys_dir, sizeof a->keys_dir, "%s", o->keys_dir);
        else
                strf(a->keys_dir, sizeof a->keys_dir, "%s/usr/share/cairn/keys", root);
        for (int i = 0; i < 2; i++) {
                if (o->health_dirs[i])
                        strf(a->health[i], sizeof a->health[i], "%s", o->health_dirs[i]);
                else
                        strf(a->health[i], sizeof a->health[i], "%s%s", root,
                                 i == 0 ? "/etc/cairn/health.d" : "/usr/lib/cairn/health.d");
        }

        char path[PATH_MAX];
        if (o->machine_id)
                strf(a->machine_id, sizeof a->machine_id, "%s", o->machine_id);
        else {
                strf(path, sizeof path, "%s/etc/machine-id", root);
                r = read_line(path, a->machine_id, sizeof a->machine_id);
                if (r < 0) {
                        strf(err, errsize, "cannot read the machine id from \"%s\": %s", path, strerror(-r));
                        return r;
                }
        }
        if (!omaha_machineid_valid(a->machine_id)) {
                strf(err, errsize, "machine id \"%s\" is not 1-64 of [A-Za-z0-9{}-]", a->machine_id);
                return -EINVAL;
        }
        strf(path, sizeof path, "%s/usr/lib/os-release", root);
        if (o->os_version)
                strf(a->os_version, sizeof a->os_version, "%s", o->os_version);
        else {
                r = os_release_get(path, "VERSION_ID", a->os_version, sizeof a->os_version);
                if (r < 0) {
                        strf(err, errsize, "cannot read VERSION_ID from \"%s\": %s", path, strerror(-r));
                        return r;
                }
        }
        if (!omaha_version_valid(a->os_version)) {
                strf(err, errsize, "running version \"%s\" is not dotted numeric", a->os_version);
                return -EINVAL;
        }
        if (o->board)
                strf(a->board, sizeof a->board, "%s", o->board);
        else if (os_release_get(path, "CAIRN_BOARD", a->board, sizeof a->board) < 0)
                strcpy(a->board, "amd64");
        strf(path, sizeof path, "%s/oem/oem-release", root);
        if (os_release_get(path, "ID", a->oem, sizeof a->oem) < 0)
                a->oem[0] = 0;
        if (o->boot_id)
                strf(a->boot_id, sizeof a->boot_id, "%s", o->boot_id);
        else if (read_line("/proc/sys/kernel/random/boot_id", a->boot_id, sizeof a->boot_id) < 0)
                strcpy(a->boot_id, "unknown");

        r = agent_state_load(&a->st, a->state_dir);
        if (r < 0) {
                strf(err, errsize, "state file \"%s\" is unreadable or corrupt: %s (move it away to start afresh)",
                         a->state_file, strerror(-r));
                return r;
        }
        strf(a->st.current_version, sizeof a->st.current_version, "%s", a->os_version);
        /* A state that only a running process can be in did not survive that process. */
        if (a->st.status != AGENT_UPDATED_NEED_REBOOT && a->st.status != AGENT_REPORTING_ERROR)
                a->st.status = a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE;

        AgentHttpOptions ho = { .rate_limit = a->cfg.rate_limit, .proxy = a->cfg.proxy, .ca_file = a->cfg.ca_file,
                                .stall_timeout = a->cfg.http_timeout, .low_speed_limit = a->cfg.low_speed_limit,
                                .transfer_timeout = a->cfg.transfer_timeout, .connect_timeout = 30 };
        r = agent_http_new(&ho, &a->http);
        if (r < 0) {
                strf(err, errsize, "cannot set up libcurl: %s", strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int agent_save(Agent *a) {
        struct stat st;
        if (stat(a->state_dir, &st) < 0) {
                int r = mkdir_parents(a->state_dir, true);
                if (r < 0)
                        return r;
        }
        return agent_state_save(&a->st, a->state_dir);
}

static void set_status(Agent *a, AgentStatus s) {
        a->st.status = s;
        (void)agent_save(a); /* best effort: a full state dir must not stop the daemon */
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
}

/* ---- the state directory's lock, and bootcfg and the slots ---- */

/* Every entry point that writes (update, post-boot gate, mark-good, rollback) holds the state directory's lock
 * throughout, so a daemon and a --once run never write state, records or slots at the same time. Not waited for:
 * the holder may be minutes into an apply. */
static int lock_state_dir(Agent *a, int *ret_fd) {
        int r = mkdir_parents(a->state_dir, true);
        if (r >= 0)
                r = lock_dir(a->state_dir, ret_fd);
        if (r == -EAGAIN)
                return fail(a, r, "state directory \"%s\" is busy (held by another cairn process); try again when "
                            "it is done", a->state_dir);
        if (r < 0)
                return fail(a, r, "cannot lock the state directory \"%s\": %s", a->state_dir, strerror(-r));
        return 0;
}

static int open_bootcfg(Agent *a, bool writable, struct bootcfg **ret) {
        struct bootcfg_options bo = {
                .disk = a->o.disk,
                .backend = (enum bootcfg_backend_id)a->o.backend,
                .state_dir = a->bootcfg_dir,
                .cmdline = a->o.cmdline,
                .booted = a->o.booted,
                .writable = writable,
        };
        char e[256];
        int r = bootcfg_open(&bo, ret, e, sizeof e);
        if (r < 0)
                return fail(a, r, "boot selection: %s", e);
        return 0;
}

typedef struct Slots {
        int fd;
        uint64_t off[2], size[2];
} Slots;

/* The slots of b's disk, through b's descriptor: b (opened writable) holds the disk's lock for as long as it is open,
 * and a second open() of the disk would not share it. */
static int open_slots(Agent *a, struct bootcfg *b, Slots *ret) {
        const char *disk = bootcfg_disk_path(b);
        _cleanup_close_ int fd = fcntl(bootcfg_disk_fd(b), F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return fail(a, negative_errno(), "cannot open the disk \"%s\" for writing: %m", disk);
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = gpt_read(fd, 0, GPT_READ_DEGRADED, &t, NULL);
        if (r < 0)
                return fail(a, r, "no usable GPT on \"%s\": %s", disk, strerror(-r));
        Slots s = { .fd = -1 };
        static const char *const labels[2] = { "USR-A", "USR-B" };
        int idx[2];
        for (int i = 0; i < 2; i++) {
                idx[i] = gpt_find_by_label(t, labels[i]);
                if (idx[i] < 0)
                        return fail(a, idx[i], "no single partition labelled \"%s\" on \"%s\"", labels[i], disk);
                const uint8_t *e = gpt_entry(t, (unsigned)idx[i]);
                s.off[i] = gpt_entry_first_lba(e) * GPT_SECTOR_SIZE;
                s.size[i] = (gpt_entry_last_lba(e) - gpt_entry_first_lba(e) + 1) * GPT_SECTOR_SIZE;
        }
        int booted = bootcfg_booted(b), running = bootcfg_running_partition(b);
        char why[320];
        r = gpt_check_layout(t, booted >= 0 ? idx[1 - booted] : -1, running >= 0 ? running : -1, 0, why, sizeof why);
        if (r < 0)
                return fail(a, r, "refusing to write the slots of \"%s\": %s", disk, why);
        s.fd = TAKE_FD(fd);
        *ret = s;
        return 0;
}

/* ---- Omaha ---- */

static void fill_request(Agent *a, AgentRequest *rq, bool interactive) {
        *rq = (AgentRequest){ .appid = AGENT_APPID, .version = a->os_version, .track = a->cfg.group,
                              .machineid = a->machine_id, .board = a->board, .bootid = a->boot_id, .oem = a->oem,
                              .interactive = interactive, .delta_okay = !a->o.no_delta && !a->delta_refused };
}

static int post_request(Agent *a, const AgentRequest *rq, OmahaResponse **ret) {
        if (!a->cfg.server[0])
                return fail(a, -EDESTADDRREQ, "no update server configured (SERVER= in /etc/cairn/update.conf)");
        _cleanup_buf_ Buf req;
        buf_init(&req, OMAHA_MAX_BODY);
        int r = agent_omaha_request_xml(rq, &req);
        if (r < 0)
                return fail(a, r, "cannot build the Omaha request: %s", strerror(-r));
        _cleanup_buf_ Buf resp;
        buf_init(&resp, OMAHA_MAX_BODY);
        r = agent_http_post(a->http, a->cfg.server, req.data, req.len, OMAHA_MAX_BODY, &resp);
        if (r < 0) {
                long st = agent_http_status(a->http);
                return failc(a, st > 0 && st != 200 ? AGENT_EC_OMAHA_HTTP_BASE + (int)MIN(st, 999L) : AGENT_EC_OMAHA_REQUEST,
                             r, "update check: %s", agent_http_error(a->http));
        }
        r = omaha_response_parse(resp.data ? resp.data : "", resp.len, ret);
        if (r < 0)
                return failc(a, AGENT_EC_OMAHA_XML_PARSE, r, "update server '%s' sent a malformed Omaha answer: %s",
                             a->cfg.server, r == -EBADMSG ? "not well-formed XML or not an Omaha <response>"
                                                          : omaha_parse_strerror(r));
        return 0;
}

/* Report an event; failures are only remembered, never fatal. */
static void send_event(Agent *a, int type, int result, int errorcode, const char *previous) {
        if (agent_cancelled())
                return; /* stopping: no new requests */
        AgentRequest rq;
        fill_request(a, &rq, false);
        rq.event_type = type;
        rq.event_result = result;
        rq.event_errorcode = errorcode;
        rq.previousversion = previous;
        char saved[AGENT_ERROR_MAX];
        memcpy(saved, a->err, sizeof saved);
        int saved_code = a->errcode;
        OmahaResponse *resp = NULL;
        if (post_request(a, &rq, &resp) >= 0)
                free(resp);
        memcpy(a->err, saved, sizeof saved);
        a->errcode = saved_code;
}

int agent_check(Agent *a, bool interactive, AgentOffer *ret_offer) {
        a->err[0] = 0;
        AgentStatus before = a->st.status == AGENT_UPDATED_NEED_REBOOT ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE;
        set_status(a, AGENT_CHECKING);
        AgentRequest rq;
        fill_request(a, &rq, interactive);
        rq.updatecheck = rq.ping = true;
        _cleanup_free_ OmahaResponse *resp = NULL;
        int r = post_request(a, &rq, &resp);
        AgentOffer offer;
        if (r >= 0) {
                const char *what = NULL;
                r = agent_offer_from_response(resp, &offer, &what);
                if (r < 0)
                        failc(a, AGENT_EC_OMAHA_RESPONSE_INVALID, r, "update server '%s' answered the check with %s",
                              a->cfg.server, what);
        }
        if (r < 0) {
                set_status(a, before);
                return r;
        }
        a->st.last_check = (int64_t)time(NULL);
        a->poll_interval = offer.poll_interval;
        int would = 0;
        if (offer.update && omaha_version_cmp(offer.version, a->os_version) > 0 &&
            strcmp(offer.version, a->st.staged_version) != 0)
                would = 1;
        a->st.status = before;
        if (ret_offer)
                *ret_offer = offer;
        set_status(a, before);
        return would;
}

/* ---- fetching the manifest ---- */

typedef struct MemSink {
        uint8_t *buf;
        size_t len, cap;
} MemSink;

static int mem_sink(void *ud, const uint8_t *data, size_t n) {
        MemSink *m = ud;
        if (n > m->cap - m->len)
                return -EMSGSIZE;
        memcpy(m->buf + m->len, data, n);
        m->len += n;
        return 0;
}

/* Key ids revoked by releases this host accepted, one hex id per line in STATE_DIR/revoked-keys. A release ships
 * its own trusted keys, so a revocation takes full effect once it boots; this list makes it hold from the moment
 * the release is accepted, so a payload signed only by the revoked key cannot replace a staged update. */
#define REVOKED_FILE_MAX 1024 /* ids kept; only ids of keys in the trusted directory matter when loading */

static int revoked_path(const Agent *a, char *buf, size_t size) {
        return strf(buf, size, "%s/revoked-keys", a->state_dir);
}

/* Read the list into *ret_ids (room for REVOKED_FILE_MAX ids, caller frees); returns the count or < 0 with
 * a->err set. */
static int revoked_read(Agent *a, uint8_t (**ret_ids)[CAIRN_KEY_ID_SIZE]) {
        const size_t max = REVOKED_FILE_MAX;
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = calloc(max, CAIRN_KEY_ID_SIZE);
        if (!ids)
                return fail(a, -ENOMEM, "out of memory");
        char path[PATH_MAX];
        if (revoked_path(a, path, sizeof path) < 0)
                return fail(a, -ENAMETOOLONG, "state directory path too long");
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, (CAIRN_KEY_ID_HEX_SIZE + 1) * (size_t)REVOKED_FILE_MAX, &buf, &len);
        if (r == -ENOENT) {
                *ret_ids = TAKE_PTR(ids);
                return 0;
        }
        if (r < 0)
                return fail(a, r, "cannot read the revoked key list \"%s\": %s", path, strerror(-r));
        size_t n = 0, line = 0;
        for (char *l = buf, *end; *l; l = end) {
                end = l + strcspn(l, "\n");
                if (*end)
                        *end++ = 0;
                line++;
                if (!*l)
                        continue; /* blank lines are allowed */
                if (n >= max)
                        return fail(a, -E2BIG, "revoked key list \"%s\" has more than %zu ids", path, max);
                if (key_id_from_hex(l, ids[n]) < 0)
                        return fail(a, -EBADMSG, "revoked key list \"%s\" line %zu is not a 16-digit key id", path,
                                    line);
                n++;
        }
        *ret_ids = TAKE_PTR(ids);
        return (int)n;
}

/* Revoke, in kr, every trusted key that an accepted release revoked. */
static int revoked_apply(Agent *a, CairnKeyring *kr) {
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = NULL;
        int n = revoked_read(a, &ids);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                if (keyring_find(kr, ids[i])) {
                        int r = keyring_revoke(kr, ids[i]);
                        if (r < 0)
                                return fail(a, r, "too many revoked keys");
                }
        return 0;
}

/* Add the ids a verified, accepted release revokes to the list (atomically; nothing to do if none is new). */
static int revoked_record(Agent *a, const Payload *p) {
        if (p->n_revoked == 0)
                return 0;
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = NULL;
        int n = revoked_read(a, &ids);
        if (n < 0)
                return n;
        size_t count = (size_t)n, before = count;
        for (uint32_t i = 0; i < p->n_revoked; i++) {
                bool known = false;
                for (size_t k = 0; k < count && !known; k++)
                        known = memcmp(ids[k], p->revoked[i], CAIRN_KEY_ID_SIZE) == 0;
                if (known)
                        continue;
                if (count == REVOKED_FILE_MAX) { /* keep the newest: drop the oldest id */
                        memmove(ids[0], ids[1], (REVOKED_FILE_MAX - 1) * CAIRN_KEY_ID_SIZE);
                        count--;
                }
                memcpy(ids[count++], p->revoked[i], CAIRN_KEY_ID_SIZE);
        }
        if (count == before)
                return 0;
        _cleanup_free_ char *text = malloc(count * CAIRN_KEY_ID_HEX_SIZE + 1);
        if (!text)
                return fail(a, -ENOMEM, "out of memory");
        size_t len = 0;
        for (size_t k = 0; k < count; k++) {
                char hex[CAIRN_KEY_ID_HEX_SIZE];
                len += (size_t)sprintf(text + len, "%s\n", key_id_to_hex(ids[k], hex));
        }
        char path[PATH_MAX];
        if (revoked_path(a, path, sizeof path) < 0)
                return fail(a, -ENAMETOOLONG, "state directory path too long");
        int r = mkdir_parents(a->state_dir, true);
        if (r >= 0)
                r = write_file_atomic(path, text, len, 0644);
        if (r < 0)
                return fail(a, r, "cannot write the revoked key list \"%s\": %s", path, strerror(-r));
        return 0;
}

/* GET [off, off+len) of the payload into m, from the offer's URLs in turn (the one that works stays in use). */
static int get_any(Agent *a, AgentOffer *offer, uint64_t off, uint64_t len, MemSink *m, uint64_t *counter) {
        size_t keep = m->len;
        int r = -EINVAL;
        for (; offer->url_index < offer->n_urls; offer->url_index++) {
                m->len = keep;
                r = agent_http_get_range(a->http, agent_offer_url(offer), off, len, mem_sink, m, counter);
                if (r >= 0 || r == -ECANCELED || offer->url_index + 1 == offer->n_urls)
                        break;
        }
        return r;
}

static int fetch_manifest(Agent *a, AgentOffer *offer, uint64_t *counter, Payload **ret) {
        uint8_t header[PAYLOAD_HEADER_SIZE];
        MemSink m = { .buf = header, .cap = sizeof header };
        if (offer->size < PAYLOAD_HEADER_SIZE)
                return failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG, "payload '%s' is only %" PRIu64 " bytes",
                             agent_offer_url(offer), offer->size);
        int r = get_any(a, offer, 0, sizeof header, &m, counter);
        if (r < 0)
                return failc(a, AGENT_EC_DOWNLOAD_TRANSFER, r, "fetching the payload header%s: %s",
                             offer->n_urls > 1 ? " (every <url> failed)" : "", agent_http_error(a->http));
        size_t prefix;
        r = payload_prefix_size(header, sizeof header, &prefix);
        if (r < 0)
                return failc(a, AGENT_EC_PAYLOAD_VERIFICATION, r, "payload '%s': %s", agent_offer_url(offer),
                             payload_strerror(r));
        if (prefix > offer->size)
                return failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG,
                             "payload '%s': manifest larger than the announced size", agent_offer_url(offer));
        _cleanup_free_ uint8_t *untrusted_prefix = malloc(prefix);
        if (!untrusted_prefix)
                return fail(a, -ENOMEM, "out of memory for a %zu-byte manifest", prefix);
        memcpy(untrusted_prefix, header, sizeof header);
        m = (MemSink){ .buf = untrusted_prefix, .len = sizeof header, .cap = prefix };
        r = get_any(a, offer, sizeof header, prefix - sizeof header, &m, counter);
        if (r < 0)
                return failc(a, AGENT_EC_DOWNLOAD_TRANSFER, r, "fetching the payload manifest: %s",
                             agent_http_error(a->http));

        CairnKeyring kr;
        keyring_init(&kr);
        _cleanup_free_ char *bad = NULL;
        r = keyring_load_dir(&kr, a->keys_dir, &bad);
        if (r < 0) {
                keyring_done(&kr);
                if (bad)
                        return fail(a, r, "trusted key \"%s/%s\" does not load: %s", a->keys_dir, bad, strerror(-r));
                return fail(a, r, "no trusted keys in \"%s\": %s", a->keys_dir, strerror(-r));
        }
        r = revoked_apply(a, &kr);
        if (r < 0) {
                keyring_done(&kr);
                return r;
        }
        r = payload_load(untrusted_prefix, prefix, &kr, ret);
        keyring_done(&kr);
        if (r < 0)
                return failc(a, AGENT_EC_PAYLOAD_VERIFICATION, r, "payload '%s' refused: %s", agent_offer_url(offer),
                             payload_strerror(r));
        return 0;
}

/* The update_engine error code (action_processor.h) of the failure in a->err for event 3/0: the one set where it
 * happened, else derived from the errno. */
static int event_errorcode(const Agent *a, int r) {
        if (a->errcode)
                return a->errcode;
        switch (r) {
        case -ENOKEY:
        case -EKEYREJECTED:
        case -EKEYREVOKED:
                return AGENT_EC_PAYLOAD_VERIFICATION;
        case -EILSEQ:
                return AGENT_EC_PAYLOAD_HASH_MISMATCH;
        case -ETIMEDOUT:
        case -ECONNRESET:
        case -ECONNREFUSED:
        case -ELOOP:
                return AGENT_EC_DOWNLOAD_TRANSFER;
        default:
                return AGENT_EC_ERROR;
        }
}

typedef struct ApplyUd {
        Agent *a;
        int slot;
} ApplyUd;

static int on_checkpoint(void *ud, uint32_t next) {
        ApplyUd *u = ud;
        Agent *a = u->a;
        a->st.resume_next = next;
        a->st.chunks_done = next;
        return agent_save(a);
}

static void on_progress(void *ud, uint32_t done, uint32_t total) {
        ApplyUd *u = ud;
        Agent *a = u->a;
        a->st.chunks_done = done;
        a->st.chunks_total = total;
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
}

static int do_update(Agent *a, bool interactive, bool force, AgentOffer *offer) {
        int r = agent_check(a, interactive, offer);
        if (r < 0)
                return r;
        if (!offer->update)
                return 0;
        if (omaha_version_cmp(offer->version, a->os_version) <= 0)
                return fail(a, -EPERM, "server offered %s, not newer than the running %s: refusing to downgrade",
                            offer->version, a->os_version);
        if (r == 0)
                return 0; /* already staged */
        if (agent_state_is_failed(&a->st, offer->version) && !force) {
                /* Rolled back before: never again automatically. Not an error; the note says why nothing
                 * happened. */
                strf(a->err, sizeof a->err, "not installing %s: it failed to boot before (cairnctl update --force "
                     "tries it again)", offer->version);
                return 0;
        }

        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        r = open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        int booted = bootcfg_booted(b);
        if (booted < 0)
                return fail(a, booted, "the booted slot is unknown (no cairn.slot= on the kernel command line)");
        int target = 1 - booted;
        Slots s = { .fd = -1 };
        r = open_slots(a, b, &s);
        if (r < 0) {
                a->errcode = AGENT_EC_INSTALL_DEVICE_OPEN;
                return r;
        }
        _cleanup_close_ int fd = s.fd;

        uint64_t fetched = 0;
        _cleanup_payload_ Payload *p = NULL;
        r = fetch_manifest(a, offer, &fetched, &p);
        if (r < 0)
                return r;
        /* Signed now: check what it says against what we are. */
        if (p->payload_size != offer->size)
                return failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG, "payload '%s' is %" PRIu64 " bytes, the server announced %" PRIu64,
                            agent_offer_url(offer), p->payload_size, offer->size);
        if (strcmp(p->version, offer->version) != 0)
                return fail(a, -EBADMSG, "payload '%s' is version %s, the server announced %s", agent_offer_url(offer),
                            p->version, offer->version);
        if (strcmp(p->board, a->board) != 0)
                return fail(a, -EXDEV, "payload '%s' is for board \"%s\", this host is \"%s\"", agent_offer_url(offer), p->board,
                            a->board);
        if (!omaha_version_valid(p->version) || omaha_version_cmp(p->version, a->os_version) <= 0)
                return fail(a, -EPERM, "payload '%s' is version %s, not newer than the running %s: refusing to "
                            "downgrade", agent_offer_url(offer), p->version, a->os_version);
        /* A newer release for this board, signed by a trusted key: its revocations hold from now on. */
        r = revoked_record(a, p);
        if (r < 0)
                return r;
        if (p->image_size > s.size[target])
                return failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EFBIG, "payload '%s' holds a %" PRIu64 "-byte image; slot %c has only %" PRIu64
                            " bytes", agent_offer_url(offer), p->image_size, bootcfg_slot_name(target), s.size[target]);

        /* The target must not be bootable while it is written (a staged older release is replaced). */
        struct bootcfg_state bs;
        r = bootcfg_read(b, &bs);
        if (r < 0)
                return fail(a, r, "boot selection: %s", bootcfg_error(b));
        if (bs.slot[target].priority > 0) {
                r = bootcfg_mark_bad(b, target, 0, NULL);
                if (r < 0)
                        return fail(a, r, "cannot take slot %c out of the boot order before writing it: %s",
                                    bootcfg_slot_name(target), bootcfg_error(b));
        }
        r = bootcfg_unverify(b, target);
        if (r < 0)
                return fail(a, r, "cannot remove the verification record of slot %c: %s", bootcfg_slot_name(target),
                            bootcfg_error(b));
        a->st.staged_slot = -1;
        a->st.staged_version[0] = a->st.staged_boot_id[0] = 0;

        uint32_t start = 0;
        if (a->st.resume_slot == target && strcmp(a->st.resume_version, p->version) == 0 &&
            a->st.resume_payload_size == p->payload_size &&
            memcmp(a->st.resume_image_sha256, p->image_sha256, SHA256_SIZE) == 0 && a->st.resume_next <= p->chunk_count)
                start = a->st.resume_next;
        else {
                a->st.resume_slot = target;
                strf(a->st.resume_version, sizeof a->st.resume_version, "%s", p->version);
                a->st.resume_payload_size = p->payload_size;
                memcpy(a->st.resume_image_sha256, p->image_sha256, SHA256_SIZE);
                a->st.resume_next = 0;
        }
        strf(a->st.new_version, sizeof a->st.new_version, "%s", p->version);
        a->st.new_size = p->payload_size;
        a->st.chunks_total = p->chunk_count;
        a->st.chunks_done = start;
        a->st.bytes_downloaded = a->st.bytes_reused = 0;
        a->st.status = AGENT_DOWNLOADING;
        r = agent_save(a);
        if (r < 0)
                return fail(a, r, "cannot write the state file \"%s\": %s", a->state_file, strerror(-r));
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
        send_event(a, OMAHA_EVENT_DOWNLOAD_STARTED, OMAHA_RESULT_SUCCESS, 0, NULL);

        ApplyUd ud = { .a = a, .slot = target };
        const char *urls[OMAHA_MAX_URLS];
        for (size_t i = 0; i < offer->n_urls; i++)
                urls[i] = offer->urls[i];
        /* With DOWNLOAD_RATE_LIMIT, one Range request must fit in HTTP_TRANSFER_TIMEOUT at that rate (half of it,
         * for headroom); it never goes below one chunk. */
        uint64_t range_max = 0;
        if (a->cfg.rate_limit && a->cfg.transfer_timeout)
                range_max = MAX(a->cfg.rate_limit / 2 * a->cfg.transfer_timeout, (uint64_t)1);
        AgentApply ap = {
                .http = a->http, .urls = urls, .n_urls = offer->n_urls, .url_index = offer->url_index,
                .range_max = range_max, .p = p, .fd = fd,
                .active_off = s.off[booted], .active_size = a->o.no_delta ? 0 : s.size[booted],
                .target_off = s.off[target], .target_size = s.size[target],
                .start_chunk = start, .checkpoint = on_checkpoint, .progress = on_progress, .userdata = &ud,
        };
        r = agent_apply(&ap);
        offer->url_index = ap.url_index;
        a->st.bytes_downloaded = fetched + ap.bytes_downloaded;
        a->st.bytes_reused = ap.bytes_copied;
        if (r == -ECANCELED)
                return fail(a, r, "applying %s to slot %c: interrupted; %" PRIu32 " of %" PRIu32 " chunks are written "
                            "and kept, the next run resumes there", p->version, bootcfg_slot_name(target),
                            a->st.resume_next, p->chunk_count);
        if (r == -ESTALE && ap.source_mismatch)
                a->delta_mismatch = true; /* agent_update() falls back to the full payload */
        if (r < 0)
                return failc(a, ap.errcode, r, "applying %s to slot %c: %s", p->version, bootcfg_slot_name(target),
                             ap.error);
        send_event(a, OMAHA_EVENT_DOWNLOAD_FINISHED, OMAHA_RESULT_SUCCESS, 0, NULL);

        set_status(a, AGENT_VERIFYING);
        r = agent_apply_verify(&ap);
        if (r == -ECANCELED)
                return fail(a, r, "verifying slot %c: interrupted", bootcfg_slot_name(target));
        if (r < 0) {
                a->st.resume_slot = -1; /* start over next time */
                return failc(a, ap.errcode, r, "verifying slot %c: %s", bootcfg_slot_name(target), ap.error);
        }

        set_status(a, AGENT_FINALIZING);
        r = bootcfg_set_next(b, target, BOOTCFG_VERIFIED, NULL);
        if (r < 0)
                return fail(a, r, "cannot make slot %c boot next: %s", bootcfg_slot_name(target), bootcfg_error(b));
        strf(a->st.staged_version, sizeof a->st.staged_version, "%s", p->version);
        a->st.staged_slot = target;
        strf(a->st.staged_boot_id, sizeof a->st.staged_boot_id, "%s", a->boot_id);
        strf(a->st.previous_version, sizeof a->st.previous_version, "%s", a->os_version);
        a->st.resume_slot = -1;
        a->st.resume_next = 0;
        a->st.resume_version[0] = 0;
        a->st.failures = 0;
        a->st.last_error[0] = 0;
        set_status(a, AGENT_UPDATED_NEED_REBOOT);
        send_event(a, OMAHA_EVENT_INSTALLED, OMAHA_RESULT_SUCCESS, 0, NULL);
        return 1;
}

int agent_update(Agent *a, bool interactive, bool force) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        AgentOffer offer = { 0 };
        a->errcode = 0;
        a->delta_mismatch = false;
        int r = do_update(a, interactive, force, &offer);
        if (r == -ESTALE && a->delta_mismatch) {
                /* The delta was made against another release than the one in the active slot (or the slot was
                 * changed): nothing of it beyond its manifest was downloaded. Ask again for the full payload. */
                log_msg("delta payload '%s' does not match the active slot: %s; falling back to the full payload",
                        agent_offer_url(&offer), a->err);
                a->delta_refused = true;
                a->err[0] = 0;
                a->errcode = 0;
                offer = (AgentOffer){ 0 };
                r = do_update(a, interactive, force, &offer);
                a->delta_refused = false;
        }
        if (r == -ECANCELED || (r < 0 && agent_cancelled())) {
                /* Stopped (SIGTERM): not a failure of the update. The resume record is saved; no event. */
                strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                set_status(a, a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE);
                return -ECANCELED;
        }
        if (r < 0) {
                strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                if (a->st.failures < AGENT_FAILURES_MAX)
                        a->st.failures++;
                set_status(a, AGENT_REPORTING_ERROR);
                send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, event_errorcode(a, r), NULL);
                return r;
        }
        if (r == 0) {
                a->st.failures = 0;
                if (a->st.status == AGENT_REPORTING_ERROR)
                        a->st.last_error[0] = 0;
                set_status(a, a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE);
                return 0;
        }
        const AgentRebootBackend *be = agent_reboot_backend(a->cfg.reboot_strategy);
        if (be && be->acquire(NULL) > 0) {
                int q = be->reboot(NULL, a->cfg.reboot_command);
                if (q < 0) {
                        strf(a->st.last_error, sizeof a->st.last_error, "reboot command \"%s\" failed",
                                 a->cfg.reboot_command);
                        (void)agent_save(a);
                }
        }
        return 1;
}

/* ---- after boot ---- */

int agent_post_boot(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        int booted = bootcfg_booted(b);
        if (booted < 0)
                return 0; /* not booted from a slot (e.g. an image being inspected): nothing to judge */
        struct bootcfg_state bs;
        r = bootcfg_read(b, &bs);
        if (r < 0)
                return fail(a, r, "boot selection: %s", bootcfg_error(b));
        bool rebooted = a->st.staged_slot >= 0 && strcmp(a->st.staged_boot_id, a->boot_id) != 0;
        if (rebooted && booted != a->st.staged_slot) {
                /* Came back on the old slot: the new one did not boot (or failed its health gate). */
                char failed[AGENT_VERSION_MAX + 1];
                strf(failed, sizeof failed, "%s", a->st.staged_version);
                agent_state_add_failed(&a->st, failed);
                strf(a->st.last_error, sizeof a->st.last_error,
                         "rolled back: version %s in slot %c did not boot; it will not be installed again "
                         "automatically", failed, bootcfg_slot_name(a->st.staged_slot));
                a->st.staged_slot = -1;
                a->st.staged_version[0] = a->st.staged_boot_id[0] = 0;
                a->st.new_version[0] = 0;
                set_status(a, AGENT_REPORTING_ERROR);
                send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, AGENT_EC_ROLLBACK, failed);
                return 0;
        }
        if (bs.slot[booted].successful) {
                if (rebooted) { /* marked good by someone else */
                        a->st.staged_slot = -1;
                        a->st.staged_version[0] = a->st.staged_boot_id[0] = 0;
                        set_status(a, AGENT_IDLE);
                }
                return 0;
        }
        /* Booted a slot not yet marked good: the health gate decides. */
        const char *dirs[2] = { a->health[0], a->health[1] };
        const char *which = NULL;
        r = agent_health_run(dirs, 2, a->cfg.health_timeout, &which);
        if (r == -ECANCELED)
                return fail(a, r, "health check \"%s\" interrupted (stop requested)", which ? which : "?");
        if (r < 0) {
                fail(a, r, "health check \"%s\" %s; slot %c not marked good", which ? which : "?",
                     r == -ETIMEDOUT ? "timed out" : "failed", bootcfg_slot_name(booted));
                strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                set_status(a, AGENT_REPORTING_ERROR);
                send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, 1, NULL);
                return r;
        }
        r = bootcfg_mark_good(b, booted, NULL);
        if (r < 0)
                return fail(a, r, "cannot mark slot %c good: %s", bootcfg_slot_name(booted), bootcfg_error(b));
        const AgentRebootBackend *be = agent_reboot_backend(a->cfg.reboot_strategy);
        if (be)
                (void)be->release(NULL);
        char prev[AGENT_VERSION_MAX + 1];
        strf(prev, sizeof prev, "%s", a->st.previous_version);
        a->st.staged_slot = -1;
        a->st.staged_version[0] = a->st.staged_boot_id[0] = 0;
        a->st.new_version[0] = 0;
        a->st.last_error[0] = 0;
        a->st.chunks_done = a->st.chunks_total = 0;
        set_status(a, AGENT_IDLE);
        send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_SUCCESS_REBOOT, 0, prev[0] ? prev : NULL);
        return 1;
}

int agent_mark_good(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        r = bootcfg_mark_good(b, -1, NULL);
        if (r < 0)
                return fail(a, r, "mark-good: %s", bootcfg_error(b));
        if (a->st.staged_slot == bootcfg_booted(b)) {
                a->st.staged_slot = -1;
                a->st.staged_version[0] = a->st.staged_boot_id[0] = 0;
        }
        (void)agent_save(a);
        return 0;
}

int agent_rollback(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        r = bootcfg_rollback(b, NULL);
        if (r < 0)
                return fail(a, r, "rollback: %s", bootcfg_error(b));
        return 0;
}
