/* updater/agent/window.c — reboot window parsing, the window that holds (or follows) a given instant, and the
 * jittered instant to try a reboot at. Local time (mktime), as locksmith does; the clock is the caller's. */
#include "window.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const day_names[7] = { "sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                                          "saturday" };

static int parse_day(const char *s, size_t n) {
        for (int d = 0; d < 7; d++)
                if ((n == 3 || n == strlen(day_names[d])) && strncasecmp(s, day_names[d], n) == 0)
                        return d;
        return -EINVAL;
}

int agent_window_parse_start(const char *s, uint8_t *ret_days, unsigned *ret_start) {
        uint8_t days = 0;
        const char *sp = strchr(s, ' ');
        const char *clock = s;
        if (sp) {
                if (sp == s)
                        return -EINVAL;
                for (const char *p = s; p < sp;) {
                        const char *c = memchr(p, ',', (size_t)(sp - p));
                        const char *e = c ? c : sp;
                        int d = parse_day(p, (size_t)(e - p));
                        if (d < 0)
                                return -EINVAL;
                        days |= (uint8_t)(1u << d);
                        if (!c)
                                break;
                        p = c + 1;
                        if (p == sp) /* trailing comma */
                                return -EINVAL;
                }
                clock = sp + 1;
        } else
                days = AGENT_WINDOW_DAILY;
        /* H:MM or HH:MM */
        size_t n = strlen(clock);
        if (n < 4 || n > 5 || clock[n - 3] != ':')
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (i != n - 3 && !isdigit((unsigned char)clock[i]))
                        return -EINVAL;
        unsigned h = (unsigned)atoi(clock), m = (unsigned)atoi(clock + n - 2);
        if (h > 23 || m > 59)
                return -EINVAL;
        *ret_days = days;
        *ret_start = h * 60 + m;
        return 0;
}

int agent_window_parse_length(const char *s, unsigned *ret) {
        uint64_t total = 0;
        uint8_t seen = 0; /* each unit at most once, in the order h, m, s */
        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p;) {
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                uint64_t v = 0;
                while (isdigit((unsigned char)*p)) {
                        v = v * 10 + (uint64_t)(*p++ - '0');
                        if (v > 10u * AGENT_WINDOW_LENGTH_MAX)
                                return -ERANGE;
                }
                uint64_t mul;
                uint8_t bit;
                switch (*p++) {
                case 'h': mul = 3600; bit = 4; break;
                case 'm': mul = 60; bit = 2; break;
                case 's': mul = 1; bit = 1; break;
                default: return -EINVAL;
                }
                if (seen & (uint8_t)(bit | (bit - 1))) /* repeated, or out of order */
                        return -EINVAL;
                seen |= bit;
                total += v * mul;
                if (total > AGENT_WINDOW_LENGTH_MAX)
                        return -ERANGE;
        }
        if (total == 0)
                return -ERANGE;
        *ret = (unsigned)total;
        return 0;
}

/* The local instant of day (today + off) at the window's start; its weekday in *ret_wday. */
static time_t opening(const struct tm *today, int off, unsigned start, int *ret_wday) {
        struct tm t = *today;
        t.tm_mday += off;
        t.tm_hour = (int)(start / 60);
        t.tm_min = (int)(start % 60);
        t.tm_sec = 0;
        t.tm_isdst = -1;
        time_t x = mktime(&t);
        *ret_wday = t.tm_wday;
        return x;
}

int agent_window_find(const AgentWindow *w, time_t now, time_t *ret_open, time_t *ret_close) {
        if (!w->days)
                return -ENOENT;
        struct tm today;
        if (!localtime_r(&now, &today))
                return -EOVERFLOW;
        /* A window may be up to 7 days long, so the one holding now opened at most 7 days ago; the next one
         * opens within 7 days. Openings are in increasing order of off. */
        for (int off = -8; off <= 8; off++) {
                int wday;
                time_t o = opening(&today, off, w->start, &wday);
                if (o == (time_t)-1 || !(w->days & (1u << wday)))
                        continue;
                if (o + (time_t)w->length > now) {
                        *ret_open = o;
                        *ret_close = o + (time_t)w->length;
                        return 0;
                }
        }
        return -ENOENT; /* cannot happen with a day set */
}

bool agent_window_contains(const AgentWindow *w, time_t now) {
        time_t o, c;
        if (!w->days)
                return true;
        return agent_window_find(w, now, &o, &c) >= 0 && o <= now && now < c;
}

time_t agent_window_pick(const AgentWindow *w, time_t now, uint32_t rnd) {
        time_t o, c;
        if (agent_window_find(w, now, &o, &c) < 0)
                return now;
        time_t from = o > now ? o : now;
        uint64_t span = (uint64_t)(c - from) / 2;
        return from + (time_t)(span ? rnd % span : 0);
}

void agent_window_format(const AgentWindow *w, char *buf, size_t size) {
        static const char *const abbr[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        if (!w->days) {
                snprintf(buf, size, "none");
                return;
        }
        char days[40] = "";
        if (w->days == AGENT_WINDOW_DAILY)
                strcpy(days, "daily");
        else
                for (int d = 0; d < 7; d++)
                        if (w->days & (1u << d)) {
                                if (days[0])
                                        strcat(days, ",");
                                strcat(days, abbr[d]);
                        }
        char len[32];
        unsigned h = w->length / 3600, m = w->length / 60 % 60, s = w->length % 60;
        int n = 0;
        len[0] = 0;
        if (h)
                n += snprintf(len + n, sizeof len - (size_t)n, "%uh", h);
        if (m)
                n += snprintf(len + n, sizeof len - (size_t)n, "%um", m);
        if (s || !n)
                snprintf(len + n, sizeof len - (size_t)n, "%us", s);
        snprintf(buf, size, "%s %02u:%02u for %s", days, w->start / 60, w->start % 60, len);
}
