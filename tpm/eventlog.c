/* tpm/eventlog.c — parsing (bounded, every malformation a distinct error) and writing the TCG crypto-agile log. */
#include "eventlog.h"

#include <stdlib.h>

#include "parse.h"

static const char SPEC_ID_SIG[16] = "Spec ID Event03";

static uint16_t get16(const uint8_t *p) {
        return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

void eventlog_free(struct eventlog *log) {
        if (!log)
                return;
        free(log->events);
        free(log->buf);
        free(log);
}

/* A cursor over the untrusted bytes; every take checks the remaining length first. */
struct cursor {
        const uint8_t *p;
        size_t len, off;
};

static bool take(struct cursor *c, size_t n, const uint8_t **ret) {
        if (c->len - c->off < n)
                return false;
        *ret = c->p + c->off;
        c->off += n;
        return true;
}

#define TRUNC(what)                                                                                               \
        tpm_error_set(err, -EBADMSG, TPM_ERR_TRUNCATED, "record %zu at offset %zu is truncated: %s ends past the " \
                      "end of the log (%zu bytes)", rec, start, what, c->len)

static int parse_header(struct eventlog *log, struct cursor *c, struct tpm_error *err) {
        const size_t rec = 0, start = 0;
        const uint8_t *p;
        if (c->len == 0)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_NO_SPEC_HEADER,
                                     "the log is empty (no Spec ID Event03 header)");
        if (!take(c, 32, &p))
                return TRUNC("the spec header record");
        uint32_t pcr = get32(p), type = get32(p + 4), size = get32(p + 28);
        bool zero = true;
        for (int i = 0; i < 20; i++)
                zero = zero && p[8 + i] == 0;
        if (pcr != 0 || type != EV_NO_ACTION || !zero)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_NO_SPEC_HEADER,
                                     "the first record is not a spec header (PCR %u, type 0x%x%s; want PCR 0, "
                                     "EV_NO_ACTION, zero digest)",
                                     pcr, type, zero ? "" : ", non-zero digest");
        if (size < 29)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER,
                                     "the spec header event is %u bytes, too small for TCG_EfiSpecIDEvent (>= 29)",
                                     size);
        if (size > 29 + 4 * 255 + 255)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_TOO_LARGE, "the spec header event is %u bytes (absurd)",
                                     size);
        if (!take(c, size, &p))
                return TRUNC("the spec header event");
        if (memcmp(p, SPEC_ID_SIG, 16) != 0) {
                char sig[80];
                log_safe_n(sig, sizeof sig, (const char *)p, strnlen((const char *)p, 16));
                return tpm_error_set(err, -EBADMSG, TPM_ERR_SIGNATURE,
                                     "the spec header signature is \"%s\", not \"Spec ID Event03\" (%s)", sig,
                                     memcmp(p, "Spec ID Event00", 15) == 0 || memcmp(p, "Spec ID Event02", 15) == 0
                                             ? "a TPM 1.2 SHA-1 log, not supported"
                                             : "not a crypto-agile log");
        }
        log->platform_class = get32(p + 16);
        log->spec_minor = p[20];
        log->spec_major = p[21];
        log->spec_errata = p[22];
        log->uintn_size = p[23];
        uint32_t n = get32(p + 24);
        if (log->spec_major != 2 || log->spec_minor != 0)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER, "the spec header has version %u.%u, want 2.0",
                                     log->spec_major, log->spec_minor);
        if (log->uintn_size != 1 && log->uintn_size != 2)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER, "the spec header has uintnSize %u (want 1 or 2)",
                                     log->uintn_size);
        if (n == 0)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER, "the spec header lists no algorithms");
        if (n > TPM_MAX_BANKS)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_TOO_LARGE,
                                     "the spec header lists %u algorithms (at most %d)", n, TPM_MAX_BANKS);
        /* 28 fixed bytes, n algorithm entries, the vendorInfoSize byte. n <= 8, so no overflow. */
        if (size < 28 + 4 * n + 1)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER,
                                     "the spec header event (%u bytes) is too small for its %u algorithms", size, n);
        for (uint32_t i = 0; i < n; i++) {
                uint16_t alg = get16(p + 28 + 4 * i), dsize = get16(p + 30 + 4 * i);
                unsigned known = tpm_alg_size(alg);
                if (known && dsize != known)
                        return tpm_error_set(err, -EBADMSG, TPM_ERR_ALG_SIZE,
                                             "the spec header gives %s (0x%04x) a digest size of %u, not %u",
                                             tpm_alg_name(alg), alg, dsize, known);
                if (!known && (dsize == 0 || dsize > TPM_MAX_DIGEST))
                        return tpm_error_set(err, -EBADMSG, TPM_ERR_ALG_SIZE,
                                             "the spec header gives unknown algorithm 0x%04x a digest size of %u",
                                             alg, dsize);
                for (uint32_t j = 0; j < i; j++)
                        if (log->algs[j].alg == alg)
                                return tpm_error_set(err, -EBADMSG, TPM_ERR_DUP_ALG,
                                                     "the spec header lists algorithm 0x%04x twice", alg);
                log->algs[i] = (struct eventlog_alg){ alg, dsize };
        }
        log->n_algs = n;
        uint8_t vendor = p[28 + 4 * n];
        if (size != 28 + 4 * n + 1 + vendor)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_HEADER,
                                     "the spec header event is %u bytes, but its fields (%u algorithms, %u bytes of "
                                     "vendor info) take %u",
                                     size, n, vendor, 28 + 4 * n + 1 + vendor);
        log->header_size = c->off;
        return 0;
}

static int parse_record(const struct eventlog *log, struct cursor *c, size_t rec, unsigned flags,
                        struct eventlog_event *ev, struct tpm_error *err) {
        const size_t start = c->off;
        const uint8_t *p;
        if (!take(c, 12, &p))
                return TRUNC("the PCR index, type and digest count");
        ev->offset = start;
        ev->pcr = get32(p);
        ev->type = get32(p + 4);
        uint32_t count = get32(p + 8);
        if (ev->pcr >= TPM_PCRS)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_BAD_PCR, "record %zu at offset %zu: PCR index %u (0-%d)",
                                     rec, start, ev->pcr, TPM_PCRS - 1);
        if (count == 0 || count > log->n_algs)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_DIGEST_COUNT,
                                     "record %zu at offset %zu: digest count %u, but the header lists %zu algorithms",
                                     rec, start, count, log->n_algs);
        if ((flags & EVENTLOG_PARSE_OURS) && count != log->n_algs)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_DIGEST_COUNT,
                                     "record %zu at offset %zu: %u digests, but every record of this log must carry "
                                     "all %zu of the header's algorithms",
                                     rec, start, count, log->n_algs);
        ev->n_digests = count;
        for (uint32_t i = 0; i < count; i++) {
                if (!take(c, 2, &p))
                        return TRUNC("a digest's algorithm id");
                uint16_t alg = get16(p);
                const struct eventlog_alg *a = NULL;
                for (size_t j = 0; j < log->n_algs; j++)
                        if (log->algs[j].alg == alg)
                                a = &log->algs[j];
                if (!a)
                        return tpm_error_set(err, -EBADMSG, TPM_ERR_UNKNOWN_ALG,
                                             "record %zu at offset %zu: digest %u has algorithm 0x%04x, which the "
                                             "header does not list",
                                             rec, start, i, alg);
                for (uint32_t j = 0; j < i; j++)
                        if (ev->digests[j].alg == alg)
                                return tpm_error_set(err, -EBADMSG, TPM_ERR_DUP_ALG,
                                                     "record %zu at offset %zu: two digests with algorithm 0x%04x",
                                                     rec, start, alg);
                if (!take(c, a->size, &p))
                        return TRUNC("a digest");
                ev->digests[i] = (struct eventlog_digest_ref){ alg, a->size, p };
        }
        if (!take(c, 4, &p))
                return TRUNC("the event size");
        uint32_t size = get32(p);
        if (size > EVENTLOG_MAX_EVENT_SIZE)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_TOO_LARGE,
                                     "record %zu at offset %zu: event size %u (absurd; at most %u)", rec, start, size,
                                     EVENTLOG_MAX_EVENT_SIZE);
        if (!take(c, size, &p))
                return tpm_error_set(err, -EBADMSG, TPM_ERR_EVENT_SIZE,
                                     "record %zu at offset %zu: event size %u runs past the end of the log (%zu bytes "
                                     "left)",
                                     rec, start, size, c->len - c->off);
        ev->data_size = size;
        ev->data = p;
        if ((flags & EVENTLOG_PARSE_OURS) && ev->type == EV_NO_ACTION)
                return tpm_error_set(err, -EBADMSG, TPM_ERR_NO_ACTION,
                                     "record %zu at offset %zu: EV_NO_ACTION after the header (tpm2_eventlog 5.4 "
                                     "would replay it)",
                                     rec, start);
        return 0;
}

int eventlog_parse(const void *untrusted, size_t len, unsigned flags, struct eventlog **ret,
                   struct tpm_error *err) {
        if (len > EVENTLOG_MAX_SIZE)
                return tpm_error_set(err, -EFBIG, TPM_ERR_TOO_LARGE, "the log is %zu bytes (at most %u)", len,
                                     EVENTLOG_MAX_SIZE);
        _cleanup_eventlog_ struct eventlog *log = calloc(1, sizeof *log);
        if (!log)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        log->buf = malloc(len ? len : 1);
        if (!log->buf)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        if (len)
                memcpy(log->buf, untrusted, len);
        log->len = len;
        struct cursor c = { log->buf, len, 0 };
        int r = parse_header(log, &c, err);
        if (r < 0)
                return r;
        size_t cap = 0;
        for (size_t rec = 1; c.off < c.len; rec++) {
                if (log->n_events >= EVENTLOG_MAX_RECORDS)
                        return tpm_error_set(err, -EBADMSG, TPM_ERR_TOO_LARGE,
                                             "the log has more than %u records (absurd)", EVENTLOG_MAX_RECORDS);
                if (log->n_events == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct eventlog_event *ne = realloc(log->events, ncap * sizeof *ne);
                        if (!ne)
                                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
                        log->events = ne;
                        cap = ncap;
                }
                struct eventlog_event *ev = &log->events[log->n_events];
                memset(ev, 0, sizeof *ev);
                r = parse_record(log, &c, rec, flags, ev, err);
                if (r < 0)
                        return r;
                log->n_events++;
        }
        *ret = TAKE_PTR(log);
        return 0;
}

const struct eventlog_digest_ref *eventlog_event_digest(const struct eventlog_event *ev, uint16_t alg) {
        for (uint32_t i = 0; i < ev->n_digests; i++)
                if (ev->digests[i].alg == alg)
                        return &ev->digests[i];
        return NULL;
}

int eventlog_header_encode(const uint16_t *algs, size_t n, uint8_t *buf, size_t *ret_len) {
        if (n == 0 || n > TPM_MAX_BANKS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!tpm_alg_size(algs[i]))
                        return -EOPNOTSUPP;
                for (size_t j = 0; j < i; j++)
                        if (algs[j] == algs[i])
                                return -EINVAL;
        }
        uint32_t size = (uint32_t)(29 + 4 * n);
        memset(buf, 0, 32 + size);
        put32(buf, 0);
        put32(buf + 4, EV_NO_ACTION);
        put32(buf + 28, size);
        uint8_t *p = buf + 32;
        memcpy(p, SPEC_ID_SIG, 16);
        put32(p + 16, 0); /* platformClass: client */
        p[20] = 0;        /* specVersionMinor */
        p[21] = 2;        /* specVersionMajor */
        p[22] = 0;        /* specErrata */
        p[23] = 2;        /* uintnSize: UINT64 */
        put32(p + 24, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
                put16(p + 28 + 4 * i, algs[i]);
                put16(p + 30 + 4 * i, (uint16_t)tpm_alg_size(algs[i]));
        }
        p[28 + 4 * n] = 0; /* vendorInfoSize */
        *ret_len = 32 + size;
        return 0;
}

int eventlog_record_encode(uint32_t pcr, uint32_t type, const struct tpm_digests *d, const void *event,
                           size_t event_len, uint8_t **ret, size_t *ret_len) {
        if (pcr >= TPM_PCRS || d->n == 0 || d->n > TPM_MAX_BANKS || event_len > EVENTLOG_MAX_EVENT_SIZE)
                return -EINVAL;
        size_t len = 12 + 4;
        for (size_t i = 0; i < d->n; i++) {
                if (d->d[i].size != tpm_alg_size(d->d[i].alg))
                        return -EINVAL;
                len += 2 + d->d[i].size;
        }
        len += event_len;
        _cleanup_free_ uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        put32(buf, pcr);
        put32(buf + 4, type);
        put32(buf + 8, (uint32_t)d->n);
        uint8_t *p = buf + 12;
        for (size_t i = 0; i < d->n; i++) {
                put16(p, d->d[i].alg);
                memcpy(p + 2, d->d[i].bytes, d->d[i].size);
                p += 2 + d->d[i].size;
        }
        put32(p, (uint32_t)event_len);
        if (event_len)
                memcpy(p + 4, event, event_len);
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int eventlog_tagged_encode(uint32_t tag, const void *data, size_t len, uint8_t **ret, size_t *ret_len) {
        if (len > EVENTLOG_MAX_EVENT_SIZE - 8)
                return -EINVAL;
        uint8_t *buf = malloc(8 + len);
        if (!buf)
                return -ENOMEM;
        put32(buf, tag);
        put32(buf + 4, (uint32_t)len);
        if (len)
                memcpy(buf + 8, data, len);
        *ret = buf;
        *ret_len = 8 + len;
        return 0;
}

int eventlog_tagged_decode(const struct eventlog_event *ev, uint32_t *ret_tag, const uint8_t **ret_data,
                           uint32_t *ret_len) {
        if (ev->type != EV_EVENT_TAG || ev->data_size < 8)
                return -EBADMSG;
        uint32_t len = get32(ev->data + 4);
        if (len != ev->data_size - 8)
                return -EBADMSG;
        *ret_tag = get32(ev->data);
        *ret_data = ev->data + 8;
        *ret_len = len;
        return 0;
}

const char *eventlog_type_name(uint32_t type) {
        static const char *const base[] = {
                [EV_PREBOOT_CERT] = "EV_PREBOOT_CERT",
                [EV_POST_CODE] = "EV_POST_CODE",
                [0x2] = "EV_UNUSED",
                [EV_NO_ACTION] = "EV_NO_ACTION",
                [EV_SEPARATOR] = "EV_SEPARATOR",
                [EV_ACTION] = "EV_ACTION",
                [EV_EVENT_TAG] = "EV_EVENT_TAG",
                [EV_S_CRTM_CONTENTS] = "EV_S_CRTM_CONTENTS",
                [EV_S_CRTM_VERSION] = "EV_S_CRTM_VERSION",
                [EV_CPU_MICROCODE] = "EV_CPU_MICROCODE",
                [EV_PLATFORM_CONFIG_FLAGS] = "EV_PLATFORM_CONFIG_FLAGS",
                [EV_TABLE_OF_DEVICES] = "EV_TABLE_OF_DEVICES",
                [EV_COMPACT_HASH] = "EV_COMPACT_HASH",
                [EV_IPL] = "EV_IPL",
                [EV_IPL_PARTITION_DATA] = "EV_IPL_PARTITION_DATA",
                [0xF] = "EV_NONHOST_CODE",
                [0x10] = "EV_NONHOST_CONFIG",
                [0x11] = "EV_NONHOST_INFO",
                [0x12] = "EV_OMIT_BOOT_DEVICE_EVENTS",
        };
        static const struct {
                uint32_t type;
                const char *name;
        } efi[] = {
                { 0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
                { 0x80000002, "EV_EFI_VARIABLE_BOOT" },
                { 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION" },
                { 0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER" },
                { 0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
                { 0x80000006, "EV_EFI_GPT_EVENT" },
                { 0x80000007, "EV_EFI_ACTION" },
                { 0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
                { 0x80000009, "EV_EFI_HANDOFF_TABLES" },
                { 0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
                { 0x8000000B, "EV_EFI_HANDOFF_TABLES2" },
                { 0x8000000C, "EV_EFI_VARIABLE_BOOT2" },
                { 0x80000010, "EV_EFI_HCRTM_EVENT" },
                { 0x800000E0, "EV_EFI_VARIABLE_AUTHORITY" },
                { 0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB" },
                { 0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
        };
        if (type < ELEMENTSOF(base))
                return base[type];
        for (size_t i = 0; i < ELEMENTSOF(efi); i++)
                if (efi[i].type == type)
                        return efi[i].name;
        return NULL;
}

static const struct {
        uint32_t tag;
        const char *name;
} tags[] = {
        { CAIRN_TAG_SLOT, "slot" },
        { CAIRN_TAG_VERSION, "version" },
        { CAIRN_TAG_LEAVE_INITRD, "leave-initrd" },
        { CAIRN_TAG_TEST, "test" },
};

const char *cairn_tag_name(uint32_t tag) {
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                if (tags[i].tag == tag)
                        return tags[i].name;
        return NULL;
}

int cairn_tag_parse(const char *s, uint32_t *ret_tag) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                if (strcmp(tags[i].name, s) == 0) {
                        *ret_tag = tags[i].tag;
                        return 0;
                }
        uint64_t v;
        int r;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                /* the shared grammar is decimal only; hex tag ids are the one exception, parsed strictly here */
                if (!s[2] || strlen(s + 2) > 8)
                        return -EINVAL;
                v = 0;
                for (const char *p = s + 2; *p; p++) {
                        int d = *p >= '0' && *p <= '9'   ? *p - '0'
                                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                                         : -1;
                        if (d < 0)
                                return -EINVAL;
                        v = v * 16 + (uint64_t)d;
                }
        } else {
                r = parse_u64_range(s, 0, UINT32_MAX, &v);
                if (r < 0)
                        return r;
        }
        if ((v & 0xFFFF0000u) != 0xCA1B0000u)
                return -ERANGE;
        *ret_tag = (uint32_t)v;
        return 0;
}
