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
        size_t n = strlen(v);
        if (n >= size)
                return bad(e, -EINVAL, "is too long");
        memcpy(dst, v, n + 1);
        return 0;
}

static int apply_kv(AgentConfig *c, const char *k, const char *v, KvError *e) {
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
                for (int i = 0; i < _AGENT_REBOOT_MAX; i++)
                        if (strcmp(v, strategy_names[i]) == 0) {
                                if (i == AGENT_REBOOT_ETCD_LOCK || i == AGENT_REBOOT_FLEETLOCK)
                                        return bad(e, -EOPNOTSUPP, "is not implemented yet (use reboot or off)");
                                c->reboot_strategy = (AgentRebootStrategy)i;
                                return 0;
                        }
                return bad(e, -EINVAL, "is not a strategy (reboot or off)");
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
        return 0; /* unknown keys (REBOOT_WINDOW_*, ETCD_*, …) belong to later parts */
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

static int parse_one(const char *k, const char *v, void *userdata, const char **ret_why) {
        ParseCtx *x = userdata;
        KvError ke = { 0 };
        int r = apply_kv(x->c, k, v, &ke);
        if (r < 0) {
                /* The line number is filled in by the caller from kvfile's error. */
                set_error(x->err, 0, k, v, ke.why ? ke.why : "is invalid");
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
        if (e->line == 0)
                snprintf(buf, size, "config \"%s\": %s", path, strerror(r < 0 ? -r : r));
        else if (e->key[0])
                snprintf(buf, size, "config \"%s\" line %u: %s=\"%s\" %s", path, e->line, e->key, e->value,
                         e->why ? e->why : "is invalid");
        else
                snprintf(buf, size, "config \"%s\" line %u: \"%s\" %s", path, e->line, e->value,
                         e->why ? e->why : "is invalid");
}

int agent_config_load(AgentConfig *c, const char *root, AgentConfigError *ret_err) {
        static char path[PATH_MAX];
        static const char *const files[] = { "/usr/share/cairn/update.conf", "/oem/update.conf",
                                             "/etc/cairn/update.conf" };
        AgentConfig n = *c;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
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
        }
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
