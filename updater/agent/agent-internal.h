/* updater/agent/agent-internal.h — what the files of the agent's update flow share (agent.c, check.c, revoked.c,
 * manifest.c, update.c, postboot.c): the Agent itself and its error, state, lock and slot plumbing. Not for
 * other rooms, nor for the daemon, cairnctl or updated.c, which use agent.h. */
#pragma once

#include "agent.h"
#include "bootcfg/bootcfg.h"

struct Agent {
        AgentOptions o;
        AgentConfig cfg;
        AgentState st;
        AgentHttp *http;
        char root[PATH_MAX];
        char state_dir[PATH_MAX];
        char state_file[PATH_MAX];
        char bootcfg_dir[PATH_MAX];
        char keys_dir[PATH_MAX];
        char health[2][PATH_MAX];
        char machine_id[OMAHA_ATTR_MAX + 1];
        char os_version[AGENT_VERSION_MAX + 1];
        char board[PAYLOAD_STRING_MAX + 1];
        char boot_id[64];
        char oem[64];
        agent_progress_fn progress;
        void *progress_ud;
        char err[AGENT_ERROR_MAX];
        int errcode;            /* AGENT_EC_* of the failure in err (0: derived from the errno) */
        unsigned poll_interval; /* the server's PollInterval from the last good check; 0 = none */
        bool post_boot_done;    /* the post-boot gate ran to a verdict this boot (the daemon runs it once) */
        AgentReboot *reboot;    /* the reboot lifecycle's runtime (reboot.c) */
        bool delta_refused;     /* ask with delta_okay="false" (the delta did not match the active slot) */
        bool delta_mismatch;    /* set by do_update(): the delta's references are not in the active slot */
        char *event_xml;        /* measure.c: <cairnpcrs> elements the next event carries (NULL: none) */
};

typedef struct Slots {
        int fd;
        uint64_t off[2], size[2];
} Slots;

/* snprintf that reports truncation (-ENAMETOOLONG) instead of warning about it at compile time. */
int agent_strf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
/* Record the detail of a failure in a->err (the convention in docs/architecture.md) and return r. */
int agent_fail(Agent *a, int r, const char *fmt, ...) _printf_(3, 4);
/* agent_fail() with the update_engine error code the event 3/0 reports. */
int agent_failc(Agent *a, int ec, int r, const char *fmt, ...) _printf_(4, 5);

/* agent.c: the status into the state file (best effort) and to the progress callback. */
void agent_set_status(Agent *a, AgentStatus s);
/* agent.c: the state directory's lock (every entry point that writes holds it throughout). */
int agent_lock_state_dir(Agent *a, int *ret_fd);
/* agent.c: the boot selection, and the slots of its disk through its descriptor (the disk's lock). */
int agent_open_bootcfg(Agent *a, bool writable, struct bootcfg **ret);
int agent_open_slots(Agent *a, struct bootcfg *b, Slots *ret);
/* check.c: an Omaha event to the server (best effort). */
void agent_send_event(Agent *a, int type, int result, int errorcode, const char *previous);
/* revoked.c: the revoked key ids this host recorded, applied to a key ring; recording a release's revocations. */
int agent_revoked_apply(Agent *a, CairnKeyring *kr);
int agent_revoked_record(Agent *a, const Payload *p);
/* manifest.c: fetch and verify the offer's manifest (the payload's signed prefix). */
int agent_fetch_manifest(Agent *a, AgentOffer *offer, uint64_t *counter, Payload **ret);
/* measure.c: predict and record the PCRs of the next boot (of DISK into slot); send_with_event: the next event
 * (the install event) carries them. Best effort: < 0 logged, the update goes on. */
int agent_measure_predict(Agent *a, const char *disk, int slot, const char *version, bool send_with_event);
/* measure.c: in the first boot after a prediction, compare it with the TPM (the state lock held). */
void agent_measure_check(Agent *a, int booted);
