/* tests/fuzz/fuzz-fat.c — libFuzzer target for the read-only FAT lookup (fat_lookup) and the cluster ownership check
 * (fat_check_exclusive) over an in-memory volume. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "bootcfg/fat.h"

static int fd = -1;

/* The lookups a bootcfg run makes, plus paths through files, directories and odd separators. */
static const char *const paths[] = {
        "EFI/BOOT/grubenv", "EFI/BOOT/grubenv.bak", "/EFI/BOOT/GRUBENV.BAK", "EFI", "grubenv", "EFI//BOOT/",
        "EFI/BOOT/grubenv/x", "", "EFI/A-rather-long-directory-name-for-lfn/some file with spaces.recipe",
};

static void lookup(uint64_t vol_size, const char *path) {
        struct fat_file f = { .size = 0xdeadbeef };
        int r = fat_lookup(fd, 0, vol_size, path, &f);
        if (r < 0) {
                /* The file holds the whole volume, so a read error means a read outside it. */
                if (r != -ENOENT && r != -EISDIR && r != -EBADMSG)
                        abort();
                if (f.size != 0xdeadbeef)
                        abort(); /* ret stays untouched on failure */
                return;
        }
        if (f.fat_bits != 12 && f.fat_bits != 16 && f.fat_bits != 32)
                abort();
        if (f.cluster_bytes < 512 || (f.cluster_bytes & (f.cluster_bytes - 1)))
                abort();
        if (f.fat_offset == 0 || f.fat_offset >= vol_size)
                abort();
        if (f.size == 0)
                return;
        if (f.first_cluster < 2 || f.offset >= vol_size)
                abort();
        if (f.contiguous) {
                if (f.size > vol_size - f.offset)
                        abort();
                /* What bootcfg does next: read the bytes in place. */
                uint8_t buf[1024];
                uint32_t n = f.size < sizeof buf ? f.size : (uint32_t)sizeof buf;
                if (pread_full(fd, buf, n, f.offset) < 0)
                        abort();
        }
}

/* What bootcfg checks before writing the env files. A pass must mean two distinct, exactly sized chains. */
static void exclusive(uint64_t vol_size) {
        static const char *const env[] = { "EFI/BOOT/grubenv", "EFI/BOOT/grubenv.bak" };
        char why[256];
        memset(why, 0, sizeof why);
        int r = fat_check_exclusive(fd, 0, vol_size, env, 2, why, sizeof why);
        if (r < 0) {
                if (r != -ENOENT && r != -EBADMSG)
                        abort();
                if (!why[0] || memchr(why, '\n', sizeof why))
                        abort(); /* always one line saying why */
                return;
        }
        if (r != 0)
                abort();
        struct fat_file a, b;
        if (fat_lookup(fd, 0, vol_size, env[0], &a) < 0 || fat_lookup(fd, 0, vol_size, env[1], &b) < 0)
                abort(); /* both were resolved and their chains checked */
        if (a.size > 0 && b.size > 0 && a.first_cluster == b.first_cluster)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (fd < 0) {
                fd = memfd_create("fuzz-fat", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
        }
        if (size > (1u << 20))
                return 0;
        if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite_full(fd, data, size, 0) < 0))
                abort();
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
                lookup(size, paths[i]);
        /* A volume that ends before the file does: every structure must be checked against vol_size. */
        lookup(size / 2, paths[0]);
        exclusive(size);
        exclusive(size / 2);
        return 0;
}
