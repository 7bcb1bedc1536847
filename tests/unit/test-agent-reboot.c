/* tests/unit/test-agent-reboot.c — reboot windows (parsing, the window holding an instant, the jittered pick), the
 * window config keys, and the reboot lifecycle driven by an injected clock: a host reboots only inside its window,
 * and a fleet sharing one is spread over it. */
#include <sys/stat.h>

#include "agent/agent.h"
#include "fileio.h"
#include "unit.h"

#define THU 1796256000 /* 2026-12-03 00:00:00 UTC, a Thursday */
#define H 3600
#define D 86400

static void test_parse_start(void) {
        static const struct {
                const char *s;
                uint8_t days;
                unsigned start;
        } good[] = {
                { "Thu 04:00", 1u << 4, 240 },
                { "Mon,Wed 22:30", (1u << 1) | (1u << 3), 22 * 60 + 30 },
                { "04:00", AGENT_WINDOW_DAILY, 240 },
                { "4:05", AGENT_WINDOW_DAILY, 245 },
                { "thursday 23:59", 1u << 4, 23 * 60 + 59 },
                { "SUN,sat 00:00", 1u | (1u << 6), 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                uint8_t d = 0;
                unsigned st = 99;
                CHECK_EQ(agent_window_parse_start(good[i].s, &d, &st), 0);
                CHECK_EQ(d, good[i].days);
                CHECK_EQ(st, good[i].start);
        }
        static const char *const bad[] = { "", "Thu", "25:00", "04:60", "Thu04:00", "Xyz 04:00", "Mon, Wed 22:30",
                                           "Mon,,Wed 1:00", "Mon, 1:00", "04:0", "004:00", "Thu 04:00 ", " 04:00",
                                           "Thu  04:00", "Th 04:00", "Mon,Wed, 1:00", "12:3a", "-1:00" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t d = 0x55;
                unsigned st = 77;
                if (agent_window_parse_start(bad[i], &d, &st) != -EINVAL) {
                        fprintf(stderr, "accepted window start \"%s\"\n", bad[i]);
                        unit_failures++;
                }
                CHECK_EQ(d, 0x55); /* untouched */
                CHECK_EQ(st, 77);
        }
}

static void test_parse_length(void) {
        static const struct {
                const char *s;
                unsigned v;
        } good[] = { { "1h30m", 5400 }, { "45m", 2700 }, { "2h", 7200 }, { "3600s", 3600 }, { "1h1s", 3601 },
                     { "168h", 7 * D }, { "1s", 1 }, { "0h5m", 300 } };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                unsigned v = 0;
                CHECK_EQ(agent_window_parse_length(good[i].s, &v), 0);
                CHECK_EQ(v, good[i].v);
        }
        static const struct {
                const char *s;
                int r;
        } bad[] = { { "", -EINVAL },    { "0", -EINVAL },     { "0s", -ERANGE },     { "1h30", -EINVAL },
                    { "30m1h", -EINVAL }, { "1h1h", -EINVAL }, { "169h", -ERANGE },  { "-1h", -EINVAL },
                    { "1.5h", -EINVAL }, { "1d", -EINVAL },    { "h", -EINVAL },      { "99999999999999999999s", -ERANGE },
                    { "1h 30m", -EINVAL } };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                unsigned v = 42;
                int r = agent_window_parse_length(bad[i].s, &v);
                if (r != bad[i].r) {
                        fprintf(stderr, "length \"%s\": %d, want %d\n", bad[i].s, r, bad[i].r);
                        unit_failures++;
                }
                CHECK_EQ(v, 42);
        }
}

static void test_find(void) {
        AgentWindow w = { .days = 1u << 4, .start = 240, .length = 5400 }; /* Thu 04:00 for 1h30m */
        time_t o, c;
        /* Wednesday noon: the next one is Thursday 04:00. */
        CHECK_EQ(agent_window_find(&w, THU - 12 * H, &o, &c), 0);
        CHECK_EQ(o, THU + 4 * H);
        CHECK_EQ(c, THU + 4 * H + 5400);
        CHECK(!agent_window_contains(&w, THU - 12 * H));
        CHECK(!agent_window_contains(&w, THU + 4 * H - 1));
        CHECK(agent_window_contains(&w, THU + 4 * H));
        CHECK(agent_window_contains(&w, THU + 4 * H + 5399));
        CHECK(!agent_window_contains(&w, THU + 4 * H + 5400));
        /* Inside: the current one. At its end: next week's. */
        CHECK_EQ(agent_window_find(&w, THU + 5 * H, &o, &c), 0);
        CHECK_EQ(o, THU + 4 * H);
        CHECK_EQ(agent_window_find(&w, THU + 4 * H + 5400, &o, &c), 0);
        CHECK_EQ(o, THU + 7 * D + 4 * H);
        /* A day list: from Tuesday noon the next is Wednesday 22:30 (Thursday is day 4, so Tue = THU-2d). */
        AgentWindow mw = { .days = (1u << 1) | (1u << 3), .start = 22 * 60 + 30, .length = H };
        CHECK_EQ(agent_window_find(&mw, THU - 2 * D + 12 * H, &o, &c), 0);
        CHECK_EQ(o, THU - D + 22 * H + 30 * 60);
        /* Daily, across midnight: at 00:10 the window that opened at 23:30 is still open. */
        AgentWindow dw = { .days = AGENT_WINDOW_DAILY, .start = 23 * 60 + 30, .length = H };
        CHECK(agent_window_contains(&dw, THU + 10 * 60));
        CHECK_EQ(agent_window_find(&dw, THU + 10 * 60, &o, &c), 0);
        CHECK_EQ(o, THU - 30 * 60);
        CHECK(!agent_window_contains(&dw, THU + 31 * 60));
        /* A week-long window on one day is always open. */
        AgentWindow ww = { .days = 1u << 4, .start = 0, .length = 7 * D };
        for (time_t t = THU - 3 * D; t < THU + 10 * D; t += 997)
                CHECK(agent_window_contains(&ww, t));
        /* No window: always. */
        AgentWindow none = { 0 };
        CHECK(agent_window_contains(&none, THU));
        CHECK_EQ(agent_window_find(&none, THU, &o, &c), -ENOENT);
        CHECK_EQ(agent_window_pick(&none, THU + 5, 12345), THU + 5);
        char buf[96];
        agent_window_format(&w, buf, sizeof buf);
        CHECK_STREQ(buf, "Thu 04:00 for 1h30m");
        agent_window_format(&mw, buf, sizeof buf);
        CHECK_STREQ(buf, "Mon,Wed 22:30 for 1h");
        agent_window_format(&dw, buf, sizeof buf);
        CHECK_STREQ(buf, "daily 23:30 for 1h");
}

static uint32_t lcg_state;
static uint32_t lcg(void) {
        lcg_state = lcg_state * 1664525u + 1013904223u;
        return lcg_state ^ (lcg_state >> 16);
}

/* Every pick lies inside a window and not before now; picks from the same instant are spread over the first half
 * of the window. */
static void test_pick(void) {
        AgentWindow w = { .days = (1u << 1) | (1u << 4), .start = 240, .length = 5400 };
        lcg_state = 7;
        for (int i = 0; i < 20000; i++) {
                time_t now = THU - 7 * D + (time_t)(lcg() % (21u * D));
                time_t p = agent_window_pick(&w, now, lcg());
                if (p < now || !agent_window_contains(&w, p)) {
                        fprintf(stderr, "pick %lld for now %lld is outside the window\n", (long long)p, (long long)now);
                        unit_failures++;
                        break;
                }
        }
        /* 200 hosts at the same instant before the window: spread over [04:00, 04:45). */
        time_t lo = 0, hi = 0;
        bool minute[45] = { false };
        for (int i = 0; i < 200; i++) {
                time_t p = agent_window_pick(&w, THU + 2 * H, lcg());
                CHECK(p >= THU + 4 * H && p < THU + 4 * H + 2700);
                if (!lo || p < lo)
                        lo = p;
                if (p > hi)
                        hi = p;
                if (p >= THU + 4 * H && p < THU + 4 * H + 2700)
                        minute[(p - THU - 4 * H) / 60] = true;
        }
        int minutes = 0;
        for (int i = 0; i < 45; i++)
                minutes += minute[i];
        CHECK(hi - lo > 2400);  /* nearly the whole first half */
        CHECK(minutes >= 40);   /* not in step: almost every minute has a host */
        /* Inside the window, the pick is in what is left of it. */
        for (int i = 0; i < 100; i++) {
                time_t p = agent_window_pick(&w, THU + 5 * H, lcg());
                CHECK(p >= THU + 5 * H && p < THU + 5 * H + 900);
        }
}

static void put(const char *rel, const char *text) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", unit_tmpdir(), rel);
        CHECK_EQ(mkdir_parents(p, false), 0);
        CHECK_EQ(write_file_atomic(p, text, strlen(text), 0755), 0);
}

static void test_config(void) {
        AgentConfig c;
        AgentConfigError e;
        char msg[1024];
        /* Both, under locksmith's names too. */
        agent_config_init(&c);
        const char *both = "LOCKSMITHD_REBOOT_WINDOW_START=\"Mon,Wed 22:30\"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\n"
                           "LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379,https://10.0.0.2:2379\nLOCKSMITHD_GROUP=web\n"
                           "REBOOT_STRATEGY=etcd-lock\n";
        CHECK_EQ(agent_config_parse(&c, both, strlen(both), NULL), 0);
        CHECK_EQ(agent_config_finish(&c, NULL, NULL), 0);
        CHECK_EQ(c.window.days, (1u << 1) | (1u << 3));
        CHECK_EQ(c.window.start, 22 * 60 + 30);
        CHECK_EQ(c.window.length, 5400);
        CHECK_STREQ(c.etcd_endpoints, "http://10.0.0.1:2379,https://10.0.0.2:2379");
        CHECK_STREQ(c.lock_group, "web");
        /* Only one of the two: one line naming the key, the value and the forms. */
        put("w1/etc/cairn/update.conf", "GROUP=beta\nREBOOT_WINDOW_START=Thu 04:00\n");
        char root[700];
        snprintf(root, sizeof root, "%s/w1", unit_tmpdir());
        agent_config_init(&c);
        e = (AgentConfigError){ 0 };
        CHECK_EQ(agent_config_load(&c, root, &e), -EINVAL);
        agent_config_error_format(&e, -EINVAL, msg, sizeof msg);
        CHECK(strstr(msg, "/etc/cairn/update.conf\" line 2: REBOOT_WINDOW_START=\"Thu 04:00\" is set without "
                          "REBOOT_WINDOW_LENGTH") != NULL);
        CHECK(strstr(msg, "\"Mon,Wed 22:30\"") && strstr(msg, "1h30m"));
        CHECK(!strchr(msg, '\n'));
        CHECK_STREQ(c.group, "stable"); /* nothing applied */
        /* Set in one file, its partner in another: fine. */
        put("w1/usr/share/cairn/update.conf", "REBOOT_WINDOW_LENGTH=2h\n");
        agent_config_init(&c);
        CHECK_EQ(agent_config_load(&c, root, &e), 0);
        CHECK_EQ(c.window.length, 7200);
        /* An empty value unsets it (a Flatcar file with both empty has no window). */
        put("w1/etc/cairn/update.conf", "REBOOT_WINDOW_START=\nREBOOT_WINDOW_LENGTH=\n");
        agent_config_init(&c);
        CHECK_EQ(agent_config_load(&c, root, &e), 0);
        CHECK_EQ(c.window.days, 0);
        /* Only LENGTH. */
        put("w1/etc/cairn/update.conf", "GROUP=beta\n");
        put("w1/usr/share/cairn/update.conf", "\n\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=45m\n");
        agent_config_init(&c);
        CHECK_EQ(agent_config_load(&c, root, &e), -EINVAL);
        agent_config_error_format(&e, -EINVAL, msg, sizeof msg);
        CHECK(strstr(msg, "/usr/share/cairn/update.conf\" line 3: REBOOT_WINDOW_LENGTH=\"45m\" is set without "
                          "REBOOT_WINDOW_START") != NULL);
        /* Unparsable values. */
        static const char *const bad[] = { "REBOOT_WINDOW_START=Thursday at 4", "REBOOT_WINDOW_START=24:00",
                                           "REBOOT_WINDOW_LENGTH=90", "LOCKSMITHD_REBOOT_WINDOW_LENGTH=8d",
                                           "ETCD_ENDPOINTS=etcd:2379", "FLEETLOCK_URL=ftp://x", "LOCK_RETRY_MIN=0",
                                           "PRE_REBOOT_TIMEOUT=2d" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                agent_config_init(&c);
                e = (AgentConfigError){ .path = "update.conf" };
                CHECK(agent_config_parse(&c, bad[i], strlen(bad[i]), &e) < 0);
                agent_config_error_format(&e, -EINVAL, msg, sizeof msg);
                CHECK(strncmp(bad[i], e.key, strlen(e.key)) == 0 && e.key[0]);
                CHECK(strstr(msg, strchr(bad[i], '=') + 1) != NULL);
        }
        agent_config_init(&c);
        CHECK_EQ(agent_config_parse(&c, bad[0], strlen(bad[0]), &e), -EINVAL);
        agent_config_error_format(&e, -EINVAL, msg, sizeof msg);
        CHECK(strstr(msg, "is not a start like \"Thu 04:00\", \"Mon,Wed 22:30\" or \"04:00\" (every day)") != NULL);
        /* A password is never echoed. */
        agent_config_init(&c);
        char longpw[400];
        memset(longpw, 'p', sizeof longpw);
        memcpy(longpw, "ETCD_PASSWORD=", 14);
        longpw[sizeof longpw - 1] = 0;
        CHECK(agent_config_parse(&c, longpw, strlen(longpw), &e) < 0);
        CHECK_STREQ(e.value, "(hidden)");
        /* Cross checks. */
        static const char *const pairs[] = { "REBOOT_STRATEGY=fleetlock\n", "ETCD_USERNAME=root\n",
                                             "ETCD_CERTFILE=/c.pem\n", "LOCK_RETRY_MIN=10m\nLOCK_RETRY_MAX=1m\n",
                                             "REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL=http://x\nLOCK_GROUP=a/b\n" };
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                agent_config_init(&c);
                CHECK_EQ(agent_config_parse(&c, pairs[i], strlen(pairs[i]), NULL), 0);
                e = (AgentConfigError){ 0 };
                CHECK_EQ(agent_config_finish(&c, NULL, &e), -EINVAL);
                CHECK(e.key[0] && e.why);
        }
}

/* ---- the lifecycle with an injected clock ---- */

static time_t fake_now;
static time_t fake_clock(void) {
        return fake_now;
}

/* The agent of an existing host root (its state file as the last run left it): a restarted agent. */
static Agent *reopen(const char *name) {
        char root[800];
        snprintf(root, sizeof root, "%s/%s", unit_tmpdir(), name);
        AgentOptions o = { .root = root, .booted = 0, .boot_id = "boot-1" };
        Agent *a = NULL;
        char err[512] = "";
        int r = agent_new(&o, &a, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "agent_new: %s\n", err);
        CHECK_EQ(r, 0);
        return a;
}

/* A host root with a staged update waiting for its reboot (STAGED_BOOT_ID = this boot). */
static Agent *host(const char *name, const char *conf) {
        char p[900];
        snprintf(p, sizeof p, "%s/etc/machine-id", name);
        put(p, "0123456789abcdef0123456789abcdef\n");
        snprintf(p, sizeof p, "%s/usr/lib/os-release", name);
        put(p, "VERSION_ID=1.0.0\n");
        snprintf(p, sizeof p, "%s/etc/cairn/update.conf", name);
        put(p, conf);
        snprintf(p, sizeof p, "%s/var/lib/cairn/state", name);
        put(p, "STATE=UPDATED_NEED_REBOOT\nSTAGED_VERSION=2.0.0\nSTAGED_SLOT=B\nSTAGED_BOOT_ID=boot-1\n");
        return reopen(name);
}

/* Step the lifecycle once a simulated minute from `from` for `span` seconds; the instant its reboot command ran
 * (the phase became rebooting), or 0. */
static time_t run_until_reboot(Agent *a, time_t from, time_t span) {
        for (fake_now = from; fake_now < from + span; fake_now += 60) {
                agent_reboot_step_locked(a);
                if (agent_state(a)->lock_phase == AGENT_LOCK_REBOOTING)
                        return fake_now;
        }
        return 0;
}

static void test_lifecycle_window(void) {
        AgentWindow w = { .days = 1u << 4, .start = 240, .length = 5400 };
        time_t first = 0, last = 0;
        for (int i = 0; i < 40; i++) {
                char name[32];
                snprintf(name, sizeof name, "host%d", i);
                Agent *a = host(name, "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=true\nREBOOT_WINDOW_START=Thu 04:00\n"
                                      "REBOOT_WINDOW_LENGTH=1h30m\n");
                if (!a)
                        return;
                lcg_state = 1000u + (uint32_t)i;
                agent_reboot_set_clock(a, fake_clock, lcg);
                agent_reboot_gate_done(a);
                /* From Monday: nothing until Thursday's window, then a reboot inside it. */
                time_t t = run_until_reboot(a, THU - 3 * D, 7 * D);
                CHECK(t != 0);
                if (!t)
                        fprintf(stderr, "%s: no reboot: %s\n", name, agent_state(a)->lock_note);
                CHECK(agent_window_contains(&w, t));
                if (i == 0)
                        CHECK(strstr(agent_state(a)->lock_note, "rebooting") != NULL);
                if (!first || t < first)
                        first = t;
                if (t > last)
                        last = t;
                /* Saved: a fresh reader sees the phase. */
                AgentState st;
                char dir[900];
                snprintf(dir, sizeof dir, "%s/%s/var/lib/cairn", unit_tmpdir(), name);
                CHECK_EQ(agent_state_load(&st, dir), 0);
                CHECK_EQ(st.lock_phase, AGENT_LOCK_REBOOTING);
                CHECK_STREQ(st.lock_boot_id, "boot-1");
                agent_free(a);
        }
        CHECK(last - first >= 30 * 60); /* 40 hosts spread over at least half an hour of the window */
        /* Before the window, the reason says when it opens. */
        Agent *a = host("early", "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=false\nREBOOT_WINDOW_START=Thu 04:00\n"
                                 "REBOOT_WINDOW_LENGTH=1h30m\n");
        if (!a)
                return;
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        fake_now = THU + H;
        agent_reboot_step_locked(a);
        CHECK_EQ(agent_state(a)->lock_phase, AGENT_LOCK_NONE);
        CHECK(strstr(agent_state(a)->lock_note, "waiting for the reboot window (Thu 04:00 for 1h30m)") != NULL);
        CHECK(agent_reboot_due_ms(a) >= 0);
        /* Without the gate having judged this boot, nothing happens even inside the window. */
        agent_free(a);
        a = host("nogate", "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=true\n");
        agent_reboot_set_clock(a, fake_clock, lcg);
        fake_now = THU;
        agent_reboot_step_locked(a);
        CHECK_EQ(agent_state(a)->lock_phase, AGENT_LOCK_NONE);
        agent_reboot_gate_done(a);
        agent_reboot_step_locked(a);
        CHECK_EQ(agent_state(a)->lock_phase, AGENT_LOCK_REBOOTING);
        agent_free(a);
        /* A failing reboot command: no phase left behind, backoff, the reason saved. */
        a = host("failcmd", "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=exit 3\nLOCK_RETRY_MIN=60\n");
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        agent_reboot_step_locked(a);
        CHECK_EQ(agent_state(a)->lock_phase, AGENT_LOCK_NONE);
        CHECK_EQ(agent_state(a)->lock_failures, 1);
        CHECK(strstr(agent_state(a)->lock_note, "reboot command \"exit 3\" failed") != NULL);
        agent_free(a);
        /* REBOOT_STRATEGY=off: never by itself. */
        a = host("off", "REBOOT_STRATEGY=off\nREBOOT_COMMAND=true\n");
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        CHECK_EQ(run_until_reboot(a, THU, D), 0);
        agent_free(a);
}

static int64_t saved_pick(const char *name, int64_t *ret_close) {
        AgentState st;
        char dir[900];
        snprintf(dir, sizeof dir, "%s/%s/var/lib/cairn", unit_tmpdir(), name);
        CHECK_EQ(agent_state_load(&st, dir), 0);
        if (ret_close)
                *ret_close = st.window_pick_close;
        return st.window_pick;
}

/* The instant picked in a window survives restarts while that window is current (each restart draws other random
 * numbers), and the next window gets a new one. */
static void test_pick_saved(void) {
        const char *conf = "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=true\nREBOOT_WINDOW_START=Thu 04:00\n"
                           "REBOOT_WINDOW_LENGTH=1h30m\n";
        const time_t open = THU + 4 * H, close = open + 5400;
        Agent *a = host("saved", conf);
        if (!a)
                return;
        lcg_state = 4242;
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        fake_now = THU + H; /* before the window */
        agent_reboot_step_locked(a);
        CHECK_EQ(agent_state(a)->lock_phase, AGENT_LOCK_NONE);
        int64_t pclose = 0, pick = saved_pick("saved", &pclose);
        CHECK(pick >= open && pick < open + 2700);
        CHECK_EQ(pclose, close);
        /* What status shows (behaviour, not only the state file): the planned instant. */
        char planned[64];
        struct tm tm;
        time_t pt = (time_t)pick;
        strftime(planned, sizeof planned, "reboot planned at %Y-%m-%d %H:%M:%S UTC", gmtime_r(&pt, &tm));
        CHECK(strstr(agent_state(a)->lock_note, planned) != NULL);
        agent_free(a);
        /* 30 restarts, before and inside the window up to the pick, each with its own random numbers: the same
         * instant every time, no reboot before it. */
        for (int i = 0; i < 30; i++) {
                a = reopen("saved");
                if (!a)
                        return;
                lcg_state = 9000u + (uint32_t)i * 7919u;
                agent_reboot_set_clock(a, fake_clock, lcg);
                agent_reboot_gate_done(a);
                fake_now = THU + 2 * H + (time_t)i * ((pick - 1 - (THU + 2 * H)) / 29);
                agent_reboot_step_locked(a);
                if (agent_state(a)->lock_phase != AGENT_LOCK_NONE || saved_pick("saved", NULL) != pick ||
                    !strstr(agent_state(a)->lock_note, planned)) {
                        fprintf(stderr, "restart %d at %lld: phase %s, note \"%s\", pick %lld (was %lld)\n", i,
                                (long long)fake_now, agent_lock_phase_name(agent_state(a)->lock_phase),
                                agent_state(a)->lock_note,
                                (long long)saved_pick("saved", NULL), (long long)pick);
                        unit_failures++;
                }
                agent_free(a);
        }
        /* A restart after the pick (still in the window) reboots at once, at the instant it was planned for. */
        a = reopen("saved");
        lcg_state = 1;
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        CHECK_EQ(run_until_reboot(a, pick - 59, 3600), pick + 1);
        agent_free(a);
        /* The window passed without a reboot (REBOOT_COMMAND failing): next week's window draws a new instant. */
        a = host("saved2", "REBOOT_STRATEGY=reboot\nREBOOT_COMMAND=exit 1\nREBOOT_WINDOW_START=Thu 04:00\n"
                           "REBOOT_WINDOW_LENGTH=1h30m\n");
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        fake_now = THU + H;
        agent_reboot_step_locked(a);
        int64_t p1 = saved_pick("saved2", NULL);
        CHECK(p1 >= open && p1 < close);
        agent_free(a);
        a = reopen("saved2");
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        fake_now = close + 60;
        agent_reboot_step_locked(a);
        int64_t p2 = saved_pick("saved2", &pclose);
        CHECK_EQ(pclose, close + 7 * D);
        CHECK(p2 >= open + 7 * D && p2 < open + 7 * D + 2700);
        agent_free(a);
        /* A saved pick outside its window (edited, or the window changed) is drawn again, inside it. */
        char p[900];
        snprintf(p, sizeof p, "%s/saved3/var/lib/cairn/state", unit_tmpdir());
        a = host("saved3", conf);
        agent_free(a);
        char st[512];
        snprintf(st, sizeof st,
                 "STATE=UPDATED_NEED_REBOOT\nSTAGED_VERSION=2.0.0\nSTAGED_SLOT=B\nSTAGED_BOOT_ID=boot-1\n"
                 "WINDOW_PICK=%lld\nWINDOW_PICK_CLOSE=%lld\n", (long long)(close + 10), (long long)close);
        CHECK_EQ(write_file_atomic(p, st, strlen(st), 0644), 0);
        a = reopen("saved3");
        agent_reboot_set_clock(a, fake_clock, lcg);
        agent_reboot_gate_done(a);
        fake_now = THU + H;
        agent_reboot_step_locked(a);
        int64_t p3 = saved_pick("saved3", NULL);
        CHECK(p3 >= open && p3 < open + 2700);
        agent_free(a);
}

/* The new state keys round-trip; bad values are reset (with a note), never used. */
static void test_state_keys(void) {
        AgentState st, back;
        agent_state_init(&st);
        CHECK_EQ(st.lock_to_slot, -1);
        st.window_pick = THU + 4 * H + 77;
        st.window_pick_close = THU + 4 * H + 5400;
        snprintf(st.lock_from_version, sizeof st.lock_from_version, "1.0.0");
        snprintf(st.lock_to_version, sizeof st.lock_to_version, "2.0.0");
        st.lock_to_slot = 1;
        char *text = NULL;
        size_t len = 0;
        CHECK_EQ(agent_state_format(&st, &text, &len), 0);
        CHECK_EQ(agent_state_parse(&back, text, len), 0);
        free(text);
        CHECK_EQ(back.window_pick, THU + 4 * H + 77);
        CHECK_EQ(back.window_pick_close, THU + 4 * H + 5400);
        CHECK_STREQ(back.lock_from_version, "1.0.0");
        CHECK_STREQ(back.lock_to_version, "2.0.0");
        CHECK_EQ(back.lock_to_slot, 1);
        static const char *const bad[] = { "WINDOW_PICK=-5\n", "WINDOW_PICK=253402300800\n", "WINDOW_PICK_CLOSE=x\n",
                                           "LOCK_TO_SLOT=C\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_EQ(agent_state_parse(&back, bad[i], strlen(bad[i])), 0);
                CHECK_EQ(back.window_pick, 0);
                CHECK_EQ(back.window_pick_close, 0);
                CHECK_EQ(back.lock_to_slot, -1);
                CHECK(back.load_note[0] != 0);
        }
}

int main(void) {
        setenv("TZ", "UTC", 1);
        tzset();
        RUN(test_parse_start);
        RUN(test_parse_length);
        RUN(test_find);
        RUN(test_pick);
        RUN(test_config);
        RUN(test_lifecycle_window);
        RUN(test_pick_saved);
        RUN(test_state_keys);
        return unit_main_end();
}
