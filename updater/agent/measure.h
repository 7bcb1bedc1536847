/* updater/agent/measure.h — measured boot in the agent (issue 11 part 4): the PCR 8, 9, 11 prediction the agent
 * records before it reboots into a staged slot, and the comparison with the TPM after that boot.
 *
 * The record is STATE_DIR/tpm-prediction, KEY=VALUE (common/kvfile), written atomically:
 *
 *   SLOT=B                      the slot the prediction is for
 *   VERSION=0.2.1               its version (VERSION_ID of the slot, from cairn-tpm predict)
 *   PREDICTED_BOOT_ID=<id>      the boot in which it was made (1-63 of [A-Za-z0-9-]) (the comparison runs in a later boot)
 *   PREDICTED_AT=<unix seconds>
 *   TPM=present|absent|unreadable   what the agent saw when it read the bank list (absent: sha1+sha256 predicted)
 *   NOTE=<text>                 optional: why the bank list is the fallback
 *   PCR_<bank>_<8|9|11>=<hex>   the prediction, every bank (sha1, sha256, sha384, sha512), all three PCRs
 *   CHECK_BOOT_ID=<id>          after the comparison: the boot it compared
 *   CHECK_RESULT=match|mismatch|other-slot|no-tpm|error
 *   CHECK_DETAIL=<text>
 *   TPM_<bank>_<8|9|11>=<hex>   what the TPM held (when it could be read)
 *
 * This part (measure-record.c) needs only libc: cairnctl links it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

#define MEASURE_BANKS_MAX 4       /* sha1, sha256, sha384, sha512 */
#define MEASURE_HEX_MAX 128       /* sha512 */
#define MEASURE_TEXT_MAX 320
#define MEASURE_FILE "tpm-prediction"
#define MEASURE_FILE_MAX (16u * 1024u)

extern const unsigned measure_pcrs[3]; /* 8, 9, 11 */

typedef struct MeasureBank {
        char name[8];                               /* "sha256" */
        unsigned have;                              /* bit i: measure_pcrs[i] given */
        char hex[3][MEASURE_HEX_MAX + 1];
} MeasureBank;

typedef enum MeasureResult {
        MEASURE_UNCHECKED = 0,
        MEASURE_MATCH,
        MEASURE_MISMATCH,
        MEASURE_OTHER_SLOT,  /* the host came back on the other slot (rollback): the prediction was not for it */
        MEASURE_NO_TPM,
        MEASURE_ERROR,
        _MEASURE_RESULT_MAX,
} MeasureResult;

typedef struct MeasureRecord {
        int slot;                                   /* 0 = A, 1 = B */
        char version[65];
        char boot_id[64];
        int64_t predicted_at;
        char tpm[16];                               /* present, absent, unreadable */
        char note[MEASURE_TEXT_MAX];
        size_t n_banks;
        MeasureBank banks[MEASURE_BANKS_MAX];
        char check_boot_id[64];
        MeasureResult result;
        char detail[MEASURE_TEXT_MAX];
        size_t n_actual;
        MeasureBank actual[MEASURE_BANKS_MAX];
} MeasureRecord;

/* The digest size of a bank name (sha1 20, sha256 32, sha384 48, sha512 64), 0 for any other name. */
size_t measure_bank_size(const char *name);
const char *measure_result_name(MeasureResult r);
/* The bank of that name in list[0..n), or NULL. */
MeasureBank *measure_bank_find(MeasureBank *list, size_t n, const char *name);
/* Set one value (lowercase hex of the bank's size) into list, adding the bank when new. -EINVAL: unknown bank,
 * PCR other than 8/9/11, wrong hex; -E2BIG: too many banks; -EEXIST: given twice. *ret_why says which. */
int measure_bank_set(MeasureBank *list, size_t *n, const char *bank, unsigned pcr, const char *hex,
                     const char **ret_why);

/* Parse the record strictly: every key known and given once, slot A/B, a dotted version, at least one bank with
 * all three PCRs, the CHECK_ fields together. -EBADMSG with *ret_why (static text) and *ret_line. */
int measure_record_parse(const char *text, size_t len, MeasureRecord *ret, const char **ret_why, unsigned *ret_line)
        _warn_unused_result_;
/* The record as KEY=VALUE text into out (-EINVAL if it would not parse back). */
int measure_record_format(const MeasureRecord *m, Buf *out);
/* DIR/tpm-prediction: 0 and *ret filled; -ENOENT none; -EBADMSG unreadable (why in err). */
int measure_record_load(const char *dir, MeasureRecord *ret, char *err, size_t errsize);
int measure_record_save(const char *dir, const MeasureRecord *m);
int measure_record_remove(const char *dir);

/* `cairnctl status`: append the measured-boot block to *text (human lines, or a "measured_boot" member added
 * to the JSON object text holds). No record: human text gets nothing, JSON gets "measured_boot":null. */
int measure_status_merge(char **text, const char *state_dir, bool json);
