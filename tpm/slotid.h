/* tpm/slotid.h — what the initramfs measures into PCR 11, in one place for the measurer (cairn-tpm-initrd) and
 * the predictor (cairn-tpm predict): the slot identity text, the version, and the leave-initrd marker.
 *
 * The three PCR 11 events, in order, each EV_EVENT_TAG {tag, size, text} with digest H(text) in every bank:
 *   CAIRN_TAG_SLOT          "usrhash=<lower-case hex>"   when cairn.usrhash= is on the kernel command line
 *                           "partuuid=<uuid> fsuuid=<uuid>" otherwise (the GPT PARTUUID the initramfs mounted and
 *                                                        the ext4 UUID in its superblock; both lower case)
 *   CAIRN_TAG_VERSION       VERSION_ID of the mounted /usr/lib/os-release
 *   CAIRN_TAG_LEAVE_INITRD  "leave-initrd" */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CAIRN_PCR_OS 11
#define SLOTID_TEXT_MAX 256
#define SLOTID_VERSION_MAX 64
#define SLOTID_LEAVE_INITRD "leave-initrd"
#define EXT4_UUID_OFFSET (1024 + 0x68) /* s_uuid in the primary superblock */
#define EXT4_MAGIC_OFFSET (1024 + 0x38)

/* The slot identity text. usrhash (may be NULL or ""): hex of a verity root hash, 32-128 digits; else partuuid
 * (36-character GUID) and fsuuid (16 bytes as in the superblock). -EINVAL on a malformed hash or GUID. */
int slotid_text(const char *usrhash, const char *partuuid, const uint8_t fsuuid[16], char *buf, size_t size);

/* VERSION_ID of an os-release text (quotes removed, as os-release(5)); -ENOENT if absent, -EINVAL if empty, too
 * long (SLOTID_VERSION_MAX) or not printable ASCII. */
int slotid_version(const char *osrelease, size_t len, char *buf, size_t size);

/* Read the ext4 UUID from a superblock at byte 0 of fd (a partition); -EMEDIUMTYPE if the magic is not ext4's. */
int slotid_ext4_uuid(int fd, uint64_t offset, uint8_t ret[16]);

/* Parse a TPM2_GetCapability(TPM_CAP_PCRS) response (whole, header included, big-endian) into the active banks
 * (those with any PCR selected), at most TPM_MAX_BANKS (8). -EBADMSG on anything malformed, -E2BIG on too many.
 * (Lives here so the fuzzer covers the static helper's one parser of TPM output.) */
int slotid_parse_pcr_capability(const uint8_t *resp, size_t len, uint16_t *algs, size_t *ret_n);
