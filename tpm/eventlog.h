/* tpm/eventlog.h — the TCG PC Client crypto-agile event log: parse (bounded), write, event names.
 *
 * Layout (little-endian): a legacy TCG_PCClientPCREvent header {u32 pcr=0, u32 type=EV_NO_ACTION, u8 digest[20]=0,
 * u32 size, TCG_EfiSpecIDEvent "Spec ID Event03"} listing the algorithms and their digest sizes, then
 * TCG_PCR_EVENT2 records {u32 pcr, u32 type, u32 count, count x {u16 alg, digest}, u32 size, u8 event[size]}. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alg.h"
#include "error.h"

#define EV_PREBOOT_CERT 0x0u
#define EV_POST_CODE 0x1u
#define EV_NO_ACTION 0x3u
#define EV_SEPARATOR 0x4u
#define EV_ACTION 0x5u
#define EV_EVENT_TAG 0x6u
#define EV_S_CRTM_CONTENTS 0x7u
#define EV_S_CRTM_VERSION 0x8u
#define EV_CPU_MICROCODE 0x9u
#define EV_PLATFORM_CONFIG_FLAGS 0xAu
#define EV_TABLE_OF_DEVICES 0xBu
#define EV_COMPACT_HASH 0xCu
#define EV_IPL 0xDu
#define EV_IPL_PARTITION_DATA 0xEu
#define EV_EFI_EVENT_BASE 0x80000000u

/* Bounds on untrusted logs: anything larger is rejected as absurd (TPM_ERR_TOO_LARGE). */
#define EVENTLOG_MAX_SIZE (16u << 20)
#define EVENTLOG_MAX_EVENT_SIZE (1u << 20)
#define EVENTLOG_MAX_RECORDS 65536u
#define EVENTLOG_HEADER_MAX (32 + 29 + 4 * TPM_MAX_BANKS)

/* Our own EV_EVENT_TAG tag ids (the tagged event: {u32 id, u32 size, u8 data[size]}). */
#define CAIRN_TAG_SLOT 0xCA1B0001u         /* the /usr slot identity the initramfs activated */
#define CAIRN_TAG_VERSION 0xCA1B0002u      /* the version of that slot */
#define CAIRN_TAG_LEAVE_INITRD 0xCA1B0003u /* the initramfs hands over to /usr */
#define CAIRN_TAG_TEST 0xCA1B00FFu         /* tests and manual measurements */

struct eventlog_digest_ref {
        uint16_t alg;
        uint16_t size;
        const uint8_t *bytes; /* points into the log's buffer */
};

struct eventlog_event {
        uint32_t pcr;
        uint32_t type;
        uint32_t n_digests;
        struct eventlog_digest_ref digests[TPM_MAX_BANKS];
        uint32_t data_size;
        const uint8_t *data; /* points into the log's buffer */
        size_t offset;       /* of the record in the log */
};

struct eventlog_alg {
        uint16_t alg;
        uint16_t size;
};

struct eventlog {
        uint8_t *buf; /* owned copy of the bytes parsed */
        size_t len;
        uint8_t spec_minor, spec_major, spec_errata, uintn_size;
        uint32_t platform_class;
        size_t n_algs;
        struct eventlog_alg algs[TPM_MAX_BANKS];
        size_t header_size; /* bytes of the spec header record */
        size_t n_events;    /* records after the header */
        struct eventlog_event *events;
};

enum {
        /* Our own log: no EV_NO_ACTION after the header (tpm2_eventlog 5.4 would extend it into its replay),
         * and every record carries a digest for every algorithm of the header. */
        EVENTLOG_PARSE_OURS = 1 << 0,
};

/* Parse untrusted bytes (copied). On failure err says which record, at which offset, and why. */
int eventlog_parse(const void *untrusted, size_t len, unsigned flags, struct eventlog **ret,
                   struct tpm_error *err) _warn_unused_result_;
void eventlog_free(struct eventlog *log);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct eventlog *, eventlog_free);
#define _cleanup_eventlog_ _cleanup_(eventlog_freep)

/* The digest of alg in ev, or NULL. */
const struct eventlog_digest_ref *eventlog_event_digest(const struct eventlog_event *ev, uint16_t alg);

/* Encode the spec header for these algorithms (known ones only) into buf (EVENTLOG_HEADER_MAX bytes). */
int eventlog_header_encode(const uint16_t *algs, size_t n, uint8_t *buf, size_t *ret_len) _warn_unused_result_;
/* Encode a TCG_PCR_EVENT2 record (malloc'd). */
int eventlog_record_encode(uint32_t pcr, uint32_t type, const struct tpm_digests *d, const void *event,
                           size_t event_len, uint8_t **ret, size_t *ret_len) _warn_unused_result_;
/* Encode an EV_EVENT_TAG payload {u32 id, u32 size, data} (malloc'd). */
int eventlog_tagged_encode(uint32_t tag, const void *data, size_t len, uint8_t **ret, size_t *ret_len)
        _warn_unused_result_;
/* Split an EV_EVENT_TAG payload; -EBADMSG if its size field disagrees with the event size. */
int eventlog_tagged_decode(const struct eventlog_event *ev, uint32_t *ret_tag, const uint8_t **ret_data,
                           uint32_t *ret_len);

/* "EV_IPL", "EV_EFI_GPT_EVENT", … or NULL if unknown. */
const char *eventlog_type_name(uint32_t type);
/* "slot", "version", "leave-initrd", "test", or NULL. */
const char *cairn_tag_name(uint32_t tag);
/* Parse a tag: one of the names above, or a number (decimal or 0x hex) of our own range 0xCA1B0000-0xCA1BFFFF. */
int cairn_tag_parse(const char *s, uint32_t *ret_tag);
