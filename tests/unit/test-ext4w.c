/* tests/unit/test-ext4w.c — builds ext4 images from a tar and a directory and reads them back with debugfs/e2fsck. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "unit.h"
#include "image/ext4w.h"
#include "fileio.h"
#include "image/input.h"
#include "macro.h"

static char tarpath[512], srcdir[512], slow_target[201];
static uint8_t capval[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00 }; /* v2, cap_net_bind_service */

/* Run a shell command, return its stdout (static buffer). */
static const char *sh(const char *fmt, ...) _printf_(1, 2);
static const char *sh(const char *fmt, ...) {
        static char out[65536];
        char cmd[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        out[0] = 0;
        FILE *p = popen(cmd, "r");
        if (!p)
                return out;
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        pclose(p);
        return out;
}

static void tar_add(struct archive *a, const char *path, mode_t mode, int uid, const void *data, size_t len,
                    const char *link, const char *hardlink, bool with_cap, size_t logical_size) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, path);
        archive_entry_set_mode(e, mode);
        archive_entry_set_uid(e, uid);
        archive_entry_set_gid(e, uid);
        archive_entry_set_mtime(e, 1600000000, 0);
        if (link)
                archive_entry_set_symlink(e, link);
        if (hardlink)
                archive_entry_set_hardlink(e, hardlink);
        if (with_cap)
                archive_entry_xattr_add_entry(e, "security.capability", capval, sizeof capval);
        if (logical_size) { /* data only in the last len bytes */
                archive_entry_set_size(e, (la_int64_t)logical_size);
                archive_entry_sparse_add_entry(e, (la_int64_t)(logical_size - len), (la_int64_t)len);
        } else
                archive_entry_set_size(e, S_ISREG(mode) && !hardlink ? (la_int64_t)len : 0);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        if (logical_size) { /* the writer takes the whole logical stream and keeps only the data regions */
                uint8_t *full = calloc(1, logical_size);
                memcpy(full + logical_size - len, data, len);
                CHECK(archive_write_data(a, full, logical_size) == (la_ssize_t)logical_size);
                free(full);
        } else if (data && len)
                CHECK(archive_write_data(a, data, len) == (la_ssize_t)len);
        archive_entry_free(e);
}

static void make_inputs(void) {
        const char *t = unit_tmpdir();
        snprintf(tarpath, sizeof tarpath, "%s/in.tar.gz", t);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        archive_write_add_filter_gzip(a);
        CHECK(archive_write_open_filename(a, tarpath) == ARCHIVE_OK);
        static uint8_t tail[4096];
        memset(tail, 'Z', sizeof tail);
        memset(slow_target, 's', 200);
        tar_add(a, "./", S_IFDIR | 0755, 0, NULL, 0, NULL, NULL, false, 0);
        tar_add(a, "./hello", S_IFREG | 0644, 0, "hello world\n", 12, NULL, NULL, false, 0);
        tar_add(a, "./empty", S_IFREG | 0600, 0, NULL, 0, NULL, NULL, false, 0);
        tar_add(a, "./sparse", S_IFREG | 0644, 0, tail, sizeof tail, NULL, NULL, false, 1 << 20);
        tar_add(a, "./tmp/", S_IFDIR | 01777, 0, NULL, 0, NULL, NULL, false, 0);
        tar_add(a, "./usr/bin/suid", S_IFREG | 04755, 1000, "#!/bin/sh\n", 10, NULL, NULL, false, 0);
        tar_add(a, "./fast", S_IFLNK | 0777, 0, NULL, 0, "usr/bin/suid", NULL, false, 0);
        tar_add(a, "./slow", S_IFLNK | 0777, 0, NULL, 0, slow_target, NULL, false, 0);
        tar_add(a, "./hl1", S_IFREG | 0644, 0, "linked\n", 7, NULL, NULL, false, 0);
        tar_add(a, "./hl2", S_IFREG | 0644, 0, NULL, 0, NULL, "./hl1", false, 0);
        tar_add(a, "./cap", S_IFREG | 0755, 0, "bin", 3, NULL, NULL, true, 0);
        tar_add(a, "./over", S_IFREG | 0644, 0, "first", 5, NULL, NULL, false, 0);
        tar_add(a, "./over", S_IFLNK | 0777, 0, NULL, 0, "hello", NULL, false, 0);
        tar_add(a, "./dev/null", S_IFCHR | 0666, 0, NULL, 0, NULL, NULL, false, 0);
        CHECK(archive_write_close(a) == ARCHIVE_OK);
        archive_write_free(a);

        snprintf(srcdir, sizeof srcdir, "%s/src", t);
        CHECK(mkdir(srcdir, 0755) == 0);
        char p[600], q[600];
        snprintf(p, sizeof p, "%s/fromdir", srcdir);
        CHECK(mkdir(p, 0750) == 0);
        snprintf(p, sizeof p, "%s/fromdir/a", srcdir);
        CHECK(write_file_atomic(p, "dir file\n", 9, 0640) == 0);
        snprintf(q, sizeof q, "%s/fromdir/a-link", srcdir);
        CHECK(link(p, q) == 0);
        snprintf(p, sizeof p, "%s/hello", srcdir); /* overrides the tar's /hello */
        CHECK(write_file_atomic(p, "from dir\n", 9, 0644) == 0);
}

static int build(const char *out, const char *seed, uint64_t size, char *const *inputs, size_t n, struct img_err *err) {
        struct ext4w_params p = { .size = size, .label = "TEST", .seed = seed, .epoch = 1700000000, .journal = true };
        struct ext4w *w = NULL;
        memset(err, 0, sizeof *err);
        int r = ext4w_create(out, &p, err, &w);
        if (r < 0)
                return r;
        r = input_run(NULL, inputs, n, ROOT_MODE_PLAIN, &ext4w_sink, w, err);
        if (r < 0) {
                ext4w_abort(w);
                return r;
        }
        return ext4w_finish(w);
}

static char img[512];

static void test_build_and_read_back(void) {
        make_inputs();
        snprintf(img, sizeof img, "%s/a.img", unit_tmpdir());
        char *inputs[] = { tarpath, srcdir };
        struct img_err err;
        int r = build(img, "s1", 32 << 20, inputs, 2, &err);
        if (r < 0)
                fprintf(stderr, "build: %s\n", err.msg);
        CHECK_EQ(r, 0);

        CHECK_STREQ(sh("e2fsck -fn '%s' >/dev/null 2>&1; echo $?", img), "0\n");
        CHECK_STREQ(sh("debugfs -R 'cat /hello' '%s' 2>/dev/null", img), "from dir\n");
        CHECK(strstr(sh("debugfs -R 'stat /empty' '%s' 2>/dev/null", img), "Size: 0"));
        CHECK(strstr(sh("debugfs -R 'stat /empty' '%s' 2>/dev/null", img), "Mode:  0600"));
        const char *st = sh("debugfs -R 'stat /sparse' '%s' 2>/dev/null", img);
        CHECK(strstr(st, "Size: 1048576"));
        CHECK(strstr(st, "Blockcount: 8\n")); /* one 4 KiB block */
        char dumped[600];
        snprintf(dumped, sizeof dumped, "%s/sparse.out", unit_tmpdir());
        sh("debugfs -R 'dump /sparse %s' '%s' 2>/dev/null", dumped, img);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        CHECK(read_file_bounded(dumped, 2 << 20, &buf, &len) == 0);
        CHECK_EQ(len, 1 << 20);
        if (len == 1 << 20) {
                CHECK(buf[0] == 0 && buf[(1 << 20) - 4097] == 0);
                CHECK(buf[(1 << 20) - 4096] == 'Z' && buf[(1 << 20) - 1] == 'Z');
        }
        CHECK(strstr(sh("debugfs -R 'stat /tmp' '%s' 2>/dev/null", img), "Mode:  01777"));
        st = sh("debugfs -R 'stat /usr/bin/suid' '%s' 2>/dev/null", img);
        CHECK(strstr(st, "Mode:  04755"));
        CHECK(strstr(st, "User:  1000   Group:  1000"));
        CHECK(strstr(sh("debugfs -R 'stat /fast' '%s' 2>/dev/null", img), "Fast link dest: \"usr/bin/suid\""));
        st = sh("debugfs -R 'stat /slow' '%s' 2>/dev/null", img);
        CHECK(strstr(st, "Type: symlink"));
        CHECK(strstr(st, "Size: 200"));
        CHECK(strstr(st, "Blockcount: 8"));
        CHECK_STREQ(sh("debugfs -R 'cat /slow' '%s' 2>/dev/null | head -c 200", img), slow_target);
        st = sh("debugfs -R 'stat /hl1' '%s' 2>/dev/null | head -1", img);
        char ino1[64] = "", ino2[64] = "";
        sscanf(st, "Inode: %63s", ino1);
        sscanf(sh("debugfs -R 'stat /hl2' '%s' 2>/dev/null | head -1", img), "Inode: %63s", ino2);
        CHECK(ino1[0] && strcmp(ino1, ino2) == 0);
        CHECK(strstr(sh("debugfs -R 'stat /hl2' '%s' 2>/dev/null", img), "Links: 2"));
        CHECK_STREQ(sh("debugfs -R 'cat /hl2' '%s' 2>/dev/null", img), "linked\n");
        char capout[600];
        snprintf(capout, sizeof capout, "%s/cap.out", unit_tmpdir());
        sh("debugfs -R 'ea_get -f %s /cap security.capability' '%s' 2>/dev/null", capout, img);
        _cleanup_free_ char *cap = NULL;
        CHECK(read_file_bounded(capout, 4096, &cap, &len) == 0);
        CHECK(len == sizeof capval && cap && memcmp(cap, capval, sizeof capval) == 0);
        st = sh("debugfs -R 'stat /over' '%s' 2>/dev/null", img);
        CHECK(strstr(st, "Type: symlink"));
        CHECK(strstr(st, "Fast link dest: \"hello\""));
        CHECK(strstr(sh("debugfs -R 'stat /dev/null' '%s' 2>/dev/null", img), "Type: character special"));
        /* directory input: mode, contents, hard link pair */
        CHECK(strstr(sh("debugfs -R 'stat /fromdir' '%s' 2>/dev/null", img), "Mode:  0750"));
        CHECK_STREQ(sh("debugfs -R 'cat /fromdir/a-link' '%s' 2>/dev/null", img), "dir file\n");
        CHECK(strstr(sh("debugfs -R 'stat /fromdir/a' '%s' 2>/dev/null", img), "Links: 2"));
        /* every timestamp is the epoch or older */
        CHECK(strstr(sh("debugfs -R 'stat /hello' '%s' 2>/dev/null", img), "ctime: 0x6553f100:00000000"));
        CHECK(strstr(sh("debugfs -R 'stat /usr/bin/suid' '%s' 2>/dev/null", img), "mtime: 0x5f5e1000:00000000"));
        CHECK(strstr(sh("dumpe2fs -h '%s' 2>/dev/null", img), "Last write time:          Tue Nov 14 22:13:20 2023"));
        CHECK(strstr(sh("dumpe2fs -h '%s' 2>/dev/null", img), "resize_inode"));
}

static void test_reproducible_and_seed(void) {
        char b[600], c[600];
        snprintf(b, sizeof b, "%s/sub", unit_tmpdir());
        mkdir(b, 0755);
        snprintf(b, sizeof b, "%s/sub/b.img", unit_tmpdir());
        snprintf(c, sizeof c, "%s/c.img", unit_tmpdir());
        char *inputs[] = { tarpath, srcdir };
        struct img_err err;
        CHECK_EQ(build(b, "s1", 32 << 20, inputs, 2, &err), 0);
        CHECK_EQ(build(c, "s2", 32 << 20, inputs, 2, &err), 0);
        char ha[128], hb[128], hc[128];
        snprintf(ha, sizeof ha, "%s", sh("sha256sum < '%s'", img));
        snprintf(hb, sizeof hb, "%s", sh("sha256sum < '%s'", b));
        snprintf(hc, sizeof hc, "%s", sh("sha256sum < '%s'", c));
        CHECK(ha[0] && strcmp(ha, hb) == 0);
        CHECK(strcmp(ha, hc) != 0);
        uint8_t u[16];
        CHECK_EQ(ext4w_uuid_from_seed("s2", u), 0);
        char want[64];
        snprintf(want, sizeof want, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9]);
        CHECK(strstr(sh("dumpe2fs -h '%s' 2>/dev/null | grep UUID", c), want));
        CHECK(!strstr(sh("dumpe2fs -h '%s' 2>/dev/null | grep UUID", img), want));
}

static bool dir_has_tmp(const char *dir) {
        DIR *d = opendir(dir);
        bool found = false;
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (strstr(de->d_name, ".tmp"))
                        found = true;
        if (d)
                closedir(d);
        return found;
}

static void test_errors(void) {
        char dir[600], out[700], big[700];
        struct img_err err;
        snprintf(dir, sizeof dir, "%s/err", unit_tmpdir());
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(out, sizeof out, "%s/out.img", dir);
        /* content larger than the size: ENOSPC naming the file, no output, no temp */
        char bigdir[650];
        snprintf(bigdir, sizeof bigdir, "%s/bigsrc", unit_tmpdir());
        CHECK(mkdir(bigdir, 0755) == 0);
        snprintf(big, sizeof big, "%s/big", bigdir);
        size_t n = 12 << 20;
        _cleanup_free_ char *data = malloc(n);
        memset(data, 0xaa, n);
        CHECK(write_file_atomic(big, data, n, 0644) == 0);
        char *in1[] = { bigdir };
        CHECK_EQ(build(out, "x", 8 << 20, in1, 1, &err), -ENOSPC);
        CHECK_STREQ(err.msg, "/big");
        CHECK(access(out, F_OK) < 0 && !dir_has_tmp(dir));

        /* a tar entry with a ".." component */
        char evil[700];
        snprintf(evil, sizeof evil, "%s/evil.tar", unit_tmpdir());
        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        CHECK(archive_write_open_filename(a, evil) == ARCHIVE_OK);
        tar_add(a, "a/../../etc/passwd", S_IFREG | 0644, 0, "x", 1, NULL, NULL, false, 0);
        archive_write_close(a);
        archive_write_free(a);
        char *in2[] = { evil };
        CHECK_EQ(build(out, "x", 16 << 20, in2, 1, &err), -EINVAL);
        CHECK(strstr(err.msg, "'..'") && strstr(err.msg, "evil.tar"));
        CHECK(access(out, F_OK) < 0 && !dir_has_tmp(dir));

        /* random bytes */
        char junk[700];
        snprintf(junk, sizeof junk, "%s/junk.tar", unit_tmpdir());
        CHECK(write_file_atomic(junk, data, 5000, 0644) == 0);
        char *in3[] = { junk };
        CHECK(build(out, "x", 16 << 20, in3, 1, &err) < 0);
        CHECK(strstr(err.msg, "junk.tar"));
        CHECK(access(out, F_OK) < 0 && !dir_has_tmp(dir));

        /* path mapping */
        char *m = NULL;
        CHECK_EQ(input_map_path("./usr/bin/x", ROOT_MODE_USR, &m), 1);
        CHECK_STREQ(m, "bin/x");
        free(m);
        CHECK_EQ(input_map_path("etc/ssh/sshd_config", ROOT_MODE_USR, &m), 1);
        CHECK_STREQ(m, "share/cairn/etc/ssh/sshd_config");
        free(m);
        CHECK_EQ(input_map_path("/sbin//init", ROOT_MODE_USR, &m), 1);
        CHECK_STREQ(m, "sbin/init");
        free(m);
        CHECK_EQ(input_map_path("var/lib/dpkg/status", ROOT_MODE_USR, &m), 0);
        CHECK_EQ(input_map_path("./", ROOT_MODE_PLAIN, &m), 0);
        CHECK_EQ(input_map_path("./var/x", ROOT_MODE_PLAIN, &m), 1);
        CHECK_STREQ(m, "var/x");
        free(m);
        CHECK_EQ(input_map_path("a/../b", ROOT_MODE_PLAIN, &m), -EINVAL);
}

/* A directory input holding one empty directory (walk_dir once passed qsort a NULL array: UBSan in the ASan build). */
static void test_empty_subdir(void) {
        char src[600], sub[650], out[650];
        snprintf(src, sizeof src, "%s/emptysrc", unit_tmpdir());
        snprintf(sub, sizeof sub, "%s/empty", src);
        snprintf(out, sizeof out, "%s/empty.img", unit_tmpdir());
        CHECK(mkdir(src, 0755) == 0 && mkdir(sub, 0700) == 0);
        struct img_err err;
        char *in[] = { src };
        int r = build(out, "e", 16 << 20, in, 1, &err);
        if (r < 0)
                fprintf(stderr, "build: %s\n", err.msg);
        CHECK_EQ(r, 0);
        CHECK_STREQ(sh("e2fsck -fn '%s' >/dev/null 2>&1; echo $?", out), "0\n");
        CHECK(strstr(sh("debugfs -R 'stat /empty' '%s' 2>/dev/null", out), "Mode:  0700") != NULL);
}

/* Running out of inodes is -ENOSPC naming the entry, with err.inodes set (blocks running out leaves it 0). */
static void test_out_of_inodes(void) {
        char src[600], f[700], out[650];
        snprintf(src, sizeof src, "%s/manysrc", unit_tmpdir());
        snprintf(out, sizeof out, "%s/inodes.img", unit_tmpdir());
        CHECK(mkdir(src, 0755) == 0);
        for (int i = 0; i < 200; i++) {
                snprintf(f, sizeof f, "%s/f%03d", src, i);
                CHECK(write_file_atomic(f, "", 0, 0644) == 0);
        }
        struct ext4w_params p = { .size = 1 << 20, .seed = "i", .epoch = 1 };
        struct img_err err = { 0 };
        struct ext4w *w = NULL;
        char *in[] = { src };
        CHECK_EQ(ext4w_create(out, &p, &err, &w), 0);
        int r = input_run(NULL, in, 1, ROOT_MODE_PLAIN, &ext4w_sink, w, &err);
        ext4w_abort(w);
        CHECK_EQ(r, -ENOSPC);
        CHECK(err.inodes > 0 && err.inodes < 200);
        CHECK(err.msg[0] == '/');
        /* more inodes: it fits */
        p.min_inodes = 300;
        err = (struct img_err){ 0 };
        CHECK_EQ(ext4w_create(out, &p, &err, &w), 0);
        r = input_run(NULL, in, 1, ROOT_MODE_PLAIN, &ext4w_sink, w, &err);
        CHECK_EQ(r, 0);
        CHECK_EQ(r < 0 ? r : ext4w_finish(w), 0);
        CHECK_EQ(err.inodes, 0);
}

/* Placement: a file of >= 1 MiB starts on a 1 MiB boundary and the rest of its last MiB is held back, so when it
 * grows by a few blocks the files after it keep their blocks (test against debugfs's extent list). */
static void place_tree(const char *dir, size_t grow) {
        char p[700];
        CHECK(mkdir(dir, 0755) == 0);
        size_t n = (2u << 20) + 10000 + grow;
        size_t cap = MAX(n, (size_t)(3u << 20) + 5);
        uint8_t *buf = malloc(cap);
        for (size_t i = 0; i < cap; i++)
                buf[i] = (uint8_t)(i * 7 + i / 4096);
        snprintf(p, sizeof p, "%s/a-big", dir);
        CHECK(write_file_atomic(p, buf, n, 0644) == 0);
        snprintf(p, sizeof p, "%s/b-small", dir);
        CHECK(write_file_atomic(p, "small\n", 6, 0644) == 0);
        snprintf(p, sizeof p, "%s/c-big", dir);
        CHECK(write_file_atomic(p, buf, (3u << 20) + 5, 0644) == 0);
        free(buf);
}

static unsigned long first_block(const char *image, const char *path) {
        const char *o = sh("debugfs -R 'blocks %s' '%s' 2>/dev/null", path, image);
        return strtoul(o, NULL, 10);
}

static void test_placement_stable(void) {
        char d1[600], d2[600], i1[650], i2[650];
        snprintf(d1, sizeof d1, "%s/place1", unit_tmpdir());
        snprintf(d2, sizeof d2, "%s/place2", unit_tmpdir());
        snprintf(i1, sizeof i1, "%s/place1.img", unit_tmpdir());
        snprintf(i2, sizeof i2, "%s/place2.img", unit_tmpdir());
        place_tree(d1, 0);
        place_tree(d2, 5 * 4096); /* a-big grows by five blocks, as the 6.1.0-57 kernel did */
        struct img_err err;
        char *in1[] = { d1 }, *in2[] = { d2 };
        CHECK_EQ(build(i1, "p", 64 << 20, in1, 1, &err), 0);
        CHECK_EQ(build(i2, "p", 64 << 20, in2, 1, &err), 0);
        unsigned long a1 = first_block(i1, "/a-big"), c1 = first_block(i1, "/c-big"), s1 = first_block(i1, "/b-small");
        unsigned long a2 = first_block(i2, "/a-big"), c2 = first_block(i2, "/c-big"), s2 = first_block(i2, "/b-small");
        CHECK(a1 > 0 && c1 > 0 && s1 > 0);
        CHECK_EQ(a1 % 256, 0);
        CHECK_EQ(c1 % 256, 0);
        CHECK_EQ(s1 % 256, 0); /* the file after a big one starts after its held-back tail */
        CHECK_EQ(a1, a2);
        CHECK_EQ(s1, s2);
        CHECK_EQ(c1, c2);
        /* The held-back blocks are free in the finished image, and it is clean. */
        CHECK_STREQ(sh("e2fsck -fn '%s' >/dev/null 2>&1; echo $?", i1), "0\n");
        CHECK_STREQ(sh("e2fsck -fn '%s' >/dev/null 2>&1; echo $?", i2), "0\n");
        CHECK(strstr(sh("debugfs -R 'testb %lu' '%s' 2>&1", a1 + 700, i1), "not in use") != NULL);
}

int main(void) {
        if (system("command -v debugfs >/dev/null && command -v e2fsck >/dev/null") != 0) {
                printf("skip: debugfs/e2fsck not installed\n");
                return 77;
        }
        RUN(test_build_and_read_back);
        RUN(test_reproducible_and_seed);
        RUN(test_errors);
        RUN(test_empty_subdir);
        RUN(test_out_of_inodes);
        RUN(test_placement_stable);
        return unit_main_end();
}
