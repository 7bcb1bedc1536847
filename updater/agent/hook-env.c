/* updater/agent/hook-env.c — the environment of the pre-reboot.d and post-boot.d hooks (docs/reboot.md, "Hook
 * environment"): a clean PATH, HOME, TZ when the daemon has one, and the CAIRN_* variables a drain script needs.
 * Nothing else of the daemon's environment reaches a hook, so no secret set there (an etcd password in
 * CAIRN_LOCK_USER or LOCKSMITHD_ETCD_PASSWORD, a proxy's credentials) leaks into a script. */
#include "agent-internal.h"

#include <pwd.h>
#include <stdarg.h>

#define HOOK_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOK_ENV_MAX 24

typedef struct HookEnv {
        char *v[HOOK_ENV_MAX + 1];
        size_t n;
        int err;
} HookEnv;

_printf_(3, 4) static void add(HookEnv *e, const char *key, const char *fmt, ...) {
        if (e->err)
                return;
        if (e->n == HOOK_ENV_MAX) {
                e->err = -E2BIG;
                return;
        }
        char val[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(val, sizeof val, fmt, ap);
        va_end(ap);
        /* One line each: a control character (only possible through an edited state file) becomes a space. */
        for (char *p = val; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        if (asprintf(&e->v[e->n], "%s=%s", key, val) < 0) {
                e->v[e->n] = NULL;
                e->err = -ENOMEM;
                return;
        }
        e->n++;
}

void agent_hook_env_free(char **env) {
        if (!env)
                return;
        for (char **p = env; *p; p++)
                free(*p);
        free(env);
}

static const char *slot_letter(int slot) {
        return slot == 0 ? "A" : slot == 1 ? "B" : "";
}

/* The booted slot (0/1), or -1 when it cannot be told (not booted from a slot). */
static int booted_slot(Agent *a) {
        if (a->o.booted >= 0)
                return a->o.booted;
        char saved[AGENT_ERROR_MAX];
        memcpy(saved, a->err, sizeof saved); /* a failure here is no error of the lifecycle's */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = agent_open_bootcfg(a, false, &b);
        memcpy(a->err, saved, sizeof saved);
        if (r < 0)
                return -1;
        r = bootcfg_booted(b);
        return r < 0 ? -1 : r;
}

static const char *lock_name(const AgentConfig *c) {
        switch (c->reboot_strategy) {
        case AGENT_REBOOT_ETCD_LOCK:
                return "etcd";
        case AGENT_REBOOT_FLEETLOCK:
                return "fleetlock";
        case AGENT_REBOOT_OFF:
                return c->fleetlock_url[0] ? "fleetlock" : c->etcd_endpoints[0] ? "etcd" : "none";
        default:
                return "none";
        }
}

int agent_hook_env(Agent *a, const char *hook, unsigned timeout, char ***ret) {
        const AgentConfig *c = &a->cfg;
        const AgentState *st = &a->st;
        bool post = strcmp(hook, "post-boot") == 0;
        HookEnv e = { .n = 0 };

        add(&e, "PATH", "%s", HOOK_PATH);
        const struct passwd *pw = getpwuid(geteuid());
        add(&e, "HOME", "%s", pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
        const char *tz = getenv("TZ"); /* the zone the windows are read in, so `date` in a hook agrees */
        if (tz && strlen(tz) < 256)
                add(&e, "TZ", "%s", tz);
        add(&e, "CAIRN_HOOK", "%s", post ? "post-boot" : "pre-reboot");
        add(&e, "CAIRN_HOOK_TIMEOUT", "%u", timeout);
        add(&e, "CAIRN_REBOOT_STRATEGY", "%s", agent_reboot_strategy_name(c->reboot_strategy));
        add(&e, "CAIRN_LOCK", "%s", lock_name(c));
        add(&e, "CAIRN_LOCK_GROUP", "%s", c->lock_group);
        add(&e, "CAIRN_MACHINE_ID", "%s", a->machine_id);
        add(&e, "CAIRN_BOOT_ID", "%s", a->boot_id);
        int booted = booted_slot(a);
        add(&e, "CAIRN_BOOTED_SLOT", "%s", slot_letter(booted));
        add(&e, "CAIRN_BOOTED_VERSION", "%s", a->os_version);
        /* Saved with the phase; a state file without it (written by an older agent) falls back to what is known. */
        const char *from = st->lock_from_version[0] ? st->lock_from_version
                           : post && st->previous_version[0] ? st->previous_version
                                                             : a->os_version;
        add(&e, "CAIRN_OLD_VERSION", "%s", from);
        add(&e, "CAIRN_NEW_VERSION", "%s", st->lock_to_version);
        if (post) {
                /* Came back on the old slot: the new one did not boot, or failed its gate before a reboot. */
                bool back = st->lock_to_slot >= 0 && booted >= 0 && booted != st->lock_to_slot;
                add(&e, "CAIRN_ROLLED_BACK", "%d", back ? 1 : 0);
        } else {
                add(&e, "CAIRN_NEXT_SLOT", "%s", slot_letter(st->lock_to_slot >= 0 ? st->lock_to_slot : booted));
                add(&e, "CAIRN_REBOOT_REASON", "%s", st->reboot_requested ? "requested" : "update");
        }
        if (e.err) {
                for (size_t i = 0; i < e.n; i++)
                        free(e.v[i]);
                return e.err;
        }
        char **env = calloc(e.n + 1, sizeof *env);
        if (!env) {
                for (size_t i = 0; i < e.n; i++)
                        free(e.v[i]);
                return -ENOMEM;
        }
        memcpy(env, e.v, e.n * sizeof *env);
        *ret = env;
        return 0;
}
