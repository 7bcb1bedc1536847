/* updater/agent/state.c — the agent's state file (KEY=VALUE, written atomically) and its status text/JSON. */
#include "agent.h"

#include <inttypes.h>
#include <limits.h>
#include <time.h>

#include "fileio.h"
#include "kvfile.h"
#include "parse.h"

static const char *const status_names[_AGENT_STATUS_MAX] = {
        [AGENT_IDLE] = "IDLE",
        [AGENT_CHECKING] = "CHECKING",
        [AGENT_DOWNLOADING] = "DOWNLOADING",
        [AGENT_VERIFYING] = "VERIFYING",
        [AGENT_FINALIZING] = "FINALIZING",
        [AGENT_UPDATED_NEED_REBOOT] = "UPDATED_NEED_REBOOT",
        [AGENT_REPORTING_ERROR] = "REPORTING_ERROR",
};

static const char *const phase_names[_AGENT_LOCK_PHASE_MAX] = {
        [AGENT_LOCK_NONE] = "none",
        [AGENT_LOCK_ACQUIRING] = "acquiring",
        [AGENT_LOCK_PRE_REBOOT] = "pre-reboot",
        [AGENT_LOCK_REBOOTING] = "rebooting",
        [AGENT_LOCK_POST_BOOT] = "post-boot",
};

const char *agent_lock_phase_name(AgentLockPhase p) {
        return (unsigned)p < _AGENT_LOCK_PHASE_MAX ? phase_names[p] : "?";
}

const char *agent_status_name(AgentStatus s) {
        return s < _AGENT_STATUS_MAX ? status_names[s] : "?";
}

int agent_status_from_name(const char *s) {
        for (int i = 0; i < _AGENT_STATUS_MAX; i++)
                if (strcmp(s, status_names[i]) == 0)
                        return i;
        return -EINVAL;
}

void agent_state_init(AgentState *s) {
        *s = (AgentState){ .status = AGENT_IDLE, .staged_slot = -1, .resume_slot = -1, .lock_to_slot = -1 };
}

void agent_state_forget_staged(AgentState *s) {
        s->staged_slot = -1;
        s->staged_version[0] = s->staged_boot_id[0] = s->staged_verity_root[0] = 0;
}

bool agent_state_is_failed(const AgentState *s, const char *version) {
        for (size_t i = 0; i < s->n_failed; i++)
                if (strcmp(s->failed[i], version) == 0)
                        return true;
        return false;
}

void agent_state_add_failed(AgentState *s, const char *version) {
        if (agent_state_is_failed(s, version) || strlen(version) > AGENT_VERSION_MAX)
                return;
        if (s->n_failed == AGENT_FAILED_MAX) { /* forget the oldest */
                memmove(s->failed[0], s->failed[1], sizeof s->failed[0] * (AGENT_FAILED_MAX - 1));
                s->n_failed--;
        }
        strcpy(s->failed[s->n_failed++], version);
}

static int parse_slot(const char *v, int *ret) {
        if (!*v || strcmp(v, "-") == 0)
                *ret = -1;
        else if (strcmp(v, "A") == 0)
                *ret = 0;
        else if (strcmp(v, "B") == 0)
                *ret = 1;
        else
                return -EINVAL;
        return 0;
}

/* Remember that KEY=VALUE was reset (the first few, escaped), for the top level to log. */
static void note_reset(AgentState *s, const char *k, const char *v, const char *why) {
        char kk[48], vv[80];
        log_safe(kk, sizeof kk, k);
        log_safe(vv, sizeof vv, v);
        size_t used = strlen(s->load_note);
        if (used + 1 >= sizeof s->load_note)
                return;
        snprintf(s->load_note + used, sizeof s->load_note - used, "%s%s=\"%s\" %s, reset", used ? "; " : "", kk, vv,
                 why);
}

#define VSTR(field) (kvfile_copy(s->field, sizeof s->field, v) < 0 ? -EINVAL : 0)

/* One KEY=VALUE of the state file. A value that does not parse leaves the field at its default (from
 * agent_state_init) and is noted; it never fails the load. */
static int state_kv(AgentState *s, const char *k, const char *v) {
        int r = 0;
        const char *why = "is too long";
        if (strcmp(k, "STATE") == 0) {
                int st = agent_status_from_name(v);
                if (st < 0) {
                        r = -EINVAL;
                        why = "is not a state name";
                } else
                        s->status = (AgentStatus)st;
        } else if (strcmp(k, "CURRENT_VERSION") == 0) r = VSTR(current_version);
        else if (strcmp(k, "NEW_VERSION") == 0) r = VSTR(new_version);
        else if (strcmp(k, "LAST_ERROR") == 0) r = VSTR(last_error);
        else if (strcmp(k, "STAGED_VERSION") == 0) r = VSTR(staged_version);
        else if (strcmp(k, "STAGED_BOOT_ID") == 0) r = VSTR(staged_boot_id);
        else if (strcmp(k, "STAGED_VERITY_ROOT") == 0) {
                uint8_t h[SHA256_SIZE];
                r = *v && hex_decode(v, h, SHA256_SIZE) < 0 ? -EINVAL : VSTR(staged_verity_root);
                why = "is not a root hash (64 hex digits)";
        }
        else if (strcmp(k, "PREVIOUS_VERSION") == 0) r = VSTR(previous_version);
        else if (strcmp(k, "RESUME_VERSION") == 0) r = VSTR(resume_version);
        else if (strcmp(k, "LOCK_BOOT_ID") == 0) r = VSTR(lock_boot_id);
        else if (strcmp(k, "LOCK_NOTE") == 0) r = VSTR(lock_note);
        else if (strcmp(k, "LOCK_FROM_VERSION") == 0) r = VSTR(lock_from_version);
        else if (strcmp(k, "LOCK_TO_VERSION") == 0) r = VSTR(lock_to_version);
        else if (strcmp(k, "LOCK_TO_SLOT") == 0) {
                r = parse_slot(v, &s->lock_to_slot);
                why = "is not a slot (A, B or -)";
        }
        else if (strcmp(k, "LOCK_PHASE") == 0) {
                /* Unreadable: this host may hold the lock; "acquiring" makes the agent give it back if it does. */
                r = -EINVAL;
                why = "is not a lock phase (none, acquiring, pre-reboot, rebooting, post-boot): treated as acquiring";
                s->lock_phase = AGENT_LOCK_ACQUIRING;
                for (int i = 0; i < _AGENT_LOCK_PHASE_MAX; i++)
                        if (strcmp(v, phase_names[i]) == 0) {
                                s->lock_phase = (AgentLockPhase)i;
                                r = 0;
                        }
        } else if (strcmp(k, "REBOOT_REQUESTED") == 0) {
                r = strcmp(v, "0") == 0 || strcmp(v, "1") == 0 ? 0 : -EINVAL;
                why = "is not 0 or 1";
                s->reboot_requested = strcmp(v, "1") == 0;
        }
        else if (strcmp(k, "STAGED_SLOT") == 0 || strcmp(k, "RESUME_SLOT") == 0) {
                r = parse_slot(v, k[0] == 'S' ? &s->staged_slot : &s->resume_slot);
                why = "is not a slot (A, B or -)";
        } else if (strcmp(k, "RESUME_SHA256") == 0) {
                uint8_t h[SHA256_SIZE];
                r = hex_decode(v, h, SHA256_SIZE) < 0 ? -EINVAL : 0;
                if (r >= 0)
                        memcpy(s->resume_image_sha256, h, SHA256_SIZE);
                why = "is not 64 hex digits";
        } else if (strcmp(k, "FAILED") == 0) {
                if (!omaha_version_valid(v) || strlen(v) > AGENT_VERSION_MAX) {
                        r = -EINVAL;
                        why = "is not a version";
                } else
                        agent_state_add_failed(s, v);
        } else {
                static const struct {
                        const char *key;
                        size_t off, size;
                        uint64_t max;
                        const char *why;
                } nums[] = {
                        { "NEW_SIZE", offsetof(AgentState, new_size), 8, INT64_MAX, "is out of range (0..2^63-1)" },
                        { "CHUNKS_DONE", offsetof(AgentState, chunks_done), 4, PAYLOAD_CHUNKS_MAX,
                          "is out of range (0..the chunk limit)" },
                        { "CHUNKS_TOTAL", offsetof(AgentState, chunks_total), 4, PAYLOAD_CHUNKS_MAX,
                          "is out of range (0..the chunk limit)" },
                        { "LAST_CHECK", offsetof(AgentState, last_check), 8, (uint64_t)AGENT_TIME_MAX,
                          "is out of range (0..253402300799, the year 9999)" },
                        { "FAILURES", offsetof(AgentState, failures), 4, AGENT_FAILURES_MAX,
                          "is out of range (0..1000000)" },
                        { "BYTES_DOWNLOADED", offsetof(AgentState, bytes_downloaded), 8, INT64_MAX,
                          "is out of range (0..2^63-1)" },
                        { "BYTES_REUSED", offsetof(AgentState, bytes_reused), 8, INT64_MAX,
                          "is out of range (0..2^63-1)" },
                        { "RESUME_PAYLOAD_SIZE", offsetof(AgentState, resume_payload_size), 8, INT64_MAX,
                          "is out of range (0..2^63-1)" },
                        { "RESUME_NEXT", offsetof(AgentState, resume_next), 4, PAYLOAD_CHUNKS_MAX,
                          "is out of range (0..the chunk limit)" },
                        { "LOCK_FAILURES", offsetof(AgentState, lock_failures), 4, AGENT_FAILURES_MAX,
                          "is out of range (0..1000000)" },
                        { "WINDOW_PICK", offsetof(AgentState, window_pick), 8, (uint64_t)AGENT_TIME_MAX,
                          "is out of range (0..253402300799, the year 9999)" },
                        { "WINDOW_PICK_CLOSE", offsetof(AgentState, window_pick_close), 8, (uint64_t)AGENT_TIME_MAX,
                          "is out of range (0..253402300799, the year 9999)" },
                };
                for (size_t i = 0; i < ELEMENTSOF(nums); i++) {
                        if (strcmp(k, nums[i].key) != 0)
                                continue;
                        uint64_t x;
                        r = parse_u64_range(v, 0, nums[i].max, &x);
                        why = r == -ERANGE ? nums[i].why : "is not a number";
                        if (r < 0)
                                break;
                        if (nums[i].size == 4) {
                                uint32_t y = (uint32_t)x;
                                memcpy((char *)s + nums[i].off, &y, 4);
                        } else
                                memcpy((char *)s + nums[i].off, &x, 8);
                        break;
                }
        }
        if (r < 0)
                note_reset(s, k, v, why);
        return r;
}

typedef struct ParseCtx {
        AgentState *s;
        bool drop_resume;
} ParseCtx;

static int parse_one(const char *k, const char *v, unsigned line, void *userdata, const char **ret_why) {
        ParseCtx *x = userdata;
        if (state_kv(x->s, k, v) < 0 && strncmp(k, "RESUME_", 7) == 0)
                x->drop_resume = true;
        return 0; /* a bad value is reset (state_kv says so), never fatal */
}

int agent_state_parse(AgentState *s, const char *text, size_t len) {
        AgentState n;
        agent_state_init(&n);
        ParseCtx x = { .s = &n };
        if (kvfile_parse(text, len, parse_one, &x, NULL) < 0)
                return -EBADMSG;
        /* A resume record is all or nothing: one reset field drops it (the apply then starts over). */
        if (x.drop_resume) {
                n.resume_slot = -1;
                n.resume_next = 0;
                n.resume_version[0] = 0;
        }
        *s = n;
        return 0;
}

static const char *slot_str(int slot) {
        return slot == 0 ? "A" : slot == 1 ? "B" : "-";
}

/* A single line: control characters become spaces. */
static void put_line(Buf *b, const char *key, const char *v) {
        buf_printf(b, "%s=", key);
        for (; *v; v++)
                buf_put(b, (unsigned char)*v < 0x20 ? " " : v, 1);
        buf_puts(b, "\n");
}

int agent_state_format(const AgentState *s, char **ret_text, size_t *ret_len) {
        _cleanup_buf_ Buf b;
        buf_init(&b, AGENT_STATE_MAX);
        char hex[2 * SHA256_SIZE + 1];
        buf_puts(&b, "# cairn-updated state (written atomically; see docs/agent.md)\n");
        put_line(&b, "STATE", agent_status_name(s->status));
        put_line(&b, "CURRENT_VERSION", s->current_version);
        put_line(&b, "NEW_VERSION", s->new_version);
        buf_printf(&b, "NEW_SIZE=%" PRIu64 "\nCHUNKS_DONE=%" PRIu32 "\nCHUNKS_TOTAL=%" PRIu32 "\n", s->new_size,
                    s->chunks_done, s->chunks_total);
        buf_printf(&b, "LAST_CHECK=%" PRId64 "\nFAILURES=%u\n", s->last_check < 0 ? 0 : s->last_check, s->failures);
        put_line(&b, "LAST_ERROR", s->last_error);
        buf_printf(&b, "BYTES_DOWNLOADED=%" PRIu64 "\nBYTES_REUSED=%" PRIu64 "\n", s->bytes_downloaded,
                    s->bytes_reused);
        put_line(&b, "STAGED_VERSION", s->staged_version);
        put_line(&b, "STAGED_SLOT", slot_str(s->staged_slot));
        put_line(&b, "STAGED_BOOT_ID", s->staged_boot_id);
        put_line(&b, "STAGED_VERITY_ROOT", s->staged_verity_root);
        put_line(&b, "PREVIOUS_VERSION", s->previous_version);
        for (size_t i = 0; i < s->n_failed; i++)
                put_line(&b, "FAILED", s->failed[i]);
        put_line(&b, "RESUME_VERSION", s->resume_version);
        put_line(&b, "RESUME_SLOT", slot_str(s->resume_slot));
        put_line(&b, "RESUME_SHA256", hex_encode(s->resume_image_sha256, SHA256_SIZE, hex));
        buf_printf(&b, "RESUME_PAYLOAD_SIZE=%" PRIu64 "\nRESUME_NEXT=%" PRIu32 "\n", s->resume_payload_size,
                    s->resume_next);
        put_line(&b, "LOCK_PHASE", agent_lock_phase_name(s->lock_phase));
        put_line(&b, "LOCK_BOOT_ID", s->lock_boot_id);
        buf_printf(&b, "REBOOT_REQUESTED=%d\nLOCK_FAILURES=%u\n", s->reboot_requested ? 1 : 0, s->lock_failures);
        put_line(&b, "LOCK_NOTE", s->lock_note);
        put_line(&b, "LOCK_FROM_VERSION", s->lock_from_version);
        put_line(&b, "LOCK_TO_VERSION", s->lock_to_version);
        put_line(&b, "LOCK_TO_SLOT", slot_str(s->lock_to_slot));
        buf_printf(&b, "WINDOW_PICK=%" PRId64 "\nWINDOW_PICK_CLOSE=%" PRId64 "\n", s->window_pick < 0 ? 0 : s->window_pick,
                   s->window_pick_close < 0 ? 0 : s->window_pick_close);
        if (b.err)
                return b.err;
        if (ret_len)
                *ret_len = b.len;
        *ret_text = TAKE_PTR(b.data);
        return 0;
}

static void state_path(const char *dir, char *buf, size_t size) {
        snprintf(buf, size, "%s/state", dir);
}

int agent_state_load(AgentState *s, const char *dir) {
        char path[PATH_MAX];
        state_path(dir, path, sizeof path);
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, AGENT_STATE_MAX, &buf, &len);
        if (r == -ENOENT) {
                agent_state_init(s);
                return 0;
        }
        if (r < 0)
                return r;
        return agent_state_parse(s, buf, len);
}

int agent_state_save(const AgentState *s, const char *dir) {
        char path[PATH_MAX];
        state_path(dir, path, sizeof path);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = agent_state_format(s, &text, &len);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, len, 0644);
}

/* The dm-verity root hash the booted slot was activated with: cairn.usrhash= on the kernel command line
 * ($CAIRN_CMDLINE or /proc/cmdline), "" if none. */
static void booted_verity_root(char out[2 * SHA256_SIZE + 1]) {
        out[0] = 0;
        const char *path = getenv("CAIRN_CMDLINE");
        _cleanup_free_ char *cmdline = NULL;
        if (read_file_bounded(path && *path ? path : "/proc/cmdline", 8192, &cmdline, NULL) < 0)
                return;
        for (char *w = cmdline, *save = NULL; (w = strtok_r(w, " \t\n", &save)); w = NULL) {
                uint8_t h[SHA256_SIZE];
                if (strncmp(w, "cairn.usrhash=", 14) == 0 && strlen(w + 14) == 2 * SHA256_SIZE &&
                    hex_decode(w + 14, h, SHA256_SIZE) == 0)
                        hex_encode(h, SHA256_SIZE, out);
        }
}

int agent_status_text(const AgentState *s, bool json, bool daemon_running, char **ret_text) {
        char booted_root[2 * SHA256_SIZE + 1];
        booted_verity_root(booted_root);
        _cleanup_buf_ Buf b;
        buf_init(&b, AGENT_STATE_MAX);
        double progress = s->chunks_total ? (double)s->chunks_done / s->chunks_total : 0.0;
        if (json) {
                buf_puts(&b, "{\"state\":");
                buf_put_json(&b, agent_status_name(s->status));
                buf_puts(&b, ",\"current_version\":");
                buf_put_json(&b, s->current_version);
                buf_puts(&b, ",\"new_version\":");
                buf_put_json(&b, s->new_version);
                buf_printf(&b, ",\"new_size\":%" PRIu64 ",\"progress\":%.4f,\"chunks_done\":%" PRIu32
                                ",\"chunks_total\":%" PRIu32 ",\"last_check\":%" PRId64 ",\"failures\":%u",
                            s->new_size, progress, s->chunks_done, s->chunks_total, s->last_check, s->failures);
                buf_puts(&b, ",\"last_error\":");
                buf_put_json(&b, s->last_error);
                buf_printf(&b, ",\"bytes_downloaded\":%" PRIu64 ",\"bytes_reused\":%" PRIu64, s->bytes_downloaded,
                            s->bytes_reused);
                buf_puts(&b, ",\"staged_version\":");
                buf_put_json(&b, s->staged_version);
                buf_puts(&b, ",\"staged_slot\":");
                if (s->staged_slot >= 0)
                        buf_put_json(&b, slot_str(s->staged_slot));
                else
                        buf_puts(&b, "null");
                buf_puts(&b, ",\"staged_verity_root\":");
                if (s->staged_slot >= 0 && s->staged_verity_root[0])
                        buf_put_json(&b, s->staged_verity_root);
                else
                        buf_puts(&b, "null");
                buf_puts(&b, ",\"booted_verity_root\":");
                if (booted_root[0])
                        buf_put_json(&b, booted_root);
                else
                        buf_puts(&b, "null");
                buf_puts(&b, ",\"failed_versions\":[");
                for (size_t i = 0; i < s->n_failed; i++) {
                        if (i)
                                buf_puts(&b, ",");
                        buf_put_json(&b, s->failed[i]);
                }
                buf_printf(&b, "],\"daemon\":%s}\n", daemon_running ? "true" : "false");
        } else {
                buf_printf(&b, "state:            %s\n", agent_status_name(s->status));
                buf_printf(&b, "current version:  %s\n", s->current_version[0] ? s->current_version : "unknown");
                buf_printf(&b, "new version:      %s\n", s->new_version[0] ? s->new_version : "-");
                if (s->chunks_total)
                        buf_printf(&b, "progress:         %.1f%% (%" PRIu32 "/%" PRIu32 " chunks, %" PRIu64
                                        " bytes downloaded, %" PRIu64 " reused)\n",
                                    progress * 100, s->chunks_done, s->chunks_total, s->bytes_downloaded,
                                    s->bytes_reused);
                if (s->last_check) {
                        char tbuf[64];
                        time_t t = (time_t)s->last_check;
                        struct tm tm;
                        /* The parser keeps last_check in [0, AGENT_TIME_MAX]; still, never hand NULL on. */
                        if (s->last_check < 0 || s->last_check > AGENT_TIME_MAX || !gmtime_r(&t, &tm) ||
                            strftime(tbuf, sizeof tbuf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                                snprintf(tbuf, sizeof tbuf, "invalid (%" PRId64 ")", s->last_check);
                        buf_printf(&b, "last check:       %s\n", tbuf);
                } else
                        buf_puts(&b, "last check:       never\n");
                buf_printf(&b, "last error:       %s\n", s->last_error[0] ? s->last_error : "-");
                if (s->staged_slot >= 0)
                        buf_printf(&b, "staged:           %s in slot %s (reboot to use it)\n", s->staged_version,
                                    slot_str(s->staged_slot));
                if (s->staged_slot >= 0 && s->staged_verity_root[0])
                        buf_printf(&b, "staged root hash: %s\n", s->staged_verity_root);
                buf_printf(&b, "booted root hash: %s\n", booted_root[0] ? booted_root : "-");
                for (size_t i = 0; i < s->n_failed; i++)
                        buf_printf(&b, "failed version:   %s (not retried automatically)\n", s->failed[i]);
                buf_printf(&b, "daemon:           %s\n", daemon_running ? "running" : "not running (state file)");
        }
        if (b.err)
                return b.err;
        *ret_text = TAKE_PTR(b.data);
        return 0;
}
