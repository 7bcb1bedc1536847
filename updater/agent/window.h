/* updater/agent/window.h — reboot windows (REBOOT_WINDOW_START/LENGTH, locksmith's forms plus day lists) and the
 * random instant inside one at which a host tries to reboot. Pure functions of the time they are given (the
 * caller's clock), in the local time zone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

#define AGENT_WINDOW_DAILY 0x7fu
#define AGENT_WINDOW_LENGTH_MAX (7u * 86400u)

typedef struct AgentWindow {
        uint8_t days;    /* bit d: a window opens on weekday d (0 = Sunday); 0 = no window (reboot at any time) */
        unsigned start;  /* minutes after local midnight, 0..1439 */
        unsigned length; /* seconds, 1..AGENT_WINDOW_LENGTH_MAX */
} AgentWindow;

/* The accepted forms, for error messages. */
#define AGENT_WINDOW_START_FORMS "a start like \"Thu 04:00\", \"Mon,Wed 22:30\" or \"04:00\" (every day)"
#define AGENT_WINDOW_LENGTH_FORMS "a length like \"1h30m\", \"45m\" or \"2h\" (h, m, s; 1 s .. 7 d)"

/* "[DAY[,DAY…] ]HH:MM"; DAY is Sun..Sat or Sunday..Saturday, any case. -EINVAL otherwise. */
int agent_window_parse_start(const char *s, uint8_t *ret_days, unsigned *ret_start) _warn_unused_result_;
/* A Go-style duration of h/m/s terms ("1h30m", "90m", "3600s"), 1 s .. 7 d. -EINVAL / -ERANGE. */
int agent_window_parse_length(const char *s, unsigned *ret) _warn_unused_result_;

/* The window holding now, else the next one to open: [*ret_open, *ret_close). -ENOENT when w has no days. */
int agent_window_find(const AgentWindow *w, time_t now, time_t *ret_open, time_t *ret_close) _warn_unused_result_;
/* True when now is inside a window (always true without a window). */
bool agent_window_contains(const AgentWindow *w, time_t now);
/* When to try to reboot: without a window, now; else a uniformly random instant (from rnd) in the first half of
 * what is left of the current or next window, so that hosts sharing a window do not reboot in step and a host
 * that finds the lock taken still has the second half to retry in. */
time_t agent_window_pick(const AgentWindow *w, time_t now, uint32_t rnd);
/* "Mon,Wed 22:30 for 1h30m", "daily 04:00 for 2h", or "none" into buf. */
void agent_window_format(const AgentWindow *w, char *buf, size_t size);
