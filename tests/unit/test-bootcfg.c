/* tests/unit/test-bootcfg.c — boot selection: state machine, grubenv parsing, FAT lookup, both backends on real
 * disk images (made with mkfs.vfat/mcopy/grub-editenv/cairn-mkdisk), cross-checks with grub-editenv and sgdisk,
 * corrupt inputs, and the crash-prefix proof (every cut of every verb's write sequence still boots a good slot). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "bootcfg/bootcfg-internal.h"
#include "bootcfg/bootcfg.h"
#include "bootcfg/fat.h"
#include "bootcfg/grubenv.h"
#include "fileio.h"
#include "gpt.h"
#include "macro.h"

#define A BOOTCFG_SLOT_A
#define B BOOTCFG_SLOT_B
#define ESP_OFFSET (1024u * 1024u) /* cairn-mkdisk puts partition 1 at 1 MiB */

static struct bootcfg_state st(unsigned ap, unsigned at, bool as, unsigned bp, unsigned bt, bool bs) {
        struct bootcfg_state s = { { { ap, at, as }, { bp, bt, bs } } };
        return s;
}
static bool st_eq(const struct bootcfg_state *x, const struct bootcfg_state *y) {
        for (int i = 0; i < 2; i++)
                if (x->slot[i].priority != y->slot[i].priority || x->slot[i].tries != y->slot[i].tries ||
                    x->slot[i].successful != y->slot[i].successful)
                        return false;
        return true;
}

/* ---- Pure state machine ---- */

static void test_pick(void) {
        struct bootcfg_state s = st(1, 0, true, 0, 0, false), after;
        CHECK_EQ(bootcfg_pick(&s, &after), A);
        CHECK(st_eq(&after, &s)); /* successful: no decrement */
        s = st(1, 0, true, 2, 1, false);
        CHECK_EQ(bootcfg_pick(&s, &after), B);
        CHECK_EQ(after.slot[B].tries, 0);
        CHECK_EQ(after.slot[A].tries, 0);
        /* B out of tries: the loader falls back to A by itself. */
        CHECK_EQ(bootcfg_pick(&after, NULL), A);
        s = st(2, 3, false, 2, 0, true); /* tie: A first */
        CHECK_EQ(bootcfg_pick(&s, &after), A);
        CHECK_EQ(after.slot[A].tries, 2);
        s = st(0, 5, true, 0, 5, true); /* priority 0 never boots */
        after = st(9, 9, true, 9, 9, true);
        CHECK_EQ(bootcfg_pick(&s, &after), -ENOENT);
        CHECK_EQ(after.slot[A].priority, 9); /* untouched on failure */
        s = st(1, 0, false, 3, 0, false);
        CHECK_EQ(bootcfg_pick(&s, NULL), -ENOENT);
        s = st(16, 0, true, 0, 0, false);
        CHECK_EQ(bootcfg_pick(&s, NULL), -EINVAL);
        s = st(1, 0, true, 15, 15, false);
        CHECK_EQ(bootcfg_pick(&s, &after), B);
        CHECK_EQ(after.slot[B].tries, 14);
        CHECK_EQ(bootcfg_slot_parse("A"), A);
        CHECK_EQ(bootcfg_slot_parse("b"), B);
        CHECK_EQ(bootcfg_slot_parse("C"), -EINVAL);
        CHECK_EQ(bootcfg_slot_parse("AB"), -EINVAL);
        CHECK_EQ(bootcfg_slot_parse(""), -EINVAL);
}

static void test_transitions(void) {
        struct bootcfg_state s = st(1, 0, true, 0, 0, false), want;
        CHECK_EQ(bootcfg_state_set_next(&s, B), 0);
        want = st(1, 0, true, 2, 1, false);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_pick(&s, NULL), B);
        /* Priority cap: the other is lowered only when needed. */
        s = st(15, 0, true, 3, 0, false);
        CHECK_EQ(bootcfg_state_set_next(&s, B), 0);
        want = st(14, 0, true, 15, 1, false);
        CHECK(st_eq(&s, &want));
        /* Already above: keep priority, reset tries/successful. */
        s = st(1, 0, true, 5, 0, true);
        CHECK_EQ(bootcfg_state_set_next(&s, B), 0);
        want = st(1, 0, true, 5, 1, false);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_state_set_next(&s, 2), -EINVAL);

        s = st(1, 0, true, 2, 1, false);
        CHECK_EQ(bootcfg_state_mark_good(&s, B), 0);
        want = st(1, 0, true, 2, 0, true);
        CHECK(st_eq(&s, &want));

        /* mark-bad: the only good slot is refused unless forced; state untouched on refusal. */
        s = st(1, 0, true, 2, 1, false);
        want = s;
        CHECK_EQ(bootcfg_state_mark_bad(&s, A, false), -EBUSY);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_state_mark_bad(&s, B, false), 0);
        want = st(1, 0, true, 0, 0, false);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_state_mark_bad(&s, A, true), 0);
        CHECK_EQ(bootcfg_pick(&s, NULL), -ENOENT);
        s = st(1, 0, true, 2, 0, true); /* both good: either may go */
        CHECK_EQ(bootcfg_state_mark_bad(&s, B, false), 0);
        CHECK_EQ(bootcfg_pick(&s, NULL), A);

        /* rollback: booted B, A good -> A next. */
        s = st(1, 0, true, 2, 0, true);
        CHECK_EQ(bootcfg_state_rollback(&s, B), 0);
        want = st(3, 0, true, 2, 0, true);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_pick(&s, NULL), A);
        s = st(0, 0, false, 2, 0, true);
        want = s;
        CHECK_EQ(bootcfg_state_rollback(&s, B), -ESRCH);
        CHECK(st_eq(&s, &want));
        s = st(1, 0, false, 2, 0, true); /* A never succeeded */
        CHECK_EQ(bootcfg_state_rollback(&s, B), -ESRCH);
        s = st(1, 0, true, 15, 0, true);
        CHECK_EQ(bootcfg_state_rollback(&s, B), 0);
        want = st(15, 0, true, 14, 0, true);
        CHECK(st_eq(&s, &want));
}

/* The DESIGN §3 life cycle, loader included. */
static void test_update_cycle(void) {
        struct bootcfg_state s = st(1, 0, true, 0, 0, false), after;
        CHECK_EQ(bootcfg_state_set_next(&s, B), 0);
        CHECK_EQ(bootcfg_pick(&s, &after), B); /* first boot of B */
        s = after;
        CHECK_EQ(bootcfg_state_mark_good(&s, B), 0);
        CHECK_EQ(bootcfg_pick(&s, &after), B);
        CHECK(st_eq(&s, &after)); /* B good: stays */
        /* Next update into A fails to boot: one try, then B again forever. */
        CHECK_EQ(bootcfg_state_set_next(&s, A), 0);
        CHECK_EQ(bootcfg_pick(&s, &after), A);
        s = after;
        CHECK_EQ(s.slot[A].tries, 0);
        CHECK_EQ(bootcfg_pick(&s, &after), B);
        CHECK_EQ(bootcfg_pick(&after, NULL), B);
}

/* ---- grubenv blocks ---- */

static void make_block(uint8_t blk[GRUBENV_SIZE], const char *lines) {
        memset(blk, '#', GRUBENV_SIZE);
        size_t n = strlen(GRUBENV_SIGNATURE);
        memcpy(blk, GRUBENV_SIGNATURE, n);
        memcpy(blk + n, lines, strlen(lines));
}

static int get_state(const uint8_t *blk, size_t len, struct bootcfg_state *s) {
        char why[128];
        return grubenv_state_get(blk, len, s, why, sizeof why);
}

static void test_grubenv_parse(void) {
        uint8_t blk[GRUBENV_SIZE], out[GRUBENV_SIZE];
        struct bootcfg_state s, want;
        char why[128];
        make_block(blk, "# WARNING: Do not edit this file by tools other than grub-editenv!!!\n"
                        "saved_entry=x\\\ny\nA_PRIORITY=1\nA_TRIES=0\nA_SUCCESSFUL=1\nB_PRIORITY=0\nB_TRIES=0\n"
                        "B_SUCCESSFUL=0\nzz=last\n");
        CHECK_EQ(get_state(blk, GRUBENV_SIZE, &s), 0);
        want = st(1, 0, true, 0, 0, false);
        CHECK(st_eq(&s, &want));
        want = st(1, 0, true, 2, 1, false);
        CHECK_EQ(grubenv_state_set(blk, GRUBENV_SIZE, &want, out), 0);
        CHECK_EQ(get_state(out, GRUBENV_SIZE, &s), 0);
        CHECK(st_eq(&s, &want));
        /* Other lines kept byte for byte, variables edited in place. */
        const char *expect = "# GRUB Environment Block\n"
                             "# WARNING: Do not edit this file by tools other than grub-editenv!!!\n"
                             "saved_entry=x\\\ny\nA_PRIORITY=1\nA_TRIES=0\nA_SUCCESSFUL=1\nB_PRIORITY=2\nB_TRIES=1\n"
                             "B_SUCCESSFUL=0\nzz=last\n#";
        CHECK(memcmp(out, expect, strlen(expect)) == 0);
        CHECK_EQ(out[GRUBENV_SIZE - 1], '#');

        /* Missing variables read as 0 and are appended on write. */
        make_block(blk, "other=1\n");
        CHECK_EQ(get_state(blk, GRUBENV_SIZE, &s), 0);
        want = st(0, 0, false, 0, 0, false);
        CHECK(st_eq(&s, &want));
        want = st(1, 0, true, 0, 0, false);
        CHECK_EQ(grubenv_state_set(blk, GRUBENV_SIZE, &want, out), 0);
        CHECK(memcmp(out + strlen(GRUBENV_SIGNATURE), "other=1\nA_PRIORITY=1\n", 21) == 0);

        /* Corrupt blocks. */
        make_block(blk, "A_PRIORITY=1\n");
        CHECK_EQ(get_state(blk, GRUBENV_SIZE - 1, &s), -EBADMSG);
        blk[0] = 'X';
        CHECK_EQ(grubenv_validate(blk, GRUBENV_SIZE, NULL, why, sizeof why), -EBADMSG);
        CHECK(strstr(why, "header") != NULL);
        const char *bad[] = {
                "A_PRIORITY=16\n", "A_SUCCESSFUL=2\n", "A_TRIES=x\n", "A_TRIES=\n", "A_TRIES=01\n",
                "A_PRIORITY=1\nA_PRIORITY=2\n", "no equals sign\n", "=1\n", "KEY-X=1\n", "A_TRIES=1",
                "A_TRIES=1\n#padding then text\nx", "A_TRIES=1\n##\x01###",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                make_block(blk, bad[i]);
                if (get_state(blk, GRUBENV_SIZE, &s) != -EBADMSG) {
                        fprintf(stderr, "accepted bad block %zu: %s\n", i, bad[i]);
                        unit_failures++;
                }
        }
        /* The truncated last line above: unterminated value running into the padding is a valid value, but
         * a block without the '\n' is "not terminated" -> covered. A NUL inside a value: */
        make_block(blk, "A_TRIES=1\n");
        blk[strlen(GRUBENV_SIGNATURE) + 3] = 0;
        CHECK_EQ(get_state(blk, GRUBENV_SIZE, &s), -EBADMSG);

        /* Variables that would spill past the first sector: refused (torn writes must be old or new). */
        char big[700];
        memset(big, 0, sizeof big);
        strcpy(big, "filler=");
        memset(big + 7, 'f', 600);
        strcat(big, "\n");
        make_block(blk, big);
        CHECK_EQ(get_state(blk, GRUBENV_SIZE, &s), 0);
        want = st(1, 0, true, 0, 0, false);
        CHECK_EQ(grubenv_state_set(blk, GRUBENV_SIZE, &want, out), -EFBIG);
}

/* ---- Fixtures ---- */

static const char *mkdisk_path(void) {
        static const char *cands[] = { "build/bin/cairn-mkdisk", "build/asan/bin/cairn-mkdisk" };
        const char *e = getenv("CAIRN_MKDISK");
        if (e)
                return e;
        for (size_t i = 0; i < ELEMENTSOF(cands); i++)
                if (access(cands[i], X_OK) == 0)
                        return cands[i];
        return NULL;
}

static bool have_tools(void) {
        return mkdisk_path() && system("command -v mkfs.vfat mcopy grub-editenv mke2fs sgdisk >/dev/null") == 0;
}

static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        if (system(cmd) != 0) {
                fprintf(stderr, "fixture command failed: %s\n", cmd);
                exit(2);
        }
}

/* Capture a command's stdout. */
static char *sh_out(const char *cmd) {
        static char buf[8192];
        FILE *p = popen(cmd, "r");
        if (!p)
                return NULL;
        size_t n = fread(buf, 1, sizeof buf - 1, p);
        buf[n] = 0;
        if (pclose(p) != 0)
                return NULL;
        return buf;
}

static void build_fixture(void) {
        const char *d = unit_tmpdir();
        char mk[1024];
        snprintf(mk, sizeof mk, "%s", mkdisk_path());
        if (mk[0] != '/') {
                char cwd[512];
                if (!getcwd(cwd, sizeof cwd))
                        exit(2);
                snprintf(mk, sizeof mk, "%s/%s", cwd, mkdisk_path());
        }
        sh("set -e; cd '%s'; export MTOOLS_SKIP_CHECK=1; mkdir -p esp/EFI/BOOT;"
           "grub-editenv esp/EFI/BOOT/grubenv create;"
           "grub-editenv esp/EFI/BOOT/grubenv set A_PRIORITY=1 A_TRIES=0 A_SUCCESSFUL=1 B_PRIORITY=0 B_TRIES=0 "
           "B_SUCCESSFUL=0;"
           "cp esp/EFI/BOOT/grubenv esp/EFI/BOOT/grubenv.bak;"
           "printf 'set timeout=0\\n' >esp/EFI/BOOT/grub.cfg;"
           "head -c 3000 /dev/zero | tr '\\0' x >'esp/EFI/BOOT/A Long File Name.txt';"
           "mkfs.vfat -C -F 32 -n EFI-SYSTEM esp.img 34000 >/dev/null;"
           "mcopy -s -m -Q -i esp.img esp/EFI ::/;"
           "truncate -s 2M usr.img; mke2fs -q -t ext4 -F usr.img;"
           "'%s' -o disk.img --size 48M --seed s --part 1:EFI-SYSTEM:esp:34M:esp.img --part 2:BIOS-BOOT:bios:1M "
           "--part 3:USR-A:usr:2M:usr.img --part 4:USR-B:usr:2M:usr.img --part 6:OEM:linux:1M "
           "--part 9:ROOT:root:rest",
           d, mk);
}

/* A fresh copy of the fixture disk; returns its path (static buffer). */
static const char *fresh_disk(const char *name) {
        static char path[512];
        snprintf(path, sizeof path, "%s/%s", unit_tmpdir(), name);
        sh("cp --sparse=always '%s/disk.img' '%s'", unit_tmpdir(), path);
        return path;
}

static struct bootcfg *open_disk(const char *path, enum bootcfg_backend_id be, int booted) {
        char state_dir[512], err[256];
        snprintf(state_dir, sizeof state_dir, "%s/state", unit_tmpdir());
        struct bootcfg_options o = {
                .disk = path, .backend = be, .state_dir = state_dir, .booted = booted, .writable = true,
        };
        struct bootcfg *b = NULL;
        int r = bootcfg_open(&o, &b, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "bootcfg_open(%s): %s\n", path, err);
                exit(2);
        }
        return b;
}

static uint64_t file_offset(const char *disk, const char *path) {
        int fd = open(disk, O_RDONLY | O_CLOEXEC);
        struct fat_file f = { 0 };
        CHECK_EQ(fat_lookup(fd, ESP_OFFSET, 34u << 20, path, &f), 0);
        close(fd);
        return ESP_OFFSET + f.offset;
}

static bool same_bytes(const char *disk, uint64_t off, const uint8_t *want, size_t n) {
        uint8_t buf[64 * 512];
        int fd = open(disk, O_RDONLY | O_CLOEXEC);
        bool ok = fd >= 0 && n <= sizeof buf && pread_full(fd, buf, n, off) == 0 && memcmp(buf, want, n) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

/* ---- FAT ---- */

static void test_fat(void) {
        char path[512];
        snprintf(path, sizeof path, "%s/esp.img", unit_tmpdir());
        int fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        struct stat stt;
        CHECK_EQ(fstat(fd, &stt), 0);
        uint64_t size = (uint64_t)stt.st_size;
        struct fat_file f, g;
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv", &f), 0);
        CHECK_EQ(f.fat_bits, 32);
        CHECK_EQ(f.size, 1024);
        CHECK(f.contiguous);
        uint8_t blk[1024];
        CHECK_EQ(pread_full(fd, blk, 1024, f.offset), 0);
        CHECK(memcmp(blk, GRUBENV_SIGNATURE, strlen(GRUBENV_SIGNATURE)) == 0);
        CHECK_EQ(fat_lookup(fd, 0, size, "/efi/boot/GRUBENV.BAK", &g), 0);
        CHECK(g.offset != f.offset);
        CHECK_EQ(g.size, 1024);
        /* A long name (mcopy writes LFN entries + a generated 8.3 alias); both names work. */
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/a long file name.TXT", &g), 0);
        CHECK_EQ(g.size, 3000);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/ALONGF~1.TXT", &g), 0);
        CHECK_EQ(g.size, 3000);
        CHECK_EQ(pread_full(fd, blk, 16, g.offset), 0);
        CHECK(memcmp(blk, "xxxxxxxxxxxxxxxx", 16) == 0);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/nope", &g), -ENOENT);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT", &g), -EISDIR);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv/x", &g), -ENOENT);
        CHECK_EQ(fat_lookup(fd, 0, 4096, "EFI/BOOT/grubenv", &g), -EBADMSG); /* volume larger than the range */

        /* Fragment grubenv: its first cluster now points to the last cluster (free), which ends the chain. */
        uint8_t e[4];
        uint64_t fat_off = f.fat_offset;
        uint32_t c0 = f.first_cluster;
        CHECK_EQ(pread_full(fd, e, 4, fat_off + 4ull * c0), 0);
        uint32_t next = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
        CHECK_EQ(next & 0x0fffffff, c0 + 1);
        uint32_t far = c0 + 1000;
        uint8_t ptr[4] = { (uint8_t)far, (uint8_t)(far >> 8), (uint8_t)(far >> 16), 0 };
        uint8_t eoc[4] = { 0xff, 0xff, 0xff, 0x0f };
        CHECK_EQ(pwrite_full(fd, ptr, 4, fat_off + 4ull * c0), 0);
        CHECK_EQ(pwrite_full(fd, eoc, 4, fat_off + 4ull * far), 0);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv", &g), 0);
        CHECK(!g.contiguous);
        /* A chain that points at a free cluster is broken. */
        uint8_t zero[4] = { 0 };
        CHECK_EQ(pwrite_full(fd, zero, 4, fat_off + 4ull * far), 0);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv", &g), -EBADMSG);
        CHECK_EQ(pwrite_full(fd, e, 4, fat_off + 4ull * c0), 0); /* restore */
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv", &g), 0);
        CHECK(g.contiguous);
        /* Not a FAT volume. */
        uint8_t sig[2] = { 0, 0 }, good[2];
        CHECK_EQ(pread_full(fd, good, 2, 510), 0);
        CHECK_EQ(pwrite_full(fd, sig, 2, 510), 0);
        CHECK_EQ(fat_lookup(fd, 0, size, "EFI/BOOT/grubenv", &g), -EBADMSG);
        CHECK_EQ(pwrite_full(fd, good, 2, 510), 0);
        close(fd);

        /* FAT12 and FAT16 volumes (fixed root directory). */
        const char *d = unit_tmpdir();
        sh("set -e; cd '%s'; export MTOOLS_SKIP_CHECK=1; mkfs.vfat -C -F 12 f12.img 1024 >/dev/null;"
           "mkfs.vfat -C -F 16 f16.img 20000 >/dev/null;"
           "for f in f12 f16; do mmd -i $f.img ::/EFI ::/EFI/BOOT; mcopy -i $f.img esp/EFI/BOOT/grubenv ::/EFI/BOOT/;"
           "mcopy -i $f.img 'esp/EFI/BOOT/A Long File Name.txt' ::/EFI/BOOT/; done",
           d);
        const char *imgs[] = { "f12.img", "f16.img" };
        unsigned bits[] = { 12, 16 };
        for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "%s/%s", d, imgs[i]);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                CHECK(fd >= 0 && fstat(fd, &stt) == 0);
                CHECK_EQ(fat_lookup(fd, 0, (uint64_t)stt.st_size, "EFI/BOOT/grubenv", &g), 0);
                CHECK_EQ(g.fat_bits, bits[i]);
                CHECK_EQ(g.size, 1024);
                CHECK(g.contiguous);
                CHECK_EQ(pread_full(fd, blk, 1024, g.offset), 0);
                CHECK(memcmp(blk, GRUBENV_SIGNATURE, strlen(GRUBENV_SIGNATURE)) == 0);
                CHECK_EQ(fat_lookup(fd, 0, (uint64_t)stt.st_size, "efi/boot/A LONG FILE NAME.txt", &g), 0);
                CHECK_EQ(g.size, 3000);
                close(fd);
        }
}

/* One writer per disk: a second writable (or locking) open is refused at once, a reader is not. */
static void test_disk_lock(void) {
        const char *disk = fresh_disk("lock.img");
        char state_dir[512], err[320];
        snprintf(state_dir, sizeof state_dir, "%s/state", unit_tmpdir());
        struct bootcfg_options w = { .disk = disk, .state_dir = state_dir, .booted = A, .writable = true };
        struct bootcfg_options l = { .disk = disk, .state_dir = state_dir, .booted = A, .lock = true };
        struct bootcfg_options ro = { .disk = disk, .state_dir = state_dir, .booted = A };
        struct bootcfg *first = NULL, *second = NULL;
        CHECK_EQ(bootcfg_open(&w, &first, err, sizeof err), 0);
        err[0] = 0;
        CHECK_EQ(bootcfg_open(&w, &second, err, sizeof err), -EAGAIN);
        CHECK(second == NULL);
        CHECK(strstr(err, "is busy (held by another cairn process)") != NULL);
        CHECK_EQ(bootcfg_open(&l, &second, err, sizeof err), -EAGAIN);
        CHECK_EQ(bootcfg_open(&ro, &second, err, sizeof err), 0);
        struct bootcfg_state s;
        if (second) {
                CHECK_EQ(bootcfg_read(second, &s), 0);
                bootcfg_free(second);
                second = NULL;
        }
        /* The lock goes with the handle. */
        bootcfg_free(first);
        CHECK_EQ(bootcfg_open(&w, &second, err, sizeof err), 0);
        if (second)
                CHECK_EQ(bootcfg_mark_good(second, A, &s), 0);
        bootcfg_free(second);
}

/* ---- FAT cross-links: an env file whose clusters belong to another file (or to the other env file) ---- */

static uint32_t le32_at(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The clusters of a file or directory on a FAT image, from mtools' mshowfat ("::/EFI/BOOT <4>", "<10-49> <60>"):
 * an oracle independent of bootcfg/fat.c. Returns the count (at most max). */
static size_t mtools_chain(const char *img, const char *path, uint32_t *out, size_t max) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "MTOOLS_SKIP_CHECK=1 mshowfat -i '%s' '::%s'", img, path);
        char *o = sh_out(cmd);
        size_t n = 0;
        if (!o)
                return 0;
        for (char *p = strchr(o, '<'); p && n < max; p = strchr(p, '<')) {
                unsigned long a, b;
                int k = 0;
                if (sscanf(p, "<%lu-%lu>%n", &a, &b, &k) == 2 && k > 0) {
                } else if (sscanf(p, "<%lu>", &a) == 1)
                        b = a;
                else
                        break;
                for (unsigned long c = a; c <= b && n < max; c++)
                        out[n++] = (uint32_t)c;
                p++;
        }
        return n;
}

/* Point the directory entry of NAME11 (8.3 form, e.g. "GRUBENV BAK") in the directory DIR of the FAT32 image at
 * cluster first (the FAT is left alone, so the entry now shares another chain). */
static void repoint_entry(const char *img, const char *dir, const char *name11, uint32_t first) {
        uint32_t dc[16];
        size_t nd = mtools_chain(img, dir, dc, ELEMENTSOF(dc));
        CHECK(nd > 0);
        int fd = open(img, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        uint8_t bs[512];
        CHECK_EQ(pread_full(fd, bs, sizeof bs, 0), 0);
        uint32_t bps = bs[11] | bs[12] << 8, spc = bs[13], rsvd = bs[14] | bs[15] << 8, nfats = bs[16];
        uint64_t data = ((uint64_t)rsvd + (uint64_t)nfats * le32_at(bs + 36)) * bps, cb = (uint64_t)bps * spc;
        bool done = false;
        for (size_t i = 0; i < nd && !done; i++) {
                uint8_t buf[4096];
                CHECK(cb <= sizeof buf);
                uint64_t off = data + (uint64_t)(dc[i] - 2) * cb;
                CHECK_EQ(pread_full(fd, buf, cb, off), 0);
                for (size_t e = 0; e + 32 <= cb; e += 32)
                        if (memcmp(buf + e, name11, 11) == 0 && buf[e + 11] != 0x0f) {
                                uint8_t v[2] = { (uint8_t)(first >> 16), (uint8_t)(first >> 24) };
                                uint8_t w[2] = { (uint8_t)first, (uint8_t)(first >> 8) };
                                CHECK_EQ(pwrite_full(fd, v, 2, off + e + 20), 0);
                                CHECK_EQ(pwrite_full(fd, w, 2, off + e + 26), 0);
                                done = true;
                                break;
                        }
        }
        CHECK(done);
        close(fd);
}

static bool same_files(const char *a, const char *b) {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
        return system(cmd) == 0;
}

static void test_fat_crosslink(void) {
        const char *d = unit_tmpdir();
        char mk[1024], esp[600], disk[600], before[600];
        snprintf(mk, sizeof mk, "%s", mkdisk_path());
        if (mk[0] != '/') {
                char cwd[400];
                CHECK(getcwd(cwd, sizeof cwd) != NULL);
                snprintf(mk, sizeof mk, "%s/%s", cwd, mkdisk_path());
        }
        /* The fixture's ESP plus a GRUB binary of 20000 bytes (40 clusters of 512 bytes). */
        sh("set -e; cd '%s'; export MTOOLS_SKIP_CHECK=1; rm -rf xesp; mkdir -p xesp; cp -r esp/EFI xesp/;"
           "head -c 20000 /dev/zero | tr '\\0' G >xesp/EFI/BOOT/BOOTX64.EFI;"
           "mkfs.vfat -C -F 32 -n EFI-SYSTEM xesp.img 34000 >/dev/null; mcopy -s -m -Q -i xesp.img xesp/EFI ::/",
           d);
        snprintf(esp, sizeof esp, "%s/xesp.img", d);
        uint32_t grub[64], env[4], bak[4];
        size_t ng = mtools_chain(esp, "/EFI/BOOT/BOOTX64.EFI", grub, ELEMENTSOF(grub));
        size_t ne = mtools_chain(esp, "/EFI/BOOT/grubenv", env, ELEMENTSOF(env));
        size_t nb = mtools_chain(esp, "/EFI/BOOT/grubenv.bak", bak, ELEMENTSOF(bak));
        CHECK(ng == 40 && ne == 2 && nb == 2);
        if (ng != 40 || ne != 2 || nb != 2)
                return;

        enum { INTACT, ENV_ON_GRUB, BAK_ON_GRUB, BAK_ON_ENV };
        static const char *const names[] = { "intact", "grubenv on BOOTX64.EFI", "grubenv.bak on BOOTX64.EFI",
                                             "grubenv.bak on grubenv" };
        for (int c = INTACT; c <= BAK_ON_ENV; c++) {
                sh("cd '%s' && cp xesp.img xesp-%d.img", d, c);
                snprintf(esp, sizeof esp, "%s/xesp-%d.img", d, c);
                /* Pointed at the last two clusters of GRUB's chain, the chain length still matches 1024 bytes. */
                if (c == ENV_ON_GRUB)
                        repoint_entry(esp, "/EFI/BOOT", "GRUBENV    ", grub[ng - 2]);
                else if (c == BAK_ON_GRUB)
                        repoint_entry(esp, "/EFI/BOOT", "GRUBENV BAK", grub[ng - 2]);
                else if (c == BAK_ON_ENV)
                        repoint_entry(esp, "/EFI/BOOT", "GRUBENV BAK", env[0]);
                /* The check itself, on the ESP image: the exact line, naming both files and the cluster. */
                {
                        static const char *const paths[] = { GRUBENV_PATH, GRUBENV_BAK_PATH };
                        char why[256] = "", want[256] = "";
                        int fd = open(esp, O_RDONLY | O_CLOEXEC);
                        struct stat stt;
                        CHECK(fd >= 0 && fstat(fd, &stt) == 0);
                        int r = fat_check_exclusive(fd, 0, (uint64_t)stt.st_size, paths, 2, why, sizeof why);
                        close(fd);
                        if (c == ENV_ON_GRUB)
                                snprintf(want, sizeof want, "\"/EFI/BOOT/grubenv\" shares cluster %u with "
                                         "\"/EFI/BOOT/BOOTX64.EFI\"", grub[ng - 2]);
                        else if (c == BAK_ON_GRUB)
                                snprintf(want, sizeof want, "\"/EFI/BOOT/grubenv.bak\" shares cluster %u with "
                                         "\"/EFI/BOOT/BOOTX64.EFI\"", grub[ng - 2]);
                        else if (c == BAK_ON_ENV)
                                snprintf(want, sizeof want, "\"/EFI/BOOT/grubenv\" shares cluster %u with "
                                         "\"/EFI/BOOT/grubenv.bak\"", env[0]);
                        CHECK_EQ(r, c == INTACT ? 0 : -EBADMSG);
                        if (c != INTACT)
                                CHECK_STREQ(why, want);
                }
                sh("cd '%s' && rm -f xdisk-%d.img && '%s' -o xdisk-%d.img --size 48M --seed s "
                   "--part 1:EFI-SYSTEM:esp:34M:xesp-%d.img --part 2:BIOS-BOOT:bios:1M --part 3:USR-A:usr:2M:usr.img "
                   "--part 4:USR-B:usr:2M:usr.img --part 6:OEM:linux:1M --part 9:ROOT:root:rest",
                   d, c, mk, c, c);
                snprintf(disk, sizeof disk, "%s/xdisk-%d.img", d, c);
                snprintf(before, sizeof before, "%s/xdisk-%d.before", d, c);
                sh("cp '%s' '%s'", disk, before);

                /* Every verb that writes the env files: set-next (a write of both), repair (which, with the
                 * primary unreadable, copies .bak over it). */
                struct bootcfg *b = open_disk(disk, BOOTCFG_BACKEND_GRUBENV, A);
                int r = bootcfg_set_next(b, B, BOOTCFG_FORCE, NULL);
                const char *e = bootcfg_error(b);
                if (c == INTACT) {
                        CHECK_EQ(r, 0);
                        CHECK(!same_files(disk, before)); /* the fixture is writable: refusals below are real */
                        bootcfg_free(b);
                        continue;
                }
                if (r >= 0)
                        fprintf(stderr, "%s: set-next returned %d: %s\n", names[c], r, e);
                CHECK(r < 0);
                if (c == ENV_ON_GRUB)
                        /* Either refusal is right here (its bytes are no env block); repair below is the write. */
                        CHECK(strstr(e, "BOOTX64.EFI") != NULL || strstr(e, "corrupt") != NULL);
                else
                        CHECK(strstr(e, c == BAK_ON_ENV ? "/EFI/BOOT/grubenv" : "/EFI/BOOT/BOOTX64.EFI") != NULL &&
                              strstr(e, "shares cluster") != NULL);
                r = bootcfg_repair(b);
                e = bootcfg_error(b);
                if (r >= 0 || !strstr(e, "shares cluster"))
                        fprintf(stderr, "%s: repair returned %d: %s\n", names[c], r, e);
                CHECK(r < 0);
                CHECK(strstr(e, "shares cluster") != NULL);
                CHECK(same_files(disk, before)); /* nothing written: GRUB's binary and both env copies intact */
                bootcfg_free(b);
        }

        /* Another file's chain that runs into a free cluster, or loops: the walk ends (a loop at the first cluster
         * seen twice), and a broken chain is refused, naming the file. */
        snprintf(esp, sizeof esp, "%s/xesp-0.img", d);
        int fd = open(esp, O_RDWR | O_CLOEXEC);
        struct stat stt;
        CHECK(fd >= 0 && fstat(fd, &stt) == 0);
        uint8_t bs[512];
        CHECK_EQ(pread_full(fd, bs, sizeof bs, 0), 0);
        uint64_t fat = (uint64_t)(bs[14] | bs[15] << 8) * (uint64_t)(bs[11] | bs[12] << 8);
        static const char *const paths[] = { GRUBENV_PATH, GRUBENV_BAK_PATH };
        char why[256] = "";
        uint8_t loop[4] = { (uint8_t)grub[0], (uint8_t)(grub[0] >> 8), (uint8_t)(grub[0] >> 16), 0 }, freed[4] = { 0 };
        CHECK_EQ(pwrite_full(fd, loop, 4, fat + 4ull * grub[ng - 1]), 0);
        CHECK_EQ(fat_check_exclusive(fd, 0, (uint64_t)stt.st_size, paths, 2, why, sizeof why), 0);
        CHECK_EQ(pwrite_full(fd, freed, 4, fat + 4ull * grub[ng - 1]), 0);
        CHECK_EQ(fat_check_exclusive(fd, 0, (uint64_t)stt.st_size, paths, 2, why, sizeof why), -EBADMSG);
        CHECK_STREQ(why, "the cluster chain of \"/EFI/BOOT/BOOTX64.EFI\" is broken (free or bad cluster)");
        /* A path that is no file. */
        static const char *const missing[] = { "EFI/BOOT/nope" };
        CHECK_EQ(fat_check_exclusive(fd, 0, (uint64_t)stt.st_size, missing, 1, why, sizeof why), -ENOENT);
        close(fd);
}

/* ---- Backends on a disk image ---- */

static void editenv_list(const char *disk, const char *file, char *out, size_t size) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && MTOOLS_SKIP_CHECK=1 mcopy -o -i '%s@@1M' ::/EFI/BOOT/%s x.env && grub-editenv x.env list",
                 unit_tmpdir(), disk, file);
        char *r = sh_out(cmd);
        snprintf(out, size, "%s", r ? r : "(failed)");
}

static void test_grubenv_backend(void) {
        const char *disk = fresh_disk("ge.img");
        _cleanup_bootcfg_ struct bootcfg *b = open_disk(disk, BOOTCFG_BACKEND_GRUBENV, B);
        struct bootcfg_state s, want = st(1, 0, true, 0, 0, false);
        CHECK_EQ(bootcfg_read(b, &s), 0);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_booted(b), B);

        /* Guard rails: B holds ext4 but is not verified; an empty B is refused even when verified. */
        CHECK_EQ(bootcfg_set_next(b, B, 0, NULL), -ENOKEY);
        CHECK(strstr(bootcfg_error(b), "not verified") != NULL);
        CHECK_EQ(bootcfg_set_next(b, B, BOOTCFG_VERIFIED, &s), 0);
        want = st(1, 0, true, 2, 1, false);
        CHECK(st_eq(&s, &want));
        char out[1024];
        editenv_list(disk, "grubenv", out, sizeof out);
        CHECK(strstr(out, "B_PRIORITY=2\nB_TRIES=1\nB_SUCCESSFUL=0\n") != NULL);
        CHECK(strstr(out, "A_PRIORITY=1\nA_TRIES=0\nA_SUCCESSFUL=1\n") != NULL);
        editenv_list(disk, "grubenv.bak", out, sizeof out);
        CHECK(strstr(out, "B_PRIORITY=2\nB_TRIES=1\n") != NULL);

        CHECK_EQ(bootcfg_mark_good(b, -1, &s), 0); /* booted = B */
        want = st(1, 0, true, 2, 0, true);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_rollback(b, &s), 0);
        want = st(3, 0, true, 2, 0, true);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_mark_bad(b, B, 0, &s), 0);
        CHECK_EQ(bootcfg_mark_bad(b, A, 0, &s), -EBUSY);

        /* We read what grub-editenv writes (set in the extracted copy, put back in place with mcopy -o: same
         * size, same clusters). */
        sh("cd '%s' && export MTOOLS_SKIP_CHECK=1 && mcopy -o -i '%s@@1M' ::/EFI/BOOT/grubenv y.env && "
           "grub-editenv y.env set B_PRIORITY=7 B_TRIES=3 B_SUCCESSFUL=0 && mcopy -o -i '%s@@1M' y.env ::/EFI/BOOT/grubenv",
           unit_tmpdir(), disk, disk);
        CHECK_EQ(bootcfg_read(b, &s), 0);
        want = st(3, 0, true, 7, 3, false);
        CHECK(st_eq(&s, &want));

        /* Verification records: verify with the right hash (usr.img is also B's first 2 MiB). */
        char hex[80], cmd[600];
        snprintf(cmd, sizeof cmd, "sha256sum '%s/usr.img' | cut -c1-64", unit_tmpdir());
        snprintf(hex, sizeof hex, "%.64s", sh_out(cmd));
        CHECK_EQ(bootcfg_is_verified(b, B), 0);
        CHECK_EQ(bootcfg_verify(b, B, "00", 0), -EINVAL);
        CHECK_EQ(bootcfg_verify(b, B, hex, 1024), -EBADMSG);
        CHECK_EQ(bootcfg_verify(b, B, hex, 0), 0); /* whole partition = 2 MiB = usr.img */
        CHECK_EQ(bootcfg_is_verified(b, B), 1);
        CHECK_EQ(bootcfg_is_verified(b, A), 0);
        CHECK_EQ(bootcfg_set_next(b, B, 0, &s), 0);
        CHECK_EQ(bootcfg_unverify(b, B), 0);
        CHECK_EQ(bootcfg_is_verified(b, B), 0);
        CHECK_EQ(bootcfg_set_next(b, B, 0, NULL), -ENOKEY);
        CHECK_EQ(bootcfg_verify(b, B, hex, 4u << 20), -EFBIG);

        /* Empty slot: wipe B's superblock magic. */
        int fd = open(disk, O_RDWR | O_CLOEXEC);
        uint8_t z[2] = { 0, 0 };
        CHECK_EQ(pwrite_full(fd, z, 2, b->usr[B].offset + 1080), 0);
        close(fd);
        CHECK_EQ(bootcfg_set_next(b, B, BOOTCFG_VERIFIED, NULL), -ENOMEDIUM);
        CHECK(strstr(bootcfg_error(b), "no ext4") != NULL);
        CHECK_EQ(bootcfg_set_next(b, B, BOOTCFG_FORCE, &s), 0);
}

static void test_grubenv_corrupt(void) {
        const char *disk = fresh_disk("gec.img");
        uint64_t prim = file_offset(disk, "EFI/BOOT/grubenv"), bak = file_offset(disk, "EFI/BOOT/grubenv.bak");
        int fd = open(disk, O_RDWR | O_CLOEXEC);
        uint8_t blk[1024], bakblk[1024];
        CHECK_EQ(pread_full(fd, blk, 1024, prim), 0);
        CHECK_EQ(pread_full(fd, bakblk, 1024, bak), 0);
        uint8_t *v = memmem(blk, sizeof blk, "A_PRIORITY=1", 12);
        CHECK(v != NULL);
        if (v)
                v[11] = 'x';
        CHECK_EQ(pwrite_full(fd, blk, 1024, prim), 0);
        close(fd);
        _cleanup_bootcfg_ struct bootcfg *b = open_disk(disk, BOOTCFG_BACKEND_GRUBENV, A);
        struct bootcfg_state s;
        CHECK_EQ(bootcfg_read(b, &s), -EBADMSG);
        CHECK(strstr(bootcfg_error(b), "corrupt") != NULL);
        CHECK(strstr(bootcfg_error(b), "/EFI/BOOT/grubenv") != NULL);
        CHECK_EQ(bootcfg_set_next(b, B, BOOTCFG_VERIFIED, NULL), -EBADMSG);
        CHECK_EQ(bootcfg_mark_good(b, A, NULL), -EBADMSG);
        CHECK_EQ(bootcfg_mark_bad(b, B, BOOTCFG_FORCE, NULL), -EBADMSG);
        CHECK_EQ(bootcfg_rollback(b, NULL), -EBADMSG);
        /* Nothing was rewritten. */
        CHECK(same_bytes(disk, prim, blk, 1024));
        CHECK(same_bytes(disk, bak, bakblk, 1024));
        /* The loader would use the copy. */
        CHECK_EQ(bootcfg_read_as_loader(b, &s), 0);
        CHECK_EQ(bootcfg_pick(&s, NULL), A);
        /* Explicit repair copies .bak over the primary. */
        CHECK_EQ(bootcfg_repair(b), 1);
        CHECK(same_bytes(disk, prim, bakblk, 1024));
        CHECK_EQ(bootcfg_repair(b), 0);
        CHECK_EQ(bootcfg_read(b, &s), 0);

        /* Fragmented primary: refused with a clear message. */
        const char *disk2 = fresh_disk("gef.img");
        fd = open(disk2, O_RDWR | O_CLOEXEC);
        struct fat_file f = { 0 };
        CHECK_EQ(fat_lookup(fd, ESP_OFFSET, 34u << 20, "EFI/BOOT/grubenv", &f), 0);
        uint32_t far = f.first_cluster + 1000;
        uint8_t ptr[4] = { (uint8_t)far, (uint8_t)(far >> 8), (uint8_t)(far >> 16), 0 };
        uint8_t eoc[4] = { 0xff, 0xff, 0xff, 0x0f };
        CHECK_EQ(pwrite_full(fd, ptr, 4, ESP_OFFSET + f.fat_offset + 4ull * f.first_cluster), 0);
        CHECK_EQ(pwrite_full(fd, eoc, 4, ESP_OFFSET + f.fat_offset + 4ull * far), 0);
        close(fd);
        _cleanup_bootcfg_ struct bootcfg *b2 = open_disk(disk2, BOOTCFG_BACKEND_GRUBENV, A);
        CHECK_EQ(bootcfg_read(b2, &s), -EXDEV);
        CHECK(strstr(bootcfg_error(b2), "fragmented") != NULL);
}

static char *sgdisk_info(const char *disk, int part) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "sgdisk -i %d '%s' | grep 'Attribute flags'", part, disk);
        return sh_out(cmd);
}

static void test_gpt_backend(void) {
        const char *disk = fresh_disk("gp.img");
        _cleanup_bootcfg_ struct bootcfg *b = open_disk(disk, BOOTCFG_BACKEND_GPT, A);
        struct bootcfg_state s, want = st(0, 0, false, 0, 0, false);
        CHECK_EQ(bootcfg_read(b, &s), 0); /* cairn-mkdisk writes no attributes */
        CHECK(st_eq(&s, &want));
        /* We read what sgdisk writes: A priority 1 (bit 48), successful (bit 56). */
        sh("sgdisk -A 3:set:48 -A 3:set:56 '%s' >/dev/null", disk);
        CHECK_EQ(bootcfg_read(b, &s), 0);
        want = st(1, 0, true, 0, 0, false);
        CHECK(st_eq(&s, &want));
        CHECK_EQ(bootcfg_set_next(b, B, BOOTCFG_VERIFIED, &s), 0);
        want = st(1, 0, true, 2, 1, false);
        CHECK(st_eq(&s, &want));
        /* sgdisk reads what we wrote: B = prio 2 (bit 49), tries 1 (bit 52) -> 0x0012000000000000. */
        char *o = sgdisk_info(disk, 4);
        CHECK(o && strstr(o, "0012000000000000") != NULL);
        o = sgdisk_info(disk, 3);
        CHECK(o && strstr(o, "0101000000000000") != NULL);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "sgdisk -v '%s'", disk);
        o = sh_out(cmd);
        CHECK(o && strstr(o, "No problems found") != NULL);
        CHECK_EQ(bootcfg_mark_good(b, B, &s), 0);
        o = sgdisk_info(disk, 4);
        CHECK(o && strstr(o, "0102000000000000") != NULL);
        CHECK_EQ(bootcfg_mark_bad(b, A, 0, &s), 0);
        CHECK_EQ(bootcfg_mark_bad(b, B, 0, &s), -EBUSY);
        CHECK_EQ(bootcfg_rollback(b, &s), 0); /* booted A, B good: B stays next */
        CHECK_EQ(bootcfg_pick(&s, NULL), B);

        /* CRC mismatch in the primary entries: every verb refuses, nothing is rewritten. */
        int fd = open(disk, O_RDWR | O_CLOEXEC);
        uint8_t before[34 * 512], flip;
        CHECK_EQ(pread_full(fd, before, sizeof before, 0), 0);
        flip = before[2 * 512 + 2 * 128 + 40] ^ 0x80; /* entry 3 (USR-A), first LBA */
        CHECK_EQ(pwrite_full(fd, &flip, 1, 2 * 512 + 2 * 128 + 40), 0);
        CHECK_EQ(pread_full(fd, before, sizeof before, 0), 0);
        close(fd);
        CHECK_EQ(bootcfg_read(b, &s), -EBADMSG);
        CHECK(strstr(bootcfg_error(b), "CRC") != NULL);
        CHECK_EQ(bootcfg_set_next(b, A, BOOTCFG_FORCE, NULL), -EBADMSG);
        CHECK_EQ(bootcfg_mark_good(b, B, NULL), -EBADMSG);
        CHECK(same_bytes(disk, 0, before, sizeof before));
        /* The loader still gets a valid copy (the backup); repair rewrites the primary from it. */
        CHECK_EQ(bootcfg_read_as_loader(b, &s), 0);
        CHECK_EQ(bootcfg_pick(&s, NULL), B);
        CHECK_EQ(bootcfg_repair(b), 1);
        CHECK_EQ(bootcfg_repair(b), 0);
        CHECK_EQ(bootcfg_read(b, &s), 0);
        CHECK_EQ(bootcfg_pick(&s, NULL), B);
}

/* ---- Crash safety: cut every verb's write sequence after k sectors ---- */

struct rec_write {
        uint64_t off;
        uint8_t data[512], orig[512];
};
struct recorder {
        struct rec_write w[128];
        size_t n;
        unsigned syncs;
        bool overflow;
};

/* Record the writes sector by sector (with the bytes they replace) instead of doing them. */
static int rec_write(void *userdata, int fd, const void *buf, size_t len, uint64_t off) {
        struct recorder *r = userdata;
        if (len % 512 || off % 512)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 512) {
                if (r->n >= ELEMENTSOF(r->w)) {
                        r->overflow = true;
                        return -ENOSPC;
                }
                struct rec_write *w = &r->w[r->n++];
                w->off = off + i;
                memcpy(w->data, (const uint8_t *)buf + i, 512);
                int q = pread_full(fd, w->orig, 512, w->off);
                if (q < 0)
                        return q;
        }
        return 0;
}
static int rec_sync(void *userdata, int fd) {
        ((struct recorder *)userdata)->syncs++;
        return 0;
}

enum verb { V_SET_NEXT, V_MARK_GOOD, V_MARK_BAD, V_ROLLBACK };
struct scenario {
        const char *name;
        struct bootcfg_state start;
        int booted;
        enum verb verb;
        int slot;
        unsigned flags;
        bool corrupt_bak; /* grubenv: the copy is garbage before the verb runs */
};

static int run_verb(struct bootcfg *b, const struct scenario *sc, struct bootcfg_state *ret) {
        switch (sc->verb) {
        case V_SET_NEXT:
                return bootcfg_set_next(b, sc->slot, BOOTCFG_VERIFIED | sc->flags, ret);
        case V_MARK_GOOD:
                return bootcfg_mark_good(b, sc->slot, ret);
        case V_MARK_BAD:
                return bootcfg_mark_bad(b, sc->slot, sc->flags, ret);
        case V_ROLLBACK:
                return bootcfg_rollback(b, ret);
        }
        return -EINVAL;
}

/* Run the verb with a recorder, then replay every prefix of its sector writes on the disk: a clean cut after k
 * sectors, and a cut where sector k was in flight and came out as garbage. Each must leave a state from which the
 * loader boots the slot the old state booted or the one the new state boots. Returns the number of bad cuts. */
static int crash_one(enum bootcfg_backend_id be, const struct scenario *sc) {
        const char *disk = fresh_disk("crash.img");
        _cleanup_bootcfg_ struct bootcfg *b = open_disk(disk, be, sc->booted);
        CHECK_EQ(b->backend->write(b, &sc->start), 0);
        struct bootcfg_state old, s, after;
        CHECK_EQ(bootcfg_read(b, &old), 0);
        CHECK(st_eq(&old, &sc->start));
        int old_pick = bootcfg_pick(&old, NULL);
        CHECK(old_pick >= 0);
        if (sc->corrupt_bak) {
                int fd = open(disk, O_RDWR | O_CLOEXEC);
                uint8_t junk[1024];
                memset(junk, 'J', sizeof junk);
                CHECK_EQ(pwrite_full(fd, junk, sizeof junk, file_offset(disk, "EFI/BOOT/grubenv.bak")), 0);
                close(fd);
        }

        struct recorder rec = { .n = 0 };
        const struct bootcfg_io io = { .write = rec_write, .sync = rec_sync, .userdata = &rec };
        bootcfg_set_io(b, &io);
        int r = run_verb(b, sc, &after);
        bootcfg_set_io(b, NULL);
        CHECK_EQ(r, 0);
        CHECK(!rec.overflow);
        CHECK(rec.n >= 2);
        CHECK(rec.syncs >= 2);
        int new_pick = bootcfg_pick(&after, NULL);

        int bad = 0, fd = open(disk, O_RDWR | O_CLOEXEC);
        uint8_t garbage[512];
        memset(garbage, 0xA5, sizeof garbage);
        for (size_t k = 0; k <= rec.n; k++)
                for (int garble = 0; garble < (k < rec.n ? 2 : 1); garble++) {
                        for (size_t i = 0; i < k; i++)
                                CHECK_EQ(pwrite_full(fd, rec.w[i].data, 512, rec.w[i].off), 0);
                        if (garble)
                                CHECK_EQ(pwrite_full(fd, garbage, 512, rec.w[k].off), 0);
                        int pick = -1;
                        r = bootcfg_read_as_loader(b, &s);
                        if (r == 0)
                                pick = bootcfg_pick(&s, NULL);
                        if (r < 0 || pick < 0 || (pick != old_pick && pick != new_pick)) {
                                if (!getenv("QUIET_CRASH"))
                                        fprintf(stderr, "%s/%s: cut after %zu of %zu sector writes%s: read %d (%s), "
                                                "boots %d (old %d, new %d)\n", bootcfg_backend_name(be), sc->name,
                                                k, rec.n, garble ? " + garbage in the next" : "", r, bootcfg_error(b),
                                                pick, old_pick, new_pick);
                                bad++;
                        }
                        if (k == rec.n) {
                                CHECK_EQ(bootcfg_read(b, &s), 0); /* complete sequence: strictly valid, new state */
                                CHECK(st_eq(&s, &after));
                        }
                        if (garble)
                                CHECK_EQ(pwrite_full(fd, rec.w[k].orig, 512, rec.w[k].off), 0);
                        for (size_t i = k; i-- > 0;)
                                CHECK_EQ(pwrite_full(fd, rec.w[i].orig, 512, rec.w[i].off), 0);
                }
        close(fd);
        if (!sc->corrupt_bak) {
                CHECK_EQ(bootcfg_read(b, &s), 0);
                CHECK(st_eq(&s, &old)); /* fully restored: the recorder never wrote */
        }
        return bad;
}

static void test_crash_prefixes(void) {
        const struct scenario sc[] = {
                { "set-next B", st(1, 0, true, 0, 0, false), A, V_SET_NEXT, B, 0, false },
                { "set-next B at 15", st(15, 0, true, 3, 0, true), A, V_SET_NEXT, B, 0, false },
                { "set-next A over pending B", st(1, 0, true, 2, 1, false), A, V_SET_NEXT, A, 0, false },
                { "mark-good B", st(1, 0, true, 2, 0, false), B, V_MARK_GOOD, -1, 0, false },
                { "mark-good booted A", st(1, 1, false, 0, 0, false), A, V_MARK_GOOD, -1, 0, false },
                { "mark-bad pending B", st(1, 0, true, 2, 1, false), A, V_MARK_BAD, B, 0, false },
                { "mark-bad A, B good", st(1, 0, true, 2, 0, true), B, V_MARK_BAD, A, 0, false },
                { "rollback B to A", st(1, 0, true, 2, 0, true), B, V_ROLLBACK, -1, 0, false },
        };
        for (int be = 0; be < 2; be++)
                for (size_t i = 0; i < ELEMENTSOF(sc); i++)
                        CHECK_EQ(crash_one((enum bootcfg_backend_id)be, &sc[i]), 0);
        /* The copy is garbage beforehand: writing it first is what keeps an in-flight primary sector safe. */
        struct scenario bak = sc[0];
        bak.name = "set-next B, .bak corrupt";
        bak.corrupt_bak = true;
        CHECK_EQ(crash_one(BOOTCFG_BACKEND_GRUBENV, &bak), 0);

        /* The checker is not vacuous: a forced mark-bad of the only good slot must be caught. */
        setenv("QUIET_CRASH", "1", 1);
        const struct scenario unsafe = { "forced mark-bad A", st(1, 0, true, 0, 0, false), A, V_MARK_BAD, A,
                                         BOOTCFG_FORCE, false };
        for (int be = 0; be < 2; be++)
                CHECK(crash_one((enum bootcfg_backend_id)be, &unsafe) > 0);
        unsetenv("QUIET_CRASH");
}

int main(void) {
        RUN(test_pick);
        RUN(test_transitions);
        RUN(test_update_cycle);
        RUN(test_grubenv_parse);
        if (!have_tools()) {
                printf("skip: disk tests need cairn-mkdisk (build/bin), mkfs.vfat, mcopy, grub-editenv, mke2fs, sgdisk\n");
                return unit_failures ? 1 : 77;
        }
        build_fixture();
        RUN(test_fat);
        RUN(test_fat_crosslink);
        RUN(test_disk_lock);
        RUN(test_grubenv_backend);
        RUN(test_grubenv_corrupt);
        RUN(test_gpt_backend);
        RUN(test_crash_prefixes);
        return unit_main_end();
}
