/* updater/agent/reboot.c — the reboot lifecycle: once an update is staged (or `cairnctl reboot` asked), wait
 * for the reboot window and a jittered instant in it, take the cluster lock (the strategy's LockBackend:
 * updater/lock/etcd.c or fleetlock-client.c; none for "reboot"), run the pre-reboot hooks, reboot; in the new
 * boot, after the health gate, run the post-boot hooks and release the lock. The phase is saved in the state
 * file before every step, so a crash or kill -9 at any point neither reboots without the lock nor leaks it:
 *
 *   phase found (same boot as entered)     → what a (re)started agent does
 *   acquiring / pre-reboot                 → give the lock back (held or not), start over
 *   rebooting, this process ran the reboot → nothing (the machine is going down)
 *   rebooting, after a restart             → still holds the lock and the hooks passed: reboot again (or release
 *                                            when no reboot is wanted any more)
 *   any phase, a different boot            → after the health gate: post-boot hooks, release; a boot that did not
 *                                            pass keeps the lock (DESIGN §7: a bad release must not spread)
 */
#include "agent.h"
#include "clock.h"

#include <inttypes.h>
#include <limits.h>
#include <sys/random.h>
#include <time.h>

#include "lock/lock.h"

struct AgentReboot {
        bool gate_done;            /* the post-boot gate judged this boot */
        bool reboot_issued;        /* this process ran the reboot command successfully */
        bool post_hooks_done;      /* this process ran the post-boot hooks successfully (release pending) */
        int64_t due_ms;            /* monotonic; -1 nothing pending */
        time_t retry_at;           /* wall: no attempt before (backoff) */
        time_t (*clock)(void);
        uint32_t (*rnd)(void);
        void (*log)(const char *line);
        AgentLockView view;
};

static time_t wall_now(void) {
        return time(NULL);
}

static uint32_t rnd_default(void) {
        uint32_t v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v)
                v = (uint32_t)time(NULL) ^ (uint32_t)getpid();
        return v;
}

int agent_reboot_new(AgentReboot **ret) {
        AgentReboot *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->due_ms = -1;
        r->clock = wall_now;
        r->rnd = rnd_default;
        *ret = r;
        return 0;
}

void agent_reboot_free(AgentReboot *r) {
        free(r);
}

void agent_reboot_set_clock(Agent *a, time_t (*clock)(void), uint32_t (*rnd)(void)) {
        AgentReboot *r = agent_reboot(a);
        r->clock = clock ? clock : wall_now;
        r->rnd = rnd ? rnd : rnd_default;
}

void agent_reboot_set_log(Agent *a, void (*log)(const char *line)) {
        agent_reboot(a)->log = log;
}

void agent_reboot_gate_done(Agent *a) {
        agent_reboot(a)->gate_done = true;
}

int64_t agent_reboot_due_ms(const Agent *a) {
        return agent_reboot((Agent *)a)->due_ms;
}

const AgentLockView *agent_reboot_view(const Agent *a) {
        return &agent_reboot((Agent *)a)->view;
}

/* ---- helpers ---- */

/* The lifecycle's one-line account of itself: saved as LOCK_NOTE (cairnctl status shows it) and logged once. */
_printf_(2, 3) static bool note(Agent *a, const char *fmt, ...) {
        AgentState *st = agent_state(a);
        char buf[AGENT_LOCK_NOTE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (strcmp(buf, st->lock_note) == 0)
                return false;
        snprintf(st->lock_note, sizeof st->lock_note, "%s", buf);
        AgentReboot *r = agent_reboot(a);
        if (r->log)
                r->log(buf);
        return true;
}

static void fmt_time(time_t t, char *buf, size_t size) {
        struct tm tm;
        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "@%" PRId64, (int64_t)t);
}

/* Run again in `secs` seconds (wall clock), at most an hour ahead so a clock change is noticed. */
static void due_in(AgentReboot *r, int64_t secs) {
        if (secs < 0)
                secs = 0;
        if (secs > 3600)
                secs = 3600;
        r->due_ms = mono_ms() + secs * 1000;
}

static unsigned backoff(Agent *a) {
        AgentState *st = agent_state(a);
        const AgentConfig *c = agent_config(a);
        AgentReboot *r = agent_reboot(a);
        if (st->lock_failures < AGENT_FAILURES_MAX)
                st->lock_failures++;
        unsigned d = agent_backoff(st->lock_failures, c->lock_retry_min, c->lock_retry_max, r->rnd());
        r->retry_at = r->clock() + d;
        due_in(r, d);
        return d;
}

/* The lock this configuration uses (NULL: none). "off" has no lock of its own; `cairnctl reboot` under it uses
 * FleetLock or etcd when FLEETLOCK_URL or ETCD_ENDPOINTS is set. */
static const LockBackend *lock_backend(const AgentConfig *c) {
        switch (c->reboot_strategy) {
        case AGENT_REBOOT_ETCD_LOCK:
                return &lock_backend_etcd;
        case AGENT_REBOOT_FLEETLOCK:
                return &lock_backend_fleetlock;
        case AGENT_REBOOT_OFF:
                return c->fleetlock_url[0] ? &lock_backend_fleetlock
                       : c->etcd_endpoints[0] ? &lock_backend_etcd
                                              : NULL;
        default:
                return NULL;
        }
}

typedef struct Conn {
        const LockBackend *b;
        Lock *l;
        char endpoints[1024];
} Conn;

static void conn_close(Conn *c) {
        if (c->b && c->l)
                c->b->close(c->l);
        c->l = NULL;
}

/* Open the configured lock; on failure, *why holds the reason. */
static int conn_open(const AgentConfig *c, Conn *ret, char *why, size_t whysize) {
        *ret = (Conn){ .b = lock_backend(c) };
        if (!ret->b)
                return 0;
        LockOptions o = { .timeout = 10, .connect_timeout = 3 };
        if (ret->b == &lock_backend_fleetlock) {
                snprintf(ret->endpoints, sizeof ret->endpoints, "%s", c->fleetlock_url);
                o.endpoints[0] = ret->endpoints;
                o.n_endpoints = 1;
        } else {
                snprintf(ret->endpoints, sizeof ret->endpoints, "%s",
                         c->etcd_endpoints[0] ? c->etcd_endpoints : "http://127.0.0.1:2379");
                if (lock_options_add_endpoints(&o, ret->endpoints) < 0) {
                        snprintf(why, whysize, "ETCD_ENDPOINTS holds more than %d endpoints", LOCK_MAX_ENDPOINTS);
                        return -E2BIG;
                }
        }
        o.group = c->lock_group[0] ? c->lock_group : NULL;
        o.ca_file = c->etcd_ca[0] ? c->etcd_ca : NULL;
        o.cert_file = c->etcd_cert[0] ? c->etcd_cert : NULL;
        o.key_file = c->etcd_key[0] ? c->etcd_key : NULL;
        o.user = c->etcd_user[0] ? c->etcd_user : NULL;
        o.password = c->etcd_password[0] ? c->etcd_password : NULL;
        int r = ret->b->open(&o, &ret->l);
        if (r < 0) {
                snprintf(why, whysize, "cannot set up the %s client: %s", ret->b->name, strerror(-r));
                ret->l = NULL;
                return r;
        }
        return 0;
}

/* Refresh the holders shown by status (etcd only; FleetLock cannot be read). */
static void refresh_view(AgentReboot *rb, Conn *c) {
        if (!c->l || c->b != &lock_backend_etcd)
                return;
        _cleanup_semaphore_ Semaphore s = { 0 };
        if (c->b->status(c->l, &s) < 0) {
                snprintf(rb->view.error, sizeof rb->view.error, "%s", c->b->error(c->l));
                return;
        }
        rb->view.at = rb->clock();
        rb->view.max = s.max;
        rb->view.available = s.semaphore;
        rb->view.n_holders = s.n_holders;
        rb->view.error[0] = 0;
        size_t used = 0;
        rb->view.holders[0] = 0;
        for (size_t i = 0; i < s.n_holders; i++) {
                size_t n = strlen(s.holders[i]);
                if (used + n + 2 > sizeof rb->view.holders)
                        break;
                memcpy(rb->view.holders + used, s.holders[i], n);
                used += n;
                rb->view.holders[used++] = '\n';
                rb->view.holders[used] = 0;
        }
}

static int save(Agent *a) {
        int r = agent_save(a);
        if (r < 0)
                note(a, "cannot write the state file \"%s\": %s; no reboot until it can be written",
                     agent_state_path(a), strerror(-r));
        return r;
}

/* Give the lock back. 0 done (or nothing to give back). */
static int give_back(Agent *a, const char *why_context) {
        AgentReboot *rb = agent_reboot(a);
        char why[AGENT_LOCK_NOTE_MAX] = "";
        Conn c;
        int r = conn_open(agent_config(a), &c, why, sizeof why);
        if (r >= 0 && c.l) {
                r = c.b->release(c.l, agent_machine_id(a));
                if (r < 0)
                        snprintf(why, sizeof why, "%s", c.b->error(c.l));
                else
                        refresh_view(rb, &c);
        }
        if (r < 0) {
                snprintf(rb->view.error, sizeof rb->view.error, "%s", why);
                unsigned d = backoff(a);
                note(a, "%scannot release the reboot lock: %s; retry in %u s", why_context, why, d);
        }
        conn_close(&c);
        return r;
}

static int run_hooks(Agent *a, const char *name, unsigned timeout, const char **ret_failed) {
        char d0[PATH_MAX], d1[PATH_MAX];
        snprintf(d0, sizeof d0, "%s/etc/cairn/%s.d", agent_root(a), name);
        snprintf(d1, sizeof d1, "%s/usr/lib/cairn/%s.d", agent_root(a), name);
        const char *dirs[2] = { d0, d1 };
        char **env = NULL;
        int r = agent_hook_env(a, name, timeout, &env);
        if (r < 0) {
                static char what[64];
                snprintf(what, sizeof what, "(its environment: %s)", strerror(-r));
                *ret_failed = what;
                return r;
        }
        r = agent_hooks_run(dirs, 2, timeout, env, ret_failed);
        agent_hook_env_free(env);
        return r;
}

/* What the lock is taken for, saved with the phase (the hooks of the new boot see it): the running version, the
 * update staged in this boot (if any) and its slot. */
static void remember_target(Agent *a) {
        AgentState *st = agent_state(a);
        bool staged = st->staged_slot >= 0 && strcmp(st->staged_boot_id, agent_boot_id(a)) == 0;
        snprintf(st->lock_from_version, sizeof st->lock_from_version, "%s", st->current_version);
        snprintf(st->lock_to_version, sizeof st->lock_to_version, "%s", staged ? st->staged_version : "");
        st->lock_to_slot = staged ? st->staged_slot : -1;
}

static bool same_boot(Agent *a) {
        return strcmp(agent_state(a)->lock_boot_id, agent_boot_id(a)) == 0;
}

/* A reboot is wanted: an update staged in this boot (a staged slot from an earlier boot is the health gate's to
 * judge, never a reason to reboot again), or cairnctl reboot. */
static bool reboot_wanted(Agent *a) {
        AgentState *st = agent_state(a);
        const AgentConfig *c = agent_config(a);
        if (st->reboot_requested)
                return true;
        return c->reboot_strategy != AGENT_REBOOT_OFF && st->status == AGENT_UPDATED_NEED_REBOOT &&
               st->staged_slot >= 0 && strcmp(st->staged_boot_id, agent_boot_id(a)) == 0;
}

static void enter(Agent *a, AgentLockPhase p) {
        AgentState *st = agent_state(a);
        st->lock_phase = p;
        if (p == AGENT_LOCK_ACQUIRING) {
                snprintf(st->lock_boot_id, sizeof st->lock_boot_id, "%s", agent_boot_id(a));
                remember_target(a);
        }
        if (p == AGENT_LOCK_NONE) {
                st->lock_from_version[0] = st->lock_to_version[0] = 0;
                st->lock_to_slot = -1;
                /* A pending cairnctl reboot stays tied to this boot (the reboot that carries it out ends it). */
                if (st->reboot_requested)
                        snprintf(st->lock_boot_id, sizeof st->lock_boot_id, "%s", agent_boot_id(a));
                else
                        st->lock_boot_id[0] = 0;
        }
}

/* ---- the steps ---- */

/* Back from a reboot with the lock held: after the health gate, post-boot hooks, then release. */
static void after_boot(Agent *a) {
        AgentState *st = agent_state(a);
        AgentReboot *rb = agent_reboot(a);
        const AgentConfig *c = agent_config(a);
        if (!rb->gate_done)
                return; /* the gate calls us when it has judged this boot */
        if (st->staged_slot >= 0) {
                note(a, "keeping the reboot lock: the boot into %s has not passed its health gate (%s)",
                     st->staged_version, st->last_error[0] ? st->last_error : "not judged yet");
                return;
        }
        if (st->lock_phase != AGENT_LOCK_POST_BOOT) {
                enter(a, AGENT_LOCK_POST_BOOT);
                st->reboot_requested = false;
                if (save(a) < 0) {
                        due_in(rb, 30);
                        return;
                }
        }
        if (!rb->post_hooks_done) {
                const char *which = NULL;
                int r = run_hooks(a, "post-boot", c->post_boot_timeout, &which);
                if (r == -ECANCELED)
                        return;
                if (r < 0) {
                        unsigned d = backoff(a);
                        note(a, "post-boot hook \"%s\" %s; keeping the reboot lock; retry in %u s", which ? which : "?",
                             r == -ETIMEDOUT ? "timed out" : "failed", d);
                        (void)save(a);
                        return;
                }
                rb->post_hooks_done = true;
        }
        if (give_back(a, "after the boot: ") < 0) {
                (void)save(a);
                return;
        }
        enter(a, AGENT_LOCK_NONE);
        st->lock_failures = 0;
        st->window_pick = st->window_pick_close = 0; /* that reboot is done: the next one draws its own instant */
        rb->post_hooks_done = false;
        char t[64];
        fmt_time(rb->clock(), t, sizeof t);
        note(a, "%s the reboot lock at %s after the boot passed its health gate",
             lock_backend(c) ? "released" : "done (no lock to release)", t);
        (void)save(a);
}

/* Wait for the window and the jittered instant in it (the reason saved when it changes). true: go now. */
static bool window_allows(Agent *a, time_t now) {
        AgentReboot *rb = agent_reboot(a);
        const AgentConfig *c = agent_config(a);
        if (!c->window.days || agent_state(a)->reboot_requested)
                return true;
        time_t open, close;
        if (agent_window_find(&c->window, now, &open, &close) < 0)
                return true;
        /* One pick per window, saved: a restarted agent (a fleet restarted together, a crash loop) keeps its
         * instant while that window is current; the next window gets a new one. A saved pick that does not lie
         * in the window (the window was changed, or the file was edited) is drawn again. */
        AgentState *st = agent_state(a);
        time_t pick = (time_t)st->window_pick;
        if ((time_t)st->window_pick_close != close || pick < open || pick >= close) {
                pick = agent_window_pick(&c->window, now, rb->rnd());
                st->window_pick = (int64_t)pick;
                st->window_pick_close = (int64_t)close;
                (void)save(a); /* if it cannot be written, the lock step will not run either (it saves first) */
        }
        if (now >= pick && now >= open)
                return true;
        char w[96], o[64], p[64];
        agent_window_format(&c->window, w, sizeof w);
        fmt_time(open, o, sizeof o);
        fmt_time(pick, p, sizeof p);
        bool changed;
        if (now < open)
                changed = note(a, "waiting for the reboot window (%s): it opens at %s; reboot planned at %s", w, o, p);
        else
                changed = note(a, "in the reboot window (%s); reboot planned at %s (a random delay spreads the fleet)",
                               w, p);
        if (changed)
                (void)save(a);
        due_in(rb, (int64_t)(pick - now));
        return false;
}

void agent_reboot_step_locked(Agent *a) {
        AgentState *st = agent_state(a);
        AgentReboot *rb = agent_reboot(a);
        const AgentConfig *c = agent_config(a);
        rb->due_ms = -1;
        if (agent_cancelled())
                return;
        time_t now = rb->clock();

        /* A request from an earlier boot was carried out (or overtaken) by that reboot. */
        if (st->reboot_requested && st->lock_phase == AGENT_LOCK_NONE && st->lock_boot_id[0] && !same_boot(a)) {
                st->reboot_requested = false;
                st->lock_boot_id[0] = 0;
                (void)save(a);
        }
        if (!rb->gate_done)
                return; /* the booted slot is judged first (the gate calls us when it has) */
        if (st->lock_phase != AGENT_LOCK_NONE && !same_boot(a)) {
                after_boot(a);
                return;
        }
        if (st->lock_phase == AGENT_LOCK_REBOOTING) {
                if (rb->reboot_issued)
                        return; /* going down */
                if (!reboot_wanted(a)) {
                        if (give_back(a, "") < 0) {
                                (void)save(a);
                                return;
                        }
                        enter(a, AGENT_LOCK_NONE);
                        note(a, "the reboot is no longer wanted; released the reboot lock");
                        (void)save(a);
                        return;
                }
                goto reboot; /* restarted after running the reboot command in this boot: still ours to finish */
        }
        if (st->lock_phase == AGENT_LOCK_ACQUIRING || st->lock_phase == AGENT_LOCK_PRE_REBOOT) {
                /* Left by a crash or a failed step: give the lock back before anything else. */
                if (give_back(a, "no reboot: ") < 0) {
                        (void)save(a);
                        return;
                }
                enter(a, AGENT_LOCK_NONE);
                if (save(a) < 0)
                        return;
        }
        if (!reboot_wanted(a))
                return;
        if (now < rb->retry_at) {
                due_in(rb, (int64_t)(rb->retry_at - now));
                return;
        }
        if (!window_allows(a, now))
                return;

        /* The lock. The phase is saved before asking, so a crash after the grant is remembered. */
        char why[AGENT_LOCK_NOTE_MAX] = "";
        Conn conn;
        int r = conn_open(c, &conn, why, sizeof why);
        if (r >= 0 && conn.l) {
                enter(a, AGENT_LOCK_ACQUIRING);
                if (save(a) < 0) {
                        conn_close(&conn);
                        due_in(rb, 30);
                        return;
                }
                r = conn.b->take(conn.l, agent_machine_id(a));
                if (r < 0)
                        snprintf(why, sizeof why, "%s", conn.b->error(conn.l));
                refresh_view(rb, &conn);
                if (r == -EBUSY) {
                        enter(a, AGENT_LOCK_NONE); /* refused: nothing was taken */
                        char holders[AGENT_ERROR_MAX] = "";
                        if (conn.b == &lock_backend_etcd && rb->view.at && rb->view.n_holders)
                                snprintf(holders, sizeof holders, " (held by %zu of max %" PRId64 ")",
                                         rb->view.n_holders, rb->view.max);
                        else if (conn.b != &lock_backend_etcd)
                                snprintf(holders, sizeof holders, " (%.200s)", why); /* the server's own words */
                        unsigned d = backoff(a);
                        note(a, "waiting for the reboot lock: no slot free%s; retry in %u s", holders, d);
                        (void)save(a);
                        conn_close(&conn);
                        return;
                }
                if (r < 0) {
                        /* Unknown whether it was granted: stay "acquiring", so the next step gives it back first. */
                        snprintf(rb->view.error, sizeof rb->view.error, "%s", why);
                        unsigned d = backoff(a);
                        note(a, "no reboot: cannot take the reboot lock: %s; retry in %u s", why, d);
                        (void)save(a);
                        conn_close(&conn);
                        return;
                }
                rb->view.error[0] = 0;
        } else if (r < 0) {
                unsigned d = backoff(a);
                note(a, "no reboot: %s; retry in %u s", why, d);
                (void)save(a);
                return;
        }
        conn_close(&conn);

        /* Pre-reboot hooks (drain). */
        if (st->lock_phase != AGENT_LOCK_ACQUIRING) {
                snprintf(st->lock_boot_id, sizeof st->lock_boot_id, "%s", agent_boot_id(a));
                remember_target(a);
        }
        st->lock_phase = AGENT_LOCK_PRE_REBOOT;
        note(a, "%s; running the pre-reboot hooks", lock_backend(c) ? "took the reboot lock" : "rebooting soon");
        if (save(a) < 0) {
                due_in(rb, 30);
                return;
        }
        const char *which = NULL;
        r = run_hooks(a, "pre-reboot", c->pre_reboot_timeout, &which);
        if (r < 0) {
                char failed[PATH_MAX + 32];
                snprintf(failed, sizeof failed, "pre-reboot hook \"%s\" %s", which ? which : "?",
                         r == -ETIMEDOUT ? "timed out" : r == -ECANCELED ? "was interrupted" : "failed");
                if (give_back(a, "") >= 0) {
                        enter(a, AGENT_LOCK_NONE);
                        unsigned d = r == -ECANCELED ? 0 : backoff(a);
                        note(a, "no reboot: %s; released the reboot lock; retry in %u s", failed, d);
                } else
                        note(a, "no reboot: %s; and the lock could not be released yet (retrying)", failed);
                (void)save(a);
                return;
        }

reboot:
        (void)agent_measure_ensure(a); /* the staged slot's PCR prediction is on disk before the reboot */
        st->lock_phase = AGENT_LOCK_REBOOTING;
        note(a, "rebooting%s (\"%s\")", lock_backend(c) ? " with the reboot lock held" : "", c->reboot_command);
        if (save(a) < 0) {
                due_in(rb, 30);
                return;
        }
        r = agent_run_command(c->reboot_command);
        if (r < 0) {
                snprintf(st->last_error, sizeof st->last_error, "reboot command \"%.200s\" failed", c->reboot_command);
                if (give_back(a, "") >= 0) {
                        enter(a, AGENT_LOCK_NONE);
                        unsigned d = backoff(a);
                        note(a, "reboot command \"%s\" failed; released the reboot lock; retry in %u s",
                             c->reboot_command, d);
                }
                (void)save(a);
                return;
        }
        rb->reboot_issued = true;
        st->lock_failures = 0;
        (void)save(a);
}

void agent_reboot_tick(Agent *a) {
        _cleanup_close_ int fd = -1;
        if (agent_lock_state_dir(a, &fd) < 0) {
                due_in(agent_reboot(a), 5); /* another cairn process writes the state: soon again */
                return;
        }
        agent_reboot_step_locked(a);
}

int agent_reboot_request(Agent *a) {
        _cleanup_close_ int fd = -1;
        int r = agent_lock_state_dir(a, &fd);
        if (r < 0)
                return r;
        AgentState *st = agent_state(a);
        AgentReboot *rb = agent_reboot(a);
        st->reboot_requested = true;
        if (st->lock_phase == AGENT_LOCK_NONE)
                snprintf(st->lock_boot_id, sizeof st->lock_boot_id, "%s", agent_boot_id(a));
        rb->retry_at = 0;
        st->lock_failures = 0;
        r = agent_save(a);
        if (r < 0)
                return r;
        agent_reboot_step_locked(a);
        return 0;
}
