/* updater/agent/measure-record.c — the measured-boot record (STATE_DIR/tpm-prediction): strict parse, format,
 * atomic save, and its block in `cairnctl status`. libc only (cairnctl links it). Layout in measure.h. */
#include "measure.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "kvfile.h"
#include "omaha/omaha.h"
#include "parse.h"

const unsigned measure_pcrs[3] = { 8, 9, 11 };

static const char *const result_names[_MEASURE_RESULT_MAX] = {
        [MEASURE_UNCHECKED] = "",
        [MEASURE_MATCH] = "match",
        [MEASURE_MISMATCH] = "mismatch",
        [MEASURE_OTHER_SLOT] = "other-slot",
        [MEASURE_NO_TPM] = "no-tpm",
        [MEASURE_ERROR] = "error",
};

const char *measure_result_name(MeasureResult r) {
        return (unsigned)r < _MEASURE_RESULT_MAX ? result_names[r] : "?";
}

size_t measure_bank_size(const char *name) {
        static const struct {
                const char *name;
                size_t size;
        } t[] = { { "sha1", 20 }, { "sha256", 32 }, { "sha384", 48 }, { "sha512", 64 } };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (strcmp(name, t[i].name) == 0)
                        return t[i].size;
        return 0;
}

MeasureBank *measure_bank_find(MeasureBank *list, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].name, name) == 0)
                        return &list[i];
        return NULL;
}

static int pcr_slot(unsigned pcr) {
        for (int i = 0; i < 3; i++)
                if (measure_pcrs[i] == pcr)
                        return i;
        return -1;
}

static bool hex_lower(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int measure_bank_set(MeasureBank *list, size_t *n, const char *bank, unsigned pcr, const char *hex,
                     const char **ret_why) {
        size_t size = measure_bank_size(bank);
        int i = pcr_slot(pcr);
        const char *why = NULL;
        int r = -EINVAL;
        if (!size)
                why = "names an unknown bank (sha1, sha256, sha384, sha512)";
        else if (i < 0)
                why = "names a PCR other than 8, 9 and 11";
        else if (!hex_lower(hex, 2 * size))
                why = "is not a digest of the bank's size in lowercase hex";
        if (why) {
                *ret_why = why;
                return r;
        }
        MeasureBank *b = measure_bank_find(list, *n, bank);
        if (!b) {
                if (*n >= MEASURE_BANKS_MAX) {
                        *ret_why = "names too many banks";
                        return -E2BIG;
                }
                b = &list[(*n)++];
                *b = (MeasureBank){ 0 };
                strcpy(b->name, bank);
        }
        if (b->have & (1u << i)) {
                *ret_why = "is given twice";
                return -EEXIST;
        }
        b->have |= 1u << i;
        memcpy(b->hex[i], hex, 2 * size + 1);
        return 0;
}

/* What the parser has seen, for "given once" and "together" checks. */
enum {
        SEEN_SLOT = 1u << 0,
        SEEN_VERSION = 1u << 1,
        SEEN_BOOT = 1u << 2,
        SEEN_AT = 1u << 3,
        SEEN_TPM = 1u << 4,
        SEEN_NOTE = 1u << 5,
        SEEN_CBOOT = 1u << 6,
        SEEN_CRESULT = 1u << 7,
        SEEN_CDETAIL = 1u << 8,
};

typedef struct Parse {
        MeasureRecord *m;
        unsigned seen;
        unsigned line;
} Parse;

static bool boot_id_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      s[i] == '-'))
                        return false;
        return true;
}

static bool text_valid(const char *s, size_t max) {
        if (strlen(s) >= max)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* PCR_<bank>_<n> or TPM_<bank>_<n>. */
static int pcr_key(Parse *p, const char *k, const char *v, const char **why) {
        bool actual = strncmp(k, "TPM_", 4) == 0;
        const char *rest = k + 4;
        const char *us = strrchr(rest, '_');
        char bank[8];
        unsigned pcr;
        if (!us || (size_t)(us - rest) >= sizeof bank || parse_unsigned_range(us + 1, 0, 23, &pcr) < 0) {
                *why = "is not a known key";
                return -EBADMSG;
        }
        memcpy(bank, rest, (size_t)(us - rest));
        bank[us - rest] = 0;
        MeasureRecord *m = p->m;
        int r = actual ? measure_bank_set(m->actual, &m->n_actual, bank, pcr, v, why)
                       : measure_bank_set(m->banks, &m->n_banks, bank, pcr, v, why);
        return r < 0 ? -EBADMSG : 0;
}

static int once(Parse *p, unsigned bit, const char **why) {
        if (p->seen & bit) {
                *why = "is given twice";
                return -EBADMSG;
        }
        p->seen |= bit;
        return 0;
}

static int record_kv(const char *k, const char *v, unsigned line, void *ud, const char **why) {
        Parse *p = ud;
        MeasureRecord *m = p->m;
        p->line = line;
        if (strcmp(k, "SLOT") == 0) {
                if (once(p, SEEN_SLOT, why) < 0)
                        return -EBADMSG;
                if (strcmp(v, "A") != 0 && strcmp(v, "B") != 0) {
                        *why = "SLOT is not A or B";
                        return -EBADMSG;
                }
                m->slot = v[0] - 'A';
        } else if (strcmp(k, "VERSION") == 0) {
                if (once(p, SEEN_VERSION, why) < 0)
                        return -EBADMSG;
                if (strlen(v) >= sizeof m->version || !omaha_version_valid(v)) {
                        *why = "VERSION is not a dotted version";
                        return -EBADMSG;
                }
                strcpy(m->version, v);
        } else if (strcmp(k, "PREDICTED_BOOT_ID") == 0 || strcmp(k, "CHECK_BOOT_ID") == 0) {
                bool check = k[0] == 'C';
                if (once(p, check ? SEEN_CBOOT : SEEN_BOOT, why) < 0)
                        return -EBADMSG;
                if (!boot_id_valid(v)) {
                        *why = "is not a boot id";
                        return -EBADMSG;
                }
                strcpy(check ? m->check_boot_id : m->boot_id, v);
        } else if (strcmp(k, "PREDICTED_AT") == 0) {
                uint64_t t;
                if (once(p, SEEN_AT, why) < 0)
                        return -EBADMSG;
                if (parse_u64_range(v, 0, INT64_C(253402300799), &t) < 0) {
                        *why = "PREDICTED_AT is not a time (Unix seconds)";
                        return -EBADMSG;
                }
                m->predicted_at = (int64_t)t;
        } else if (strcmp(k, "TPM") == 0) {
                if (once(p, SEEN_TPM, why) < 0)
                        return -EBADMSG;
                if (strcmp(v, "present") != 0 && strcmp(v, "absent") != 0 && strcmp(v, "unreadable") != 0) {
                        *why = "TPM is not present, absent or unreadable";
                        return -EBADMSG;
                }
                strcpy(m->tpm, v);
        } else if (strcmp(k, "NOTE") == 0 || strcmp(k, "CHECK_DETAIL") == 0) {
                bool check = k[0] == 'C';
                if (once(p, check ? SEEN_CDETAIL : SEEN_NOTE, why) < 0)
                        return -EBADMSG;
                if (!text_valid(v, MEASURE_TEXT_MAX)) {
                        *why = "is too long or holds control characters";
                        return -EBADMSG;
                }
                strcpy(check ? m->detail : m->note, v);
        } else if (strcmp(k, "CHECK_RESULT") == 0) {
                if (once(p, SEEN_CRESULT, why) < 0)
                        return -EBADMSG;
                m->result = MEASURE_UNCHECKED;
                for (int i = 1; i < _MEASURE_RESULT_MAX; i++)
                        if (strcmp(v, result_names[i]) == 0)
                                m->result = (MeasureResult)i;
                if (m->result == MEASURE_UNCHECKED) {
                        *why = "CHECK_RESULT is not match, mismatch, other-slot, no-tpm or error";
                        return -EBADMSG;
                }
        } else if (strncmp(k, "PCR_", 4) == 0 || strncmp(k, "TPM_", 4) == 0)
                return pcr_key(p, k, v, why);
        else {
                *why = "is not a known key";
                return -EBADMSG;
        }
        return 0;
}

int measure_record_parse(const char *text, size_t len, MeasureRecord *ret, const char **ret_why, unsigned *ret_line) {
        MeasureRecord m = { .slot = -1 };
        Parse p = { .m = &m };
        KvfileError ke = { 0 };
        const char *why = NULL;
        *ret_line = 0;
        if (len > MEASURE_FILE_MAX) {
                *ret_why = "is larger than 16 KiB";
                return -EBADMSG;
        }
        if (memchr(text, 0, len)) {
                *ret_why = "holds a NUL byte";
                return -EBADMSG;
        }
        int r = kvfile_parse(text, len, record_kv, &p, &ke);
        if (r < 0) {
                *ret_why = ke.why ? ke.why : "is not KEY=VALUE text";
                *ret_line = ke.line;
                return -EBADMSG;
        }
        if ((p.seen & (SEEN_SLOT | SEEN_VERSION | SEEN_BOOT | SEEN_AT | SEEN_TPM)) !=
            (SEEN_SLOT | SEEN_VERSION | SEEN_BOOT | SEEN_AT | SEEN_TPM))
                why = "lacks one of SLOT, VERSION, PREDICTED_BOOT_ID, PREDICTED_AT, TPM";
        else if (m.n_banks == 0)
                why = "holds no predicted PCR";
        else {
                unsigned c = p.seen & (SEEN_CBOOT | SEEN_CRESULT | SEEN_CDETAIL);
                if (c != 0 && c != (SEEN_CBOOT | SEEN_CRESULT | SEEN_CDETAIL))
                        why = "has CHECK_BOOT_ID, CHECK_RESULT and CHECK_DETAIL not all together";
                else if (c == 0 && m.n_actual > 0)
                        why = "has TPM_ values without a CHECK_RESULT";
                for (size_t i = 0; !why && i < m.n_banks; i++)
                        if (m.banks[i].have != 7)
                                why = "lacks one of PCR 8, 9, 11 of a predicted bank";
                for (size_t i = 0; !why && i < m.n_actual; i++)
                        if (m.actual[i].have != 7)
                                why = "lacks one of PCR 8, 9, 11 of a bank read from the TPM";
        }
        if (why) {
                *ret_why = why;
                return -EBADMSG;
        }
        (void)ret_line;
        *ret = m;
        return 0;
}

static bool put_text_ok(const char *s) {
        return text_valid(s, MEASURE_TEXT_MAX);
}

int measure_record_format(const MeasureRecord *m, Buf *out) {
        if ((m->slot != 0 && m->slot != 1) || !omaha_version_valid(m->version) || !boot_id_valid(m->boot_id) ||
            m->n_banks == 0 || !put_text_ok(m->note) || !put_text_ok(m->detail))
                return -EINVAL;
        buf_printf(out, "# cairn-updated: the predicted PCRs of the boot into slot %c (docs/measured-boot.md)\n",
                   'A' + m->slot);
        buf_printf(out, "SLOT=%c\nVERSION=%s\nPREDICTED_BOOT_ID=%s\nPREDICTED_AT=%" PRId64 "\nTPM=%s\n", 'A' + m->slot,
                   m->version, m->boot_id, m->predicted_at, m->tpm[0] ? m->tpm : "present");
        if (m->note[0])
                buf_printf(out, "NOTE=%s\n", m->note);
        for (size_t i = 0; i < m->n_banks; i++)
                for (int j = 0; j < 3; j++)
                        buf_printf(out, "PCR_%s_%u=%s\n", m->banks[i].name, measure_pcrs[j], m->banks[i].hex[j]);
        if (m->result != MEASURE_UNCHECKED) {
                if (!boot_id_valid(m->check_boot_id))
                        return -EINVAL;
                buf_printf(out, "CHECK_BOOT_ID=%s\nCHECK_RESULT=%s\nCHECK_DETAIL=%s\n", m->check_boot_id,
                           measure_result_name(m->result), m->detail);
                for (size_t i = 0; i < m->n_actual; i++)
                        for (int j = 0; j < 3; j++)
                                buf_printf(out, "TPM_%s_%u=%s\n", m->actual[i].name, measure_pcrs[j], m->actual[i].hex[j]);
        }
        return out->err;
}

static void record_path(const char *dir, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", dir, MEASURE_FILE);
}

int measure_record_load(const char *dir, MeasureRecord *ret, char *err, size_t errsize) {
        char path[PATH_MAX];
        record_path(dir, path, sizeof path);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, MEASURE_FILE_MAX, &text, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                snprintf(err, errsize, "cannot read \"%s\": %s", path, strerror(-r));
                return r == -EFBIG ? -EBADMSG : r;
        }
        const char *why = NULL;
        unsigned line = 0;
        r = measure_record_parse(text, len, ret, &why, &line);
        if (r < 0) {
                if (line)
                        snprintf(err, errsize, "\"%s\" line %u %s", path, line, why);
                else
                        snprintf(err, errsize, "\"%s\" %s", path, why);
        }
        return r;
}

int measure_record_save(const char *dir, const MeasureRecord *m) {
        char path[PATH_MAX];
        record_path(dir, path, sizeof path);
        _cleanup_buf_ Buf b;
        buf_init(&b, MEASURE_FILE_MAX);
        int r = measure_record_format(m, &b);
        if (r < 0)
                return r;
        r = mkdir_parents(path, false);
        if (r < 0)
                return r;
        return write_file_atomic(path, b.data, b.len, 0644);
}

int measure_record_remove(const char *dir) {
        char path[PATH_MAX];
        record_path(dir, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return fsync_parent_dir(path);
}

/* ---- status ---- */

static void banks_json(Buf *b, const MeasureBank *list, size_t n) {
        buf_puts(b, "{");
        for (size_t i = 0; i < n; i++) {
                buf_printf(b, "%s\"%s\":{", i ? "," : "", list[i].name);
                for (int j = 0; j < 3; j++)
                        buf_printf(b, "%s\"%u\":\"%s\"", j ? "," : "", measure_pcrs[j], list[i].hex[j]);
                buf_puts(b, "}");
        }
        buf_puts(b, "}");
}

static void record_json(Buf *b, const MeasureRecord *m) {
        buf_printf(b, "{\"slot\":\"%c\",\"version\":", 'A' + m->slot);
        buf_put_json(b, m->version);
        buf_puts(b, ",\"predicted_boot_id\":");
        buf_put_json(b, m->boot_id);
        buf_printf(b, ",\"predicted_at\":%" PRId64 ",\"tpm\":", m->predicted_at);
        buf_put_json(b, m->tpm);
        buf_puts(b, ",\"note\":");
        if (m->note[0])
                buf_put_json(b, m->note);
        else
                buf_puts(b, "null");
        buf_puts(b, ",\"banks\":");
        banks_json(b, m->banks, m->n_banks);
        buf_puts(b, ",\"check\":");
        if (m->result == MEASURE_UNCHECKED)
                buf_puts(b, "null");
        else {
                buf_puts(b, "{\"result\":");
                buf_put_json(b, measure_result_name(m->result));
                buf_puts(b, ",\"boot_id\":");
                buf_put_json(b, m->check_boot_id);
                buf_puts(b, ",\"detail\":");
                buf_put_json(b, m->detail);
                buf_puts(b, ",\"tpm_banks\":");
                banks_json(b, m->actual, m->n_actual);
                buf_puts(b, "}");
        }
        buf_puts(b, "}");
}

static void record_human(Buf *b, const MeasureRecord *m) {
        char t[64] = "?";
        time_t at = (time_t)m->predicted_at;
        struct tm tm;
        if (localtime_r(&at, &tm))
                strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S %Z", &tm);
        buf_printf(b, "Measured boot: PCRs predicted for slot %c (%s) at %s", 'A' + m->slot, m->version, t);
        if (strcmp(m->tpm, "absent") == 0)
                buf_puts(b, "; no TPM on this host: nothing will be compared");
        buf_puts(b, "\n");
        if (m->note[0])
                buf_printf(b, "  note: %s\n", m->note);
        for (size_t i = 0; i < m->n_banks; i++)
                for (int j = 0; j < 3; j++)
                        buf_printf(b, "  %-6s PCR %-2u %s\n", m->banks[i].name, measure_pcrs[j], m->banks[i].hex[j]);
        switch (m->result) {
        case MEASURE_UNCHECKED:
                buf_puts(b, "  check: not yet (after the boot into that slot)\n");
                break;
        case MEASURE_MISMATCH:
                buf_printf(b, "  check: MISMATCH: %s\n", m->detail);
                break;
        default:
                buf_printf(b, "  check: %s: %s\n", measure_result_name(m->result), m->detail);
        }
}

int measure_status_merge(char **text, const char *state_dir, bool json) {
        MeasureRecord m;
        char err[PATH_MAX + 128] = "";
        int r = measure_record_load(state_dir, &m, err, sizeof err);
        _cleanup_buf_ Buf b;
        buf_init(&b, MEASURE_FILE_MAX * 4 + strlen(*text));
        if (json) {
                size_t n = strlen(*text);
                while (n > 0 && ((*text)[n - 1] == '\n' || (*text)[n - 1] == ' '))
                        n--;
                if (n == 0 || (*text)[n - 1] != '}')
                        return -EINVAL;
                buf_put(&b, *text, n - 1);
                buf_puts(&b, ",\"measured_boot\":");
                if (r == -ENOENT)
                        buf_puts(&b, "null");
                else if (r < 0) {
                        buf_puts(&b, "{\"error\":");
                        buf_put_json(&b, err);
                        buf_puts(&b, "}");
                } else
                        record_json(&b, &m);
                buf_puts(&b, "}\n");
        } else {
                buf_puts(&b, *text);
                if (r == -ENOENT) {
                        /* no record: nothing to show */
                } else if (r < 0)
                        buf_printf(&b, "Measured boot: the prediction record is unreadable: %s\n", err);
                else
                        record_human(&b, &m);
        }
        if (b.err)
                return b.err;
        free(*text);
        *text = buf_steal(&b);
        return 0;
}
