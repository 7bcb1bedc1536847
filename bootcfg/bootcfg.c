/* bootcfg/bootcfg.c — the bootcfg handle: disk and slot discovery, booted slot, verbs over a backend, verify records. */
#include "bootcfg.h"

#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootcfg-internal.h"
#include "fileio.h"
#include "hash.h"
#include "hex.h"

#define CMDLINE_MAX (64u * 1024u)
#define RECORD_MAX 256u

int bootcfg_fail(struct bootcfg *b, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->error, sizeof b->error, fmt, ap);
        va_end(ap);
        return err;
}

const char *bootcfg_error(const struct bootcfg *b) {
        return b->error;
}

int bootcfg_backend_parse(const char *s, enum bootcfg_backend_id *ret) {
        if (strcmp(s, "grubenv") == 0)
                *ret = BOOTCFG_BACKEND_GRUBENV;
        else if (strcmp(s, "gpt") == 0)
                *ret = BOOTCFG_BACKEND_GPT;
        else
                return -EINVAL;
        return 0;
}

const char *bootcfg_backend_name(enum bootcfg_backend_id id) {
        return id == BOOTCFG_BACKEND_GPT ? bootcfg_backend_gpt.name : bootcfg_backend_grubenv.name;
}

void bootcfg_set_io(struct bootcfg *b, const struct bootcfg_io *io) {
        b->io = io ? *io : (struct bootcfg_io){ 0 };
}

int bootcfg_io_write(struct bootcfg *b, const void *buf, size_t len, uint64_t offset) {
        if (b->io.write)
                return b->io.write(b->io.userdata, b->fd, buf, len, offset);
        return pwrite_full(b->fd, buf, len, offset);
}

int bootcfg_io_sync(struct bootcfg *b) {
        if (b->io.sync)
                return b->io.sync(b->io.userdata, b->fd);
        return fsync(b->fd) < 0 ? negative_errno() : 0;
}

const char *bootcfg_disk_path(const struct bootcfg *b) {
        return b->disk;
}
int bootcfg_disk_fd(const struct bootcfg *b) {
        return b->fd;
}
enum bootcfg_backend_id bootcfg_backend(const struct bootcfg *b) {
        return b->backend_id;
}
int bootcfg_booted(const struct bootcfg *b) {
        return b->booted;
}
int bootcfg_running_partition(const struct bootcfg *b) {
        return b->running;
}
const char *bootcfg_slot_partuuid(const struct bootcfg *b, int slot) {
        return slot == BOOTCFG_SLOT_A || slot == BOOTCFG_SLOT_B ? b->usr[slot].uuid_str : "";
}
int bootcfg_slot_extent(const struct bootcfg *b, int slot, uint64_t *ret_offset, uint64_t *ret_size) {
        if (slot != BOOTCFG_SLOT_A && slot != BOOTCFG_SLOT_B)
                return -EINVAL;
        *ret_offset = b->usr[slot].offset;
        *ret_size = b->usr[slot].size;
        return 0;
}

void bootcfg_free(struct bootcfg *b) {
        if (!b)
                return;
        if (b->fd >= 0)
                close(b->fd);
        free(b->disk);
        free(b->state_dir);
        free(b);
}

/* The whole disk holding PARTLABEL=USR-A, through libblkid. */
static int find_live_disk(char **ret, char *err, size_t size) {
        _cleanup_free_ char *part = blkid_evaluate_tag("PARTLABEL", "USR-A", NULL);
        if (!part) {
                snprintf(err, size, "no partition labelled \"USR-A\" found (not a Cairn host? use --disk)");
                return -ENOENT;
        }
        struct stat st;
        if (stat(part, &st) < 0 || !S_ISBLK(st.st_mode)) {
                snprintf(err, size, "\"%s\" (PARTLABEL=USR-A) is not a block device", part);
                return -ENOTBLK;
        }
        char name[128];
        dev_t whole;
        if (blkid_devno_to_wholedisk(st.st_rdev, name, sizeof name, &whole) < 0) {
                snprintf(err, size, "cannot find the disk that holds \"%s\"", part);
                return -ENODEV;
        }
        char *path;
        if (asprintf(&path, "/dev/%s", name) < 0)
                return -ENOMEM;
        *ret = path;
        return 0;
}

/* cairn.slot=A|B from a command line file (-ENODATA when absent), and the running /usr partition's unique GUID from
 * cairn.usr=PARTUUID=<uuid> (what the initramfs mounted; *ret_have_usr false when absent). */
static int booted_from_cmdline(const char *path, int *ret_slot, struct gpt_guid *ret_usr, bool *ret_have_usr,
                               char *err, size_t size) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, CMDLINE_MAX, &buf, &len);
        if (r < 0) {
                snprintf(err, size, "cannot read the kernel command line \"%s\": %s", path, strerror(-r));
                return r;
        }
        int slot = -ENODATA;
        bool have_usr = false;
        struct gpt_guid usr;
        for (char *save = NULL, *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
                if (strncmp(w, "cairn.slot=", 11) == 0) {
                        slot = bootcfg_slot_parse(w + 11);
                        if (slot < 0) {
                                snprintf(err, size, "\"%.64s\" in \"%s\" names no slot (A or B)", w, path);
                                return -EINVAL;
                        }
                } else if (strncmp(w, "cairn.usr=PARTUUID=", 19) == 0)
                        /* Anything else (a device path, an empty probe result) leaves it unknown: the booted
                         * slot's partition stands in, as without the parameter. */
                        have_usr = gpt_guid_parse(w + 19, &usr) >= 0;
        *ret_slot = slot;
        if (have_usr)
                *ret_usr = usr;
        *ret_have_usr = have_usr;
        return 0;
}

static int find_part(const struct gpt_table *t, const char *label, struct bootcfg_part *ret, const char *disk,
                     char *err, size_t size) {
        int idx = gpt_find_by_label(t, label);
        if (idx < 0) {
                snprintf(err, size, "%s partition labelled \"%s\" on \"%s\"",
                         idx == -ENOTUNIQ ? "more than one" : "no", label, disk);
                return idx;
        }
        const uint8_t *e = gpt_entry(t, (unsigned)idx);
        struct bootcfg_part p = { .index = idx };
        p.offset = gpt_entry_first_lba(e) * GPT_SECTOR_SIZE;
        p.size = (gpt_entry_last_lba(e) - gpt_entry_first_lba(e) + 1) * GPT_SECTOR_SIZE;
        gpt_entry_get_uuid(e, &p.uuid);
        gpt_guid_format(&p.uuid, p.uuid_str);
        *ret = p;
        return 0;
}

int bootcfg_open(const struct bootcfg_options *o, struct bootcfg **ret, char *errbuf, size_t size) {
        char scratch[8];
        if (!errbuf) {
                errbuf = scratch;
                size = sizeof scratch;
        }
        _cleanup_bootcfg_ struct bootcfg *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->fd = -1;
        b->backend_id = o->backend;
        b->backend = o->backend == BOOTCFG_BACKEND_GPT ? &bootcfg_backend_gpt : &bootcfg_backend_grubenv;
        b->state_dir = strdup(o->state_dir ? o->state_dir : BOOTCFG_DEFAULT_STATE_DIR);
        if (!b->state_dir)
                return -ENOMEM;
        int r;
        if (o->disk) {
                b->disk = strdup(o->disk);
                if (!b->disk)
                        return -ENOMEM;
        } else {
                r = find_live_disk(&b->disk, errbuf, size);
                if (r < 0)
                        return r;
        }
        b->fd = open(b->disk, (o->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (b->fd < 0) {
                r = negative_errno();
                snprintf(errbuf, size, "cannot open \"%s\": %s", b->disk, strerror(-r));
                return r;
        }
        if (o->writable || o->lock) {
                /* One writer at a time: the agent (daemon or --once) and cairn-bootcfg take this lock for the whole
                 * of their write. Not waited for: a slot write holds it for minutes. */
                r = lock_exclusive_nb(b->fd);
                if (r < 0) {
                        if (r == -EAGAIN)
                                snprintf(errbuf, size, "disk \"%s\" is busy (held by another cairn process); try "
                                         "again when it is done", b->disk);
                        else
                                snprintf(errbuf, size, "cannot lock \"%s\": %s", b->disk, strerror(-r));
                        return r;
                }
        }
        /* The layout may come from either GPT copy; the gpt backend itself insists on both. */
        _cleanup_gpt_ struct gpt_table *t = NULL;
        struct gpt_status st;
        r = gpt_read(b->fd, 0, GPT_READ_DEGRADED, &t, &st);
        if (r < 0) {
                char desc[200];
                gpt_status_describe(&st, desc, sizeof desc);
                snprintf(errbuf, size, "no usable GPT on \"%s\" (%s)", b->disk, desc);
                return r;
        }
        r = find_part(t, BOOTCFG_ESP_LABEL, &b->esp, b->disk, errbuf, size);
        if (r >= 0)
                r = find_part(t, "USR-A", &b->usr[BOOTCFG_SLOT_A], b->disk, errbuf, size);
        if (r >= 0)
                r = find_part(t, "USR-B", &b->usr[BOOTCFG_SLOT_B], b->disk, errbuf, size);
        if (r < 0)
                return r;

        b->booted = -ENODATA;
        b->running = -ENODATA;
        if (o->booted == BOOTCFG_SLOT_A || o->booted == BOOTCFG_SLOT_B)
                b->booted = o->booted;
        else {
                const char *cmdline = o->cmdline;
                if (!cmdline)
                        cmdline = getenv("CAIRN_CMDLINE");
                if (!cmdline && !o->disk)
                        cmdline = "/proc/cmdline";
                if (cmdline) {
                        struct gpt_guid usr;
                        bool have_usr = false;
                        r = booted_from_cmdline(cmdline, &b->booted, &usr, &have_usr, errbuf, size);
                        if (r < 0)
                                return r;
                        /* The partition the kernel runs /usr from, whatever its label says. */
                        for (unsigned i = 0; have_usr && i < t->num_entries; i++) {
                                struct gpt_guid u;
                                gpt_entry_get_uuid(gpt_entry(t, i), &u);
                                if (gpt_entry_is_used(gpt_entry(t, i)) && gpt_guid_equal(&u, &usr))
                                        b->running = (int)i;
                        }
                }
        }
        if (b->running < 0 && b->booted >= 0)
                b->running = b->usr[b->booted].index;
        if (o->writable) {
                /* Nothing is written through a table that puts one partition inside another (the ESP or a slot over
                 * the running slot); the grubenv backend writes the ESP. */
                char why[320];
                int target = b->backend_id == BOOTCFG_BACKEND_GRUBENV ? b->esp.index : -1;
                r = gpt_check_layout(t, target, b->running >= 0 ? b->running : -1, 0, why, sizeof why);
                if (r < 0) {
                        snprintf(errbuf, size, "refusing to write \"%s\": %s", b->disk, why);
                        return r;
                }
        }
        *ret = TAKE_PTR(b);
        return 0;
}

int bootcfg_read(struct bootcfg *b, struct bootcfg_state *ret) {
        b->error[0] = 0;
        return b->backend->read(b, ret);
}

int bootcfg_read_as_loader(struct bootcfg *b, struct bootcfg_state *ret) {
        b->error[0] = 0;
        return b->backend->read_as_loader(b, ret);
}

static int check_slot(struct bootcfg *b, int slot) {
        if (slot != BOOTCFG_SLOT_A && slot != BOOTCFG_SLOT_B)
                return bootcfg_fail(b, -EINVAL, "no such slot (A or B)");
        return 0;
}

/* Read strictly, apply a transition, write. */
typedef int (*transition_fn)(struct bootcfg_state *s, int slot, bool force);
static int tr_set_next(struct bootcfg_state *s, int slot, bool force) {
        return bootcfg_state_set_next(s, slot);
}
static int tr_mark_good(struct bootcfg_state *s, int slot, bool force) {
        return bootcfg_state_mark_good(s, slot);
}
static int tr_mark_bad(struct bootcfg_state *s, int slot, bool force) {
        return bootcfg_state_mark_bad(s, slot, force);
}
static int tr_rollback(struct bootcfg_state *s, int slot, bool force) {
        return bootcfg_state_rollback(s, slot);
}

static int apply(struct bootcfg *b, transition_fn fn, int slot, bool force, struct bootcfg_state *ret_state) {
        struct bootcfg_state s;
        int r = bootcfg_read(b, &s);
        if (r < 0)
                return r;
        r = fn(&s, slot, force);
        if (r == -EBUSY)
                return bootcfg_fail(b, r, "slot %c is the only good slot; marking it bad would leave nothing to boot "
                                    "(use --force to do it anyway)", bootcfg_slot_name(slot));
        if (r == -ESRCH)
                return bootcfg_fail(b, r, "slot %c is not a good slot (needs priority > 0 and successful=1); "
                                    "nothing to roll back to", bootcfg_slot_name(1 - slot));
        if (r < 0)
                return bootcfg_fail(b, r, "invalid state transition");
        r = b->backend->write(b, &s);
        if (r < 0)
                return r;
        if (ret_state)
                *ret_state = s;
        return 0;
}

int bootcfg_set_next(struct bootcfg *b, int slot, unsigned flags, struct bootcfg_state *ret_state) {
        b->error[0] = 0;
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        if (!(flags & BOOTCFG_FORCE)) {
                r = bootcfg_slot_has_fs(b, slot);
                if (r < 0)
                        return r;
                if (r == 0)
                        return bootcfg_fail(b, -ENOMEDIUM,
                                            "slot %c (partition %d of \"%s\") holds no ext4 file system; refusing "
                                            "to boot it (use --force to do it anyway)",
                                            bootcfg_slot_name(slot), b->usr[slot].index + 1, b->disk);
                if (!(flags & BOOTCFG_VERIFIED)) {
                        r = bootcfg_is_verified(b, slot);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return bootcfg_fail(b, -ENOKEY,
                                                    "slot %c is not verified (no record in \"%s\"); run "
                                                    "'cairn-bootcfg verify %c SHA256' first, or use --force",
                                                    bootcfg_slot_name(slot), b->state_dir, bootcfg_slot_name(slot));
                }
        }
        return apply(b, tr_set_next, slot, flags & BOOTCFG_FORCE, ret_state);
}

int bootcfg_mark_good(struct bootcfg *b, int slot, struct bootcfg_state *ret_state) {
        b->error[0] = 0;
        if (slot < 0) {
                if (b->booted < 0)
                        return bootcfg_fail(b, -ENODATA, "the booted slot is unknown (no cairn.slot= on the kernel "
                                            "command line); name the slot");
                slot = b->booted;
        }
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        return apply(b, tr_mark_good, slot, false, ret_state);
}

int bootcfg_mark_bad(struct bootcfg *b, int slot, unsigned flags, struct bootcfg_state *ret_state) {
        b->error[0] = 0;
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        return apply(b, tr_mark_bad, slot, flags & BOOTCFG_FORCE, ret_state);
}

int bootcfg_rollback(struct bootcfg *b, struct bootcfg_state *ret_state) {
        b->error[0] = 0;
        if (b->booted < 0)
                return bootcfg_fail(b, -ENODATA, "the booted slot is unknown (no cairn.slot= on the kernel command "
                                    "line); use --booted A|B");
        return apply(b, tr_rollback, b->booted, false, ret_state);
}

int bootcfg_repair(struct bootcfg *b) {
        b->error[0] = 0;
        return b->backend->repair(b);
}

/* ---- Slot content checks and verification records ---- */

int bootcfg_slot_has_fs(struct bootcfg *b, int slot) {
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        uint8_t magic[2];
        if (b->usr[slot].size < 1082)
                return 0;
        r = pread_full(b->fd, magic, 2, b->usr[slot].offset + 1080);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot read slot %c on \"%s\"", bootcfg_slot_name(slot), b->disk);
        return magic[0] == 0x53 && magic[1] == 0xef;
}

static int record_path(struct bootcfg *b, int slot, char **ret) {
        char uuid[GPT_GUID_STRLEN + 1];
        for (size_t i = 0; i <= GPT_GUID_STRLEN; i++)
                uuid[i] = (char)tolower((unsigned char)b->usr[slot].uuid_str[i]);
        return asprintf(ret, "%s/%s.verified", b->state_dir, uuid) < 0 ? -ENOMEM : 0;
}

static int parse_hex_sha256(const char *s, uint8_t out[32]) {
        if (strlen(s) != 64)
                return -EINVAL;
        for (int i = 0; i < 32; i++) {
                int v = 0;
                for (int k = 0; k < 2; k++) {
                        char c = (char)tolower((unsigned char)s[i * 2 + k]);
                        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                        if (d < 0)
                                return -EINVAL;
                        v = v * 16 + d;
                }
                out[i] = (uint8_t)v;
        }
        return 0;
}

int bootcfg_is_verified(struct bootcfg *b, int slot) {
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = NULL, *buf = NULL;
        r = record_path(b, slot, &path);
        if (r < 0)
                return r;
        size_t len;
        r = read_file_bounded(path, RECORD_MAX, &buf, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return bootcfg_fail(b, r, "cannot read the verification record \"%s\"", path);
        /* A record we cannot parse, or one that claims more than the partition, counts as absent. */
        char hex[65];
        unsigned long long size;
        uint8_t digest[32];
        if (sscanf(buf, "sha256=%64s size=%llu", hex, &size) != 2 || parse_hex_sha256(hex, digest) < 0 ||
            size == 0 || size > b->usr[slot].size)
                return 0;
        return 1;
}

int bootcfg_unverify(struct bootcfg *b, int slot) {
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = NULL;
        r = record_path(b, slot, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return bootcfg_fail(b, negative_errno(), "cannot remove the verification record \"%s\"", path);
        r = fsync_parent_dir(path);
        if (r < 0 && r != -ENOENT)
                return bootcfg_fail(b, r, "cannot sync the directory of \"%s\"", path);
        return 0;
}

int bootcfg_verify(struct bootcfg *b, int slot, const char *sha256_hex, uint64_t size) {
        b->error[0] = 0;
        int r = check_slot(b, slot);
        if (r < 0)
                return r;
        uint8_t want[32];
        if (parse_hex_sha256(sha256_hex, want) < 0)
                return bootcfg_fail(b, -EINVAL, "\"%s\" is not a SHA-256 (64 hex digits)", sha256_hex);
        if (size == 0)
                size = b->usr[slot].size;
        if (size > b->usr[slot].size)
                return bootcfg_fail(b, -EFBIG, "size %llu is larger than slot %c (%llu bytes)",
                                    (unsigned long long)size, bootcfg_slot_name(slot),
                                    (unsigned long long)b->usr[slot].size);
        /* Whatever the outcome, an old record no longer stands. */
        r = bootcfg_unverify(b, slot);
        if (r < 0)
                return r;

        uint8_t got[HASH_SHA256_SIZE];
        r = sha256_fd_range(b->fd, b->usr[slot].offset, size, NULL, got);
        if (r == -ENOMEM)
                return bootcfg_fail(b, r, "cannot set up SHA-256");
        if (r < 0)
                return bootcfg_fail(b, r, "cannot read slot %c on \"%s\"", bootcfg_slot_name(slot), b->disk);
        char got_hex[2 * HASH_SHA256_SIZE + 1];
        hex_encode(got, sizeof got, got_hex);
        if (memcmp(got, want, 32) != 0)
                return bootcfg_fail(b, -EBADMSG, "slot %c does not match: its first %llu bytes hash to %s",
                                    bootcfg_slot_name(slot), (unsigned long long)size, got_hex);

        r = mkdir_parents(b->state_dir, true);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot create the state directory \"%s\"", b->state_dir);
        _cleanup_free_ char *path = NULL;
        r = record_path(b, slot, &path);
        if (r < 0)
                return r;
        char rec[128];
        int n = snprintf(rec, sizeof rec, "sha256=%s\nsize=%llu\n", got_hex, (unsigned long long)size);
        r = write_file_atomic(path, rec, (size_t)n, 0644);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot write the verification record \"%s\"", path);
        return 0;
}
