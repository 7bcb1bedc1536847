/* updater/agent/agent.c — the Agent: identity and paths (machine id, os-release, board), options and config, the state file, the state directory's lock, the boot selection and the slots; error detail. */
#include "agent-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "gpt.h"
#include "kvfile.h"

/* snprintf that reports truncation (-ENAMETOOLONG) instead of warning about it at compile time. */
int agent_strf(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int agent_fail(Agent *a, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, sizeof a->err, fmt, ap);
        va_end(ap);
        a->errcode = 0;
        return r;
}

/* agent_fail() with the update_engine error code the event 3/0 reports. */
int agent_failc(Agent *a, int ec, int r, const char *fmt, ...) {
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
const char *agent_machine_id(const Agent *a) {
        return a->machine_id;
}
const char *agent_boot_id(const Agent *a) {
        return a->boot_id;
}
const char *agent_root(const Agent *a) {
        return a->root;
}
AgentReboot *agent_reboot(Agent *a) {
        return a->reboot;
}
void agent_set_progress(Agent *a, agent_progress_fn fn, void *userdata) {
        a->progress = fn;
        a->progress_ud = userdata;
}

void agent_free(Agent *a) {
        if (!a)
                return;
        agent_http_free(a->http);
        agent_reboot_free(a->reboot);
        free(a->event_xml);
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

/* KEY=value from an os-release file (kvfile grammar); -ENOENT when the key is absent. */
static int os_release_get(const char *path, const char *key, char *buf, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_bounded(path, 64 * 1024, &data, &len);
        if (r < 0)
                return r;
        return kvfile_get(data, len, key, buf, size);
}

/* update.conf, then the command line's overrides (--server, --group, --reboot-command). */
static int load_config(Agent *a, const AgentOptions *o, char *err, size_t errsize) {
        agent_config_init(&a->cfg);
        AgentConfigError ce = { 0 };
        int r = agent_config_load(&a->cfg, a->root, &ce);
        if (r < 0) {
                agent_config_error_format(&ce, r, err, errsize);
                return r;
        }
        if (o->server) {
                for (const char *q = o->server; *q; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                                agent_strf(err, errsize, "--server holds a control character");
                                return -EINVAL;
                        }
                agent_strf(a->cfg.server, sizeof a->cfg.server, "%s", o->server);
        }
        if (o->group) {
                if (!omaha_name_valid(o->group, 64)) {
                        agent_strf(err, errsize, "group \"%s\" is not a valid channel name", o->group);
                        return -EINVAL;
                }
                agent_strf(a->cfg.group, sizeof a->cfg.group, "%s", o->group);
        }
        if (o->reboot_cmd)
                agent_strf(a->cfg.reboot_command, sizeof a->cfg.reboot_command, "%s", o->reboot_cmd);
        return 0;
}

/* The state directory, state file, keys and health-check directories below the root (or as given). */
static int set_paths(Agent *a, const AgentOptions *o, char *err, size_t errsize) {
        const char *root = a->root;
        if (o->state_dir)
                agent_strf(a->state_dir, sizeof a->state_dir, "%s", o->state_dir);
        else
                agent_strf(a->state_dir, sizeof a->state_dir, "%s/var/lib/cairn", root);
        if (agent_strf(a->state_file, sizeof a->state_file, "%s/state", a->state_dir) < 0 ||
            agent_strf(a->bootcfg_dir, sizeof a->bootcfg_dir, "%s/bootcfg", a->state_dir) < 0) {
                agent_strf(err, errsize, "state directory path \"%.64s…\" is too long", a->state_dir);
                return -ENAMETOOLONG;
        }
        if (o->keys_dir)
                agent_strf(a->keys_dir, sizeof a->keys_dir, "%s", o->keys_dir);
        else
                agent_strf(a->keys_dir, sizeof a->keys_dir, "%s/usr/share/cairn/keys", root);
        for (int i = 0; i < 2; i++) {
                if (o->health_dirs[i])
                        agent_strf(a->health[i], sizeof a->health[i], "%s", o->health_dirs[i]);
                else
                        agent_strf(a->health[i], sizeof a->health[i], "%s%s", root,
                                 i == 0 ? "/etc/cairn/health.d" : "/usr/lib/cairn/health.d");
        }
        return 0;
}

/* Who this host is: machine id, running version and board (os-release), OEM id, boot id. */
static int load_identity(Agent *a, const AgentOptions *o, char *err, size_t errsize) {
        const char *root = a->root;
        char path[PATH_MAX];
        int r;
        if (o->machine_id)
                agent_strf(a->machine_id, sizeof a->machine_id, "%s", o->machine_id);
        else {
                agent_strf(path, sizeof path, "%s/etc/machine-id", root);
                r = read_line(path, a->machine_id, sizeof a->machine_id);
                if (r < 0) {
                        agent_strf(err, errsize, "cannot read the machine id from \"%s\": %s", path, strerror(-r));
                        return r;
                }
        }
        if (!omaha_machineid_valid(a->machine_id)) {
                agent_strf(err, errsize, "machine id \"%s\" is not 1-64 of [A-Za-z0-9{}-]", a->machine_id);
                return -EINVAL;
        }
        agent_strf(path, sizeof path, "%s/usr/lib/os-release", root);
        if (o->os_version)
                agent_strf(a->os_version, sizeof a->os_version, "%s", o->os_version);
        else {
                r = os_release_get(path, "VERSION_ID", a->os_version, sizeof a->os_version);
                if (r < 0) {
                        agent_strf(err, errsize, "cannot read VERSION_ID from \"%s\": %s", path, strerror(-r));
                        return r;
                }
        }
        if (!omaha_version_valid(a->os_version)) {
                agent_strf(err, errsize, "running version \"%s\" is not dotted numeric", a->os_version);
                return -EINVAL;
        }
        if (o->board)
                agent_strf(a->board, sizeof a->board, "%s", o->board);
        else if (os_release_get(path, "CAIRN_BOARD", a->board, sizeof a->board) < 0)
                strcpy(a->board, "amd64");
        agent_strf(path, sizeof path, "%s/oem/oem-release", root);
        if (os_release_get(path, "ID", a->oem, sizeof a->oem) < 0)
                a->oem[0] = 0;
        if (o->boot_id)
                agent_strf(a->boot_id, sizeof a->boot_id, "%s", o->boot_id);
        else if (read_line("/proc/sys/kernel/random/boot_id", a->boot_id, sizeof a->boot_id) < 0)
                strcpy(a->boot_id, "unknown");
        return 0;
}

int agent_new(const AgentOptions *o, Agent **ret, char *err, size_t errsize) {
        _cleanup_agent_ Agent *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->o = *o;
        agent_strf(a->root, sizeof a->root, "%s", o->root ? o->root : "");
        size_t rl = strlen(a->root);
        while (rl > 0 && a->root[rl - 1] == '/')
                a->root[--rl] = 0;
        int r = load_config(a, o, err, errsize);
        if (r >= 0)
                r = set_paths(a, o, err, errsize);
        if (r >= 0)
                r = load_identity(a, o, err, errsize);
        if (r < 0)
                return r;

        r = agent_state_load(&a->st, a->state_dir);
        if (r < 0) {
                agent_strf(err, errsize, "state file \"%s\" is unreadable or corrupt: %s (move it away to start afresh)",
                         a->state_file, strerror(-r));
                return r;
        }
        agent_strf(a->st.current_version, sizeof a->st.current_version, "%s", a->os_version);
        /* A state that only a running process can be in did not survive that process. */
        if (a->st.status != AGENT_UPDATED_NEED_REBOOT && a->st.status != AGENT_REPORTING_ERROR)
                a->st.status = a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE;

        AgentHttpOptions ho = { .rate_limit = a->cfg.rate_limit, .proxy = a->cfg.proxy, .ca_file = a->cfg.ca_file,
                                .stall_timeout = a->cfg.http_timeout, .low_speed_limit = a->cfg.low_speed_limit,
                                .transfer_timeout = a->cfg.transfer_timeout, .connect_timeout = 30 };
        r = agent_http_new(&ho, &a->http);
        if (r < 0) {
                agent_strf(err, errsize, "cannot set up libcurl: %s", strerror(-r));
                return r;
        }
        r = agent_reboot_new(&a->reboot);
        if (r < 0) {
                agent_strf(err, errsize, "cannot set up the reboot lifecycle: %s", strerror(-r));
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

void agent_set_status(Agent *a, AgentStatus s) {
        a->st.status = s;
        (void)agent_save(a); /* best effort: a full state dir must not stop the daemon */
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
}

/* ---- the state directory's lock, and bootcfg and the slots ---- */

/* Every entry point that writes (update, post-boot gate, mark-good, rollback) holds the state directory's lock
 * throughout, so a daemon and a --once run never write state, records or slots at the same time. Not waited for:
 * the holder may be minutes into an apply. */
int agent_lock_state_dir(Agent *a, int *ret_fd) {
        int r = mkdir_parents(a->state_dir, true);
        if (r >= 0)
                r = lock_dir(a->state_dir, ret_fd);
        if (r == -EAGAIN)
                return agent_fail(a, r, "state directory \"%s\" is busy (held by another cairn process); try again when "
                            "it is done", a->state_dir);
        if (r < 0)
                return agent_fail(a, r, "cannot lock the state directory \"%s\": %s", a->state_dir, strerror(-r));
        return 0;
}

int agent_open_bootcfg(Agent *a, bool writable, struct bootcfg **ret) {
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
                return agent_fail(a, r, "boot selection: %s", e);
        return 0;
}

/* The slots of b's disk, through b's descriptor: b (opened writable) holds the disk's lock for as long as it is open,
 * and a second open() of the disk would not share it. */
int agent_open_slots(Agent *a, struct bootcfg *b, Slots *ret) {
        const char *disk = bootcfg_disk_path(b);
        _cleanup_close_ int fd = fcntl(bootcfg_disk_fd(b), F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return agent_fail(a, negative_errno(), "cannot open the disk \"%s\" for writing: %m", disk);
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = gpt_read(fd, 0, GPT_READ_DEGRADED, &t, NULL);
        if (r < 0)
                return agent_fail(a, r, "no usable GPT on \"%s\": %s", disk, strerror(-r));
        Slots s = { .fd = -1 };
        static const char *const labels[2] = { "USR-A", "USR-B" };
        int idx[2];
        for (int i = 0; i < 2; i++) {
                idx[i] = gpt_find_by_label(t, labels[i]);
                if (idx[i] < 0)
                        return agent_fail(a, idx[i], "no single partition labelled \"%s\" on \"%s\"", labels[i], disk);
                const uint8_t *e = gpt_entry(t, (unsigned)idx[i]);
                s.off[i] = gpt_entry_first_lba(e) * GPT_SECTOR_SIZE;
                s.size[i] = (gpt_entry_last_lba(e) - gpt_entry_first_lba(e) + 1) * GPT_SECTOR_SIZE;
        }
        int booted = bootcfg_booted(b), running = bootcfg_running_partition(b);
        char why[320];
        r = gpt_check_layout(t, booted >= 0 ? idx[1 - booted] : -1, running >= 0 ? running : -1, 0, why, sizeof why);
        if (r < 0)
                return agent_fail(a, r, "refusing to write the slots of \"%s\": %s", disk, why);
        s.fd = TAKE_FD(fd);
        *ret = s;
        return 0;
}

