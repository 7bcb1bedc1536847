/* updater/agent/update.c — the update flow: check, manifest, guard rails (board, version, size), take the target out of the boot order, apply with resume, verify, set-next. */
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
#include "log.h"

/* The update_engine error code (action_processor.h) of the failure in a->err for event 3/0: the one set where it
 * happened, else derived from the errno. */
static int event_errorcode(const Agent *a, int r) {
        if (a->errcode)
                return a->errcode;
        switch (r) {
        case -ENOKEY:
        case -EKEYREJECTED:
        case -EKEYREVOKED:
                return AGENT_EC_PAYLOAD_VERIFICATION;
        case -EILSEQ:
                return AGENT_EC_PAYLOAD_HASH_MISMATCH;
        case -ETIMEDOUT:
        case -ECONNRESET:
        case -ECONNREFUSED:
        case -ELOOP:
                return AGENT_EC_DOWNLOAD_TRANSFER;
        default:
                return AGENT_EC_ERROR;
        }
}

typedef struct ApplyUd {
        Agent *a;
        int slot;
} ApplyUd;

static int on_checkpoint(void *ud, uint32_t next) {
        ApplyUd *u = ud;
        Agent *a = u->a;
        a->st.resume_next = next;
        a->st.chunks_done = next;
        return agent_save(a);
}

static void on_progress(void *ud, uint32_t done, uint32_t total) {
        ApplyUd *u = ud;
        Agent *a = u->a;
        a->st.chunks_done = done;
        a->st.chunks_total = total;
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
}

/* The signed manifest against the offer and this host: same size and version as announced, this board, newer
 * than what runs, fits the target slot. Records the release's key revocations (it is acceptable from here on). */
static int check_manifest(Agent *a, const AgentOffer *offer, const Payload *p, uint64_t target_size, int target) {
        if (p->payload_size != offer->size)
                return agent_failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG, "payload '%s' is %" PRIu64 " bytes, the server announced %" PRIu64,
                            agent_offer_url(offer), p->payload_size, offer->size);
        if (strcmp(p->version, offer->version) != 0)
                return agent_fail(a, -EBADMSG, "payload '%s' is version %s, the server announced %s", agent_offer_url(offer),
                            p->version, offer->version);
        if (strcmp(p->board, a->board) != 0)
                return agent_fail(a, -EXDEV, "payload '%s' is for board \"%s\", this host is \"%s\"", agent_offer_url(offer), p->board,
                            a->board);
        if (!omaha_version_valid(p->version) || omaha_version_cmp(p->version, a->os_version) <= 0)
                return agent_fail(a, -EPERM, "payload '%s' is version %s, not newer than the running %s: refusing to "
                            "downgrade", agent_offer_url(offer), p->version, a->os_version);
        /* A newer release for this board, signed by a trusted key: its revocations hold from now on. */
        int r = agent_revoked_record(a, p);
        if (r < 0)
                return r;
        if (p->image_size > target_size)
                return agent_failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EFBIG, "payload '%s' holds a %" PRIu64 "-byte image; slot %c has only %" PRIu64
                            " bytes", agent_offer_url(offer), p->image_size, bootcfg_slot_name(target), target_size);
        return 0;
}

/* The target must not be bootable while it is written (a staged older release is replaced), and its old
 * verification record goes. */
static int unstage_target(Agent *a, struct bootcfg *b, int target) {
        struct bootcfg_state bs;
        int r = bootcfg_read(b, &bs);
        if (r < 0)
                return agent_fail(a, r, "boot selection: %s", bootcfg_error(b));
        if (bs.slot[target].priority > 0) {
                r = bootcfg_mark_bad(b, target, 0, NULL);
                if (r < 0)
                        return agent_fail(a, r, "cannot take slot %c out of the boot order before writing it: %s",
                                    bootcfg_slot_name(target), bootcfg_error(b));
        }
        r = bootcfg_unverify(b, target);
        if (r < 0)
                return agent_fail(a, r, "cannot remove the verification record of slot %c: %s", bootcfg_slot_name(target),
                            bootcfg_error(b));
        agent_state_forget_staged(&a->st);
        return 0;
}

/* Resume where an interrupted run of the same payload into the same slot stopped, or start over; saves the
 * DOWNLOADING state. Returns the first chunk to write. */
static int begin_download(Agent *a, const Payload *p, int target, uint32_t *ret_start) {
        uint32_t start = 0;
        if (a->st.resume_slot == target && strcmp(a->st.resume_version, p->version) == 0 &&
            a->st.resume_payload_size == p->payload_size &&
            memcmp(a->st.resume_image_sha256, p->image_sha256, SHA256_SIZE) == 0 && a->st.resume_next <= p->chunk_count)
                start = a->st.resume_next;
        else {
                a->st.resume_slot = target;
                agent_strf(a->st.resume_version, sizeof a->st.resume_version, "%s", p->version);
                a->st.resume_payload_size = p->payload_size;
                memcpy(a->st.resume_image_sha256, p->image_sha256, SHA256_SIZE);
                a->st.resume_next = 0;
        }
        agent_strf(a->st.new_version, sizeof a->st.new_version, "%s", p->version);
        a->st.new_size = p->payload_size;
        a->st.chunks_total = p->chunk_count;
        a->st.chunks_done = start;
        a->st.bytes_downloaded = a->st.bytes_reused = 0;
        a->st.status = AGENT_DOWNLOADING;
        int r = agent_save(a);
        if (r < 0)
                return agent_fail(a, r, "cannot write the state file \"%s\": %s", a->state_file, strerror(-r));
        if (a->progress)
                a->progress(a->progress_ud, &a->st);
        agent_send_event(a, OMAHA_EVENT_DOWNLOAD_STARTED, OMAHA_RESULT_SUCCESS, 0, NULL);
        *ret_start = start;
        return 0;
}

/* Writes the payload into the target slot from chunk start (reusing the active slot's chunks) and reads the
 * whole slot back against the manifest. */
static int write_slot(Agent *a, AgentOffer *offer, const Payload *p, const Slots *s, int fd, int booted, int target,
                      uint32_t start, uint64_t fetched) {
        ApplyUd ud = { .a = a, .slot = target };
        const char *urls[OMAHA_MAX_URLS];
        for (size_t i = 0; i < offer->n_urls; i++)
                urls[i] = offer->urls[i];
        /* With DOWNLOAD_RATE_LIMIT, one Range request must fit in HTTP_TRANSFER_TIMEOUT at that rate (half of it,
         * for headroom); it never goes below one chunk. */
        uint64_t range_max = 0;
        if (a->cfg.rate_limit && a->cfg.transfer_timeout)
                range_max = MAX(a->cfg.rate_limit / 2 * a->cfg.transfer_timeout, (uint64_t)1);
        AgentApply ap = {
                .http = a->http, .urls = urls, .n_urls = offer->n_urls, .url_index = offer->url_index,
                .range_max = range_max, .p = p, .fd = fd,
                .active_off = s->off[booted], .active_size = a->o.no_delta ? 0 : s->size[booted],
                .target_off = s->off[target], .target_size = s->size[target],
                .start_chunk = start, .checkpoint = on_checkpoint, .progress = on_progress, .userdata = &ud,
        };
        int r = agent_apply(&ap);
        offer->url_index = ap.url_index;
        a->st.bytes_downloaded = fetched + ap.bytes_downloaded;
        a->st.bytes_reused = ap.bytes_copied;
        if (r == -ECANCELED)
                return agent_fail(a, r, "applying %s to slot %c: interrupted; %" PRIu32 " of %" PRIu32 " chunks are written "
                            "and kept, the next run resumes there", p->version, bootcfg_slot_name(target),
                            a->st.resume_next, p->chunk_count);
        if (r == -ESTALE && ap.source_mismatch)
                a->delta_mismatch = true; /* agent_update() falls back to the full payload */
        if (r < 0)
                return agent_failc(a, ap.errcode, r, "applying %s to slot %c: %s", p->version, bootcfg_slot_name(target),
                             ap.error);
        agent_send_event(a, OMAHA_EVENT_DOWNLOAD_FINISHED, OMAHA_RESULT_SUCCESS, 0, NULL);

        agent_set_status(a, AGENT_VERIFYING);
        r = agent_apply_verify(&ap);
        if (r == -ECANCELED)
                return agent_fail(a, r, "verifying slot %c: interrupted", bootcfg_slot_name(target));
        if (r < 0) {
                a->st.resume_slot = -1; /* start over next time */
                return agent_failc(a, ap.errcode, r, "verifying slot %c: %s", bootcfg_slot_name(target), ap.error);
        }
        return 0;
}

/* The written, verified slot boots next (verified record in the boot selection) and the state says so. */
static int stage_slot(Agent *a, struct bootcfg *b, const Payload *p, int target) {
        agent_set_status(a, AGENT_FINALIZING);
        int r = bootcfg_set_next(b, target, BOOTCFG_VERIFIED, NULL);
        if (r < 0)
                return agent_fail(a, r, "cannot make slot %c boot next: %s", bootcfg_slot_name(target), bootcfg_error(b));
        agent_strf(a->st.staged_version, sizeof a->st.staged_version, "%s", p->version);
        a->st.staged_slot = target;
        agent_strf(a->st.staged_boot_id, sizeof a->st.staged_boot_id, "%s", a->boot_id);
        if (p->has_verity_root)
                hex_encode(p->verity_root, SHA256_SIZE, a->st.staged_verity_root);
        else
                a->st.staged_verity_root[0] = 0;
        agent_strf(a->st.previous_version, sizeof a->st.previous_version, "%s", a->os_version);
        a->st.resume_slot = -1;
        a->st.resume_next = 0;
        a->st.resume_version[0] = 0;
        a->st.failures = 0;
        a->st.last_error[0] = 0;
        agent_set_status(a, AGENT_UPDATED_NEED_REBOOT);
        /* Measured boot: the PCRs of the boot into the staged slot, recorded and sent with the install event. */
        (void)agent_measure_predict(a, bootcfg_disk_path(b), target, p->version, true);
        agent_send_event(a, OMAHA_EVENT_INSTALLED, OMAHA_RESULT_SUCCESS, 0, NULL);
        free(a->event_xml);
        a->event_xml = NULL;
        return 0;
}

/* One update: check, fetch and check the signed manifest, write and verify the inactive slot, stage it. 1 when
 * a slot was staged, 0 when there was nothing to do (a->err may say why), < 0 on failure. The running slot and
 * the boot selection are not touched before the new slot is written and verified (only the target is taken
 * out of the boot order first). */
static int do_update(Agent *a, bool interactive, bool force, AgentOffer *offer) {
        int r = agent_check(a, interactive, offer);
        if (r < 0)
                return r;
        if (!offer->update)
                return 0;
        if (omaha_version_cmp(offer->version, a->os_version) <= 0)
                return agent_fail(a, -EPERM, "server offered %s, not newer than the running %s: refusing to downgrade",
                            offer->version, a->os_version);
        if (r == 0)
                return 0; /* already staged */
        if (agent_state_is_failed(&a->st, offer->version) && !force) {
                /* Rolled back before: never again automatically. Not an error; the note says why nothing
                 * happened. */
                agent_strf(a->err, sizeof a->err, "not installing %s: it failed to boot before (cairnctl update --force "
                     "tries it again)", offer->version);
                return 0;
        }

        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        r = agent_open_bootcfg(a, true, &b);
        if (r < 0)
                return r;
        int booted = bootcfg_booted(b);
        if (booted < 0)
                return agent_fail(a, booted, "the booted slot is unknown (no cairn.slot= on the kernel command line)");
        int target = 1 - booted;
        Slots s = { .fd = -1 };
        r = agent_open_slots(a, b, &s);
        if (r < 0) {
                a->errcode = AGENT_EC_INSTALL_DEVICE_OPEN;
                return r;
        }
        _cleanup_close_ int fd = s.fd;

        uint64_t fetched = 0;
        _cleanup_payload_ Payload *p = NULL;
        uint32_t start = 0;
        r = agent_fetch_manifest(a, offer, &fetched, &p);
        if (r >= 0)
                r = check_manifest(a, offer, p, s.size[target], target);
        if (r >= 0)
                r = unstage_target(a, b, target);
        if (r >= 0)
                r = begin_download(a, p, target, &start);
        if (r >= 0)
                r = write_slot(a, offer, p, &s, fd, booted, target, start, fetched);
        if (r >= 0)
                r = stage_slot(a, b, p, target);
        return r < 0 ? r : 1;
}

int agent_update(Agent *a, bool interactive, bool force) {
        a->err[0] = 0;
        _cleanup_close_ int state_lock = -1;
        int lr = agent_lock_state_dir(a, &state_lock);
        if (lr < 0)
                return lr; /* nothing written: the state belongs to the holder */
        AgentOffer offer = { 0 };
        a->errcode = 0;
        a->delta_mismatch = false;
        int r = do_update(a, interactive, force, &offer);
        if (r == -ESTALE && a->delta_mismatch) {
                /* The delta was made against another release than the one in the active slot (or the slot was
                 * changed): nothing of it beyond its manifest was downloaded. Ask again for the full payload. */
                log_msg("delta payload '%s' does not match the active slot: %s; falling back to the full payload",
                        agent_offer_url(&offer), a->err);
                a->delta_refused = true;
                a->err[0] = 0;
                a->errcode = 0;
                offer = (AgentOffer){ 0 };
                r = do_update(a, interactive, force, &offer);
                a->delta_refused = false;
        }
        if (r == -ECANCELED || (r < 0 && agent_cancelled())) {
                /* Stopped (SIGTERM): not a failure of the update. The resume record is saved; no event. */
                agent_strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                agent_set_status(a, a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE);
                return -ECANCELED;
        }
        if (r < 0) {
                agent_strf(a->st.last_error, sizeof a->st.last_error, "%s", a->err);
                if (a->st.failures < AGENT_FAILURES_MAX)
                        a->st.failures++;
                agent_set_status(a, AGENT_REPORTING_ERROR);
                agent_send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, event_errorcode(a, r), NULL);
                return r;
        }
        if (r == 0) {
                a->st.failures = 0;
                if (a->st.status == AGENT_REPORTING_ERROR)
                        a->st.last_error[0] = 0;
                agent_set_status(a, a->st.staged_slot >= 0 ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE);
                return 0;
        }
        /* Staged: the reboot lifecycle takes over (window, lock, hooks, reboot; reboot.c). */
        agent_reboot_step_locked(a);
        return 1;
}

