/* tests/unit/test-gpt.c — GPT library: layout, CRCs (checked with zlib over raw bytes), attributes, corruption, cut writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"
#include "image/diskbios.h"
#include "image/diskguid.h"
#include "gpt.h"
#include "macro.h"

#define DISK_SECTORS (64u * 2048u) /* 64 MiB */

static uint64_t rd64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}
static uint32_t rd32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int make_disk(const char *name, uint64_t sectors) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", unit_tmpdir(), name);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)(sectors * 512)) < 0) {
                perror(path);
                exit(2);
        }
        return fd;
}

/* A table with USR-A (prio 2, successful) and USR-B at 1 MiB alignment. */
static struct gpt_table *sample_table(uint64_t sectors) {
        struct gpt_guid dg, u;
        struct gpt_table *t = NULL;
        CHECK_EQ(disk_guid_derive("seed", "disk", &dg), 0);
        CHECK_EQ(gpt_new(sectors, &dg, &t), 0);
        if (!t)
                exit(2);
        const char *labels[] = { "USR-A", "USR-B" };
        for (unsigned i = 0; i < 2; i++) {
                uint8_t *e = gpt_entry(t, i + 2);
                char purpose[64];
                snprintf(purpose, sizeof purpose, "partition:%s", labels[i]);
                CHECK_EQ(disk_guid_derive("seed", purpose, &u), 0);
                gpt_entry_set_type(e, &GPT_TYPE_USR_X86_64);
                gpt_entry_set_uuid(e, &u);
                gpt_entry_set_first_lba(e, 2048 + i * 8192);
                gpt_entry_set_last_lba(e, 2048 + i * 8192 + 8191);
                CHECK_EQ(gpt_entry_set_name(e, labels[i]), 0);
        }
        uint8_t *a = gpt_entry(t, 2);
        gpt_entry_set_attrs(a, gpt_attr_set_successful(gpt_attr_set_prio(0, 2), true));
        return t;
}

static void test_guid(void) {
        struct gpt_guid g;
        char buf[GPT_GUID_STRLEN + 1];
        /* Byte order from the reference: 5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6 -> f4f5fb5d 4828 ac4b aa5e... */
        CHECK_EQ(gpt_guid_parse("5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6", &g), 0);
        static const uint8_t want[16] = { 0xf4, 0xf5, 0xfb, 0x5d, 0x48, 0x28, 0xac, 0x4b,
                                          0xaa, 0x5e, 0x0d, 0x9a, 0x20, 0xb7, 0x45, 0xa6 };
        CHECK(memcmp(g.bytes, want, 16) == 0);
        CHECK_STREQ(gpt_guid_format(&g, buf), "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6");
        CHECK_STREQ(gpt_guid_format(&GPT_TYPE_ESP, buf), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        CHECK_STREQ(gpt_guid_format(&GPT_TYPE_BIOS_BOOT, buf), "21686148-6449-6E6F-744E-656564454649");
        CHECK_STREQ(gpt_guid_format(&GPT_TYPE_USR_X86_64, buf), "8484680C-9521-48C6-9C11-B0720656F69E");
        CHECK_STREQ(gpt_guid_format(&GPT_TYPE_LINUX_DATA, buf), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        CHECK_STREQ(gpt_guid_format(&GPT_TYPE_ROOT_X86_64, buf), "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
        CHECK_EQ(gpt_guid_parse("5dfbf5f4-2848-4bac-aa5e-0d9a20b745a", &g), -EINVAL);
        CHECK_EQ(gpt_guid_parse("5dfbf5f4x2848-4bac-aa5e-0d9a20b745a6", &g), -EINVAL);
        CHECK_EQ(gpt_guid_parse("5dfbf5f4-2848-4bac-aa5e-0d9a20b745ag", &g), -EINVAL);

        struct gpt_guid a, b, c;
        uint8_t rfc[16];
        CHECK_EQ(disk_guid_derive("s", "disk", &a), 0);
        CHECK_EQ(disk_guid_derive("s", "disk", &b), 0);
        CHECK_EQ(disk_guid_derive("t", "disk", &c), 0);
        CHECK(gpt_guid_equal(&a, &b));
        CHECK(!gpt_guid_equal(&a, &c));
        CHECK_EQ(disk_guid_derive("s", "partition:ROOT", &c), 0);
        CHECK(!gpt_guid_equal(&a, &c));
        gpt_guid_to_rfc(&a, rfc);
        CHECK_EQ(rfc[6] >> 4, 4);          /* version 4 */
        CHECK_EQ(rfc[8] & 0xc0, 0x80);     /* RFC 4122 variant */
        CHECK_EQ(gpt_guid_format(&a, buf)[14], '4');
}

static void test_names(void) {
        uint8_t e[128] = { 0 };
        char buf[GPT_NAME_MAX_UTF8];
        CHECK_EQ(gpt_entry_set_name(e, "ROOT"), 0);
        CHECK(e[56] == 'R' && e[57] == 0 && e[58] == 'O' && e[63] == 0 && e[64] == 0);
        CHECK_EQ(gpt_entry_get_name(e, buf, sizeof buf), 0);
        CHECK_STREQ(buf, "ROOT");
        CHECK_EQ(gpt_entry_set_name(e, "Grüße-\xf0\x9f\x98\x80"), 0); /* non-ASCII + a surrogate pair */
        CHECK_EQ(gpt_entry_get_name(e, buf, sizeof buf), 0);
        CHECK_STREQ(buf, "Grüße-\xf0\x9f\x98\x80");
        CHECK_EQ(gpt_entry_set_name(e, "123456789012345678901234567890123456"), 0);
        CHECK_EQ(gpt_entry_set_name(e, "1234567890123456789012345678901234567"), -ENAMETOOLONG);
        CHECK_EQ(gpt_entry_set_name(e, "bad\xff"), -EILSEQ);
        CHECK_EQ(gpt_entry_set_name(e, "\xc0\xaf"), -EILSEQ); /* overlong */
        CHECK_EQ(gpt_entry_get_name(e, buf, 4), -ENOBUFS);
        e[56] = 0x00, e[57] = 0xdc; /* lone low surrogate */
        CHECK_EQ(gpt_entry_get_name(e, buf, sizeof buf), -EILSEQ);
}

static void test_attrs(void) {
        uint64_t a = UINT64_C(1) << 60 | 1; /* unrelated bits must survive */
        a = gpt_attr_set_prio(a, 15);
        a = gpt_attr_set_tries(a, 7);
        a = gpt_attr_set_successful(a, true);
        CHECK_EQ(gpt_attr_get_prio(a), 15);
        CHECK_EQ(gpt_attr_get_tries(a), 7);
        CHECK_EQ(gpt_attr_get_successful(a), 1);
        CHECK(a == (UINT64_C(1) << 60 | 1 | UINT64_C(0xf) << 48 | UINT64_C(7) << 52 | UINT64_C(1) << 56));
        a = gpt_attr_set_prio(a, 1);
        a = gpt_attr_set_tries(a, 0);
        a = gpt_attr_set_successful(a, false);
        CHECK(a == (UINT64_C(1) << 60 | 1 | UINT64_C(1) << 48));
        /* cgpt's example: priority 2, tries 1, not successful = 0x0012000000000000 */
        CHECK(gpt_attr_set_tries(gpt_attr_set_prio(0, 2), 1) == UINT64_C(0x0012000000000000));
}

/* Raw on-disk checks, with CRCs recomputed by zlib directly. */
static void test_layout_and_crc(void) {
        int fd = make_disk("layout.img", DISK_SECTORS);
        struct gpt_table *t = sample_table(DISK_SECTORS);
        CHECK_EQ(gpt_write(fd, t, NULL), 0);
        CHECK_EQ(gpt_pmbr_write(fd, DISK_SECTORS, NULL), 0);

        uint8_t ph[512], bh[512], pe[128 * 128], be[128 * 128], mbr[512];
        CHECK_EQ(pread(fd, mbr, 512, 0), 512);
        CHECK_EQ(pread(fd, ph, 512, 512), 512);
        CHECK_EQ(pread(fd, bh, 512, (off_t)(DISK_SECTORS - 1) * 512), 512);
        CHECK_EQ(pread(fd, pe, sizeof pe, 2 * 512), (ssize_t)sizeof pe);
        CHECK_EQ(pread(fd, be, sizeof be, (off_t)(DISK_SECTORS - 33) * 512), (ssize_t)sizeof be);

        CHECK(memcmp(ph, "EFI PART", 8) == 0 && memcmp(bh, "EFI PART", 8) == 0);
        CHECK_EQ(rd32(ph + 8), 0x00010000);
        CHECK_EQ(rd32(ph + 12), 92);
        CHECK_EQ(rd64(ph + 24), 1);                        /* MyLBA */
        CHECK_EQ(rd64(ph + 32), DISK_SECTORS - 1);         /* AlternateLBA */
        CHECK_EQ(rd64(bh + 24), DISK_SECTORS - 1);         /* swapped in the backup */
        CHECK_EQ(rd64(bh + 32), 1);
        CHECK_EQ(rd64(ph + 40), 34);
        CHECK_EQ(rd64(ph + 48), DISK_SECTORS - 34);
        CHECK_EQ(rd64(ph + 72), 2);                        /* primary entries */
        CHECK_EQ(rd64(bh + 72), DISK_SECTORS - 33);        /* backup entries = LastUsable + 1 */
        CHECK_EQ(rd64(bh + 72), rd64(bh + 48) + 1);
        CHECK_EQ(rd32(ph + 80), 128);
        CHECK_EQ(rd32(ph + 84), 128);
        CHECK(memcmp(pe, be, sizeof pe) == 0);

        uint32_t ecrc = (uint32_t)crc32(crc32(0, Z_NULL, 0), pe, sizeof pe);
        CHECK_EQ(rd32(ph + 88), ecrc);
        CHECK_EQ(rd32(bh + 88), ecrc);
        uint8_t tmp[92];
        memcpy(tmp, ph, 92);
        memset(tmp + 16, 0, 4);
        CHECK_EQ(rd32(ph + 16), (uint32_t)crc32(crc32(0, Z_NULL, 0), tmp, 92));
        memcpy(tmp, bh, 92);
        memset(tmp + 16, 0, 4);
        CHECK_EQ(rd32(bh + 16), (uint32_t)crc32(crc32(0, Z_NULL, 0), tmp, 92));
        CHECK(rd32(ph + 16) != rd32(bh + 16));
        for (int i = 92; i < 512; i++)
                if (ph[i] || bh[i]) {
                        CHECK(!"header tail not zero");
                        break;
                }

        /* Partitions on 1 MiB boundaries, entry 3 at offset 2*128. */
        CHECK_EQ(rd64(pe + 2 * 128 + 32) % 2048, 0);
        CHECK_EQ(rd64(pe + 3 * 128 + 32) % 2048, 0);
        CHECK_EQ(rd64(pe + 2 * 128 + 48) >> 48, 0x0102); /* successful=1, prio=2 */
        CHECK_EQ(gpt_align_up(34), 2048);
        CHECK_EQ(gpt_align_down(4095), 2048);

        /* Protective MBR. */
        CHECK(mbr[510] == 0x55 && mbr[511] == 0xaa);
        CHECK_EQ(mbr[0x1be + 4], 0xee);
        CHECK_EQ(rd32(mbr + 0x1be + 8), 1);
        CHECK_EQ(rd32(mbr + 0x1be + 12), DISK_SECTORS - 1);
        uint8_t big[512];
        gpt_pmbr_build(big, UINT64_C(1) << 33, NULL);
        CHECK_EQ(rd32(big + 0x1be + 12), 0xffffffffu);

        gpt_free(t);
        close(fd);
}

static void test_roundtrip(void) {
        int fd = make_disk("rt.img", DISK_SECTORS);
        struct gpt_table *t = sample_table(DISK_SECTORS), *r = NULL;
        uint8_t *e = gpt_entry(t, 100);
        e[120] = 0x5a; /* a byte inside the name area of an unused entry... */
        gpt_entry_set_type(e, &GPT_TYPE_LINUX_DATA);
        gpt_entry_set_first_lba(e, 40000);
        gpt_entry_set_last_lba(e, 40000);
        CHECK_EQ(gpt_write(fd, t, NULL), 0);
        struct gpt_status st;
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), GPT_COPY_PRIMARY | GPT_COPY_BACKUP);
        if (!r) {
                gpt_free(t);
                close(fd);
                return;
        }
        CHECK_EQ(r->disk_sectors, DISK_SECTORS);
        CHECK(gpt_guid_equal(&r->disk_guid, &t->disk_guid));
        CHECK(memcmp(r->entries, t->entries, 128 * 128) == 0);
        CHECK_EQ(gpt_find_by_label(r, "USR-B"), 3);
        CHECK_EQ(gpt_find_by_label(r, "ROOT"), -ENOENT);
        CHECK_EQ(gpt_attr_get_prio(gpt_entry_attrs(gpt_entry(r, 2))), 2);
        CHECK(gpt_entry(r, 128) == NULL);
        gpt_entry_set_name(gpt_entry(r, 100), "USR-B");
        CHECK_EQ(gpt_find_by_label(r, "USR-B"), -ENOTUNIQ);
        gpt_free(r);

        /* An entry outside the usable range is refused by the writer. */
        gpt_entry_set_last_lba(gpt_entry(t, 100), DISK_SECTORS - 20);
        CHECK_EQ(gpt_write(fd, t, NULL), -EINVAL);
        gpt_free(t);
        close(fd);
}

static void test_corrupt(void) {
        int fd = make_disk("bad.img", DISK_SECTORS);
        struct gpt_table *t = sample_table(DISK_SECTORS), *r = NULL;
        struct gpt_status st;
        char msg[256];
        CHECK_EQ(gpt_write(fd, t, NULL), 0);

        /* Flip a byte in the primary header (DiskGUID): header CRC mismatch. */
        uint8_t b;
        CHECK_EQ(pread(fd, &b, 1, 512 + 60), 1);
        b ^= 0x01;
        CHECK_EQ(pwrite(fd, &b, 1, 512 + 60), 1);
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), -EBADMSG);
        CHECK(r == NULL);
        CHECK_EQ(st.valid, GPT_COPY_BACKUP);
        CHECK_EQ(st.primary_error, -EBADMSG);
        gpt_status_describe(&st, msg, sizeof msg);
        CHECK(strstr(msg, "primary GPT header CRC mismatch") != NULL);
        /* The caller may accept the backup explicitly, and repair from it. */
        CHECK_EQ(gpt_read(fd, 0, GPT_READ_DEGRADED, &r, &st), GPT_COPY_BACKUP);
        if (r) {
                CHECK(memcmp(r->entries, t->entries, 128 * 128) == 0);
                CHECK_EQ(r->backup_lba, DISK_SECTORS - 1);
                CHECK_EQ(gpt_repair(fd, r, NULL), 0);
                gpt_free(r);
                r = NULL;
        }
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), 3);
        gpt_free(r);
        r = NULL;

        /* A flipped byte in the backup entry array. */
        CHECK_EQ(pread(fd, &b, 1, (off_t)(DISK_SECTORS - 33) * 512 + 300), 1);
        b ^= 0x80;
        CHECK_EQ(pwrite(fd, &b, 1, (off_t)(DISK_SECTORS - 33) * 512 + 300), 1);
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), -EBADMSG);
        CHECK_STREQ(st.backup_problem, "partition entry array CRC mismatch");
        CHECK_EQ(gpt_read(fd, 0, GPT_READ_DEGRADED, &r, &st), GPT_COPY_PRIMARY);
        gpt_free(r);
        r = NULL;

        /* NumEntries too large, with a correct CRC: refused by the limit, not by the CRC. */
        uint8_t h[512];
        CHECK_EQ(pread(fd, h, 512, 512), 512);
        h[80] = 0x01, h[81] = 0x10; /* 4097 entries */
        memset(h + 16, 0, 4);
        uint32_t c = (uint32_t)crc32(crc32(0, Z_NULL, 0), h, 92);
        h[16] = (uint8_t)c, h[17] = (uint8_t)(c >> 8), h[18] = (uint8_t)(c >> 16), h[19] = (uint8_t)(c >> 24);
        CHECK_EQ(pwrite(fd, h, 512, 512), 512);
        CHECK_EQ(gpt_read(fd, 0, GPT_READ_DEGRADED, &r, &st), -EBADMSG);
        CHECK(strstr(st.primary_problem, "partition entries") != NULL);

        /* No GPT at all. */
        int z = make_disk("zero.img", 4096);
        CHECK_EQ(gpt_read(z, 0, 0, &r, &st), -ENODATA);
        close(z);
        gpt_free(t);
        close(fd);
}

/* gpt_write() cut after n operations. */
struct cut {
        int left;
        int ops;
};
static int cut_write(void *u, int fd, const void *buf, size_t len, uint64_t off) {
        struct cut *c = u;
        c->ops++;
        if (c->left-- <= 0)
                return -EIO;
        return pwrite(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}
static int cut_sync(void *u, int fd) {
        struct cut *c = u;
        c->ops++;
        if (c->left-- <= 0)
                return -EIO;
        return 0;
}

static void test_cut_writes(void) {
        struct gpt_table *old = sample_table(DISK_SECTORS), *new = sample_table(DISK_SECTORS);
        /* The "new" state: USR-B gets priority 3, tries 1 (a bootcfg flip). */
        uint8_t *e = gpt_entry(new, 3);
        gpt_entry_set_attrs(e, gpt_attr_set_tries(gpt_attr_set_prio(0, 3), 1));
        int total = -1;
        for (int n = 0; n <= 6; n++) {
                int fd = make_disk("cut.img", DISK_SECTORS);
                CHECK_EQ(gpt_write(fd, old, NULL), 0);
                struct cut c = { .left = n };
                struct gpt_io io = { .write = cut_write, .sync = cut_sync, .userdata = &c };
                int r = gpt_write(fd, new, &io);
                if (n < 6)
                        CHECK_EQ(r, -EIO);
                else {
                        CHECK_EQ(r, 0);
                        total = c.ops;
                }
                struct gpt_table *got = NULL;
                struct gpt_status st;
                r = gpt_read(fd, 0, GPT_READ_DEGRADED, &got, &st);
                CHECK(r > 0);
                if (got) {
                        bool is_old = memcmp(got->entries, old->entries, 128 * 128) == 0;
                        bool is_new = memcmp(got->entries, new->entries, 128 * 128) == 0;
                        CHECK(is_old || is_new);
                        /* Old while the primary is intact (cut before op 4); once the primary entries change, the old primary
                         * header no longer matches them, so the (new) backup is what is read. */
                        CHECK(n >= 4 ? is_new : is_old);
                        gpt_free(got);
                }
                close(fd);
        }
        CHECK_EQ(total, 6);
        gpt_free(old);
        gpt_free(new);
}

static void test_resize(void) {
        int fd = make_disk("grow.img", DISK_SECTORS);
        struct gpt_table *t = sample_table(DISK_SECTORS), *r = NULL;
        struct gpt_status st;
        CHECK_EQ(gpt_write(fd, t, NULL), 0);
        CHECK_EQ(ftruncate(fd, (off_t)DISK_SECTORS * 2 * 512), 0);
        /* The backup is found through AlternateLBA, not at the (new) last sector. */
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), 3);
        if (!r)
                return;
        CHECK_EQ(r->backup_lba, DISK_SECTORS - 1);
        CHECK_EQ(r->disk_sectors, DISK_SECTORS * 2);
        CHECK_EQ(gpt_resize_disk(r, DISK_SECTORS * 2), 0);
        CHECK_EQ(r->backup_lba, DISK_SECTORS * 2 - 1);
        CHECK_EQ(r->last_usable_lba, DISK_SECTORS * 2 - 34);
        CHECK_EQ(gpt_write(fd, r, NULL), 0);
        gpt_free(r);
        r = NULL;
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), 3);
        if (r)
                CHECK_EQ(r->backup_lba, DISK_SECTORS * 2 - 1);
        /* Shrinking below a partition is refused. */
        if (r)
                CHECK_EQ(gpt_resize_disk(r, 10000), -EINVAL);
        gpt_free(r);
        gpt_free(t);
        close(fd);
}

/* gpt_check_layout(): what a writer checks on top of gpt_read() (valid CRCs do not make a safe layout). */
static void test_check_layout(void) {
        struct gpt_table *t = sample_table(DISK_SECTORS);
        char why[320];
        /* Add an ESP as partition 1 at 1 MiB, before USR-A (which sample_table puts at 2048: move the slots up). */
        for (unsigned i = 0; i < 2; i++) {
                uint8_t *e = gpt_entry(t, i + 2);
                gpt_entry_set_first_lba(e, 10240 + i * 8192);
                gpt_entry_set_last_lba(e, 10240 + i * 8192 + 8191);
        }
        uint8_t *esp = gpt_entry(t, 0);
        struct gpt_guid g;
        CHECK_EQ(disk_guid_derive("seed", "partition:EFI-SYSTEM", &g), 0);
        gpt_entry_set_type(esp, &GPT_TYPE_ESP);
        gpt_entry_set_uuid(esp, &g);
        gpt_entry_set_first_lba(esp, 2048);
        gpt_entry_set_last_lba(esp, 10239); /* ends right before USR-A: adjacent is fine */
        CHECK_EQ(gpt_entry_set_name(esp, "EFI-SYSTEM"), 0);
        uint8_t *ua = gpt_entry(t, 2), *ub = gpt_entry(t, 3);

        CHECK_EQ(gpt_check_layout(t, -1, -1, 0, why, sizeof why), 0);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 8192 * 512, why, sizeof why), 0); /* B exactly large enough */

        /* USR-B starts inside USR-A. */
        gpt_entry_set_first_lba(ub, 10240 + 4096);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK_STREQ(why, "partition 4 (USR-B, sectors 14336-26623) overlaps partition 3 (USR-A, sectors 10240-18431)");
        CHECK_EQ(gpt_check_layout(t, -1, -1, 0, why, sizeof why), -EBADMSG); /* whatever is written */
        /* One shared sector is an overlap: B's first sector is A's last. */
        gpt_entry_set_first_lba(ub, 18431);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "partition 4 (USR-B, sectors 18431-26623) overlaps partition 3") != NULL);
        /* USR-B on the ESP's first sector (the order of the entries does not matter). */
        gpt_entry_set_first_lba(ub, 2048);
        gpt_entry_set_last_lba(ub, 2048 + 8191);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK_STREQ(why, "partition 4 (USR-B, sectors 2048-10239) overlaps partition 1 (EFI-SYSTEM, sectors 2048-10239)");
        /* A slot wholly inside another one, starting at the same sector as its container. */
        gpt_entry_set_first_lba(ub, 10240);
        gpt_entry_set_last_lba(ub, 10250);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "overlaps") != NULL);
        gpt_entry_set_first_lba(ub, 18432);
        gpt_entry_set_last_lba(ub, 18432 + 8191);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), 0);

        /* Outside the usable area: past the last usable LBA (over the backup entries), before the first one
         * (over the primary entries), first > last. */
        gpt_entry_set_last_lba(ub, t->last_usable_lba + 1);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "partition 4 (USR-B, sectors 18432-") != NULL);
        CHECK(strstr(why, "outside the usable sectors 34-") != NULL);
        gpt_entry_set_last_lba(ub, 18432 + 8191);
        gpt_entry_set_first_lba(esp, 33);
        CHECK_EQ(gpt_check_layout(t, -1, -1, 0, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "partition 1 (EFI-SYSTEM, sectors 33-10239) lies outside the usable sectors") != NULL);
        gpt_entry_set_first_lba(esp, 10239 + 1);
        CHECK_EQ(gpt_check_layout(t, -1, -1, 0, why, sizeof why), -EBADMSG); /* first > last */
        gpt_entry_set_first_lba(esp, 2048);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), 0);

        /* The target is the booted slot; too small for the image; an unused entry. */
        CHECK_EQ(gpt_check_layout(t, 2, 2, 0, why, sizeof why), -EBUSY);
        CHECK(strstr(why, "partition 3 (USR-A, sectors 10240-18431) is the booted slot") != NULL);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 8192 * 512 + 1, why, sizeof why), -EFBIG);
        CHECK(strstr(why, "partition 4 (USR-B, sectors 18432-26623) holds 4194304 bytes, less than the 4194305") != NULL);
        CHECK_EQ(gpt_check_layout(t, 5, 2, 0, why, sizeof why), -ENOENT);
        CHECK_EQ(gpt_check_layout(t, 128, 2, 0, why, sizeof why), -EINVAL);

        /* Two partitions with one unique GUID (PARTUUID= would name either). */
        struct gpt_guid gb;
        gpt_entry_get_uuid(ub, &gb);
        gpt_entry_set_uuid(ua, &gb);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "partitions 3 (USR-A, sectors 10240-18431) and 4 (USR-B, sectors 18432-26623) have the "
                          "same unique GUID") != NULL);

        /* A hostile label cannot put control characters into the message. */
        CHECK_EQ(disk_guid_derive("seed", "partition:USR-A", &g), 0);
        gpt_entry_set_uuid(ua, &g);
        CHECK_EQ(gpt_entry_set_name(ub, "B\nforged line"), 0);
        gpt_entry_set_first_lba(ub, 18431);
        CHECK_EQ(gpt_check_layout(t, 3, 2, 0, why, sizeof why), -EBADMSG);
        CHECK(strchr(why, '\n') == NULL);
        CHECK(strstr(why, "B?forged line") != NULL);

        /* What gpt_read() accepts (valid CRCs, entries inside the usable range) can still be refused here. */
        gpt_entry_set_name(ub, "USR-B");
        gpt_entry_set_first_lba(ub, 10240 + 4096);
        int fd = make_disk("overlap.img", DISK_SECTORS);
        CHECK_EQ(gpt_write(fd, t, NULL), 0);
        struct gpt_table *r = NULL;
        struct gpt_status st;
        CHECK_EQ(gpt_read(fd, 0, 0, &r, &st), GPT_COPY_PRIMARY | GPT_COPY_BACKUP);
        if (r)
                CHECK_EQ(gpt_check_layout(r, 3, 2, 0, why, sizeof why), -EBADMSG);
        gpt_free(r);
        close(fd);
        gpt_free(t);
}

static void test_bios_patch(void) {
        uint8_t mbr[512], boot[512], core[3 * 512 + 100];
        memset(boot, 0xcc, sizeof boot);
        boot[510] = 0x55, boot[511] = 0xaa;
        memset(core, 0, sizeof core);
        /* diskboot default blocklist: {2, 3, 0x820} */
        core[500] = 2, core[508] = 3, core[510] = 0x20, core[511] = 0x08;
        gpt_pmbr_build(mbr, 1 << 20, NULL);
        uint8_t before[512];
        memcpy(before, mbr, 512);
        CHECK_EQ(disk_bios_patch(mbr, boot, core, sizeof core, 133120), 0);
        CHECK_EQ(rd64(mbr + 0x5c), 133120);
        CHECK_EQ(mbr[0x64], 0xff);
        CHECK(mbr[0x66] == 0x90 && mbr[0x67] == 0x90);
        CHECK_EQ(mbr[0], 0xcc);
        CHECK_EQ(mbr[0x1b7], 0xcc);
        CHECK(memcmp(mbr + 3, before + 3, 0x5a - 3) == 0);         /* BPB kept */
        CHECK(memcmp(mbr + 0x1b8, before + 0x1b8, 512 - 0x1b8) == 0); /* table + 0x55AA kept */
        CHECK_EQ(rd64(core + 500), 133121);
        CHECK_EQ(core[508] | core[509] << 8, 3); /* 4 sectors - 1 */
        CHECK_EQ(core[510] | core[511] << 8, 0x820);
        boot[511] = 0;
        CHECK_EQ(disk_bios_patch(mbr, boot, core, sizeof core, 1), -EINVAL);
        boot[511] = 0xaa;
        CHECK_EQ(disk_bios_patch(mbr, boot, core, 600, 1), -EINVAL);
        core[512 + 0x14] = 0xff, core[512 + 0x15] = 0xff;
        CHECK_EQ(disk_bios_patch(mbr, boot, core, sizeof core, 1), -EINVAL);
}

int main(void) {
        RUN(test_guid);
        RUN(test_names);
        RUN(test_attrs);
        RUN(test_layout_and_crc);
        RUN(test_roundtrip);
        RUN(test_corrupt);
        RUN(test_cut_writes);
        RUN(test_resize);
        RUN(test_bios_patch);
        RUN(test_check_layout);
        return unit_main_end();
}
