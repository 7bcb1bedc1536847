/* updater/agent/reboot-status.c — the reboot block of `cairnctl status` (strategy, window and its next opening,
 * lock phase, holders as last read, why there was no reboot yet), human and JSON. Pure formatting of config,
 * state and the daemon's last view of the lock, so cairnctl can print it from the state file alone. */
#include "agent.h"

#include <inttypes.h>

static void fmt_time(time_t t, char *buf, size_t size) {
        struct tm tm;
        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "@%" PRId64, (int64_t)t);
}

static void fmt_iso(time_t t, char *buf, size_t size) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%" PRId64, (int64_t)t);
}

static const char *lock_name(const AgentConfig *c) {
        switch (c->reboot_strategy) {
        case AGENT_REBOOT_ETCD_LOCK: return "etcd";
        case AGENT_REBOOT_FLEETLOCK: return "fleetlock";
        case AGENT_REBOOT_OFF: return c->fleetlock_url[0] ? "fleetlock" : c->etcd_endpoints[0] ? "etcd" : NULL;
        default: return NULL;
        }
}

static void reboot_json(Buf *b, const AgentState *s, const AgentConfig *c, const AgentLockView *v, time_t now) {
        char t[64];
        buf_puts(b, ",\"reboot\":{\"strategy\":");
        buf_put_json(b, c ? agent_reboot_strategy_name(c->reboot_strategy) : "unknown");
        buf_puts(b, ",\"lock\":");
        const char *ln = c ? lock_name(c) : NULL;
        if (ln)
                buf_put_json(b, ln);
        else
                buf_puts(b, "null");
        buf_puts(b, ",\"group\":");
        buf_put_json(b, c ? c->lock_group : "");
        buf_puts(b, ",\"window\":");
        time_t open = 0, close = 0;
        bool has_window = c && c->window.days && agent_window_find(&c->window, now, &open, &close) >= 0;
        if (has_window) {
                char w[96];
                agent_window_format(&c->window, w, sizeof w);
                buf_put_json(b, w);
                buf_printf(b, ",\"window_open\":%s,\"next_window\":", open <= now ? "true" : "false");
                /* The next opening strictly after now (the current window's start when inside one is past). */
                time_t o2 = open, c2 = close;
                if (open <= now && agent_window_find(&c->window, close, &o2, &c2) < 0)
                        o2 = 0;
                if (o2) {
                        fmt_iso(o2, t, sizeof t);
                        buf_put_json(b, t);
                } else
                        buf_puts(b, "null");
                fmt_iso(close, t, sizeof t);
                buf_puts(b, ",\"window_closes\":");
                if (open <= now)
                        buf_put_json(b, t);
                else
                        buf_puts(b, "null");
        } else
                buf_puts(b, "null,\"window_open\":true,\"next_window\":null,\"window_closes\":null");
        buf_puts(b, ",\"lock_phase\":");
        buf_put_json(b, agent_lock_phase_name(s->lock_phase));
        buf_printf(b, ",\"lock_held\":%s,\"reboot_requested\":%s,\"failures\":%u",
                   s->lock_phase >= AGENT_LOCK_PRE_REBOOT ? "true" : s->lock_phase == AGENT_LOCK_ACQUIRING ? "null" : "false",
                   s->reboot_requested ? "true" : "false", s->lock_failures);
        buf_puts(b, ",\"reason\":");
        buf_put_json(b, s->lock_note);
        buf_puts(b, ",\"holders\":");
        if (v && v->at) {
                buf_puts(b, "[");
                const char *p = v->holders;
                for (bool first = true; *p; first = false) {
                        const char *nl = strchr(p, '\n');
                        size_t n = nl ? (size_t)(nl - p) : strlen(p);
                        char id[512];
                        snprintf(id, sizeof id, "%.*s", (int)MIN(n, sizeof id - 1), p);
                        if (!first)
                                buf_puts(b, ",");
                        buf_put_json(b, id);
                        p += n + (nl ? 1 : 0);
                }
                buf_printf(b, "],\"max\":%" PRId64 ",\"available\":%" PRId64, v->max, v->available);
                fmt_iso((time_t)v->at, t, sizeof t);
                buf_puts(b, ",\"holders_read_at\":");
                buf_put_json(b, t);
        } else
                buf_puts(b, "null,\"max\":null,\"available\":null,\"holders_read_at\":null");
        buf_puts(b, ",\"lock_error\":");
        if (v && v->error[0])
                buf_put_json(b, v->error);
        else
                buf_puts(b, "null");
        buf_puts(b, "}");
}

static void reboot_human(Buf *b, const AgentState *s, const AgentConfig *c, const AgentLockView *v, time_t now) {
        char t[64];
        if (!c) {
                buf_puts(b, "reboot strategy:  unknown (the config could not be read)\n");
        } else {
                const char *ln = lock_name(c);
                buf_printf(b, "reboot strategy:  %s", agent_reboot_strategy_name(c->reboot_strategy));
                if (ln && c->reboot_strategy != AGENT_REBOOT_OFF)
                        buf_printf(b, " (%s%s%s)", ln, c->lock_group[0] ? ", group " : "", c->lock_group);
                else if (ln)
                        buf_printf(b, " (cairnctl reboot uses %s)", ln);
                buf_puts(b, "\n");
                time_t open, close;
                if (c->window.days && agent_window_find(&c->window, now, &open, &close) >= 0) {
                        char w[96];
                        agent_window_format(&c->window, w, sizeof w);
                        if (open <= now) {
                                fmt_time(close, t, sizeof t);
                                buf_printf(b, "reboot window:    %s (open now, until %s)\n", w, t);
                        } else {
                                fmt_time(open, t, sizeof t);
                                buf_printf(b, "reboot window:    %s (next opens %s)\n", w, t);
                        }
                } else
                        buf_puts(b, "reboot window:    none (any time)\n");
        }
        const char *held = s->lock_phase == AGENT_LOCK_NONE        ? "not held"
                           : s->lock_phase == AGENT_LOCK_ACQUIRING ? "maybe held (asked for it; given back first)"
                                                                   : "held";
        buf_printf(b, "reboot lock:      %s (phase %s)%s\n", held, agent_lock_phase_name(s->lock_phase),
                   s->reboot_requested ? ", reboot requested" : "");
        if (v && v->at) {
                fmt_time((time_t)v->at, t, sizeof t);
                buf_printf(b, "lock holders:     %zu of max %" PRId64 " (read %s)", v->n_holders, v->max, t);
                for (const char *p = v->holders; *p;) {
                        const char *nl = strchr(p, '\n');
                        size_t n = nl ? (size_t)(nl - p) : strlen(p);
                        buf_printf(b, "\n                  %.*s", (int)n, p);
                        p += n + (nl ? 1 : 0);
                }
                buf_puts(b, "\n");
        }
        if (v && v->error[0])
                buf_printf(b, "lock error:       %s\n", v->error);
        buf_printf(b, "reboot:           %s\n", s->lock_note[0] ? s->lock_note : "-");
}

int agent_status_text_full(const AgentState *s, const AgentConfig *c, const AgentLockView *view, bool json,
                           bool daemon_running, time_t now, char **ret_text) {
        _cleanup_free_ char *base = NULL;
        int r = agent_status_text(s, json, daemon_running, &base);
        if (r < 0)
                return r;
        _cleanup_buf_ Buf b;
        buf_init(&b, AGENT_STATE_MAX * 2);
        if (json) {
                /* base is one object and a newline: add the member before its closing brace. */
                size_t n = strlen(base);
                while (n > 0 && (base[n - 1] == '\n' || base[n - 1] == ' '))
                        n--;
                if (n == 0 || base[n - 1] != '}')
                        return -EINVAL;
                buf_put(&b, base, n - 1);
                reboot_json(&b, s, c, view, now);
                buf_puts(&b, "}\n");
        } else {
                buf_puts(&b, base);
                reboot_human(&b, s, c, view, now);
        }
        if (b.err)
                return b.err;
        *ret_text = TAKE_PTR(b.data);
        return 0;
}
