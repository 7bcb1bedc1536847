/* updater/agent/measure.c — measured boot in the agent (issue 11 part 4; docs/measured-boot.md "The agent"):
 * before the reboot into a staged slot, predict PCR 8, 9, 11 of that boot for every active bank and record it
 * (measure-record.c); after the boot, read the TPM and compare; mismatches are logged per PCR and bank, shown by
 * `cairnctl status` and reported to the server as an error event carrying both sets of values.
 *
 * The TPM and the prediction come from `cairn-tpm` (exec, --json), not from linking tpm/ here: the agent daemon
 * keeps its library set (no tpm2-tss, libext2fs), and cairnctl, which links only libc, only reads the record. */
#include "agent-internal.h"
#include "clock.h"
#include "measure.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lock/json-strict.h"
#include "log.h"
#include "parse.h"

#define TPM_TIMEOUT_S 120        /* predict reads the kernel and initrd and hashes them in up to 4 banks */
#define TPM_OUT_MAX (4u << 20)
#define TPM_EXIT_NO_TPM 3        /* cairn-tpm: no TPM (docs/measured-boot.md, exit codes) */

const char *agent_state_dir(const Agent *a) {
        return a->state_dir;
}

static const char *tpm_command(void) {
        const char *c = getenv("CAIRN_TPM_COMMAND");
        return c && *c ? c : "cairn-tpm";
}

/* Run argv (argv[0] looked up in PATH), stdout into out (bounded), the last stderr line into err. Returns the exit
 * status (0..255), or -errno (-ETIMEDOUT: killed after TPM_TIMEOUT_S). */
static int run_capture(char *const argv[], Buf *out, char *err, size_t errsize) {
        int po[2], pe[2];
        err[0] = 0;
        if (pipe2(po, O_CLOEXEC) < 0)
                return negative_errno();
        if (pipe2(pe, O_CLOEXEC) < 0) {
                int r = negative_errno();
                close(po[0]);
                close(po[1]);
                return r;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
                return r;
        }
        if (pid == 0) {
                agent_child_reset_signals();
                if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
                        _exit(127);
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull >= 0)
                        dup2(devnull, 0);
                execvp(argv[0], argv);
                dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(po[1]);
        close(pe[1]);
        char ebuf[2048];
        size_t elen = 0;
        bool timed_out = false;
        int64_t end = mono_ms() + TPM_TIMEOUT_S * 1000;
        struct pollfd fds[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
        int open_fds = 2;
        while (open_fds > 0) {
                int64_t left = end - mono_ms();
                if (left <= 0) {
                        timed_out = true;
                        break;
                }
                int n = poll(fds, 2, (int)MIN(left, (int64_t)1000));
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < 2; i++) {
                        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        char tmp[4096];
                        ssize_t k = read(fds[i].fd, tmp, sizeof tmp);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                close(fds[i].fd);
                                fds[i].fd = -1;
                                open_fds--;
                                continue;
                        }
                        if (i == 0)
                                buf_put(out, tmp, (size_t)k);
                        else {
                                size_t c = MIN((size_t)k, sizeof ebuf - 1 - elen);
                                if (c < (size_t)k) { /* keep the end: the last line is the one that says why */
                                        size_t drop = MIN(elen, (size_t)k);
                                        memmove(ebuf, ebuf + drop, elen - drop);
                                        elen -= drop;
                                        c = MIN((size_t)k, sizeof ebuf - 1 - elen);
                                }
                                memcpy(ebuf + elen, tmp + (size_t)k - c, c);
                                elen += c;
                        }
                }
        }
        for (int i = 0; i < 2; i++)
                if (fds[i].fd >= 0)
                        close(fds[i].fd);
        if (timed_out)
                kill(pid, SIGKILL);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        ebuf[elen] = 0;
        while (elen > 0 && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
                ebuf[--elen] = 0;
        const char *last = strrchr(ebuf, '\n');
        log_safe(err, errsize, last ? last + 1 : ebuf);
        if (timed_out)
                return -ETIMEDOUT;
        if (out->err)
                return out->err;
        if (!WIFEXITED(st))
                return -ECHILD;
        return WEXITSTATUS(st);
}

/* {"banks":{"sha1":{"8":"hex",...},...}} from cairn-tpm's JSON into list. */
static int banks_from_json(const char *text, size_t len, MeasureBank *list, size_t *n, json_object **ret_root,
                           char *why, size_t whysize) {
        json_object *root = NULL;
        int r = json_parse_strict_object(text, len, 8, "cairn-tpm's output", &root, why, whysize);
        if (r < 0)
                return r;
        json_object *banks;
        if (!json_object_object_get_ex(root, "banks", &banks) || !json_object_is_type(banks, json_type_object)) {
                snprintf(why, whysize, "cairn-tpm's output has no \"banks\" object");
                json_object_put(root);
                return -EBADMSG;
        }
        *n = 0;
        json_object_object_foreach(banks, bank, vals) {
                if (!measure_bank_size(bank))
                        continue; /* a bank we cannot name in the record (cairn-tpm knows only these four) */
                for (int j = 0; j < 3; j++) {
                        char key[4];
                        snprintf(key, sizeof key, "%u", measure_pcrs[j]);
                        json_object *v;
                        const char *w = NULL;
                        if (!json_object_is_type(vals, json_type_object) || !json_object_object_get_ex(vals, key, &v) ||
                            !json_object_is_type(v, json_type_string)) {
                                snprintf(why, whysize, "cairn-tpm's output lacks PCR %s of bank %s", key, bank);
                                json_object_put(root);
                                return -EBADMSG;
                        }
                        char hex[MEASURE_HEX_MAX + 1];
                        snprintf(hex, sizeof hex, "%s", json_object_get_string(v));
                        for (char *c = hex; *c; c++)
                                if (*c >= 'A' && *c <= 'F')
                                        *c = (char)(*c - 'A' + 'a');
                        if (measure_bank_set(list, n, bank, measure_pcrs[j], hex, &w) < 0) {
                                snprintf(why, whysize, "cairn-tpm's PCR %s of bank %s %s", key, bank, w);
                                json_object_put(root);
                                return -EBADMSG;
                        }
                }
        }
        if (ret_root)
                *ret_root = root;
        else
                json_object_put(root);
        return 0;
}

/* PCR 8, 9, 11 of the TPM. 0 read; 1 no TPM (*why the notice); < 0 an error (*why). */
static int read_tpm(MeasureBank *list, size_t *n, char *why, size_t whysize) {
        char *argv[] = { (char *)tpm_command(), "pcrs", "--pcrs", "8,9,11", "--json", NULL };
        _cleanup_buf_ Buf out;
        buf_init(&out, TPM_OUT_MAX);
        char err[512];
        int r = run_capture(argv, &out, err, sizeof err);
        if (r == TPM_EXIT_NO_TPM) {
                (void)agent_strf(why, whysize, "%s", err[0] ? err : "no TPM");
                return 1;
        }
        if (r != 0) {
                if (r < 0)
                        (void)agent_strf(why, whysize, "%s pcrs: %s", argv[0], r == -ETIMEDOUT ? "timed out" : strerror(-r));
                else
                        (void)agent_strf(why, whysize, "%s pcrs exited %d: %s", argv[0], r, err[0] ? err : "(no message)");
                return -EIO;
        }
        return banks_from_json(out.data ? out.data : "", out.len, list, n, NULL, why, whysize);
}

/* The <cairnpcrs> element for an event (docs/measured-boot.md "On the wire"). */
static void pcrs_xml(Buf *b, const char *kind, const MeasureRecord *m, const MeasureBank *list, size_t n) {
        char slot[2] = { (char)('A' + m->slot), 0 };
        buf_puts(b, "<cairnpcrs");
        buf_put_attr(b, "kind", kind);
        buf_put_attr(b, "slot", slot);
        buf_put_attr(b, "version", m->version);
        buf_puts(b, ">");
        for (size_t i = 0; i < n; i++)
                for (int j = 0; j < 3; j++) {
                        char idx[4];
                        snprintf(idx, sizeof idx, "%u", measure_pcrs[j]);
                        buf_puts(b, "<pcr");
                        buf_put_attr(b, "bank", list[i].name);
                        buf_put_attr(b, "index", idx);
                        buf_put_attr(b, "value", list[i].hex[j]);
                        buf_puts(b, "></pcr>");
                }
        buf_puts(b, "</cairnpcrs>");
}

int agent_measure_predict(Agent *a, const char *disk, int slot, const char *version, bool send_with_event) {
        MeasureRecord m = { .slot = slot, .predicted_at = (int64_t)time(NULL) };
        agent_strf(m.version, sizeof m.version, "%s", version);
        agent_strf(m.boot_id, sizeof m.boot_id, "%s", a->boot_id);
        char why[MEASURE_TEXT_MAX] = "";

        /* The banks: the TPM's active ones; without a TPM, or when they cannot be read, SHA-1 and SHA-256 (what
         * every TPM 2.0 of the PC Client profile offers; a server can still check a quote against them). */
        MeasureBank tpm[MEASURE_BANKS_MAX];
        size_t nt = 0;
        int r = read_tpm(tpm, &nt, why, sizeof why);
        char banks[64] = "";
        if (r == 0 && nt > 0) {
                snprintf(m.tpm, sizeof m.tpm, "present");
                for (size_t i = 0; i < nt; i++) { /* at most 4 names of at most 6 letters */
                        if (i)
                                strcat(banks, ",");
                        strcat(banks, tpm[i].name);
                }
        } else {
                snprintf(m.tpm, sizeof m.tpm, r == 1 ? "absent" : "unreadable");
                snprintf(banks, sizeof banks, "sha1,sha256");
                agent_strf(m.note, sizeof m.note, "%s: predicted sha1 and sha256", r == 1 ? why : why[0] ? why :
                           "the TPM lists no bank");
                log_msg("measured boot: %s", m.note);
        }

        char slotname[2] = { (char)('A' + slot), 0 };
        char efi[PATH_MAX];
        (void)agent_strf(efi, sizeof efi, "%s/sys/firmware/efi", a->root);
        bool bios = access(efi, F_OK) < 0;
        char *argv[16];
        size_t k = 0;
        argv[k++] = (char *)tpm_command();
        argv[k++] = "predict";
        argv[k++] = "--disk";
        argv[k++] = (char *)disk;
        argv[k++] = "--slot";
        argv[k++] = slotname;
        argv[k++] = "--banks";
        argv[k++] = banks;
        if (bios)
                argv[k++] = "--bios";
        argv[k++] = "--json";
        argv[k] = NULL;
        _cleanup_buf_ Buf out;
        buf_init(&out, TPM_OUT_MAX);
        char err[512];
        r = run_capture(argv, &out, err, sizeof err);
        if (r != 0) {
                log_msg("measured boot: cannot predict the PCRs of the boot into slot %c (%s): %s %s", 'A' + slot,
                        version, argv[0], r < 0 ? (r == -ETIMEDOUT ? "timed out" : strerror(-r)) : err);
                /* A stale record would be compared with the wrong boot. */
                (void)measure_record_remove(a->state_dir);
                return r < 0 ? r : -EIO;
        }
        json_object *root = NULL;
        r = banks_from_json(out.data ? out.data : "", out.len, m.banks, &m.n_banks, &root, why, sizeof why);
        if (r < 0) {
                log_msg("measured boot: cannot predict slot %c: %s", 'A' + slot, why);
                (void)measure_record_remove(a->state_dir);
                return r;
        }
        json_object *v;
        if (json_object_object_get_ex(root, "version", &v) && json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), version) != 0) {
                log_msg("measured boot: slot %c holds version %s, not %s: not recording a prediction", 'A' + slot,
                        json_object_get_string(v), version);
                json_object_put(root);
                (void)measure_record_remove(a->state_dir);
                return -ESTALE;
        }
        json_object_put(root);
        if (m.n_banks == 0) {
                log_msg("measured boot: cairn-tpm predicted no bank for slot %c", 'A' + slot);
                (void)measure_record_remove(a->state_dir);
                return -EBADMSG;
        }
        r = measure_record_save(a->state_dir, &m);
        if (r < 0) {
                log_msg("measured boot: cannot write \"%s/%s\": %s", a->state_dir, MEASURE_FILE, strerror(-r));
                return r;
        }
        log_msg("measured boot: predicted PCR 8, 9, 11 of the boot into slot %c (%s), banks %s; recorded in %s/%s",
                'A' + slot, version, banks, a->state_dir, MEASURE_FILE);
        if (send_with_event) {
                free(a->event_xml);
                _cleanup_buf_ Buf x;
                buf_init(&x, 64 * 1024);
                pcrs_xml(&x, "predicted", &m, m.banks, m.n_banks);
                a->event_xml = x.err ? NULL : buf_steal(&x);
        }
        return 0;
}

int agent_measure_ensure(Agent *a) {
        AgentState *st = &a->st;
        if (st->staged_slot < 0)
                return 0;
        MeasureRecord m;
        char err[PATH_MAX + 128];
        int r = measure_record_load(a->state_dir, &m, err, sizeof err);
        if (r >= 0 && m.slot == st->staged_slot && strcmp(m.version, st->staged_version) == 0 &&
            strcmp(m.boot_id, a->boot_id) == 0 && m.result == MEASURE_UNCHECKED)
                return 0;
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        r = agent_open_bootcfg(a, false, &b);
        if (r < 0) {
                log_msg("measured boot: no prediction before the reboot: %s", a->err);
                return r;
        }
        char disk[PATH_MAX];
        agent_strf(disk, sizeof disk, "%s", bootcfg_disk_path(b));
        bootcfg_free(b);
        b = NULL;
        return agent_measure_predict(a, disk, st->staged_slot, st->staged_version, false);
}

void agent_measure_check(Agent *a, int booted) {
        MeasureRecord m;
        char err[PATH_MAX + 128];
        int r = measure_record_load(a->state_dir, &m, err, sizeof err);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_msg("measured boot: the prediction record is unreadable, nothing compared: %s", err);
                return;
        }
        if (strcmp(m.boot_id, a->boot_id) == 0 || m.result != MEASURE_UNCHECKED)
                return; /* not rebooted since the prediction, or compared already */
        agent_strf(m.check_boot_id, sizeof m.check_boot_id, "%s", a->boot_id);
        m.n_actual = 0;
        char why[MEASURE_TEXT_MAX] = "";
        bool report = false;
        if (booted != m.slot) {
                m.result = MEASURE_OTHER_SLOT;
                agent_strf(m.detail, sizeof m.detail,
                           "the prediction was for slot %c (%s), but the host came back on slot %c (a rollback): "
                           "not compared", 'A' + m.slot, m.version, 'A' + booted);
                log_msg("measured boot: %s", m.detail);
        } else if ((r = read_tpm(m.actual, &m.n_actual, why, sizeof why)) == 1) {
                m.result = MEASURE_NO_TPM;
                m.n_actual = 0;
                agent_strf(m.detail, sizeof m.detail, "no TPM on this host: nothing compared (%s)", why);
                log_msg("measured boot: %s", m.detail);
        } else if (r < 0) {
                m.result = MEASURE_ERROR;
                m.n_actual = 0;
                agent_strf(m.detail, sizeof m.detail, "cannot read the TPM: %s", why);
                log_msg("measured boot: %s", m.detail);
        } else {
                /* Every bank the TPM has must have been predicted; each PCR of it must be equal. */
                size_t bad = 0, compared = 0;
                char first[MEASURE_TEXT_MAX] = "";
                for (size_t i = 0; i < m.n_actual; i++) {
                        const MeasureBank *t = &m.actual[i];
                        const MeasureBank *p = measure_bank_find(m.banks, m.n_banks, t->name);
                        if (!p) {
                                if (!first[0])
                                        agent_strf(first, sizeof first, "bank %s of the TPM was not predicted", t->name);
                                bad++;
                                log_msg("measured boot: MISMATCH: the TPM has bank %s, which was not predicted for "
                                        "slot %c (%s)", t->name, 'A' + m.slot, m.version);
                                continue;
                        }
                        compared++;
                        for (int j = 0; j < 3; j++) {
                                if (strcmp(p->hex[j], t->hex[j]) == 0)
                                        continue;
                                bad++;
                                log_msg("measured boot: MISMATCH: PCR %u bank %s of the boot into slot %c (%s): "
                                        "expected %s, the TPM has %s", measure_pcrs[j], t->name, 'A' + m.slot,
                                        m.version, p->hex[j], t->hex[j]);
                                if (!first[0])
                                        agent_strf(first, sizeof first, "PCR %u bank %s: expected %.16s…, the TPM "
                                                   "has %.16s…", measure_pcrs[j], t->name, p->hex[j], t->hex[j]);
                        }
                }
                if (bad || compared == 0) {
                        m.result = MEASURE_MISMATCH;
                        if (compared == 0 && !bad)
                                agent_strf(first, sizeof first, "the TPM has none of the predicted banks");
                        agent_strf(m.detail, sizeof m.detail, "%zu of the PCRs differ from the prediction for slot "
                                   "%c (%s); first: %s", bad ? bad : 1, 'A' + m.slot, m.version, first);
                        log_msg("measured boot: MISMATCH: %s", m.detail);
                        report = true;
                } else {
                        m.result = MEASURE_MATCH;
                        agent_strf(m.detail, sizeof m.detail, "PCR 8, 9, 11 of %zu bank%s equal the prediction for "
                                   "slot %c (%s)", compared, compared == 1 ? "" : "s", 'A' + m.slot, m.version);
                        log_msg("measured boot: %s", m.detail);
                }
        }
        r = measure_record_save(a->state_dir, &m);
        if (r < 0)
                log_msg("measured boot: cannot write \"%s/%s\": %s", a->state_dir, MEASURE_FILE, strerror(-r));
        if (report) {
                _cleanup_buf_ Buf x;
                buf_init(&x, 128 * 1024);
                pcrs_xml(&x, "predicted", &m, m.banks, m.n_banks);
                pcrs_xml(&x, "measured", &m, m.actual, m.n_actual);
                free(a->event_xml);
                a->event_xml = x.err ? NULL : buf_steal(&x);
                agent_send_event(a, OMAHA_EVENT_UPDATE_COMPLETE, OMAHA_RESULT_ERROR, AGENT_EC_PCR_MISMATCH, NULL);
                free(a->event_xml);
                a->event_xml = NULL;
        }
}
