/* tests/unit/test-tpm-eventlog.c — the TCG crypto-agile event log: header and record round trips, the PCR fold
 * against known answers, and every malformed input as its own error kind. */
#include <errno.h>
#include <stdint.h>

#include "unit.h"
#include "tpm/alg.h"
#include "tpm/eventlog.h"
#include "tpm/replay.h"

static const uint16_t BANKS[2] = { TPM_ALG_SHA1, TPM_ALG_SHA256 };

/* A growable byte buffer for building test logs. */
struct buf {
        uint8_t *p;
        size_t len;
};
static void buf_add(struct buf *b, const void *p, size_t n) {
        b->p = realloc(b->p, b->len + n + 1);
        if (!b->p)
                abort();
        memcpy(b->p + b->len, p, n);
        b->len += n;
}
static void buf_u32(struct buf *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
        buf_add(b, x, 4);
}
static void buf_u16(struct buf *b, uint16_t v) {
        uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
        buf_add(b, x, 2);
}
static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void add_header(struct buf *b, const uint16_t *algs, size_t n) {
        uint8_t h[EVENTLOG_HEADER_MAX];
        size_t len = 0;
        CHECK_EQ(eventlog_header_encode(algs, n, h, &len), 0);
        buf_add(b, h, len);
}

/* A record measuring text into pcr with our tag, digests for algs. */
static void add_record(struct buf *b, uint32_t pcr, uint32_t type, const uint16_t *algs, size_t n, const char *text) {
        struct tpm_digests d;
        struct tpm_error err = { 0 };
        CHECK_EQ(tpm_hash_data(algs, n, text, strlen(text), &d, &err), 0);
        uint8_t *ev = NULL, *rec = NULL;
        size_t evlen = 0, reclen = 0;
        CHECK_EQ(eventlog_tagged_encode(CAIRN_TAG_TEST, text, strlen(text), &ev, &evlen), 0);
        CHECK_EQ(eventlog_record_encode(pcr, type, &d, ev, evlen, &rec, &reclen), 0);
        buf_add(b, rec, reclen);
        free(ev);
        free(rec);
}

static struct buf good_log(void) {
        struct buf b = { 0 };
        add_header(&b, BANKS, 2);
        add_record(&b, 11, EV_EVENT_TAG, BANKS, 2, "abc");
        add_record(&b, 11, EV_EVENT_TAG, BANKS, 2, "leave-initrd");
        return b;
}

/* Parse and expect failure of the given kind; the message must be non-empty and one line. */
static void expect_kind(const uint8_t *p, size_t len, unsigned flags, enum tpm_error_kind kind, const char *what) {
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        int r = eventlog_parse(p, len, flags, &log, &err);
        if (r >= 0 || err.kind != kind) {
                fprintf(stderr, "  %s: r=%d kind=%s (want %s): %s\n", what, r, tpm_error_kind_name(err.kind),
                        tpm_error_kind_name(kind), err.msg);
                unit_failures++;
        }
        CHECK(r < 0 ? log == NULL : true);
        CHECK(r >= 0 || (err.msg[0] && !strchr(err.msg, '\n')));
        eventlog_free(log);
}

static void test_header_bytes(void) {
        uint8_t h[EVENTLOG_HEADER_MAX];
        size_t len = 0;
        CHECK_EQ(eventlog_header_encode(BANKS, 2, h, &len), 0);
        CHECK_EQ(len, 32 + 37);
        static const uint8_t want_head[32] = { 0, 0, 0, 0, 3, 0, 0, 0, [28] = 37 };
        CHECK(memcmp(h, want_head, 32) == 0);
        CHECK(memcmp(h + 32, "Spec ID Event03\0", 16) == 0);
        static const uint8_t want_tail[] = { 0, 0, 0, 0, /* platformClass */ 0, 2, 0, 2, /* 2.0 errata 0 uintn 2 */
                                             2, 0, 0, 0, 0x04, 0, 20, 0, 0x0b, 0, 32, 0, 0 };
        CHECK(memcmp(h + 48, want_tail, sizeof want_tail) == 0);
        uint16_t bad[2] = { TPM_ALG_SHA1, TPM_ALG_SHA1 };
        CHECK_EQ(eventlog_header_encode(bad, 2, h, &len), -EINVAL);
        uint16_t unk = 0x0099;
        CHECK_EQ(eventlog_header_encode(&unk, 1, h, &len), -EOPNOTSUPP);
        CHECK_EQ(eventlog_header_encode(BANKS, 0, h, &len), -EINVAL);
}

static void test_round_trip(void) {
        struct buf b = good_log();
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        CHECK_EQ(eventlog_parse(b.p, b.len, EVENTLOG_PARSE_OURS, &log, &err), 0);
        if (!log) {
                fprintf(stderr, "  %s\n", err.msg);
                free(b.p);
                return;
        }
        CHECK_EQ(log->n_algs, 2);
        CHECK_EQ(log->algs[0].alg, TPM_ALG_SHA1);
        CHECK_EQ(log->algs[1].size, 32);
        CHECK_EQ(log->spec_major, 2);
        CHECK_EQ(log->uintn_size, 2);
        CHECK_EQ(log->header_size, 69);
        CHECK_EQ(log->n_events, 2);
        const struct eventlog_event *ev = &log->events[1];
        CHECK_EQ(ev->pcr, 11);
        CHECK_EQ(ev->type, EV_EVENT_TAG);
        CHECK_EQ(ev->n_digests, 2);
        struct tpm_digests d;
        CHECK_EQ(tpm_hash_data(BANKS, 2, "leave-initrd", 12, &d, &err), 0);
        const struct eventlog_digest_ref *dr = eventlog_event_digest(ev, TPM_ALG_SHA256);
        CHECK(dr && dr->size == 32 && memcmp(dr->bytes, d.d[1].bytes, 32) == 0);
        CHECK(eventlog_event_digest(ev, TPM_ALG_SHA384) == NULL);
        uint32_t tag = 0, dlen = 0;
        const uint8_t *data = NULL;
        CHECK_EQ(eventlog_tagged_decode(ev, &tag, &data, &dlen), 0);
        CHECK_EQ(tag, CAIRN_TAG_TEST);
        CHECK(dlen == 12 && memcmp(data, "leave-initrd", 12) == 0);
        CHECK_EQ(log->events[0].offset, 69);
        CHECK_EQ(ev->offset, 69 + 12 + 22 + 34 + 4 + 8 + 3);
        eventlog_free(log);
        free(b.p);
}

static void test_replay_known_answer(void) {
        struct buf b = good_log();
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        CHECK_EQ(eventlog_parse(b.p, b.len, EVENTLOG_PARSE_OURS, &log, &err), 0);
        struct replay r;
        CHECK_EQ(replay_init(&r, BANKS, 2, &err), 0);
        CHECK_EQ(replay_log(&r, log, &err), 0);
        char hex[129];
        CHECK_STREQ(hex_encode(r.pcrs.bank[0].value[11], 20, hex), "ab26eb1395d0febd12a6bfe73e08f5887e9d58bd");
        CHECK_STREQ(hex_encode(r.pcrs.bank[1].value[11], 32, hex),
                    "ef498b9fab0e41c458bee5d82a19aa8a07b4a76b9f0e2c266e6e92bf0df87e93");
        CHECK_EQ(r.pcrs.bank[1].mask, 1u << 11);
        CHECK_EQ(r.n_events, 2);
        /* reset values: 0 for most, FF for 17-22 */
        CHECK_EQ(r.pcrs.bank[1].value[0][0], 0);
        CHECK_EQ(r.pcrs.bank[1].value[17][31], 0xFF);
        CHECK_EQ(r.pcrs.bank[1].value[23][0], 0);

        /* Compare: equal, then a TPM value differing in PCR 11 sha256 only. */
        struct pcr_banks tpm = r.pcrs;
        for (size_t i = 0; i < tpm.n; i++)
                tpm.bank[i].mask = 0xFFFFFF;
        struct replay_mismatch m;
        CHECK_EQ(replay_compare(&r, &tpm, 0xFFFFFF, &m, &err), 0);
        tpm.bank[1].value[11][5] ^= 1;
        CHECK_EQ(replay_compare(&r, &tpm, 0xFFFFFF, &m, &err), -EBADMSG);
        CHECK_EQ(err.kind, TPM_ERR_MISMATCH);
        CHECK_EQ(m.pcr, 11);
        CHECK_EQ(m.alg, TPM_ALG_SHA256);
        CHECK(strstr(err.msg, "PCR 11 bank sha256") != NULL);
        /* An earlier PCR wins: PCR 8 sha1 differing is reported first. */
        tpm.bank[0].value[8][0] = 1;
        CHECK_EQ(replay_compare(&r, &tpm, 0xFFFFFF, &m, &err), -EBADMSG);
        CHECK_EQ(m.pcr, 8);
        CHECK_EQ(m.alg, TPM_ALG_SHA1);
        /* Outside the mask it does not matter. */
        CHECK_EQ(replay_compare(&r, &tpm, 1u << 0, &m, &err), 0);
        /* A TPM missing a bank the replay has is an error, not a pass. */
        tpm.n = 1;
        CHECK_EQ(replay_compare(&r, &tpm, 1u << 0, &m, &err), -EINVAL);

        /* Replaying the same log twice (firmware then ours) continues the fold. */
        CHECK_EQ(replay_log(&r, log, &err), 0);
        CHECK_EQ(r.n_events, 4);
        CHECK(strcmp(hex_encode(r.pcrs.bank[0].value[11], 20, hex), "ab26eb1395d0febd12a6bfe73e08f5887e9d58bd") != 0);
        eventlog_free(log);
        free(b.p);
}

static void test_replay_unsupported(void) {
        struct replay r;
        struct tpm_error err = { 0 };
        uint16_t unk = 0x0099;
        CHECK_EQ(replay_init(&r, &unk, 1, &err), -EOPNOTSUPP);
        CHECK_EQ(err.kind, TPM_ERR_UNSUPPORTED);
        CHECK_EQ(replay_init(&r, BANKS, 0, &err), -EINVAL);
}

/* Every truncation of a good log fails, except at record boundaries, and never past a bound. */
static void test_truncations(void) {
        struct buf b = good_log();
        size_t rec1 = 69, rec2 = 69 + 12 + 22 + 34 + 4 + 8 + 3;
        for (size_t len = 0; len < b.len; len++) {
                struct eventlog *log = NULL;
                struct tpm_error err = { 0 };
                int r = eventlog_parse(b.p, len, EVENTLOG_PARSE_OURS, &log, &err);
                if (len == rec1 || len == rec2) {
                        CHECK_EQ(r, 0);
                        CHECK_EQ(log ? log->n_events : 99, len == rec1 ? 0 : 1);
                } else {
                        CHECK(r < 0);
                        enum tpm_error_kind want = len == 0 ? TPM_ERR_NO_SPEC_HEADER : TPM_ERR_TRUNCATED;
                        /* cut inside the event data: the size field is there, the data is not */
                        if ((len >= rec1 + 12 + 22 + 34 + 4 && len < rec2) || len >= rec2 + 12 + 22 + 34 + 4)
                                want = TPM_ERR_EVENT_SIZE;
                        if (err.kind != want) {
                                fprintf(stderr, "  cut at %zu: kind %s, want %s: %s\n", len,
                                        tpm_error_kind_name(err.kind), tpm_error_kind_name(want), err.msg);
                                unit_failures++;
                        }
                }
                eventlog_free(log);
        }
        free(b.p);
}

/* The header, field by field. Offsets: record 0..31, event 32.. (sig 32, class 48, minor 52, major 53, errata 54,
 * uintn 55, count 56, algs 60.., vendor size 68). */
static void test_bad_headers(void) {
        struct buf g = good_log();
        uint8_t *p = malloc(g.len);
#define MUTATE(stmt, kind, what)                                 \
        do {                                                     \
                memcpy(p, g.p, g.len);                           \
                stmt;                                            \
                expect_kind(p, g.len, 0, kind, what);            \
        } while (0)
        MUTATE(p[0] = 1, TPM_ERR_NO_SPEC_HEADER, "header PCR 1");
        MUTATE(p[4] = 4, TPM_ERR_NO_SPEC_HEADER, "header type EV_SEPARATOR");
        MUTATE(p[10] = 1, TPM_ERR_NO_SPEC_HEADER, "header digest non-zero");
        MUTATE(memcpy(p + 32, "Spec ID Event02", 15), TPM_ERR_SIGNATURE, "TPM 1.2 signature");
        MUTATE(p[40] = 'X', TPM_ERR_SIGNATURE, "garbled signature");
        MUTATE(p[53] = 1, TPM_ERR_HEADER, "spec version 1.0");
        MUTATE(p[52] = 2, TPM_ERR_HEADER, "spec version 2.2");
        MUTATE(p[55] = 3, TPM_ERR_HEADER, "uintnSize 3");
        MUTATE(put32(p + 56, 0), TPM_ERR_HEADER, "no algorithms");
        MUTATE(put32(p + 56, 3), TPM_ERR_HEADER, "3 algorithms in a 2-algorithm event");
        MUTATE(put32(p + 56, 9), TPM_ERR_TOO_LARGE, "9 algorithms");
        MUTATE(put32(p + 56, 0xFFFFFFFF), TPM_ERR_TOO_LARGE, "2^32-1 algorithms");
        MUTATE(put32(p + 56, 0x40000001), TPM_ERR_TOO_LARGE, "algorithm count that overflows 4n");
        MUTATE(p[66] = 20, TPM_ERR_ALG_SIZE, "sha256 with 20-byte digests");
        MUTATE(p[62] = 32, TPM_ERR_ALG_SIZE, "sha1 with 32-byte digests");
        MUTATE((p[60] = 0x99, p[62] = 0), TPM_ERR_ALG_SIZE, "unknown algorithm of size 0");
        MUTATE((p[60] = 0x99, p[62] = 65), TPM_ERR_ALG_SIZE, "unknown algorithm of size 65");
        MUTATE((p[64] = 0x04, p[66] = 20), TPM_ERR_DUP_ALG, "sha1 twice");
        MUTATE(p[68] = 5, TPM_ERR_HEADER, "vendor info past the event");
        MUTATE(put32(p + 28, 28), TPM_ERR_HEADER, "event size 28");
        MUTATE(put32(p + 28, 36), TPM_ERR_HEADER, "event size one short");
        MUTATE(put32(p + 28, 0x7FFFFFFF), TPM_ERR_TOO_LARGE, "event size 2^31-1");
        MUTATE(put32(p + 28, 1000), TPM_ERR_TRUNCATED, "event size 1000 past the end");
#undef MUTATE
        /* An unknown algorithm with a plausible size parses (replay refuses it later). */
        struct buf u = { 0 };
        buf_add(&u, g.p, 69);
        u.p[60] = 0x99; /* sha1 slot → 0x0099, size 20 */
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        CHECK_EQ(eventlog_parse(u.p, u.len, 0, &log, &err), 0);
        CHECK(log && log->algs[0].alg == 0x0099 && log->algs[0].size == 20);
        eventlog_free(log);
        free(u.p);
        free(p);
        free(g.p);
}

/* Hand-built records after a good header. */
static void test_bad_records(void) {
        uint8_t sha1[20] = { 1 }, sha256[32] = { 2 };
        struct buf b;
#define START() (b = (struct buf){ 0 }, add_header(&b, BANKS, 2))
#define CASE(flags, kind, what)                             \
        do {                                                \
                expect_kind(b.p, b.len, flags, kind, what); \
                free(b.p);                                  \
        } while (0)
        START();
        buf_u32(&b, 24), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 1), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u32(&b, 0);
        CASE(0, TPM_ERR_BAD_PCR, "PCR 24");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 0), buf_u32(&b, 0);
        CASE(0, TPM_ERR_DIGEST_COUNT, "digest count 0");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 3);
        buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20), buf_u16(&b, TPM_ALG_SHA256), buf_add(&b, sha256, 32);
        buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20), buf_u32(&b, 0);
        CASE(0, TPM_ERR_DIGEST_COUNT, "3 digests, 2 algorithms");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 0xFFFFFFFF), buf_u16(&b, TPM_ALG_SHA1),
                buf_add(&b, sha1, 20);
        CASE(0, TPM_ERR_DIGEST_COUNT, "digest count 2^32-1");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 0x80000001), buf_u16(&b, TPM_ALG_SHA1),
                buf_add(&b, sha1, 20);
        CASE(0, TPM_ERR_DIGEST_COUNT, "digest count that overflows a size multiplication");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 2), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u16(&b, TPM_ALG_SHA384), buf_add(&b, sha256, 32), buf_u32(&b, 0);
        CASE(0, TPM_ERR_UNKNOWN_ALG, "sha384 digest, not in the header");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 2), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20), buf_u32(&b, 0);
        CASE(0, TPM_ERR_DUP_ALG, "sha1 digest twice");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 1), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u32(&b, 100), buf_add(&b, "short", 5);
        CASE(0, TPM_ERR_EVENT_SIZE, "event size past the end");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 1), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u32(&b, 0xFFFFFFF0);
        CASE(0, TPM_ERR_TOO_LARGE, "event size 4 GiB");
        START();
        buf_u32(&b, 11), buf_u32(&b, EV_EVENT_TAG), buf_u32(&b, 1), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u32(&b, 0);
        CASE(EVENTLOG_PARSE_OURS, TPM_ERR_DIGEST_COUNT, "our log: a record without the sha256 digest");
        START();
        add_record(&b, 0, EV_NO_ACTION, BANKS, 2, "x");
        CASE(EVENTLOG_PARSE_OURS, TPM_ERR_NO_ACTION, "our log: EV_NO_ACTION after the header");
#undef START
#undef CASE
}

/* A firmware-style log: a partial record (no sha256 digest) and an EV_NO_ACTION after the header parse; the
 * replay skips EV_NO_ACTION and marks the bank without a digest as not replayable. */
static void test_firmware_quirks(void) {
        uint8_t sha1[20] = { 1 };
        struct buf b = { 0 };
        add_header(&b, BANKS, 2);
        add_record(&b, 5, EV_NO_ACTION, BANKS, 2, "ignored");
        buf_u32(&b, 4), buf_u32(&b, EV_SEPARATOR), buf_u32(&b, 1), buf_u16(&b, TPM_ALG_SHA1), buf_add(&b, sha1, 20),
                buf_u32(&b, 0);
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        CHECK_EQ(eventlog_parse(b.p, b.len, 0, &log, &err), 0);
        CHECK_EQ(log ? log->n_events : 0, 2);
        struct replay r;
        CHECK_EQ(replay_init(&r, BANKS, 2, &err), 0);
        CHECK_EQ(replay_log(&r, log, &err), 0);
        CHECK_EQ(r.pcrs.bank[0].mask, 1u << 4); /* PCR 5's EV_NO_ACTION did not extend */
        CHECK_EQ(r.pcrs.bank[1].mask, 0);
        CHECK_EQ(r.missing[1], 1u << 4);
        CHECK_EQ(r.missing_record[1][4], 2);
        struct pcr_banks tpm = r.pcrs;
        tpm.bank[0].mask = tpm.bank[1].mask = 0xFFFFFF;
        struct replay_mismatch m;
        CHECK_EQ(replay_compare(&r, &tpm, 1u << 4, &m, &err), -EBADMSG);
        CHECK(m.missing_digest && m.alg == TPM_ALG_SHA256 && m.pcr == 4);
        CHECK(strstr(err.msg, "no sha256 digest") != NULL);
        eventlog_free(log);
        free(b.p);

        /* StartupLocality 3 sets PCR 0's initial value. */
        b = (struct buf){ 0 };
        add_header(&b, BANKS, 2);
        struct tpm_digests zero = { .n = 2, .d = { { TPM_ALG_SHA1, 20, { 0 } }, { TPM_ALG_SHA256, 32, { 0 } } } };
        uint8_t loc[17];
        memcpy(loc, "StartupLocality", 16);
        loc[16] = 3;
        uint8_t *rec = NULL;
        size_t len = 0;
        CHECK_EQ(eventlog_record_encode(0, EV_NO_ACTION, &zero, loc, sizeof loc, &rec, &len), 0);
        buf_add(&b, rec, len);
        free(rec);
        add_record(&b, 0, EV_S_CRTM_VERSION, BANKS, 2, "abc");
        log = NULL;
        CHECK_EQ(eventlog_parse(b.p, b.len, 0, &log, &err), 0);
        CHECK_EQ(replay_init(&r, BANKS, 2, &err), 0);
        CHECK_EQ(replay_log(&r, log, &err), 0);
        char hex[65];
        CHECK_STREQ(hex_encode(r.pcrs.bank[1].value[0], 32, hex),
                    "e2bf6737520fc19e9be2993af864834bfb33b00c3fa7e3da44509c90cfd6a247");
        eventlog_free(log);
        free(b.p);
}

static void test_absurd_sizes(void) {
        /* 65536 records are fine; one more is absurd. */
        struct buf b = { 0 };
        add_header(&b, BANKS, 1);
        uint8_t rec[38] = { 11, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0x04, 0 };
        for (unsigned i = 0; i < EVENTLOG_MAX_RECORDS; i++)
                buf_add(&b, rec, sizeof rec);
        struct eventlog *log = NULL;
        struct tpm_error err = { 0 };
        CHECK_EQ(eventlog_parse(b.p, b.len, 0, &log, &err), 0);
        CHECK_EQ(log ? log->n_events : 0, EVENTLOG_MAX_RECORDS);
        eventlog_free(log);
        buf_add(&b, rec, sizeof rec);
        expect_kind(b.p, b.len, 0, TPM_ERR_TOO_LARGE, "65537 records");
        free(b.p);
        uint8_t *big = calloc(1, EVENTLOG_MAX_SIZE + 1);
        expect_kind(big, EVENTLOG_MAX_SIZE + 1, 0, TPM_ERR_TOO_LARGE, "a 16 MiB + 1 log");
        free(big);
}

static void test_tagged(void) {
        struct eventlog_event ev = { .type = EV_EVENT_TAG };
        uint8_t data[12] = { 1, 0, 0x1b, 0xca, 4, 0, 0, 0, 'a', 'b', 'c', 'd' };
        ev.data = data;
        ev.data_size = 12;
        uint32_t tag, len;
        const uint8_t *p;
        CHECK_EQ(eventlog_tagged_decode(&ev, &tag, &p, &len), 0);
        CHECK_EQ(tag, CAIRN_TAG_SLOT);
        CHECK_EQ(len, 4);
        data[4] = 5;
        CHECK_EQ(eventlog_tagged_decode(&ev, &tag, &p, &len), -EBADMSG);
        data[4] = 4;
        ev.data_size = 7;
        CHECK_EQ(eventlog_tagged_decode(&ev, &tag, &p, &len), -EBADMSG);
        ev.type = EV_IPL;
        CHECK_EQ(eventlog_tagged_decode(&ev, &tag, &p, &len), -EBADMSG);
        CHECK_STREQ(cairn_tag_name(CAIRN_TAG_LEAVE_INITRD), "leave-initrd");
        CHECK(cairn_tag_name(0x1234) == NULL);
        CHECK_STREQ(eventlog_type_name(EV_EVENT_TAG), "EV_EVENT_TAG");
        CHECK_STREQ(eventlog_type_name(0x80000006), "EV_EFI_GPT_EVENT");
        CHECK(eventlog_type_name(0x7777) == NULL);
}

static void test_parse_args(void) {
        uint32_t t = 0;
        CHECK_EQ(cairn_tag_parse("slot", &t), 0);
        CHECK_EQ(t, CAIRN_TAG_SLOT);
        CHECK_EQ(cairn_tag_parse("0xCA1B0042", &t), 0);
        CHECK_EQ(t, 0xCA1B0042u);
        CHECK_EQ(cairn_tag_parse("3390767105", &t), 0); /* 0xCA1B0001 */
        CHECK_EQ(t, CAIRN_TAG_SLOT);
        CHECK_EQ(cairn_tag_parse("0x8F3B22EC", &t), -ERANGE); /* Linux's initrd tag: not ours */
        CHECK_EQ(cairn_tag_parse("0x", &t), -EINVAL);
        CHECK_EQ(cairn_tag_parse("0xCA1B00001", &t), -EINVAL);
        CHECK_EQ(cairn_tag_parse("0xCA1B00zz", &t), -EINVAL);
        CHECK_EQ(cairn_tag_parse("bogus", &t), -EINVAL);
        uint32_t m = 0;
        CHECK_EQ(pcr_mask_parse("0,7,8-11", &m), 0);
        CHECK_EQ(m, 0x0F81);
        CHECK_EQ(pcr_mask_parse("23", &m), 0);
        CHECK_EQ(m, 1u << 23);
        CHECK_EQ(pcr_mask_parse("24", &m), -ERANGE);
        CHECK_EQ(pcr_mask_parse("1,,2", &m), -EINVAL);
        CHECK_EQ(pcr_mask_parse("5-3", &m), -EINVAL);
        CHECK_EQ(pcr_mask_parse("", &m), -EINVAL);
        CHECK_EQ(pcr_mask_parse("1-", &m), -EINVAL);
        CHECK_EQ(pcr_mask_parse("a", &m), -EINVAL);
        uint16_t a;
        CHECK_EQ(tpm_alg_from_name("sha256", &a), 0);
        CHECK_EQ(a, TPM_ALG_SHA256);
        CHECK_EQ(tpm_alg_from_name("md5", &a), -EINVAL);
}

int main(void) {
        RUN(test_header_bytes);
        RUN(test_round_trip);
        RUN(test_replay_known_answer);
        RUN(test_replay_unsupported);
        RUN(test_truncations);
        RUN(test_bad_headers);
        RUN(test_bad_records);
        RUN(test_firmware_quirks);
        RUN(test_absurd_sizes);
        RUN(test_tagged);
        RUN(test_parse_args);
        return unit_main_end();
}
