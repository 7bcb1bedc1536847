/* tpm/main.c — cairn-tpm: the command line over the tpm library (arguments, output, exit codes). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg.h"
#include "bootcfg/bootcfg.h"
#include "eventlog.h"
#include "log.h"
#include "ourlog.h"
#include "parse.h"
#include "predict.h"
#include "replay.h"
#include "tpm.h"

enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,      /* an error, a damaged log, a verify mismatch */
        EXIT_USAGE = 2,
        EXIT_NO_TPM = 3,    /* no TPM reachable: measured boot not available */
        EXIT_LOG_AHEAD = 4, /* extend: the log record was written, then the TPM extend failed */
};

/* PCRs verify checks by default: the firmware's, GRUB's and the OS's (0-9, 11-15); not 10 (IMA keeps its own
 * log), 16 and 23 (resettable debug PCRs) or 17-22 (DRTM) — unless a log has events for them. */
#define VERIFY_DEFAULT_MASK 0xFBFFu

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairn-tpm [--tcti TCTI] VERB [OPTIONS]\n"
                "verbs:\n"
                "  pcrs [--json] [--pcrs LIST]        PCR values of every active bank (default all 0-23)\n"
                "  extend --pcr N --tag ID (--data TEXT | --file F) [--log PATH]\n"
                "                                     append an EV_EVENT_TAG record to our log, fsync, then extend\n"
                "                                     PCR N in every active bank with H(TEXT) or H(file bytes)\n"
                "  log [--firmware PATH] [--log PATH] [--json]\n"
                "                                     print the firmware log, then ours, and their replayed PCRs\n"
                "  verify [--firmware PATH] [--log PATH] [--pcrs LIST]\n"
                "                                     replay both logs and compare with the TPM\n"
                "  predict --disk DISK [--slot A|B] [--env FILE] [--banks LIST] [--bios] [--grub-disk NAME] [--json]\n"
                "                                     PCR 8, 9 and 11 of the next boot of DISK (image or device):\n"
                "                                     GRUB's run of grub.cfg for its grubenv state, the slot's kernel,\n"
                "                                     initrd and the initramfs's PCR 11 events; no TPM needed\n"
                "options:\n"
                "  --tcti TCTI        TPM to use (env CAIRN_TPM_TCTI; default " TPM_DEFAULT_TCTI ")\n"
                "  --firmware PATH    firmware log (default " FIRMWARE_LOG_DEFAULT ";\n"
                "                     \"none\": no firmware log, without the notice an absent one gives)\n"
                "  --log PATH         Cairn's log (default " CAIRN_TPM_LOG_DEFAULT ")\n"
                "  --pcrs LIST        e.g. 0,7,8-11\n"
                "  --banks LIST       predict: e.g. sha1,sha256 (default: the TPM's active banks with --tcti or\n"
                "                     $CAIRN_TPM_TCTI, else sha1,sha256,sha384,sha512)\n"
                "tags: slot, version, leave-initrd, test, or a number in 0xCA1B0000-0xCA1BFFFF\n"
                "exit status: 0 ok, 1 error or mismatch, 2 usage, 3 no TPM, 4 extend failed after the log record\n"
                "was written (the record stays)\n");
}

static int tpm_exit(const struct tpm_error *e) {
        if (e->kind == TPM_ERR_NO_TPM) {
                log_msg("%s: measured boot is not available here", e->msg);
                return EXIT_NO_TPM;
        }
        log_msg("%s", e->msg);
        return e->kind == TPM_ERR_LOG_AHEAD ? EXIT_LOG_AHEAD : EXIT_FAIL;
}

static void json_str_n(const uint8_t *s, size_t n) {
        putchar('"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = s[i];
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}
static void json_str(const char *s) {
        json_str_n((const uint8_t *)s, strlen(s));
}

static void print_hex(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                printf("%02x", p[i]);
}

static const char *alg_name(uint16_t alg) {
        static char buf[16];
        const char *n = tpm_alg_name(alg);
        if (n)
                return n;
        snprintf(buf, sizeof buf, "0x%04x", alg);
        return buf;
}

static void print_banks(const struct pcr_banks *b, uint32_t mask, bool json) {
        if (json)
                printf("{");
        for (size_t i = 0; i < b->n; i++) {
                const struct pcr_bank *k = &b->bank[i];
                if (json)
                        printf("%s\"%s\":{", i ? "," : "", alg_name(k->alg));
                else
                        printf("%s%s:\n", json ? "" : "  ", alg_name(k->alg));
                bool first = true;
                for (unsigned p = 0; p < TPM_PCRS; p++) {
                        if (!(mask & k->mask & (1u << p)))
                                continue;
                        if (json) {
                                printf("%s\"%u\":\"", first ? "" : ",", p);
                                print_hex(k->value[p], k->size);
                                printf("\"");
                        } else {
                                printf("    %-2u : 0x", p);
                                print_hex(k->value[p], k->size);
                                printf("\n");
                        }
                        first = false;
                }
                if (json)
                        printf("}");
        }
        if (json)
                printf("}");
}

static int verb_pcrs(const char *tcti, uint32_t mask, bool json) {
        struct tpm_error e = { 0 };
        _cleanup_tpm_ struct tpm *t = NULL;
        if (tpm_open(tcti, &t, &e) < 0)
                return tpm_exit(&e);
        struct pcr_banks b;
        if (tpm_pcr_read(t, mask, &b, &e) < 0)
                return tpm_exit(&e);
        if (json) {
                printf("{\"tcti\":");
                json_str(tpm_tcti(t));
                printf(",\"banks\":");
                print_banks(&b, mask, true);
                printf("}\n");
        } else {
                for (size_t i = 0; i < b.n; i++) {
                        /* the layout of tpm2_pcrread */
                        printf("%s:\n", alg_name(b.bank[i].alg));
                        for (unsigned p = 0; p < TPM_PCRS; p++) {
                                if (!(mask & (1u << p)))
                                        continue;
                                printf("  %-2u: 0x", p);
                                for (size_t j = 0; j < b.bank[i].size; j++)
                                        printf("%02X", b.bank[i].value[p][j]);
                                printf("\n");
                        }
                }
        }
        return EXIT_OK;
}

struct extend_args {
        int pcr;
        const char *tag;
        const char *data;
        const char *file;
        const char *log;
};

static int verb_extend(const char *tcti, const struct extend_args *a) {
        uint32_t tag;
        if (a->pcr < 0 || !a->tag || (!a->data == !a->file)) {
                log_msg("extend needs --pcr N, --tag ID and one of --data TEXT or --file F (see --help)");
                return EXIT_USAGE;
        }
        if (cairn_tag_parse(a->tag, &tag) < 0) {
                char safe[128];
                log_msg("\"%s\" is not a Cairn tag (slot, version, leave-initrd, test, or 0xCA1B0000-0xCA1BFFFF)",
                        log_safe(safe, sizeof safe, a->tag));
                return EXIT_USAGE;
        }
        const char *path = a->log ?: CAIRN_TPM_LOG_DEFAULT;
        /* Open the object first: a missing file must not cost a TPM round trip or a log record. */
        _cleanup_close_ int fd = -1;
        if (a->file) {
                fd = open(a->file, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        log_error_errno(-errno, "cannot open \"%s\"", a->file);
                        return EXIT_FAIL;
                }
        }
        struct tpm_error e = { 0 };
        /* The log lock first, then the TPM (see ourlog_lock()). */
        _cleanup_ourlog_ struct ourlog *l = NULL;
        if (ourlog_lock(path, &l, &e) < 0)
                return tpm_exit(&e);
        _cleanup_tpm_ struct tpm *t = NULL;
        if (tpm_open(tcti, &t, &e) < 0)
                return tpm_exit(&e);
        uint16_t algs[TPM_MAX_BANKS];
        size_t n;
        if (tpm_banks(t, algs, &n, &e) < 0)
                return tpm_exit(&e);
        struct tpm_digests d;
        int r = a->file ? tpm_hash_fd(algs, n, fd, &d, &e) : tpm_hash_data(algs, n, a->data, strlen(a->data), &d, &e);
        if (r < 0) {
                log_msg("cannot hash %s%s%s: %s", a->file ? "\"" : "the data", a->file ?: "", a->file ? "\"" : "",
                        e.msg);
                return EXIT_FAIL;
        }
        const char *what = a->file ?: a->data;
        _cleanup_free_ uint8_t *ev = NULL;
        size_t evlen;
        r = eventlog_tagged_encode(tag, what, strlen(what), &ev, &evlen);
        if (r < 0) {
                log_error_errno(r, "cannot encode the event");
                return EXIT_FAIL;
        }
        struct ourlog_append res;
        if (ourlog_extend(l, t, (unsigned)a->pcr, EV_EVENT_TAG, &d, ev, evlen, &res, &e) < 0)
                return tpm_exit(&e);
        printf("extended PCR %d (", a->pcr);
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i ? "," : "", alg_name(algs[i]));
        printf(") with tag 0x%08x (%s); record %zu of %s%s\n", tag, cairn_tag_name(tag) ?: "custom", res.record, path,
               res.created ? " (created)" : "");
        return EXIT_OK;
}

/* Load the firmware log and ours; absent ones are empty (NULL) with a notice. 0, or an exit code. */
static int load_logs(const char *fw_path, const char *our_path, struct eventlog **ret_fw, struct eventlog **ret_ours) {
        struct tpm_error e = { 0 };
        struct eventlog *fw = NULL, *ours = NULL;
        int r = strcmp(fw_path, "none") == 0 ? 0 : eventlog_load(fw_path, 0, &fw, &e);
        if (r == -ENODATA)
                log_msg("the firmware event log \"%s\" is empty: treated as empty", fw_path);
        else if (r == -ENOENT)
                log_msg("no firmware event log at \"%s\": treated as empty (firmware measurements cannot be "
                        "checked)",
                        fw_path);
        else if (r < 0)
                return log_msg("firmware log %s", e.msg), EXIT_FAIL;
        r = eventlog_load(our_path, EVENTLOG_PARSE_OURS, &ours, &e);
        if (r == -ENODATA)
                log_msg("the Cairn event log \"%s\" is empty (created, no header yet): treated as empty", our_path);
        else if (r == -ENOENT)
                log_msg("no Cairn event log at \"%s\": treated as empty", our_path);
        else if (r < 0) {
                eventlog_free(fw);
                return log_msg("Cairn log %s", e.msg), EXIT_FAIL;
        }
        *ret_fw = fw;
        *ret_ours = ours;
        return 0;
}

static bool is_text_event(uint32_t type) {
        return type == EV_IPL || type == EV_ACTION || type == 0x80000007u /* EV_EFI_ACTION */ ||
               type == EV_S_CRTM_VERSION || type == EV_POST_CODE;
}

static void print_event(const struct eventlog_event *ev, size_t num, const char *source, bool json, bool first) {
        const char *tn = eventlog_type_name(ev->type);
        uint32_t tag, tlen;
        const uint8_t *tdata;
        bool tagged = eventlog_tagged_decode(ev, &tag, &tdata, &tlen) == 0;
        if (json) {
                printf("%s{\"num\":%zu,\"source\":\"%s\",\"pcr\":%u,\"type\":", first ? "" : ",", num, source, ev->pcr);
                if (tn)
                        json_str(tn);
                else
                        printf("\"0x%08x\"", ev->type);
                printf(",\"digests\":{");
                for (uint32_t i = 0; i < ev->n_digests; i++) {
                        printf("%s\"%s\":\"", i ? "," : "", alg_name(ev->digests[i].alg));
                        print_hex(ev->digests[i].bytes, ev->digests[i].size);
                        printf("\"");
                }
                printf("},\"event_size\":%u,\"event\":\"", ev->data_size);
                print_hex(ev->data, ev->data_size);
                printf("\"");
                if (tagged) {
                        printf(",\"tag\":{\"id\":%u,\"name\":", tag);
                        if (cairn_tag_name(tag))
                                json_str(cairn_tag_name(tag));
                        else
                                printf("null");
                        printf(",\"data\":");
                        json_str_n(tdata, tlen);
                        printf("}");
                }
                printf("}");
                return;
        }
        printf("- EventNum: %zu\n  Source: %s\n  PCRIndex: %u\n", num, source, ev->pcr);
        if (tn)
                printf("  EventType: %s\n", tn);
        else
                printf("  EventType: 0x%08x\n", ev->type);
        printf("  DigestCount: %u\n  Digests:\n", ev->n_digests);
        for (uint32_t i = 0; i < ev->n_digests; i++) {
                printf("  - AlgorithmId: %s\n    Digest: \"", alg_name(ev->digests[i].alg));
                print_hex(ev->digests[i].bytes, ev->digests[i].size);
                printf("\"\n");
        }
        printf("  EventSize: %u\n", ev->data_size);
        char safe[1024];
        if (tagged) {
                printf("  Event:\n    TaggedEventID: 0x%08x", tag);
                if (cairn_tag_name(tag))
                        printf(" (%s)", cairn_tag_name(tag));
                printf("\n    TaggedEventData: \"%s\"\n", log_safe_n(safe, sizeof safe, (const char *)tdata, tlen));
        } else if (is_text_event(ev->type)) {
                size_t n = ev->data_size;
                while (n > 0 && ev->data[n - 1] == 0)
                        n--;
                printf("  Event: \"%s\"\n", log_safe_n(safe, sizeof safe, (const char *)ev->data, n));
        } else {
                printf("  Event: \"");
                print_hex(ev->data, ev->data_size);
                printf("\"\n");
        }
}

/* The banks to replay for `log`: those of the first log present that we can hash. */
static size_t replay_algs(const struct eventlog *fw, const struct eventlog *ours, uint16_t *algs) {
        const struct eventlog *l = fw ?: ours;
        size_t n = 0;
        for (size_t i = 0; l && i < l->n_algs; i++)
                if (tpm_alg_supported(l->algs[i].alg))
                        algs[n++] = l->algs[i].alg;
        return n;
}

static int verb_log(const char *fw_path, const char *our_path, bool json) {
        _cleanup_eventlog_ struct eventlog *fw = NULL;
        _cleanup_eventlog_ struct eventlog *ours = NULL;
        int r = load_logs(fw_path, our_path, &fw, &ours);
        if (r)
                return r;
        const struct {
                const char *source, *path;
                const struct eventlog *log;
        } logs[2] = { { "firmware", fw_path, fw }, { "cairn", our_path, ours } };
        if (json) {
                printf("{\"logs\":[");
                bool first = true;
                for (int i = 0; i < 2; i++) {
                        if (!logs[i].log)
                                continue;
                        printf("%s{\"source\":\"%s\",\"path\":", first ? "" : ",", logs[i].source);
                        json_str(logs[i].path);
                        printf(",\"algorithms\":[");
                        for (size_t a = 0; a < logs[i].log->n_algs; a++)
                                printf("%s\"%s\"", a ? "," : "", alg_name(logs[i].log->algs[a].alg));
                        printf("],\"events\":%zu}", logs[i].log->n_events);
                        first = false;
                }
                printf("],\"events\":[");
        } else
                printf("---\nversion: 1\n");
        size_t num = 0;
        bool first = true;
        for (int i = 0; i < 2; i++) {
                if (!logs[i].log)
                        continue;
                if (!json) {
                        printf("# %s log \"%s\": Spec ID Event03 %u.%u errata %u, algorithms", logs[i].source,
                               logs[i].path, logs[i].log->spec_major, logs[i].log->spec_minor,
                               logs[i].log->spec_errata);
                        for (size_t a = 0; a < logs[i].log->n_algs; a++)
                                printf("%s%s", a ? "," : " ", alg_name(logs[i].log->algs[a].alg));
                        printf(", %zu events\n", logs[i].log->n_events);
                        if (first)
                                printf("events:\n");
                }
                for (size_t e = 0; e < logs[i].log->n_events; e++) {
                        print_event(&logs[i].log->events[e], ++num, logs[i].source, json, first);
                        first = false;
                }
        }
        if (!json && first)
                printf("events: []\n");
        uint16_t algs[TPM_MAX_BANKS];
        size_t n = replay_algs(fw, ours, algs);
        struct replay rp = { 0 };
        struct tpm_error e = { 0 };
        bool replayed = n > 0 && replay_init(&rp, algs, n, &e) >= 0 && (!fw || replay_log(&rp, fw, &e) >= 0) &&
                        (!ours || replay_log(&rp, ours, &e) >= 0);
        if (json)
                printf("],\"pcrs\":");
        else
                printf("pcrs:\n");
        if (replayed) {
                /* PCRs a bank cannot replay (an event without its digest) are left out. */
                for (size_t i = 0; i < rp.pcrs.n; i++)
                        rp.pcrs.bank[i].mask &= ~rp.missing[i];
                print_banks(&rp.pcrs, 0xFFFFFF, json);
        } else if (json)
                printf("{}");
        if (json)
                printf("}\n");
        if (n > 0 && !replayed) {
                log_msg("cannot replay: %s", e.msg);
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

static int verb_verify(const char *tcti, const char *fw_path, const char *our_path, uint32_t user_mask,
                       bool have_mask) {
        _cleanup_eventlog_ struct eventlog *fw = NULL;
        _cleanup_eventlog_ struct eventlog *ours = NULL;
        int r = load_logs(fw_path, our_path, &fw, &ours);
        if (r)
                return r;
        struct tpm_error e = { 0 };
        _cleanup_tpm_ struct tpm *t = NULL;
        if (tpm_open(tcti, &t, &e) < 0)
                return tpm_exit(&e);
        uint16_t algs[TPM_MAX_BANKS];
        size_t n;
        if (tpm_banks(t, algs, &n, &e) < 0)
                return tpm_exit(&e);
        struct replay rp;
        if (replay_init(&rp, algs, n, &e) < 0 || (fw && replay_log(&rp, fw, &e) < 0) ||
            (ours && replay_log(&rp, ours, &e) < 0)) {
                log_msg("cannot replay: %s", e.msg);
                return EXIT_FAIL;
        }
        uint32_t mask = user_mask;
        if (!have_mask) {
                mask = VERIFY_DEFAULT_MASK;
                for (size_t i = 0; i < rp.pcrs.n; i++)
                        mask |= rp.pcrs.bank[i].mask | rp.missing[i];
        }
        struct pcr_banks now;
        if (tpm_pcr_read(t, mask, &now, &e) < 0)
                return tpm_exit(&e);
        struct replay_mismatch m;
        if (replay_compare(&rp, &now, mask, &m, &e) < 0) {
                log_msg("verify: %s", e.msg);
                return EXIT_FAIL;
        }
        printf("verify: ok: PCRs");
        const char *sep = " ";
        for (unsigned p = 0; p < TPM_PCRS; p++)
                if (mask & (1u << p)) {
                        printf("%s%u", sep, p);
                        sep = ",";
                }
        printf(" of banks");
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i ? "," : " ", alg_name(algs[i]));
        printf(" equal the replay of %zu firmware and %zu Cairn events\n", fw ? fw->n_events : 0,
               ours ? ours->n_events : 0);
        return EXIT_OK;
}

struct predict_args {
        const char *disk, *env, *slot, *banks, *grub_disk;
        bool bios;
};

static int verb_predict(const char *tcti, const struct predict_args *a, bool json) {
        if (!a->disk) {
                log_msg("predict needs --disk DISK (an image file or block device; see --help)");
                return EXIT_USAGE;
        }
        char safe[128];
        struct predict_options o = { .disk = a->disk, .env = a->env, .slot = -1, .grub_disk = a->grub_disk,
                                     .bios = a->bios };
        if (a->slot && (o.slot = bootcfg_slot_parse(a->slot)) < 0) {
                log_msg("--slot \"%s\" is not A or B", log_safe(safe, sizeof safe, a->slot));
                return EXIT_USAGE;
        }
        if (a->grub_disk && (strlen(a->grub_disk) > 16 || strspn(a->grub_disk, "abcdefghijklmnopqrstuvwxyz0123456789") !=
                                                                  strlen(a->grub_disk) || !*a->grub_disk)) {
                log_msg("--grub-disk \"%s\" is not a GRUB disk name like hd0", log_safe(safe, sizeof safe, a->grub_disk));
                return EXIT_USAGE;
        }
        uint16_t algs[TPM_MAX_BANKS];
        size_t n = 0;
        struct tpm_error e = { 0 };
        if (a->banks) {
                _cleanup_free_ char *copy = strdup(a->banks);
                if (!copy)
                        return log_msg("out of memory"), EXIT_FAIL;
                char *save = NULL;
                for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                        uint16_t alg;
                        if (tpm_alg_from_name(w, &alg) < 0 || !tpm_alg_supported(alg) || n == TPM_MAX_BANKS) {
                                log_msg("--banks: \"%s\" is not a bank this machine can compute (sha1, sha256, sha384, "
                                        "sha512)",
                                        log_safe(safe, sizeof safe, w));
                                return EXIT_USAGE;
                        }
                        for (size_t i = 0; i < n; i++)
                                if (algs[i] == alg) {
                                        log_msg("--banks: \"%s\" given twice", w);
                                        return EXIT_USAGE;
                                }
                        algs[n++] = alg;
                }
                if (n == 0) {
                        log_msg("--banks is empty");
                        return EXIT_USAGE;
                }
        } else if (tcti || getenv("CAIRN_TPM_TCTI")) {
                _cleanup_tpm_ struct tpm *t = NULL;
                if (tpm_open(tcti, &t, &e) < 0 || tpm_banks(t, algs, &n, &e) < 0)
                        return tpm_exit(&e);
        } else {
                const uint16_t def[] = { TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512 };
                for (size_t i = 0; i < ELEMENTSOF(def); i++)
                        if (tpm_alg_supported(def[i]))
                                algs[n++] = def[i];
        }
        o.algs = algs;
        o.n_algs = n;
        _cleanup_prediction_ struct prediction *p = NULL;
        if (predict_boot(&o, &p, &e) < 0) {
                log_msg("predict: %s", e.msg);
                return EXIT_FAIL;
        }
        char slot = bootcfg_slot_name(p->slot);
        if (json) {
                printf("{\"disk\":");
                json_str(a->disk);
                printf(",\"firmware\":\"%s\",\"slot\":\"%c\",\"partition\":%u,\"partuuid\":\"%s\",\"version\":",
                       a->bios ? "bios" : "efi", slot, p->partno, p->partuuid);
                json_str(p->version);
                printf(",\"identity\":");
                json_str(p->identity);
                printf(",\"banks\":");
                print_banks(&p->pcrs, PREDICT_PCR_MASK, true);
                printf(",\"events\":[");
                for (size_t i = 0; i < p->n_events; i++) {
                        const struct predict_event *ev = &p->events[i];
                        printf("%s{\"pcr\":%u,\"type\":\"%s\",", i ? "," : "", ev->pcr, eventlog_type_name(ev->type));
                        if (ev->type == EV_EVENT_TAG)
                                printf("\"tag\":\"%s\",", cairn_tag_name(ev->tag) ?: "?");
                        printf("\"text\":");
                        json_str(ev->text);
                        printf(",\"digests\":{");
                        for (size_t b = 0; b < ev->d.n; b++) {
                                printf("%s\"%s\":\"", b ? "," : "", alg_name(ev->d.d[b].alg));
                                print_hex(ev->d.d[b].bytes, ev->d.d[b].size);
                                printf("\"");
                        }
                        printf("}}");
                }
                printf("]}\n");
                return EXIT_OK;
        }
        printf("# next boot of \"%s\" (%s): slot %c, partition %u, PARTUUID %s, version %s\n", a->disk,
               a->bios ? "BIOS: GRUB measures nothing" : "UEFI", slot, p->partno, p->partuuid, p->version);
        printf("# PCR 11 slot identity: %s\n", p->identity);
        printf("events:\n");
        char text[1400];
        for (size_t i = 0; i < p->n_events; i++) {
                const struct predict_event *ev = &p->events[i];
                if (ev->type == EV_EVENT_TAG)
                        printf("  %-2u EV_EVENT_TAG %-12s \"%s\"\n", ev->pcr, cairn_tag_name(ev->tag) ?: "?",
                               log_safe(text, sizeof text, ev->text));
                else
                        printf("  %-2u EV_IPL       %s\n", ev->pcr, log_safe(text, sizeof text, ev->text));
        }
        printf("pcrs:\n");
        print_banks(&p->pcrs, PREDICT_PCR_MASK, false);
        return EXIT_OK;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        /* tpm2-tss logs its own errors to stderr; we report each failure once, in one line. */
        setenv("TSS2_LOG", "all+NONE", 0);
        enum { OPT_TCTI = 0x100, OPT_JSON, OPT_PCRS, OPT_PCR, OPT_TAG, OPT_DATA, OPT_FILE, OPT_LOG, OPT_FIRMWARE, OPT_DISK, OPT_ENV, OPT_SLOT, OPT_BANKS,
               OPT_BIOS, OPT_GRUB_DISK };
        static const struct option opts[] = {
                { "tcti", required_argument, NULL, OPT_TCTI },   { "json", no_argument, NULL, OPT_JSON },
                { "pcrs", required_argument, NULL, OPT_PCRS },   { "pcr", required_argument, NULL, OPT_PCR },
                { "tag", required_argument, NULL, OPT_TAG },     { "data", required_argument, NULL, OPT_DATA },
                { "file", required_argument, NULL, OPT_FILE },   { "log", required_argument, NULL, OPT_LOG },
                { "firmware", required_argument, NULL, OPT_FIRMWARE }, { "help", no_argument, NULL, 'h' },
                { "disk", required_argument, NULL, OPT_DISK },   { "env", required_argument, NULL, OPT_ENV },
                { "slot", required_argument, NULL, OPT_SLOT },   { "banks", required_argument, NULL, OPT_BANKS },
                { "bios", no_argument, NULL, OPT_BIOS },         { "grub-disk", required_argument, NULL, OPT_GRUB_DISK },
                {},
        };
        const char *tcti = NULL, *fw = FIRMWARE_LOG_DEFAULT;
        struct extend_args ea = { .pcr = -1 };
        struct predict_args pa = { 0 };
        bool predict_opts = false;
        bool json = false, have_mask = false, have_fw = false, have_log = false;
        uint32_t mask = 0xFFFFFF;
        char safe[128];
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_TCTI:
                        tcti = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_PCRS:
                        if (pcr_mask_parse(optarg, &mask) < 0) {
                                log_msg("--pcrs \"%s\" is not a PCR list like 0,7,8-11 (PCRs 0-23)",
                                        log_safe(safe, sizeof safe, optarg));
                                return EXIT_USAGE;
                        }
                        have_mask = true;
                        break;
                case OPT_PCR: {
                        unsigned p;
                        if (parse_unsigned_range(optarg, 0, TPM_PCRS - 1, &p) < 0) {
                                log_msg("--pcr \"%s\" is not a PCR number (0-23)", log_safe(safe, sizeof safe, optarg));
                                return EXIT_USAGE;
                        }
                        ea.pcr = (int)p;
                        break;
                }
                case OPT_TAG:
                        ea.tag = optarg;
                        break;
                case OPT_DATA:
                        ea.data = optarg;
                        break;
                case OPT_FILE:
                        ea.file = optarg;
                        break;
                case OPT_LOG:
                        ea.log = optarg;
                        have_log = true;
                        break;
                case OPT_FIRMWARE:
                        fw = optarg;
                        have_fw = true;
                        break;
                case OPT_DISK: pa.disk = optarg; predict_opts = true; break;
                case OPT_ENV: pa.env = optarg; predict_opts = true; break;
                case OPT_SLOT: pa.slot = optarg; predict_opts = true; break;
                case OPT_BANKS: pa.banks = optarg; predict_opts = true; break;
                case OPT_BIOS: pa.bios = true; predict_opts = true; break;
                case OPT_GRUB_DISK: pa.grub_disk = optarg; predict_opts = true; break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *verb = argv[optind];
        const char *our = ea.log ?: CAIRN_TPM_LOG_DEFAULT;
        bool extend_opts = ea.pcr >= 0 || ea.tag || ea.data || ea.file;
        if (strcmp(verb, "predict") == 0) {
                if (extend_opts || have_mask || have_fw || have_log)
                        goto wrong;
                return verb_predict(tcti, &pa, json);
        }
        if (predict_opts)
                goto wrong;
        if (strcmp(verb, "pcrs") == 0) {
                if (extend_opts || have_fw || have_log)
                        goto wrong;
                return verb_pcrs(tcti, mask, json);
        }
        if (strcmp(verb, "extend") == 0) {
                if (json || have_mask || have_fw)
                        goto wrong;
                return verb_extend(tcti, &ea);
        }
        if (strcmp(verb, "log") == 0) {
                if (extend_opts || have_mask)
                        goto wrong;
                return verb_log(fw, our, json);
        }
        if (strcmp(verb, "verify") == 0) {
                if (extend_opts || json)
                        goto wrong;
                return verb_verify(tcti, fw, our, mask, have_mask);
        }
        log_msg("unknown verb \"%s\" (see --help)", log_safe(safe, sizeof safe, verb));
        return EXIT_USAGE;
wrong:
        log_msg("an option given does not apply to \"%s\" (see --help)", verb);
        return EXIT_USAGE;
}
