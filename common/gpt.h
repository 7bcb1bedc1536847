/* common/gpt.h — GUID Partition Table: read and validate both copies, edit entries, write crash-safely (backup first).
 *
 * Units: LBAs are 512-byte sectors (GPT_SECTOR_SIZE). GUIDs are kept in their on-disk byte order
 * (first three fields little-endian); gpt_guid_parse()/gpt_guid_format() convert from/to the usual text form.
 * Partition entries are kept as the raw on-disk bytes, so fields this library does not interpret survive a
 * read/modify/write cycle untouched. Entry indexes are 0-based (entry index 0 is "partition 1").
 * All functions return >= 0 on success and -errno on failure; ret_* out-params are written only on success.
 * The library never logs and never repairs a table on its own: gpt_read() reports what it found, and the
 * caller decides whether to call gpt_write() to rewrite both copies.
 * Link with -lz (CRC32 is zlib's crc32()). No other dependency (safe for static binaries).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPT_SECTOR_SIZE 512u
#define GPT_HEADER_SIZE 92u
#define GPT_ENTRY_SIZE 128u          /* the size gpt_new() uses */
#define GPT_DEFAULT_ENTRIES 128u     /* 128 x 128 bytes = 32 sectors */
#define GPT_MAX_ENTRIES 1024u        /* gpt_read() refuses more */
#define GPT_MAX_ENTRY_SIZE 1024u     /* gpt_read() refuses larger (and anything not a multiple of 128) */
#define GPT_NAME_UNITS 36u           /* UTF-16 code units in an entry name */
#define GPT_NAME_MAX_UTF8 (GPT_NAME_UNITS * 3 + 1) /* buffer big enough for any name as UTF-8 + NUL */
#define GPT_GUID_STRLEN 36u          /* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" */
#define GPT_ALIGN_SECTORS 2048u      /* 1 MiB alignment used for partition starts */

/* Attribute bits (ChromeOS/CoreOS gptprio layout). */
#define GPT_ATTR_REQUIRED (UINT64_C(1) << 0)
#define GPT_ATTR_LEGACY_BIOS_BOOTABLE (UINT64_C(1) << 2)
#define GPT_ATTR_PRIO_SHIFT 48
#define GPT_ATTR_TRIES_SHIFT 52
#define GPT_ATTR_SUCCESSFUL_SHIFT 56

struct gpt_guid {
        uint8_t bytes[16]; /* on-disk (mixed-endian) order */
};

/* Well-known partition type GUIDs. */
extern const struct gpt_guid GPT_TYPE_ESP;       /* C12A7328-F81F-11D2-BA4B-00A0C93EC93B */
extern const struct gpt_guid GPT_TYPE_BIOS_BOOT; /* 21686148-6449-6E6F-744E-656564454649 */
extern const struct gpt_guid GPT_TYPE_USR_X86_64; /* 8484680C-9521-48C6-9C11-B0720656F69E */
extern const struct gpt_guid GPT_TYPE_LINUX_DATA; /* 0FC63DAF-8483-4772-8E79-3D69D8477DE4 */
extern const struct gpt_guid GPT_TYPE_ROOT_X86_64; /* 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 */

struct gpt_table {
        uint64_t disk_sectors;     /* size of the disk in 512-byte sectors */
        struct gpt_guid disk_guid;
        uint64_t first_usable_lba;
        uint64_t last_usable_lba;
        uint64_t backup_lba;       /* where the backup header is (normally disk_sectors - 1) */
        uint32_t num_entries;
        uint32_t entry_size;       /* multiple of 128 */
        uint8_t *entries;          /* num_entries * entry_size raw bytes */
};

/* Sectors taken by one copy of the entry array. */
uint64_t gpt_entries_sectors(const struct gpt_table *t);
/* LBA of the backup entry array: directly before the backup header. */
uint64_t gpt_backup_entries_lba(const struct gpt_table *t);

/* A fresh, empty table for a disk of disk_sectors sectors: GPT_DEFAULT_ENTRIES entries of 128 bytes, primary
 * entries at LBA 2, backup header at the last LBA with its entries right before it, usable area in between.
 * -EINVAL if the disk is too small to hold both copies plus one aligned MiB. */
int gpt_new(uint64_t disk_sectors, const struct gpt_guid *disk_guid, struct gpt_table **ret);
void gpt_free(struct gpt_table *t);
static inline void gpt_freep(struct gpt_table **t) {
        gpt_free(*t);
}
#define _cleanup_gpt_ __attribute__((cleanup(gpt_freep)))

/* ---- Reading ---- */

enum {
        GPT_COPY_PRIMARY = 1 << 0,
        GPT_COPY_BACKUP = 1 << 1,
};

/* gpt_read() flags. */
enum {
        /* Accept a table when only one copy is valid, or when both are valid but differ (the primary wins,
         * as in GRUB and the kernel). Without it, anything but two valid identical copies is -EBADMSG. */
        GPT_READ_DEGRADED = 1 << 0,
};

/* What gpt_read() found, for the caller's message. Always filled in (when non-NULL), also on failure. */
struct gpt_status {
        unsigned valid;            /* GPT_COPY_* bits */
        int primary_error;         /* 0 or -errno for the primary copy */
        int backup_error;          /* 0 or -errno for the backup copy */
        bool copies_differ;        /* both valid, but the contents disagree */
        uint64_t backup_lba_read;  /* where the backup header was looked for */
        char primary_problem[80];  /* e.g. "header CRC mismatch"; empty when fine */
        char backup_problem[80];
};

/* Read the GPT of fd (a block device or an image file). disk_sectors = 0: take the size from the device
 * (BLKGETSIZE64) or file (st_size). The primary header is read at LBA 1; the backup at the primary's
 * AlternateLBA when the primary is valid, else at the last LBA. Each copy is checked for signature, revision
 * 1.0, header size, header CRC, MyLBA, usable range and entry array inside the disk, NumEntries <= 1024,
 * EntrySize a multiple of 128 <= 1024, entries CRC, and every used entry inside the usable range.
 * Returns the GPT_COPY_* mask of valid copies (> 0) and the table (from the primary when it is valid).
 * Errors: -ENODATA neither copy has a GPT signature; -EBADMSG a copy is corrupt or the copies disagree
 * (see status; with GPT_READ_DEGRADED only when no copy is valid); -EIO/-errno read failures. */
int gpt_read(int fd, uint64_t disk_sectors, unsigned flags, struct gpt_table **ret, struct gpt_status *status);

/* One line describing status, e.g. "primary GPT header CRC mismatch; backup GPT valid". */
void gpt_status_describe(const struct gpt_status *status, char *buf, size_t size);

/* ---- Writing ---- */

/* Optional I/O hooks for gpt_write() (tests cut the sequence after N operations). NULL members fall back to
 * pwrite/fsync. A hook returns 0 or -errno; a negative return aborts gpt_write() with that error. */
struct gpt_io {
        int (*write)(void *userdata, int fd, const void *buf, size_t len, uint64_t offset);
        int (*sync)(void *userdata, int fd);
        void *userdata;
};

/* Write both copies, in this order (6 operations): 1 backup entries, 2 backup header, 3 fsync,
 * 4 primary entries, 5 primary header, 6 fsync. A cut anywhere leaves at least one valid copy.
 * Checks the table first (-EINVAL if the layout is inconsistent: usable range overlapping the arrays,
 * backup beyond the disk, entries outside the usable range). Does not touch the protective MBR. */
int gpt_write(int fd, const struct gpt_table *t, const struct gpt_io *io);

/* Rewrite both copies from t, e.g. after gpt_read(..., GPT_READ_DEGRADED) found one copy bad. The same as
 * gpt_write(); named for callers that repair only when asked to. */
int gpt_repair(int fd, const struct gpt_table *t, const struct gpt_io *io);

/* Adapt t to a disk of new_disk_sectors (a grown disk): backup header to the last LBA, backup entries before
 * it, LastUsableLBA raised accordingly. -EINVAL if the new size would cut off a partition. */
int gpt_resize_disk(struct gpt_table *t, uint64_t new_disk_sectors);

/* Build a protective MBR in mbr[512]: boot_code (440 bytes, may be NULL = zeros), disk signature 0, one
 * partition of type 0xEE from LBA 1 covering the disk (size capped at 0xFFFFFFFF), 0x55AA. */
void gpt_pmbr_build(uint8_t mbr[GPT_SECTOR_SIZE], uint64_t disk_sectors, const uint8_t *boot_code);
/* Write a protective MBR to LBA 0. boot_code NULL: keep the 440 bytes of boot code already on the disk. */
int gpt_pmbr_write(int fd, uint64_t disk_sectors, const uint8_t *boot_code);

/* Set the size of an existing 0xEE protective partition in LBA 0 to cover disk_sectors, leaving every other
 * byte alone. Returns 1 if it changed, 0 if already right, -ENODATA if LBA 0 holds no protective MBR. */
int gpt_pmbr_update_size(int fd, uint64_t disk_sectors);

/* ---- Entries ---- */

/* Raw entry idx (0-based), or NULL when idx >= num_entries. */
uint8_t *gpt_entry(const struct gpt_table *t, unsigned idx);
/* An entry is used when its type GUID is not all zero. */
bool gpt_entry_is_used(const uint8_t *e);
void gpt_entry_get_type(const uint8_t *e, struct gpt_guid *ret);
void gpt_entry_set_type(uint8_t *e, const struct gpt_guid *g);
void gpt_entry_get_uuid(const uint8_t *e, struct gpt_guid *ret);
void gpt_entry_set_uuid(uint8_t *e, const struct gpt_guid *g);
uint64_t gpt_entry_first_lba(const uint8_t *e);
uint64_t gpt_entry_last_lba(const uint8_t *e); /* inclusive */
void gpt_entry_set_first_lba(uint8_t *e, uint64_t lba);
void gpt_entry_set_last_lba(uint8_t *e, uint64_t lba);
uint64_t gpt_entry_attrs(const uint8_t *e);
void gpt_entry_set_attrs(uint8_t *e, uint64_t attrs);
/* Name as UTF-8 (stops at the first NUL unit). -ENOBUFS if size is too small, -EILSEQ on a broken surrogate. */
int gpt_entry_get_name(const uint8_t *e, char *buf, size_t size);
/* Set the name from UTF-8; -ENAMETOOLONG beyond 36 UTF-16 units, -EILSEQ on invalid UTF-8. */
int gpt_entry_set_name(uint8_t *e, const char *utf8);

/* Index of the used entry whose name equals label; -ENOENT none, -ENOTUNIQ more than one. */
int gpt_find_by_label(const struct gpt_table *t, const char *label);

/* ---- Layout check (before writing a slot or the ESP) ---- */

/* Check that t is safe to write through: every used entry has first <= last and lies inside the usable area; no
 * two used entries share a sector or a unique GUID; and, when target >= 0 (the entry index about to be written),
 * target is a used entry, is not booted (the entry index of the running slot, -1 when unknown) and holds at least
 * min_target_bytes. gpt_read() checks each copy's own consistency; this is what a writer checks on top, because a
 * table with valid CRCs can still put one partition inside another (a slot over the running slot or the ESP).
 * Returns 0, or -errno with one line in why (naming the partitions, by number and label, and their sectors):
 * -EBADMSG the table itself is unsafe (outside the usable area, overlap, duplicate GUID); -EBUSY target is the
 * booted entry; -EFBIG target smaller than min_target_bytes; -ENOENT target unused; -EINVAL bad arguments. */
int gpt_check_layout(const struct gpt_table *t, int target, int booted, uint64_t min_target_bytes, char *why,
                     size_t whysize);

/* Attribute helpers (bits 48-51 priority, 52-55 tries, 56 successful). Setters take the value's low bits. */
static inline unsigned gpt_attr_get_prio(uint64_t a) {
        return (unsigned)(a >> GPT_ATTR_PRIO_SHIFT) & 0xf;
}
static inline unsigned gpt_attr_get_tries(uint64_t a) {
        return (unsigned)(a >> GPT_ATTR_TRIES_SHIFT) & 0xf;
}
static inline bool gpt_attr_get_successful(uint64_t a) {
        return (a >> GPT_ATTR_SUCCESSFUL_SHIFT) & 1;
}
static inline uint64_t gpt_attr_set_prio(uint64_t a, unsigned v) {
        return (a & ~(UINT64_C(0xf) << GPT_ATTR_PRIO_SHIFT)) | ((uint64_t)(v & 0xf) << GPT_ATTR_PRIO_SHIFT);
}
static inline uint64_t gpt_attr_set_tries(uint64_t a, unsigned v) {
        return (a & ~(UINT64_C(0xf) << GPT_ATTR_TRIES_SHIFT)) | ((uint64_t)(v & 0xf) << GPT_ATTR_TRIES_SHIFT);
}
static inline uint64_t gpt_attr_set_successful(uint64_t a, bool v) {
        return (a & ~(UINT64_C(1) << GPT_ATTR_SUCCESSFUL_SHIFT)) | ((uint64_t)(v ? 1 : 0) << GPT_ATTR_SUCCESSFUL_SHIFT);
}

/* ---- GUIDs ---- */

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (any case); -EINVAL otherwise. */
int gpt_guid_parse(const char *s, struct gpt_guid *ret);
/* Format as upper-case text into buf (at least GPT_GUID_STRLEN + 1 bytes); returns buf. */
char *gpt_guid_format(const struct gpt_guid *g, char *buf);
/* Convert 16 bytes in RFC 4122 (big-endian text) order to on-disk order, and back. */
void gpt_guid_from_rfc(const uint8_t rfc[16], struct gpt_guid *ret);
void gpt_guid_to_rfc(const struct gpt_guid *g, uint8_t rfc[16]);
bool gpt_guid_is_null(const struct gpt_guid *g);
bool gpt_guid_equal(const struct gpt_guid *a, const struct gpt_guid *b);

/* CRC32 as GPT uses it (zlib crc32 over the bytes). */
uint32_t gpt_crc32(const void *buf, size_t len);

/* Round an LBA down/up to GPT_ALIGN_SECTORS. */
static inline uint64_t gpt_align_down(uint64_t lba) {
        return lba / GPT_ALIGN_SECTORS * GPT_ALIGN_SECTORS;
}
static inline uint64_t gpt_align_up(uint64_t lba) {
        return (lba + GPT_ALIGN_SECTORS - 1) / GPT_ALIGN_SECTORS * GPT_ALIGN_SECTORS;
}
