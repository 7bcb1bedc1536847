/* bootcfg/bootcfg.h — A/B boot selection: slot state machine, loader emulation, and the verbs on a disk. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Slot state and the pure state machine (no I/O) ---- */

enum {
        BOOTCFG_SLOT_A = 0,
        BOOTCFG_SLOT_B = 1,
        BOOTCFG_SLOTS = 2,
};
#define BOOTCFG_MAX_PRIORITY 15u
#define BOOTCFG_MAX_TRIES 15u

struct bootcfg_slot_state {
        unsigned priority;   /* 0-15; 0 = never boot */
        unsigned tries;      /* 0-15; boot attempts left while not successful */
        bool successful;
};
struct bootcfg_state {
        struct bootcfg_slot_state slot[BOOTCFG_SLOTS];
};

/* 'A' / 'B' for a slot index; parse "A"/"B"/"a"/"b" (-EINVAL otherwise). */
char bootcfg_slot_name(int slot);
int bootcfg_slot_parse(const char *s);

/* What the loader does: boot the highest-priority slot with priority > 0 that has successful=1 or tries > 0
 * (A wins ties), decrementing tries first when it is not successful. Returns the slot, or -ENOENT when no slot
 * is bootable. ret_after (may be NULL) receives the state after the loader's decrement, only on success. */
int bootcfg_pick(const struct bootcfg_state *s, struct bootcfg_state *ret_after);

/* A slot the loader may fall back to for good: priority > 0 and successful. */
bool bootcfg_slot_is_good(const struct bootcfg_state *s, int slot);

/* State transitions. Each edits *s in place and returns 0, or -errno leaving *s untouched. */
/* slot gets priority above the other (the other is lowered only when slot would pass 15), tries=1, successful=0. */
int bootcfg_state_set_next(struct bootcfg_state *s, int slot);
/* successful=1, tries=0. */
int bootcfg_state_mark_good(struct bootcfg_state *s, int slot);
/* priority=0, tries=0, successful=0. -EBUSY when slot is the only good slot, unless force. */
int bootcfg_state_mark_bad(struct bootcfg_state *s, int slot, bool force);
/* Make the slot other than booted boot next: it must be good (-ESRCH otherwise); its priority is raised above
 * the booted slot's. Its tries/successful are left alone. */
int bootcfg_state_rollback(struct bootcfg_state *s, int booted);

/* ---- Whole-disk operations ---- */

enum bootcfg_backend_id {
        BOOTCFG_BACKEND_GRUBENV = 0, /* /EFI/BOOT/grubenv + grubenv.bak on the ESP (default) */
        BOOTCFG_BACKEND_GPT = 1,     /* GPT attribute bits of USR-A/USR-B */
};
int bootcfg_backend_parse(const char *s, enum bootcfg_backend_id *ret);
const char *bootcfg_backend_name(enum bootcfg_backend_id id);

struct bootcfg_options {
        const char *disk;          /* disk image or block device; NULL: find it via libblkid (PARTLABEL=USR-A) */
        enum bootcfg_backend_id backend;
        const char *state_dir;     /* verification records; NULL: BOOTCFG_DEFAULT_STATE_DIR */
        const char *cmdline;       /* file with the kernel command line; NULL: $CAIRN_CMDLINE (a path), else
                                      /proc/cmdline on a live host, and nothing with disk set */
        int booted;                /* -1: from the command line (cairn.slot=A|B); else the booted slot */
        bool writable;             /* open the disk read-write (every verb but status/verify needs it); implies
                                      lock and the layout check */
        bool lock;                 /* take the disk's exclusive lock also when read-only (verify/unverify write
                                      records about its slots) */
};
#define BOOTCFG_DEFAULT_STATE_DIR "/var/lib/cairn/bootcfg"

/* I/O hooks for the write sequence (tests cut it short); NULL members fall back to pwrite/fsync. A negative
 * return aborts the verb with that error. */
struct bootcfg_io {
        int (*write)(void *userdata, int fd, const void *buf, size_t len, uint64_t offset);
        int (*sync)(void *userdata, int fd);
        void *userdata;
};

struct bootcfg;

/* Open the disk, find EFI-SYSTEM/USR-A/USR-B by PARTLABEL, and the booted slot. Nothing is read from the
 * backend yet. On error, errbuf (size bytes, may be NULL) gets one line naming what failed.
 * With writable or lock, the disk gets an exclusive flock(2) held until bootcfg_free(), not waited for: -EAGAIN
 * "disk ... is busy (held by another cairn process)" when another process (or another open of the disk) holds it.
 * With writable, the partition table must also pass gpt_check_layout() (-EBADMSG "... overlaps ..."), so nothing
 * is written through a table that puts one partition inside another. */
int bootcfg_open(const struct bootcfg_options *o, struct bootcfg **ret, char *errbuf, size_t size);
void bootcfg_free(struct bootcfg *b);
static inline void bootcfg_freep(struct bootcfg **b) {
        bootcfg_free(*b);
}
#define _cleanup_bootcfg_ __attribute__((cleanup(bootcfg_freep)))

/* The last error's detail (e.g. `environment block "/EFI/BOOT/grubenv" on "disk.img": line 3 is not KEY=VALUE`),
 * "" when none. Valid until the next call on b. */
const char *bootcfg_error(const struct bootcfg *b);
void bootcfg_set_io(struct bootcfg *b, const struct bootcfg_io *io);

const char *bootcfg_disk_path(const struct bootcfg *b);
/* The open disk. Opened with writable, its open file description holds the disk lock: whoever writes slots
 * through the same handle dup()s this descriptor (a second open() of the disk would conflict with the lock). */
int bootcfg_disk_fd(const struct bootcfg *b);
enum bootcfg_backend_id bootcfg_backend(const struct bootcfg *b);
/* Booted slot (0/1), or -ENODATA when unknown (no cairn.slot= on the command line, image not booted). */
int bootcfg_booted(const struct bootcfg *b);
/* GPT entry index (0-based) of the partition /usr runs from: the one whose unique GUID cairn.usr=PARTUUID=<uuid>
 * on the command line names (what the initramfs mounted, whatever its label), else the booted slot's; -ENODATA
 * when neither is known. A writer must never pick it as its target. */
int bootcfg_running_partition(const struct bootcfg *b);
/* The PARTUUID of a slot, upper-case text. */
const char *bootcfg_slot_partuuid(const struct bootcfg *b, int slot);
/* Where a slot's partition lies on the disk, in bytes; -EINVAL for a slot that is not A or B. */
int bootcfg_slot_extent(const struct bootcfg *b, int slot, uint64_t *ret_offset, uint64_t *ret_size);

/* Read the state strictly: a corrupt primary env block / a GPT copy with a bad CRC is -EBADMSG. */
int bootcfg_read(struct bootcfg *b, struct bootcfg_state *ret);
/* Read the state the way the loader does: grubenv primary if valid, else grubenv.bak; any valid GPT copy
 * (primary first). -EBADMSG when nothing valid is left. */
int bootcfg_read_as_loader(struct bootcfg *b, struct bootcfg_state *ret);

/* Verb flags. */
enum {
        BOOTCFG_FORCE = 1 << 0,    /* skip the guard rails */
        BOOTCFG_VERIFIED = 1 << 1, /* set-next: the caller has verified the slot's content itself */
};

/* Each verb reads the state strictly, applies the transition, and writes it crash-safely. Guard-rail refusals:
 * -EBUSY (mark-bad of the only good slot), -ENOMEDIUM (set-next of a slot with no ext4 superblock),
 * -ENOKEY (set-next of a slot without a verification record and without BOOTCFG_VERIFIED), -ESRCH (rollback
 * with no good other slot), -ENODATA (booted slot needed but unknown). ret_state (may be NULL) gets the new state. */
int bootcfg_set_next(struct bootcfg *b, int slot, unsigned flags, struct bootcfg_state *ret_state);
int bootcfg_mark_good(struct bootcfg *b, int slot /* -1: booted */, struct bootcfg_state *ret_state);
int bootcfg_mark_bad(struct bootcfg *b, int slot, unsigned flags, struct bootcfg_state *ret_state);
int bootcfg_rollback(struct bootcfg *b, struct bootcfg_state *ret_state);
/* Explicit repair: grubenv: copy the valid one of grubenv/grubenv.bak over the other (in place); gpt: rewrite
 * both copies from the valid one. Returns 1 if something was rewritten, 0 if both were fine. */
int bootcfg_repair(struct bootcfg *b);

/* ---- Slot verification records (state_dir/<PARTUUID>.verified: "sha256=<hex>\nsize=<bytes>\n") ---- */

/* Hash the slot's first size bytes (0: the whole partition) with SHA-256 and compare with sha256_hex (64 hex
 * digits). On a match write the record and return 0; -EBADMSG on a mismatch (any old record is removed). */
int bootcfg_verify(struct bootcfg *b, int slot, const char *sha256_hex, uint64_t size);
/* Remove the slot's record. The agent calls this before it starts writing a slot. 0 also if there was none. */
int bootcfg_unverify(struct bootcfg *b, int slot);
/* 1 verified, 0 not. */
int bootcfg_is_verified(struct bootcfg *b, int slot);
/* 1 if the slot starts with an ext4 superblock (magic 0xEF53 at byte 1080), 0 if not. */
int bootcfg_slot_has_fs(struct bootcfg *b, int slot);
