/* updater/agent/config.c — update.conf parsing with its precedence, and the check/backoff schedule arithmetic. */
#include "agent.h"

#include <ctype.h>
#include <limits.h>

#include "fileio.h"
#include "kvfile.h"
#include "parse.h"

static const char *const strategy_names[_AGENT_REBOOT_MAX] = {
        [AGENT_REBOOT_REBOOT] = "reboot",
        [AGENT_REBOOT_OFF] = "off",
        [AGENT_REBOOT_ETCD_LOCK] = "etcd-lock",
        [AGENT_REBOOT_FLEETLOCK] = "fleetlock",
};

const char *agent_reboot_strategy_name(AgentRebootStrategy s) {
        return s < _AGENT_REBOOT_MAX ? strategy_names[s] : "?";
}

void agent_config_init(AgentConfig *c) {
        *c = (AgentConfig){
                .reboot_strategy = AGENT_REBOOT_REBOOT,
                .check_interval = 3600,
                .first_check_delay = 300,
                .health_delay = 45,
                .backoff_base = 60,
                .backoff_max = 4 * 3600,
                .health_timeout = 60,
                .http_timeout = 60,
                .low_speed_limit = 1024,
                .transfer_timeout = 1800,
        };
        strcpy(c->group, "stable");
        strcpy(c->reboot_command, "reboot");
        c->window_start_file = c->window_length_file = -1;
        c->pre_reboot_timeout = 600;
        c->post_boot_timeout = 300;
        c->lock_retry_min = 5;
        c->lock_retry_max = 300;
}

/* Why the last apply_kv() refused a value (static text). */
typedef struct KvError {
        const char *why;
} KvError;

static int bad(KvError *e, int r, const char *why) {
        e->why = why;
        return r;
}

/* Seconds (s/m/h/d suffixes) in [min, max]; why names the range. */
static int set_seconds(const char *v, unsigned min, unsigned max, unsigned *ret, KvError *e, const char *range) {
        uint64_t x;
        int r = parse_seconds_range(v, min, max, &x);
        if (r == -EINVAL)
                return bad(e, r, "is not a duration (digits, optional s/m/h/d)");
        if (r < 0)
                return bad(e, r, range);
        *ret = (unsigned)x;
        return 0;
}

/* Bytes per second (K/M/G/T suffixes) in [min, AGENT_RATE_LIMIT_MAX]. */
static int set_rate(const char *v, uint64_t min, uint64_t *ret, KvError *e, const char *range) {
        uint64_t x;
        int r = parse_size_range(v, min, AGENT_RATE_LIMIT_MAX, &x);
        if (r == -EINVAL)
                return bad(e, r, "is not a rate (digits, optional K/M/G/T)");
        if (r < 0)
                return bad(e, r, range);
        *ret = x;
        return 0;
}

static int set_str(char *dst, size_t size, const char *v, KvError *e) {
        return kvfile_copy(dst, size, v) < 0 ? bad(e, -EINVAL, "is too long") : 0;
}

/* An http:// or https:// URL without control characters. */
static bool url_ok(const char *v) {
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                return false;
        for (const char *q = v; *q; q++)
                if ((unsigned char)*q <= 0x20 || *q == 0x7f)
                        return false;
        return true;
}

/* The reboot-coordination keys (reboot.c), each also under locksmith's name so a Flatcar update.conf works.
 * 1 when k is one of them. */
static int apply_reboot_kv(AgentConfig *c, const char *k, const char *v, unsigned line, KvError *e, int *ret) {
        if (strncmp(k, "LOCKSMITHD_", 11) == 0) {
                k += 11;
                if (strcmp(k, "ENDPOINT") == 0)
                        k = "ETCD_ENDPOINTS";
                else if (strcmp(k, "GROUP") == 0)
                        k = "LOCK_GROUP";
                else if (strncmp(k, "ETCD_", 5) != 0 && strncmp(k, "REBOOT_WINDOW_", 14) != 0)
                        return 0;
        }
        int r = 0;
        if (strcmp(k, "REBOOT_WINDOW_START") == 0) {
                uint8_t d;
                unsigned st;
                if (*v && agent_window_parse_start(v, &d, &st) < 0)
                        r = bad(e, -EINVAL, "is not " AGENT_WINDOW_START_FORMS);
                else {
                        r = set_str(c->window_start, sizeof c->window_start, v, e);
                        c->window_start_line = line;
                        c->window_start_file = -1;
                }
        } else if (strcmp(k, "REBOOT_WINDOW_LENGTH") == 0) {
                unsigned len;
                if (*v && agent_window_parse_length(v, &len) < 0)
                        r = bad(e, -EINVAL, "is not " AGENT_WINDOW_LENGTH_FORMS);
                else {
                        r = set_str(c->window_length, sizeof c->window_length, v, e);
                        c->window_length_line = line;
                        c->window_length_file = -1;
                }
        } else if (strcmp(k, "ETCD_ENDPOINTS") == 0) {
                char list[sizeof c->etcd_endpoints];
                r = set_str(list, sizeof list, v, e);
                size_t n = 0;
                for (char *save = NULL, *t = r < 0 ? NULL : strtok_r(list, ",", &save); t && r >= 0;
                     t = strtok_r(NULL, ",", &save))
                        if (!url_ok(t) || ++n > 16)
                                r = bad(e, -EINVAL, "is not a comma list of at most 16 http:// or https:// URLs");
                if (r >= 0 && n == 0)
                        r = bad(e, -EINVAL, "is empty (a comma list of http:// or https:// URLs)");
                if (r >= 0)
                        r = set_str(c->etcd_endpoints, sizeof c->etcd_endpoints, v, e);
        } else if (strcmp(k, "LOCK_GROUP") == 0) {
                for (const char *q = v; *q && r >= 0; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f)
                                r = bad(e, -EINVAL, "holds a control character");
                if (r >= 0)
                        r = set_str(c->lock_group, sizeof c->lock_group, v, e);
        } else if (strcmp(k, "ETCD_CAFILE") == 0)
                r = set_str(c->etcd_ca, sizeof c->etcd_ca, v, e);
        else if (strcmp(k, "ETCD_CERTFILE") == 0)
                r = set_str(c->etcd_cert, sizeof c->etcd_cert, v, e);
        else if (strcmp(k, "ETCD_KEYFILE") == 0)
                r = set_str(c->etcd_key, sizeof c->etcd_key, v, e);
        else if (strcmp(k, "ETCD_USERNAME") == 0)
                r = set_str(c->etcd_user, sizeof c->etcd_user, v, e);
        else if (strcmp(k, "ETCD_PASSWORD") == 0)
                r = set_str(c->etcd_password, sizeof c->etcd_password, v, e);
        else if (strcmp(k, "FLEETLOCK_URL") == 0)
                r = *v && !url_ok(v) ? bad(e, -EINVAL, "is not an http:// or https:// URL")
                                     : set_str(c->fleetlock_url, sizeof c->fleetlock_url, v, e);
        else if (strcmp(k, "PRE_REBOOT_TIMEOUT") == 0)
                r = set_seconds(v, 1, 86400, &c->pre_reboot_timeout, e, "is out of range (1 s .. 1 d)");
        else if (strcmp(k, "POST_BOOT_TIMEOUT") == 0)
                r = set_seconds(v, 1, 86400, &c->post_boot_timeout, e, "is out of range (1 s .. 1 d)");
        else if (strcmp(k, "LOCK_RETRY_MIN") == 0)
                r = set_seconds(v, 1, 86400, &c->lock_retry_min, e, "is out of range (1 s .. 1 d)");
        else if (strcmp(k, "LOCK_RETRY_MAX") == 0)
                r = set_seconds(v, 1, 7 * 86400, &c->lock_retry_max, e, "is out of range (1 s .. 7 d)");
        else
                return 0;
        *ret = r;
        return 1;
}

static int apply_kv(AgentConfig *c, const char *k, const char *v, unsigned line, KvError *e) {
        int rr;
        if (apply_reboot_kv(c, k, v, line, e, &rr))
                return rr;
        if (strcmp(k, "GROUP") == 0)
                return omaha_name_valid(v, 64) ? set_str(c->group, sizeof c->group, v, e)
                                               : bad(e, -EINVAL, "is not a channel name (1-64 of A-Za-z0-9._-)");
        if (strcmp(k, "SERVER") == 0) {
                if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                        return bad(e, -EINVAL, "is not an http:// or https:// URL");
                for (const char *q = v; *q; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f)
                                return bad(e, -EINVAL, "holds a control character");
                return set_str(c->server, sizeof c->server, v, e);
        }
        if (strcmp(k, "REBOOT_STRATEGY") == 0) {
                if (!*v) { /* locksmith: empty means reboot */
                        c->reboot_strategy = AGENT_REBOOT_REBOOT;
                        return 0;
                }
                for (int i = 0; i < _AGENT_REBOOT_MAX; i++)
                        if (strcmp(v, strategy_names[i]) == 0) {
                                c->reboot_strategy = (AgentRebootStrategy)i;
                                return 0;
                        }
                return bad(e, -EINVAL, "is not a strategy (etcd-lock, fleetlock, reboot or off)");
        }
        if (strcmp(k, "REBOOT_COMMAND") == 0)
                return *v ? set_str(c->reboot_command, sizeof c->reboot_command, v, e) : bad(e, -EINVAL, "is empty");
        if (strcmp(k, "DOWNLOAD_RATE_LIMIT") == 0)
                return set_rate(v, 0, &c->rate_limit, e, "is out of range (0 = unlimited .. 1T bytes/s)");
        if (strcmp(k, "HTTP_LOW_SPEED_LIMIT") == 0)
                return set_rate(v, 1, &c->low_speed_limit, e, "is out of range (1 .. 1T bytes/s)");
        if (strcmp(k, "PROXY") == 0)
                return set_str(c->proxy, sizeof c->proxy, v, e);
        if (strcmp(k, "CA_FILE") == 0)
                return set_str(c->ca_file, sizeof c->ca_file, v, e);
        if (strcmp(k, "CHECK_INTERVAL") == 0)
                return set_seconds(v, 1, 7 * 86400, &c->check_interval, e, "is out of range (1 s .. 7 d)");
        if (strcmp(k, "FIRST_CHECK_DELAY") == 0)
                return set_seconds(v, 0, 86400, &c->first_check_delay, e, "is out of range (0 .. 1 d)");
        if (strcmp(k, "HEALTH_DELAY") == 0)
                return set_seconds(v, 0, 3600, &c->health_delay, e, "is out of range (0 .. 1 h)");
        if (strcmp(k, "BACKOFF_BASE") == 0)
                return set_seconds(v, 1, 86400, &c->backoff_base, e, "is out of range (1 s .. 1 d)");
        if (strcmp(k, "BACKOFF_MAX") == 0)
                return set_seconds(v, 1, 7 * 86400, &c->backoff_max, e, "is out of range (1 s .. 7 d)");
        if (strcmp(k, "HEALTH_TIMEOUT") == 0)
                return set_seconds(v, 1, 3600, &c->health_timeout, e, "is out of range (1 s .. 1 h)");
        if (strcmp(k, "HTTP_STALL_TIMEOUT") == 0)
                return set_seconds(v, 1, 3600, &c->http_timeout, e, "is out of range (1 s .. 1 h)");
        if (strcmp(k, "HTTP_TRANSFER_TIMEOUT") == 0)
                return set_seconds(v, 1, AGENT_TRANSFER_TIMEOUT_MAX, &c->transfer_timeout, e,
                                   "is out of range (1 s .. 7 d)");
        return 0; /* unknown keys are ignored (a Flatcar update.conf has some of its own) */
}

static void set_error(AgentConfigError *ret, unsigned line, const char *k, const char *v, const char *why) {
        if (!ret)
                return;
        ret->line = line;
        log_safe(ret->key, sizeof ret->key, k ? k : "");
        log_safe(ret->value, sizeof ret->value, v ? v : "");
        ret->why = why;
}

typedef struct ParseCtx {
        AgentConfig *c;
        AgentConfigError *err;
        bool refused; /* a value was refused (err holds key, value, why) */
} ParseCtx;

static int parse_one(const char *k, const char *v, unsigned line, void *userdata, const char **ret_why) {
        ParseCtx *x = userdata;
        KvError ke = { 0 };
        int r = apply_kv(x->c, k, v, line, &ke);
        if (r < 0) {
                bool secret = strcmp(k, "ETCD_PASSWORD") == 0 || strcmp(k, "LOCKSMITHD_ETCD_PASSWORD") == 0;
                set_error(x->err, line, k, secret ? "(hidden)" : v, ke.why ? ke.why : "is invalid");
                *ret_why = ke.why;
                x->refused = true;
        }
        return r;
}

int agent_config_parse(AgentConfig *c, const char *text, size_t len, AgentConfigError *ret_err) {
        AgentConfig n = *c;
        ParseCtx x = { .c = &n, .err = ret_err };
        KvfileError ke;
        int r = kvfile_parse(text, len, parse_one, &x, &ke);
        if (r < 0) {
                if (ret_err && !x.refused)
                        set_error(ret_err, ke.line, NULL, ke.text, ke.why);
                if (ret_err)
                        ret_err->line = ke.line;
                return r;
        }
        *c = n;
        return 0;
}

void agent_config_error_format(const AgentConfigError *e, int r, char *buf, size_t size) {
        char path[PATH_MAX + 16];
        log_safe(path, sizeof path, e->path ? e->path : "?");
        if (e->line == 0 && e->key[0]) /* a check across the files */
                snprintf(buf, size, "config%s%s%s: %s=\"%s\" %s", e->path ? " \"" : "", e->path ? path : "",
                         e->path ? "\"" : "", e->key, e->value, e->why ? e->why : "is invalid");
        else if (e->line == 0)
                snprintf(buf, size, "config \"%s\": %s", path, strerror(r < 0 ? -r : r));
        else if (e->key[0])
                snprintf(buf, size, "config \"%s\" line %u: %s=\"%s\" %s", path, e->line, e->key, e->value,
                         e->why ? e->why : "is invalid");
        else
                snprintf(buf, size, "config \"%s\" line %u: \"%s\" %s", path, e->line, e->value,
                         e->why ? e->why : "is invalid");
}

static const char *const config_files[] = { "/usr/share/cairn/update.conf", "/oem/update.conf",
                                           "/etc/cairn/update.conf" };

int agent_config_finish(AgentConfig *c, const char *root, AgentConfigError *ret_err) {
        static char path[PATH_MAX];
        AgentConfigError e = { 0 };
        bool has_start = c->window_start[0], has_length = c->window_length[0];
        if (has_start != has_length) {
                const char *key = has_start ? "REBOOT_WINDOW_START" : "REBOOT_WINDOW_LENGTH";
                int file = has_start ? c->window_start_file : c->window_length_file;
                if (file >= 0 && (size_t)file < ELEMENTSOF(config_files)) {
                        snprintf(path, sizeof path, "%s%s", root ? root : "", config_files[file]);
                        e.path = path;
                }
                set_error(&e, has_start ? c->window_start_line : c->window_length_line, key,
                          has_start ? c->window_start : c->window_length,
                          has_start ? "is set without REBOOT_WINDOW_LENGTH (set both, or neither: "
                                      AGENT_WINDOW_START_FORMS " and " AGENT_WINDOW_LENGTH_FORMS ")"
                                    : "is set without REBOOT_WINDOW_START (set both, or neither: "
                                      AGENT_WINDOW_START_FORMS " and " AGENT_WINDOW_LENGTH_FORMS ")");
                goto bad;
        }
        c->window = (AgentWindow){ 0 };
        if (has_start) {
                uint8_t d = 0;
                unsigned st = 0, len = 0;
                if (agent_window_parse_start(c->window_start, &d, &st) < 0 ||
                    agent_window_parse_length(c->window_length, &len) < 0)
                        return -EINVAL; /* checked by the parser */
                c->window = (AgentWindow){ .days = d, .start = st, .length = len };
        }
        if (c->reboot_strategy == AGENT_REBOOT_FLEETLOCK && !c->fleetlock_url[0]) {
                set_error(&e, 0, "REBOOT_STRATEGY", "fleetlock",
                          "needs FLEETLOCK_URL (the FleetLock server's base URL, e.g. http://host:port)");
                goto bad;
        }
        if (c->reboot_strategy == AGENT_REBOOT_FLEETLOCK && c->lock_group[0])
                for (const char *q = c->lock_group; *q; q++)
                        if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-') {
                                set_error(&e, 0, "LOCK_GROUP", c->lock_group,
                                          "is not a FleetLock group (A-Za-z0-9.- only)");
                                goto bad;
                        }
        if (!!c->etcd_user[0] != !!c->etcd_password[0]) {
                set_error(&e, 0, c->etcd_user[0] ? "ETCD_USERNAME" : "ETCD_PASSWORD",
                          c->etcd_user[0] ? c->etcd_user : "(hidden)", "is set without its partner (set "
                          "ETCD_USERNAME and ETCD_PASSWORD together)");
                goto bad;
        }
        if (!!c->etcd_cert[0] != !!c->etcd_key[0]) {
                set_error(&e, 0, c->etcd_cert[0] ? "ETCD_CERTFILE" : "ETCD_KEYFILE",
                          c->etcd_cert[0] ? c->etcd_cert : c->etcd_key,
                          "is set without its partner (set ETCD_CERTFILE and ETCD_KEYFILE together)");
                goto bad;
        }
        if (c->lock_retry_min > c->lock_retry_max) {
                char v[24];
                snprintf(v, sizeof v, "%u", c->lock_retry_min);
                set_error(&e, 0, "LOCK_RETRY_MIN", v, "is larger than LOCK_RETRY_MAX");
                goto bad;
        }
        return 0;
bad:
        if (ret_err)
                *ret_err = e;
        return -EINVAL;
}

int agent_config_load(AgentConfig *c, const char *root, AgentConfigError *ret_err) {
        static char path[PATH_MAX];
        const char *const *files = config_files;
        AgentConfig n = *c;
        for (size_t i = 0; i < ELEMENTSOF(config_files); i++) {
                snprintf(path, sizeof path, "%s%s", root ? root : "", files[i]);
                _cleanup_free_ char *buf = NULL;
                size_t len;
                int r = read_file_bounded(path, AGENT_CONF_MAX, &buf, &len);
                if (r == -ENOENT)
                        continue;
                AgentConfigError e = { 0 };
                if (r >= 0)
                        r = agent_config_parse(&n, buf, len, &e);
                if (r < 0) {
                        e.path = path;
                        if (ret_err)
                                *ret_err = e;
                        return r;
                }
                if (n.window_start_file < 0 && n.window_start_line)
                        n.window_start_file = (int)i;
                if (n.window_length_file < 0 && n.window_length_line)
                        n.window_length_file = (int)i;
        }
        int r = agent_config_finish(&n, root, ret_err);
        if (r < 0)
                return r;
        *c = n;
        return 0;
}

unsigned agent_jitter(unsigned base, unsigned pct, uint32_t rnd) {
        uint64_t spread = (uint64_t)base * pct / 100;
        uint64_t lo = base - spread;
        return (unsigned)(lo + (uint64_t)rnd % (2 * spread + 1));
}

unsigned agent_backoff(unsigned failures, unsigned base, unsigned max, uint32_t rnd) {
        if (failures == 0)
                failures = 1;
        uint64_t d = base;
        for (unsigned i = 1; i < failures && d < max; i++)
                d *= 2;
        if (d > max)
                d = max;
        uint64_t lo = d / 2;
        return (unsigned)(lo + (uint64_t)rnd % (d - lo + 1));
}
