/* updater/agent-config.c — update.conf parsing with its precedence, and the check/backoff schedule arithmetic. */
#include "agent.h"

#include <ctype.h>
#include <limits.h>

#include "fileio.h"

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
        };
        strcpy(c->group, "stable");
        strcpy(c->reboot_command, "reboot");
}

static int parse_uint(const char *v, unsigned min, unsigned max, unsigned *ret) {
        if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
                return -EINVAL;
        unsigned long x = strtoul(v, NULL, 10);
        if (x < min || x > max)
                return -EINVAL;
        *ret = (unsigned)x;
        return 0;
}

/* "1048576", "512K", "10M", "1G" (powers of 1024). */
static int parse_rate(const char *v, uint64_t *ret) {
        size_t digits = strspn(v, "0123456789");
        if (digits == 0 || digits > 12)
                return -EINVAL;
        uint64_t x = strtoull(v, NULL, 10);
        const char *suf = v + digits;
        if (*suf == 0)
                ;
        else if (strcasecmp(suf, "K") == 0)
                x <<= 10;
        else if (strcasecmp(suf, "M") == 0)
                x <<= 20;
        else if (strcasecmp(suf, "G") == 0)
                x <<= 30;
        else
                return -EINVAL;
        *ret = x;
        return 0;
}

static int set_str(char *dst, size_t size, const char *v) {
        size_t n = strlen(v);
        if (n >= size)
                return -EINVAL;
        memcpy(dst, v, n + 1);
        return 0;
}

static int apply_kv(AgentConfig *c, const char *k, const char *v) {
        if (strcmp(k, "GROUP") == 0)
                return omaha_name_valid(v, 64) ? set_str(c->group, sizeof c->group, v) : -EINVAL;
        if (strcmp(k, "SERVER") == 0) {
                if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                        return -EINVAL;
                return set_str(c->server, sizeof c->server, v);
        }
        if (strcmp(k, "REBOOT_STRATEGY") == 0) {
                for (int i = 0; i < _AGENT_REBOOT_MAX; i++)
                        if (strcmp(v, strategy_names[i]) == 0) {
                                if (i == AGENT_REBOOT_ETCD_LOCK || i == AGENT_REBOOT_FLEETLOCK)
                                        return -EOPNOTSUPP;
                                c->reboot_strategy = (AgentRebootStrategy)i;
                                return 0;
                        }
                return -EINVAL;
        }
        if (strcmp(k, "REBOOT_COMMAND") == 0)
                return *v ? set_str(c->reboot_command, sizeof c->reboot_command, v) : -EINVAL;
        if (strcmp(k, "DOWNLOAD_RATE_LIMIT") == 0)
                return parse_rate(v, &c->rate_limit);
        if (strcmp(k, "PROXY") == 0)
                return set_str(c->proxy, sizeof c->proxy, v);
        if (strcmp(k, "CA_FILE") == 0)
                return set_str(c->ca_file, sizeof c->ca_file, v);
        if (strcmp(k, "CHECK_INTERVAL") == 0)
                return parse_uint(v, 1, 7 * 24 * 3600, &c->check_interval);
        if (strcmp(k, "FIRST_CHECK_DELAY") == 0)
                return parse_uint(v, 0, 24 * 3600, &c->first_check_delay);
        if (strcmp(k, "HEALTH_DELAY") == 0)
                return parse_uint(v, 0, 3600, &c->health_delay);
        if (strcmp(k, "BACKOFF_BASE") == 0)
                return parse_uint(v, 1, 24 * 3600, &c->backoff_base);
        if (strcmp(k, "BACKOFF_MAX") == 0)
                return parse_uint(v, 1, 7 * 24 * 3600, &c->backoff_max);
        if (strcmp(k, "HEALTH_TIMEOUT") == 0)
                return parse_uint(v, 1, 3600, &c->health_timeout);
        if (strcmp(k, "HTTP_STALL_TIMEOUT") == 0)
                return parse_uint(v, 1, 3600, &c->http_timeout);
        return 0; /* unknown keys (REBOOT_WINDOW_*, ETCD_*, …) belong to later parts */
}

int agent_config_parse(AgentConfig *c, const char *text, size_t len, unsigned *ret_line) {
        AgentConfig n = *c;
        unsigned lineno = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                lineno++;
                char line[2048];
                size_t l = (size_t)(le - p);
                if (l >= sizeof line)
                        goto bad;
                memcpy(line, p, l);
                line[l] = 0;
                p = nl ? nl + 1 : end;
                if (memchr(line, 0, l))
                        goto bad;
                char *s = line;
                while (isspace((unsigned char)*s))
                        s++;
                char *e = s + strlen(s);
                while (e > s && isspace((unsigned char)e[-1]))
                        *--e = 0;
                if (*s == 0 || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq || eq == s)
                        goto bad;
                *eq = 0;
                char *k = s, *v = eq + 1;
                for (char *q = eq; q > k && isspace((unsigned char)q[-1]);)
                        *--q = 0;
                while (isspace((unsigned char)*v))
                        v++;
                size_t vl = strlen(v);
                if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                        v[vl - 1] = 0;
                        v++;
                }
                int r = apply_kv(&n, k, v);
                if (r < 0) {
                        if (ret_line)
                                *ret_line = lineno;
                        return r;
                }
        }
        *c = n;
        return 0;
bad:
        if (ret_line)
                *ret_line = lineno;
        return -EINVAL;
}

int agent_config_load(AgentConfig *c, const char *root, const char **ret_path, unsigned *ret_line) {
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
                if (r >= 0)
                        r = agent_config_parse(&n, buf, len, ret_line);
                else if (ret_line)
                        *ret_line = 0;
                if (r < 0) {
                        if (ret_path)
                                *ret_path = path;
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
