/* common/gpt.c — GPT read/validate, entry accessors, crash-safe write (backup first) and protective MBR. */
#include "gpt.h"
#include "hex.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"
#include "macro.h"

#define GPT_SIGNATURE "EFI PART"
#define GPT_REVISION 0x00010000u

/* Header field offsets. */
#define H_SIGNATURE 0
#define H_REVISION 8
#define H_HEADER_SIZE 12
#define H_HEADER_CRC 16
#define H_RESERVED 20
#define H_MY_LBA 24
#define H_ALT_LBA 32
#define H_FIRST_USABLE 40
#define H_LAST_USABLE 48
#define H_DISK_GUID 56
#define H_ENTRIES_LBA 72
#define H_NUM_ENTRIES 80
#define H_ENTRY_SIZE 84
#define H_ENTRIES_CRC 88

/* Entry field offsets. */
#define E_TYPE 0
#define E_UUID 16
#define E_FIRST 32
#define E_LAST 40
#define E_ATTRS 48
#define E_NAME 56

const struct gpt_guid GPT_TYPE_ESP = { { 0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0,
                                         0xc9, 0x3e, 0xc9, 0x3b } };
const struct gpt_guid GPT_TYPE_BIOS_BOOT = { { 0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e, 0x74, 0x4e, 0x65,
                                               0x65, 0x64, 0x45, 0x46, 0x49 } };
const struct gpt_guid GPT_TYPE_USR_X86_64 = { { 0x0c, 0x68, 0x84, 0x84, 0x21, 0x95, 0xc6, 0x48, 0x9c, 0x11, 0xb0,
                                                0x72, 0x06, 0x56, 0xf6, 0x9e } };
const struct gpt_guid GPT_TYPE_LINUX_DATA = { { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d,
                                                0x69, 0xd8, 0x47, 0x7d, 0xe4 } };
const struct gpt_guid GPT_TYPE_ROOT_X86_64 = { { 0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb,
                                                 0xca, 0xf9, 0x84, 0xb7, 0x09 } };

static uint16_t get16(const uint8_t *p) {
        return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) {
        return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t gpt_crc32(const void *buf, size_t len) {
        uLong c = crc32(0L, Z_NULL, 0);
        const uint8_t *p = buf;
        while (len > 0) { /* zlib takes uInt lengths */
                uInt n = (uInt)MIN(len, (size_t)1 << 30);
                c = crc32(c, p, n);
                p += n;
                len -= n;
        }
        return (uint32_t)c;
}

/* ---- GUIDs ---- */

void gpt_guid_from_rfc(const uint8_t rfc[16], struct gpt_guid *ret) {
        struct gpt_guid g;
        g.bytes[0] = rfc[3];
        g.bytes[1] = rfc[2];
        g.bytes[2] = rfc[1];
        g.bytes[3] = rfc[0];
        g.bytes[4] = rfc[5];
        g.bytes[5] = rfc[4];
        g.bytes[6] = rfc[7];
        g.bytes[7] = rfc[6];
        memcpy(g.bytes + 8, rfc + 8, 8);
        *ret = g;
}

void gpt_guid_to_rfc(const struct gpt_guid *g, uint8_t rfc[16]) {
        struct gpt_guid tmp; /* the swap is its own inverse */
        gpt_guid_from_rfc(g->bytes, &tmp);
        memcpy(rfc, tmp.bytes, 16);
}

int gpt_guid_parse(const char *s, struct gpt_guid *ret) {
        uint8_t rfc[16];
        size_t n = 0;
        if (!s || strlen(s) != GPT_GUID_STRLEN)
                return -EINVAL;
        for (size_t i = 0; i < GPT_GUID_STRLEN;) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                        continue;
                }
                int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                rfc[n++] = (uint8_t)(hi << 4 | lo);
                i += 2;
        }
        gpt_guid_from_rfc(rfc, ret);
        return 0;
}

char *gpt_guid_format(const struct gpt_guid *g, char *buf) {
        uint8_t r[16];
        gpt_guid_to_rfc(g, r);
        snprintf(buf, GPT_GUID_STRLEN + 1,
                 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", r[0], r[1], r[2], r[3],
                 r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
        return buf;
}

bool gpt_guid_is_null(const struct gpt_guid *g) {
        static const struct gpt_guid null;
        return memcmp(g->bytes, null.bytes, 16) == 0;
}

bool gpt_guid_equal(const struct gpt_guid *a, const struct gpt_guid *b) {
        return memcmp(a->bytes, b->bytes, 16) == 0;
}

/* ---- Table ---- */

uint64_t gpt_entries_sectors(const struct gpt_table *t) {
        uint64_t bytes = (uint64_t)t->num_entries * t->entry_size;
        return (bytes + GPT_SECTOR_SIZE - 1) / GPT_SECTOR_SIZE;
}

uint64_t gpt_backup_entries_lba(const struct gpt_table *t) {
        return t->backup_lba - gpt_entries_sectors(t);
}

void gpt_free(struct gpt_table *t) {
        if (!t)
                return;
        free(t->entries);
        free(t);
}

int gpt_new(uint64_t disk_sectors, const struct gpt_guid *disk_guid, struct gpt_table **ret) {
        uint64_t es = (uint64_t)GPT_DEFAULT_ENTRIES * GPT_ENTRY_SIZE / GPT_SECTOR_SIZE;
        /* pMBR + header + entries, one aligned MiB, entries + header */
        if (disk_sectors < 2 * (2 + es) + GPT_ALIGN_SECTORS || disk_sectors > UINT64_MAX / GPT_SECTOR_SIZE)
                return -EINVAL;
        _cleanup_gpt_ struct gpt_table *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->entries = calloc(GPT_DEFAULT_ENTRIES, GPT_ENTRY_SIZE);
        if (!t->entries)
                return -ENOMEM;
        t->disk_sectors = disk_sectors;
        if (disk_guid)
                t->disk_guid = *disk_guid;
        t->num_entries = GPT_DEFAULT_ENTRIES;
        t->entry_size = GPT_ENTRY_SIZE;
        t->backup_lba = disk_sectors - 1;
        t->first_usable_lba = 2 + es;
        t->last_usable_lba = t->backup_lba - es - 1;
        *ret = TAKE_PTR(t);
        return 0;
}

/* Check the layout of t (what gpt_write() would produce) and every used entry; why gets a reason. */
static int table_check(const struct gpt_table *t, char *why, size_t whysize) {
        if (t->num_entries == 0 || t->num_entries > GPT_MAX_ENTRIES) {
                snprintf(why, whysize, "%u partition entries (at most %u allowed)", t->num_entries, GPT_MAX_ENTRIES);
                return -EBADMSG;
        }
        if (t->entry_size < GPT_ENTRY_SIZE || t->entry_size % GPT_ENTRY_SIZE || t->entry_size > GPT_MAX_ENTRY_SIZE) {
                snprintf(why, whysize, "partition entry size %u not supported", t->entry_size);
                return -EBADMSG;
        }
        uint64_t es = gpt_entries_sectors(t);
        if (t->backup_lba >= t->disk_sectors || t->backup_lba < 2 + 2 * es + 1) {
                snprintf(why, whysize, "backup header LBA %llu outside the disk", (unsigned long long)t->backup_lba);
                return -EBADMSG;
        }
        if (t->first_usable_lba < 2 + es || t->last_usable_lba < t->first_usable_lba ||
            t->last_usable_lba >= gpt_backup_entries_lba(t)) {
                snprintf(why, whysize, "usable range %llu-%llu overlaps the partition tables",
                         (unsigned long long)t->first_usable_lba, (unsigned long long)t->last_usable_lba);
                return -EBADMSG;
        }
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *e = gpt_entry(t, i);
                if (!gpt_entry_is_used(e))
                        continue;
                uint64_t f = gpt_entry_first_lba(e), l = gpt_entry_last_lba(e);
                if (f > l || f < t->first_usable_lba || l > t->last_usable_lba) {
                        snprintf(why, whysize, "partition %u (%llu-%llu) outside the usable range", i + 1,
                                 (unsigned long long)f, (unsigned long long)l);
                        return -EBADMSG;
                }
        }
        return 0;
}

/* Serialize a header for the copy at my_lba into h[GPT_SECTOR_SIZE]. */
static void header_build(const struct gpt_table *t, bool primary, uint32_t entries_crc, uint8_t *h) {
        memset(h, 0, GPT_SECTOR_SIZE);
        memcpy(h + H_SIGNATURE, GPT_SIGNATURE, 8);
        put32(h + H_REVISION, GPT_REVISION);
        put32(h + H_HEADER_SIZE, GPT_HEADER_SIZE);
        put64(h + H_MY_LBA, primary ? 1 : t->backup_lba);
        put64(h + H_ALT_LBA, primary ? t->backup_lba : 1);
        put64(h + H_FIRST_USABLE, t->first_usable_lba);
        put64(h + H_LAST_USABLE, t->last_usable_lba);
        memcpy(h + H_DISK_GUID, t->disk_guid.bytes, 16);
        put64(h + H_ENTRIES_LBA, primary ? 2 : gpt_backup_entries_lba(t));
        put32(h + H_NUM_ENTRIES, t->num_entries);
        put32(h + H_ENTRY_SIZE, t->entry_size);
        put32(h + H_ENTRIES_CRC, entries_crc);
        put32(h + H_HEADER_CRC, gpt_crc32(h, GPT_HEADER_SIZE));
}

static int get_disk_sectors(int fd, uint64_t *ret) {
        struct stat st;
        uint64_t bytes;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
                        return negative_errno();
        } else if (S_ISREG(st.st_mode))
                bytes = (uint64_t)st.st_size;
        else
                return -ENOTBLK;
        *ret = bytes / GPT_SECTOR_SIZE;
        return 0;
}

/* Read and validate the copy whose header sits at lba; on success *ret is a new table. */
static int read_copy(int fd, uint64_t disk_sectors, uint64_t lba, struct gpt_table **ret, char *why, size_t whysize) {
        uint8_t h[GPT_SECTOR_SIZE];
        int r;

        if (lba < 1 || lba >= disk_sectors) {
                snprintf(why, whysize, "header LBA %llu beyond the disk", (unsigned long long)lba);
                return -EBADMSG;
        }
        r = pread_full(fd, h, sizeof h, lba * GPT_SECTOR_SIZE);
        if (r < 0) {
                snprintf(why, whysize, "header unreadable");
                return r;
        }
        if (memcmp(h + H_SIGNATURE, GPT_SIGNATURE, 8) != 0) {
                snprintf(why, whysize, "no GPT signature");
                return -ENODATA;
        }
        if (get32(h + H_REVISION) != GPT_REVISION) {
                snprintf(why, whysize, "header revision 0x%08x not supported", get32(h + H_REVISION));
                return -EBADMSG;
        }
        uint32_t hsize = get32(h + H_HEADER_SIZE);
        if (hsize < GPT_HEADER_SIZE || hsize > GPT_SECTOR_SIZE) {
                snprintf(why, whysize, "header size %u invalid", hsize);
                return -EBADMSG;
        }
        uint32_t want = get32(h + H_HEADER_CRC);
        put32(h + H_HEADER_CRC, 0);
        if (gpt_crc32(h, hsize) != want) {
                snprintf(why, whysize, "header CRC mismatch");
                return -EBADMSG;
        }
        if (get64(h + H_MY_LBA) != lba) {
                snprintf(why, whysize, "header MyLBA %llu, expected %llu", (unsigned long long)get64(h + H_MY_LBA),
                         (unsigned long long)lba);
                return -EBADMSG;
        }

        _cleanup_gpt_ struct gpt_table *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->disk_sectors = disk_sectors;
        memcpy(t->disk_guid.bytes, h + H_DISK_GUID, 16);
        t->first_usable_lba = get64(h + H_FIRST_USABLE);
        t->last_usable_lba = get64(h + H_LAST_USABLE);
        t->num_entries = get32(h + H_NUM_ENTRIES);
        t->entry_size = get32(h + H_ENTRY_SIZE);
        uint64_t alt = get64(h + H_ALT_LBA);
        t->backup_lba = lba == 1 ? alt : lba;

        if (t->num_entries == 0 || t->num_entries > GPT_MAX_ENTRIES) {
                snprintf(why, whysize, "%u partition entries (at most %u allowed)", t->num_entries, GPT_MAX_ENTRIES);
                return -EBADMSG;
        }
        if (t->entry_size < GPT_ENTRY_SIZE || t->entry_size % GPT_ENTRY_SIZE || t->entry_size > GPT_MAX_ENTRY_SIZE) {
                snprintf(why, whysize, "partition entry size %u not supported", t->entry_size);
                return -EBADMSG;
        }
        uint64_t es = gpt_entries_sectors(t);
        uint64_t elba = get64(h + H_ENTRIES_LBA);
        if (elba < 2 || elba >= disk_sectors || es > disk_sectors - elba) {
                snprintf(why, whysize, "partition entry array at LBA %llu beyond the disk", (unsigned long long)elba);
                return -EBADMSG;
        }
        if (alt >= disk_sectors || alt == lba) {
                snprintf(why, whysize, "AlternateLBA %llu invalid", (unsigned long long)alt);
                return -EBADMSG;
        }
        size_t bytes = (size_t)t->num_entries * t->entry_size;
        t->entries = malloc(bytes);
        if (!t->entries)
                return -ENOMEM;
        r = pread_full(fd, t->entries, bytes, elba * GPT_SECTOR_SIZE);
        if (r < 0) {
                snprintf(why, whysize, "partition entry array unreadable");
                return r;
        }
        if (gpt_crc32(t->entries, bytes) != get32(h + H_ENTRIES_CRC)) {
                snprintf(why, whysize, "partition entry array CRC mismatch");
                return -EBADMSG;
        }
        /* The header's own description of where things are must be consistent: usable range clear of both
         * arrays and headers. The layout gpt_write() would produce is checked by table_check(). */
        if (t->first_usable_lba > t->last_usable_lba || t->last_usable_lba >= disk_sectors ||
            (elba <= t->last_usable_lba && elba + es > t->first_usable_lba) ||
            (lba >= t->first_usable_lba && lba <= t->last_usable_lba) ||
            (alt >= t->first_usable_lba && alt <= t->last_usable_lba)) {
                snprintf(why, whysize, "usable range %llu-%llu overlaps the GPT structures",
                         (unsigned long long)t->first_usable_lba, (unsigned long long)t->last_usable_lba);
                return -EBADMSG;
        }
        r = table_check(t, why, whysize);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

static bool tables_equal(const struct gpt_table *a, const struct gpt_table *b) {
        return a->disk_sectors == b->disk_sectors && gpt_guid_equal(&a->disk_guid, &b->disk_guid) &&
               a->first_usable_lba == b->first_usable_lba && a->last_usable_lba == b->last_usable_lba &&
               a->backup_lba == b->backup_lba && a->num_entries == b->num_entries &&
               a->entry_size == b->entry_size &&
               memcmp(a->entries, b->entries, (size_t)a->num_entries * a->entry_size) == 0;
}

int gpt_read(int fd, uint64_t disk_sectors, unsigned flags, struct gpt_table **ret, struct gpt_status *status) {
        struct gpt_status st = { 0 };
        _cleanup_gpt_ struct gpt_table *p = NULL, *b = NULL;
        int r;

        if (disk_sectors == 0) {
                r = get_disk_sectors(fd, &disk_sectors);
                if (r < 0)
                        goto out;
        }
        if (disk_sectors < 3) {
                r = -ENODATA;
                snprintf(st.primary_problem, sizeof st.primary_problem, "disk too small for a GPT");
                goto out;
        }

        st.primary_error = read_copy(fd, disk_sectors, 1, &p, st.primary_problem, sizeof st.primary_problem);
        st.backup_lba_read = p ? p->backup_lba : disk_sectors - 1;
        st.backup_error = read_copy(fd, disk_sectors, st.backup_lba_read, &b, st.backup_problem,
                                    sizeof st.backup_problem);
        if (b && b->backup_lba == 1) { /* a "backup" header that claims LBA 1 is not a backup */
                snprintf(st.backup_problem, sizeof st.backup_problem, "backup header claims to be the primary");
                st.backup_error = -EBADMSG;
                gpt_free(TAKE_PTR(b));
        }
        if (p)
                st.valid |= GPT_COPY_PRIMARY;
        if (b)
                st.valid |= GPT_COPY_BACKUP;
        if (p && b)
                st.copies_differ = !tables_equal(p, b);

        if (!p && !b) {
                r = st.primary_error == -ENODATA && st.backup_error == -ENODATA ? -ENODATA : -EBADMSG;
                if (st.primary_error < 0 && st.primary_error != -ENODATA && st.primary_error != -EBADMSG)
                        r = st.primary_error; /* an I/O error is reported as such */
                goto out;
        }
        if (!(flags & GPT_READ_DEGRADED) && (!p || !b || st.copies_differ)) {
                r = -EBADMSG;
                goto out;
        }
        r = (int)st.valid;
        *ret = p ? TAKE_PTR(p) : TAKE_PTR(b);
out:
        if (status)
                *status = st;
        return r;
}

void gpt_status_describe(const struct gpt_status *s, char *buf, size_t size) {
        char p[128], b[128];
        if (s->valid & GPT_COPY_PRIMARY)
                snprintf(p, sizeof p, "primary GPT valid");
        else
                snprintf(p, sizeof p, "primary GPT %s", s->primary_problem[0] ? s->primary_problem : "invalid");
        if (s->valid & GPT_COPY_BACKUP)
                snprintf(b, sizeof b, "backup GPT valid");
        else
                snprintf(b, sizeof b, "backup GPT (LBA %llu) %s", (unsigned long long)s->backup_lba_read,
                         s->backup_problem[0] ? s->backup_problem : "invalid");
        snprintf(buf, size, "%s; %s%s", p, b, s->copies_differ ? "; primary and backup GPT differ" : "");
}

/* ---- Writing ---- */

static int io_write(const struct gpt_io *io, int fd, const void *buf, size_t len, uint64_t off) {
        if (io && io->write)
                return io->write(io->userdata, fd, buf, len, off);
        return pwrite_full(fd, buf, len, off);
}

static int io_sync(const struct gpt_io *io, int fd) {
        if (io && io->sync)
                return io->sync(io->userdata, fd);
        return fsync(fd) < 0 ? negative_errno() : 0;
}

int gpt_write(int fd, const struct gpt_table *t, const struct gpt_io *io) {
        char why[128];
        uint8_t ph[GPT_SECTOR_SIZE], bh[GPT_SECTOR_SIZE];
        int r;

        r = table_check(t, why, sizeof why);
        if (r < 0)
                return -EINVAL;
        size_t bytes = (size_t)t->num_entries * t->entry_size;
        uint64_t es = gpt_entries_sectors(t);
        /* The arrays are written in whole sectors; pad the tail with zeros. */
        _cleanup_free_ uint8_t *arr = calloc(es, GPT_SECTOR_SIZE);
        if (!arr)
                return -ENOMEM;
        memcpy(arr, t->entries, bytes);
        uint32_t crc = gpt_crc32(t->entries, bytes);
        header_build(t, true, crc, ph);
        header_build(t, false, crc, bh);

        r = io_write(io, fd, arr, es * GPT_SECTOR_SIZE, gpt_backup_entries_lba(t) * GPT_SECTOR_SIZE);
        if (r < 0)
                return r;
        r = io_write(io, fd, bh, sizeof bh, t->backup_lba * GPT_SECTOR_SIZE);
        if (r < 0)
                return r;
        r = io_sync(io, fd);
        if (r < 0)
                return r;
        r = io_write(io, fd, arr, es * GPT_SECTOR_SIZE, 2 * GPT_SECTOR_SIZE);
        if (r < 0)
                return r;
        r = io_write(io, fd, ph, sizeof ph, 1 * GPT_SECTOR_SIZE);
        if (r < 0)
                return r;
        return io_sync(io, fd);
}

int gpt_repair(int fd, const struct gpt_table *t, const struct gpt_io *io) {
        return gpt_write(fd, t, io);
}

int gpt_resize_disk(struct gpt_table *t, uint64_t new_disk_sectors) {
        struct gpt_table n = *t;
        char why[128];
        n.disk_sectors = new_disk_sectors;
        if (new_disk_sectors < 3)
                return -EINVAL;
        n.backup_lba = new_disk_sectors - 1;
        if (n.backup_lba < gpt_entries_sectors(&n) + 1)
                return -EINVAL;
        n.last_usable_lba = gpt_backup_entries_lba(&n) - 1;
        if (table_check(&n, why, sizeof why) < 0)
                return -EINVAL;
        *t = n;
        return 0;
}

void gpt_pmbr_build(uint8_t mbr[GPT_SECTOR_SIZE], uint64_t disk_sectors, const uint8_t *boot_code) {
        memset(mbr, 0, GPT_SECTOR_SIZE);
        if (boot_code)
                memcpy(mbr, boot_code, 440);
        uint8_t *pe = mbr + 0x1be;
        pe[0] = 0x00;                               /* not bootable */
        pe[1] = 0x00, pe[2] = 0x02, pe[3] = 0x00;   /* CHS of LBA 1 */
        pe[4] = 0xee;                               /* GPT protective */
        pe[5] = 0xff, pe[6] = 0xff, pe[7] = 0xff;   /* CHS: beyond addressable */
        put32(pe + 8, 1);
        uint64_t n = disk_sectors - 1;
        put32(pe + 12, n > 0xffffffffu ? 0xffffffffu : (uint32_t)n);
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
}

int gpt_pmbr_write(int fd, uint64_t disk_sectors, const uint8_t *boot_code) {
        uint8_t old[GPT_SECTOR_SIZE], mbr[GPT_SECTOR_SIZE];
        if (disk_sectors < 2)
                return -EINVAL;
        if (!boot_code) {
                int r = pread_full(fd, old, sizeof old, 0);
                if (r < 0)
                        return r;
                boot_code = old;
        }
        gpt_pmbr_build(mbr, disk_sectors, boot_code);
        return pwrite_full(fd, mbr, sizeof mbr, 0);
}

int gpt_pmbr_update_size(int fd, uint64_t disk_sectors) {
        uint8_t mbr[GPT_SECTOR_SIZE];
        if (disk_sectors < 2)
                return -EINVAL;
        int r = pread_full(fd, mbr, sizeof mbr, 0);
        if (r < 0)
                return r;
        if (mbr[510] != 0x55 || mbr[511] != 0xaa)
                return -ENODATA;
        uint64_t n = disk_sectors - 1;
        uint32_t want = n > 0xffffffffu ? 0xffffffffu : (uint32_t)n;
        for (int i = 0; i < 4; i++) {
                uint8_t *pe = mbr + 0x1be + 16 * i;
                if (pe[4] != 0xee)
                        continue;
                if (get32(pe + 12) == want)
                        return 0;
                put32(pe + 12, want);
                r = pwrite_full(fd, mbr, sizeof mbr, 0);
                if (r < 0)
                        return r;
                return 1;
        }
        return -ENODATA;
}

/* ---- Entries ---- */

uint8_t *gpt_entry(const struct gpt_table *t, unsigned idx) {
        if (idx >= t->num_entries)
                return NULL;
        return t->entries + (size_t)idx * t->entry_size;
}

bool gpt_entry_is_used(const uint8_t *e) {
        for (int i = 0; i < 16; i++)
                if (e[E_TYPE + i])
                        return true;
        return false;
}

void gpt_entry_get_type(const uint8_t *e, struct gpt_guid *ret) {
        memcpy(ret->bytes, e + E_TYPE, 16);
}
void gpt_entry_set_type(uint8_t *e, const struct gpt_guid *g) {
        memcpy(e + E_TYPE, g->bytes, 16);
}
void gpt_entry_get_uuid(const uint8_t *e, struct gpt_guid *ret) {
        memcpy(ret->bytes, e + E_UUID, 16);
}
void gpt_entry_set_uuid(uint8_t *e, const struct gpt_guid *g) {
        memcpy(e + E_UUID, g->bytes, 16);
}
uint64_t gpt_entry_first_lba(const uint8_t *e) {
        return get64(e + E_FIRST);
}
uint64_t gpt_entry_last_lba(const uint8_t *e) {
        return get64(e + E_LAST);
}
void gpt_entry_set_first_lba(uint8_t *e, uint64_t lba) {
        put64(e + E_FIRST, lba);
}
void gpt_entry_set_last_lba(uint8_t *e, uint64_t lba) {
        put64(e + E_LAST, lba);
}
uint64_t gpt_entry_attrs(const uint8_t *e) {
        return get64(e + E_ATTRS);
}
void gpt_entry_set_attrs(uint8_t *e, uint64_t attrs) {
        put64(e + E_ATTRS, attrs);
}

int gpt_entry_get_name(const uint8_t *e, char *buf, size_t size) {
        size_t o = 0;
        for (unsigned i = 0; i < GPT_NAME_UNITS; i++) {
                uint32_t c = get16(e + E_NAME + 2 * i);
                if (c == 0)
                        break;
                if (c >= 0xd800 && c <= 0xdbff) {
                        if (i + 1 >= GPT_NAME_UNITS)
                                return -EILSEQ;
                        uint32_t lo = get16(e + E_NAME + 2 * (i + 1));
                        if (lo < 0xdc00 || lo > 0xdfff)
                                return -EILSEQ;
                        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                        i++;
                } else if (c >= 0xdc00 && c <= 0xdfff)
                        return -EILSEQ;
                uint8_t u[4];
                size_t n;
                if (c < 0x80)
                        u[0] = (uint8_t)c, n = 1;
                else if (c < 0x800)
                        u[0] = (uint8_t)(0xc0 | c >> 6), u[1] = (uint8_t)(0x80 | (c & 0x3f)), n = 2;
                else if (c < 0x10000)
                        u[0] = (uint8_t)(0xe0 | c >> 12), u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)),
                        u[2] = (uint8_t)(0x80 | (c & 0x3f)), n = 3;
                else
                        u[0] = (uint8_t)(0xf0 | c >> 18), u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f)),
                        u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (c & 0x3f)), n = 4;
                if (o + n + 1 > size)
                        return -ENOBUFS;
                memcpy(buf + o, u, n);
                o += n;
        }
        if (o + 1 > size)
                return -ENOBUFS;
        buf[o] = 0;
        return 0;
}

int gpt_entry_set_name(uint8_t *e, const char *utf8) {
        uint16_t units[GPT_NAME_UNITS] = { 0 };
        unsigned n = 0;
        const uint8_t *s = (const uint8_t *)utf8;
        while (*s) {
                uint32_t c;
                int extra;
                if (s[0] < 0x80)
                        c = s[0], extra = 0;
                else if ((s[0] & 0xe0) == 0xc0)
                        c = s[0] & 0x1f, extra = 1;
                else if ((s[0] & 0xf0) == 0xe0)
                        c = s[0] & 0x0f, extra = 2;
                else if ((s[0] & 0xf8) == 0xf0)
                        c = s[0] & 0x07, extra = 3;
                else
                        return -EILSEQ;
                for (int k = 1; k <= extra; k++) {
                        if ((s[k] & 0xc0) != 0x80)
                                return -EILSEQ;
                        c = c << 6 | (s[k] & 0x3f);
                }
                static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
                if (c < min[extra] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                        return -EILSEQ; /* overlong, out of range or a surrogate */
                s += 1 + extra;
                if (c >= 0x10000) {
                        if (n + 2 > GPT_NAME_UNITS)
                                return -ENAMETOOLONG;
                        c -= 0x10000;
                        units[n++] = (uint16_t)(0xd800 + (c >> 10));
                        units[n++] = (uint16_t)(0xdc00 + (c & 0x3ff));
                } else {
                        if (n + 1 > GPT_NAME_UNITS)
                                return -ENAMETOOLONG;
                        units[n++] = (uint16_t)c;
                }
        }
        for (unsigned i = 0; i < GPT_NAME_UNITS; i++)
                put16(e + E_NAME + 2 * i, units[i]);
        return 0;
}

int gpt_find_by_label(const struct gpt_table *t, const char *label) {
        int found = -ENOENT;
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *e = gpt_entry(t, i);
                char name[GPT_NAME_MAX_UTF8];
                if (!gpt_entry_is_used(e) || gpt_entry_get_name(e, name, sizeof name) < 0)
                        continue;
                if (strcmp(name, label) != 0)
                        continue;
                if (found >= 0)
                        return -ENOTUNIQ;
                found = (int)i;
        }
        return found;
}

/* ---- Layout check ---- */

/* "4 (USR-B, sectors 2048-51199)" for messages; the label is outside text, so anything but printable ASCII is '?'. */
static void describe_entry(const struct gpt_table *t, unsigned idx, char *buf, size_t size) {
        const uint8_t *e = gpt_entry(t, idx);
        char name[GPT_NAME_MAX_UTF8];
        if (gpt_entry_get_name(e, name, sizeof name) < 0)
                snprintf(name, sizeof name, "?");
        for (char *c = name; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e || *c == '"')
                        *c = '?';
        snprintf(buf, size, "%u (%s, sectors %llu-%llu)", idx + 1, name[0] ? name : "no label",
                 (unsigned long long)gpt_entry_first_lba(e), (unsigned long long)gpt_entry_last_lba(e));
}

int gpt_check_layout(const struct gpt_table *t, int target, int booted, uint64_t min_target_bytes, char *why,
                     size_t whysize) {
        char d1[GPT_NAME_UNITS * 3 + 64], d2[GPT_NAME_UNITS * 3 + 64];
        if (!t || !t->entries || (target >= 0 && (unsigned)target >= t->num_entries)) {
                snprintf(why, whysize, "invalid arguments");
                return -EINVAL;
        }
        /* Used entries, in table order; at most GPT_MAX_ENTRIES. */
        _cleanup_free_ unsigned *used = malloc(sizeof *used * (t->num_entries ? t->num_entries : 1));
        if (!used)
                return -ENOMEM;
        unsigned n = 0;
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *e = gpt_entry(t, i);
                if (!gpt_entry_is_used(e))
                        continue;
                uint64_t f = gpt_entry_first_lba(e), l = gpt_entry_last_lba(e);
                if (f > l || f < t->first_usable_lba || l > t->last_usable_lba) {
                        describe_entry(t, i, d1, sizeof d1);
                        snprintf(why, whysize, "partition %s lies outside the usable sectors %llu-%llu", d1,
                                 (unsigned long long)t->first_usable_lba, (unsigned long long)t->last_usable_lba);
                        return -EBADMSG;
                }
                used[n++] = i;
        }
        for (unsigned a = 0; a < n; a++) {
                const uint8_t *ea = gpt_entry(t, used[a]);
                struct gpt_guid ua;
                gpt_entry_get_uuid(ea, &ua);
                for (unsigned b = a + 1; b < n; b++) {
                        const uint8_t *eb = gpt_entry(t, used[b]);
                        struct gpt_guid ub;
                        gpt_entry_get_uuid(eb, &ub);
                        if (gpt_entry_first_lba(ea) <= gpt_entry_last_lba(eb) &&
                            gpt_entry_first_lba(eb) <= gpt_entry_last_lba(ea)) {
                                /* Name the later-starting one first: it is the one that starts inside the other. */
                                bool b_later = gpt_entry_first_lba(eb) >= gpt_entry_first_lba(ea);
                                describe_entry(t, b_later ? used[b] : used[a], d1, sizeof d1);
                                describe_entry(t, b_later ? used[a] : used[b], d2, sizeof d2);
                                snprintf(why, whysize, "partition %s overlaps partition %s", d1, d2);
                                return -EBADMSG;
                        }
                        if (gpt_guid_equal(&ua, &ub)) {
                                char g[GPT_GUID_STRLEN + 1];
                                describe_entry(t, used[a], d1, sizeof d1);
                                describe_entry(t, used[b], d2, sizeof d2);
                                snprintf(why, whysize, "partitions %s and %s have the same unique GUID %s", d1, d2,
                                         gpt_guid_format(&ua, g));
                                return -EBADMSG;
                        }
                }
        }
        if (target < 0)
                return 0;
        const uint8_t *te = gpt_entry(t, (unsigned)target);
        if (!gpt_entry_is_used(te)) {
                snprintf(why, whysize, "partition %d, the target, is not in use", target + 1);
                return -ENOENT;
        }
        describe_entry(t, (unsigned)target, d1, sizeof d1);
        if (target == booted) {
                snprintf(why, whysize, "partition %s is the booted slot; it is not written while it runs", d1);
                return -EBUSY;
        }
        uint64_t bytes = (gpt_entry_last_lba(te) - gpt_entry_first_lba(te) + 1) * GPT_SECTOR_SIZE;
        if (bytes < min_target_bytes) {
                snprintf(why, whysize, "partition %s holds %llu bytes, less than the %llu to be written", d1,
                         (unsigned long long)bytes, (unsigned long long)min_target_bytes);
                return -EFBIG;
        }
        return 0;
}
