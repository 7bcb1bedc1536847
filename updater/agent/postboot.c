/* updater/agent/postboot.c — after boot: rollback detection, the health gate, mark-good and rollback. */
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

/* ---- after boot ---- */

bool agent_post_boot_pending(const Agent *a) {
        return !a->post_boot_done;
}

static int post_boot(Agent *a);

int agent_post_boot(Agent *a) {
        int r = post_boot(a);
        if (r == -ECANCELED)
                return r;
        if (r >= 0)
                a->post_boot_done = true;
        /* Judged (or failed to judge) this boot: the reboot lifecycle may now release a lock held across the
         * reboot, or keep it when the new boot did not pass. */
        agent_reboot_gate_done(a);
        (void)agent_reboot_tick(a);
        return r;
}

static int post_boot(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = agent_lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = agent_open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        int booted = bootcfg_booted(b);
        if (booted < 0)
                return 0; /* not booted from a slot (e.g. an image being inspected): nothing to judge */
        agent_measure_check(a, booted); /* the first boot after a PCR prediction: compare with the TPM */
        struct bootcfg_state bs;
        r = bootcfg_read(b, &bs);
        if (r < 0)
                return agent_fail(a, r, "boot selection: %s", bootcfg_error(b));
        bool rebooted = a->st.staged_slot >= 0 && strcmp(a->st.staged_boot_id, a->boot_id) != 0;
        if (rebooted && booted != a->st.staged_slot) {
                /* Came back on the old slot: the new one did not boot (or failed its health gate). */
                char failed[AGENT_VERSION_MAX + 1];
                agent_strf(failed, sizeof failed, "%s", a->st.staged_version);
                agent_state_add_failed(&a->st, failed);
                agent_strf(a->st.last_error, sizeof a->st.last_error,
                         "rolled back: version %s in slot %c did not boot; it will not be installed again "
                         "automatically", failed, bootcfg_slot_name(a->st.staged_slot));
                agent_state_forget_staged(&a->st);
                a->st.new_version[0] = 0;
                agent_set_status(a, AGENT_REPORTING_ERROR);
                agent_send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, AGENT_EC_ROLLBACK, failed);
                return 0;
        }
        if (bs.slot[booted].successful) {
                if (rebooted) { /* marked good by someone else */
                        agent_state_forget_staged(&a->st);
                        agent_set_status(a, AGENT_IDLE);
                }
                return 0;
        }
        /* Booted a slot not yet marked good: the health gate decides. */
        const char *dirs[2] = { a->health[0], a->health[1] };
        const char *which = NULL;
        r = agent_health_run(dirs, 2, a->cfg.health_timeout, &which);
        if (r == -ECANCELED)
                return agent_fail(a, r, "health check \"%s\" interrupted (stop requested)", which ? which : "?");
        if (r < 0) {
                agent_fail(a, r, "health check \"%s\" %s; slot %c not marked good", which ? which : "?",
                     r == -ETIMEDOUT ? "timed out" : "failed", bootcfg_slot_name(booted));
                agent_strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                agent_set_status(a, AGENT_REPORTING_ERROR);
                agent_send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, 1, NULL);
                return r;
        }
        r = bootcfg_mark_good(b, booted, NULL);
        if (r < 0)
                return agent_fail(a, r, "cannot mark slot %c good: %s", bootcfg_slot_name(booted), bootcfg_error(b));
        char prev[AGENT_VERSION_MAX + 1];
        agent_strf(prev, sizeof prev, "%s", a->st.previous_version);
        agent_state_forget_staged(&a->st);
        a->st.new_version[0] = 0;
        a->st.last_error[0] = 0;
        a->st.chunks_done = a->st.chunks_total = 0;
        agent_set_status(a, AGENT_IDLE);
        agent_send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_SUCCESS_REBOOT, 0, prev[0] ? prev : NULL);
        return 1;
}

int agent_mark_good(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = agent_lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = agent_open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        r = bootcfg_mark_good(b, -1, NULL);
        if (r < 0)
                return agent_fail(a, r, "mark-good: %s", bootcfg_error(b));
        if (a->st.staged_slot == bootcfg_booted(b)) {
                agent_state_forget_staged(&a->st);
        }
        (void)agent_save(a);
        return 0;
}

int agent_rollback(Agent *a) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = agent_lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = agent_open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        r = bootcfg_rollback(b, NULL);
        if (r < 0)
                return agent_fail(a, r, "rollback: %s", bootcfg_error(b));
        return 0;
}
