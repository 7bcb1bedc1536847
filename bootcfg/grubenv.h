/* bootcfg/grubenv.h — GRUB environment blocks: strict validation, reading and in-place editing of the slot state. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bootcfg.h"

#define GRUBENV_SIZE 1024u
#define GRUBENV_SECTOR 512u
#define GRUBENV_SIGNATURE "# GRUB Environment Block\n"
#define GRUBENV_PATH "EFI/BOOT/grubenv"
#define GRUBENV_BAK_PATH "EFI/BOOT/grubenv.bak"

/* Check a block: exactly GRUBENV_SIZE bytes, the signature line, then only KEY=VALUE lines ([A-Za-z0-9_]+ keys,
 * values without NUL, backslash escapes allowed), then '#' padding to the end; each of the six slot variables at
 * most once and, when present, a decimal in range (priority/tries 0-15, successful 0/1). On -EBADMSG, why gets a
 * short reason. ret_content_end (may be NULL): offset where the padding starts. */
/* The value of key in a GRUB environment block (its first occurrence) into buf: -ENOENT if absent, -E2BIG if it
 * does not fit, -EBADMSG without the block signature. bootcfg/envblock.c. */
int grubenv_get(const void *block, size_t len, const char *key, char *buf, size_t size);

int grubenv_validate(const uint8_t *blk, size_t len, size_t *ret_content_end, char *why, size_t why_size);

/* The slot state of a valid block (missing variables read as 0). */
int grubenv_state_get(const uint8_t *blk, size_t len, struct bootcfg_state *ret, char *why, size_t why_size);

/* A new block: blk with the six slot variables set from s (in place where they are, appended otherwise), every
 * other line kept byte for byte. -EFBIG if the variables would not end within the first 512-byte sector (so a
 * torn write of the block is always either the old or the new state). */
int grubenv_state_set(const uint8_t *blk, size_t len, const struct bootcfg_state *s, uint8_t ret[GRUBENV_SIZE]);
