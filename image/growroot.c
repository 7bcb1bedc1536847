/* image/growroot.c — cairn-growroot: on first boot, move the backup GPT to the end of a grown disk, extend the
 * last partition (ROOT) to fill it, tell the kernel, and grow the mounted ext4 online. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "fileio.h"
#include "gpt.h"
#include "log.h"
#include "macro.h"

#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, __u64)
#endif
#define EXT4_SUPER_MAGIC_ 0xEF53

/* Read a small sysfs attribute as an unsigned number. */
static int sysfs_read_u64(const char *path, uint64_t *ret) {
        _cleanup_free_ char *buf = NULL;
        int r = read_file_bounded(path, 4097, &buf, NULL); /* sysfs files claim a size of 4096 */
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf || (*end && *end != '\n'))
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Does dev (a partition) belong to disk and carry partition number pno? 1 yes, 0 no. */
static int partition_of(dev_t dev, dev_t disk, unsigned pno) {
        char p[128], a[PATH_MAX], b[PATH_MAX];
        uint64_t n;
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
        int r = sysfs_read_u64(p, &n);
        if (r == -ENOENT)
                return 0; /* not a partition */
        if (r < 0)
                return r;
        if (n != pno)
                return 0;
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u/..", major(dev), minor(dev));
        if (!realpath(p, a))
                return negative_errno();
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u", major(disk), minor(disk));
        if (!realpath(p, b))
                return negative_errno();
        return strcmp(a, b) == 0;
}

static int growroot(const char *disk, const char *label, const char *mountpoint) {
        int r;
        _cleanup_close_ int fd = open(disk, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open \"%s\"", disk);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot stat \"%s\"", disk);
        if (!S_ISBLK(st.st_mode))
                return log_error(-ENOTBLK, "\"%s\" is not a block device", disk);
        uint64_t bytes;
        if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
                return log_error_errno(negative_errno(), "Cannot get the size of \"%s\"", disk);
        uint64_t sectors = bytes / GPT_SECTOR_SIZE;

        _cleanup_gpt_ struct gpt_table *t = NULL;
        struct gpt_status gs;
        r = gpt_read(fd, sectors, 0, &t, &gs);
        if (r < 0) {
                char why[256];
                gpt_status_describe(&gs, why, sizeof why);
                return log_error(r, "Cannot use the GPT of \"%s\" (%s); not touching it", disk, why);
        }
        int idx = gpt_find_by_label(t, label);
        if (idx == -ENOENT)
                return log_error(idx, "No partition labelled \"%s\" on \"%s\"", label, disk);
        if (idx == -ENOTUNIQ)
                return log_error(idx, "More than one partition labelled \"%s\" on \"%s\"", label, disk);
        if (idx < 0)
                return log_error_errno(idx, "Cannot search the GPT of \"%s\"", disk);
        uint8_t *e = gpt_entry(t, (unsigned)idx);
        uint64_t first = gpt_entry_first_lba(e), old_last = gpt_entry_last_lba(e);
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *o = gpt_entry(t, i);
                if ((int)i != idx && gpt_entry_is_used(o) && gpt_entry_last_lba(o) > old_last)
                        return log_error(-EINVAL, "Partition \"%s\" on \"%s\" is not the last one (partition %u follows it); not growing it",
                                         label, disk, i + 1);
        }

        /* The filesystem: it must be the ext4 on exactly this partition; checked before anything is written. */
        _cleanup_close_ int mfd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return log_error_errno(negative_errno(), "Cannot open \"%s\"", mountpoint);
        struct statfs sfs;
        struct stat mst;
        if (fstatfs(mfd, &sfs) < 0 || fstat(mfd, &mst) < 0)
                return log_error_errno(negative_errno(), "Cannot stat \"%s\"", mountpoint);
        if (sfs.f_type != EXT4_SUPER_MAGIC_)
                return log_error(-EINVAL, "\"%s\" is not an ext4 filesystem", mountpoint);
        r = partition_of(mst.st_dev, st.st_rdev, (unsigned)idx + 1);
        if (r < 0)
                return log_error_errno(r, "Cannot tell which device \"%s\" is mounted from", mountpoint);
        if (r == 0)
                return log_error(-EINVAL, "\"%s\" is not mounted from partition %d (\"%s\") of \"%s\"", mountpoint, idx + 1, label,
                                 disk);
        if (sfs.f_bsize <= 0 || sfs.f_bsize > 65536)
                return log_error(-EINVAL, "\"%s\" reports a block size of %ld", mountpoint, (long)sfs.f_bsize);
        bool moved = t->backup_lba != sectors - 1;
        if (moved) {
                r = gpt_resize_disk(t, sectors);
                if (r < 0)
                        return log_error(r, "Cannot move the backup GPT of \"%s\" to its last sector", disk);
        }
        uint64_t new_last = gpt_align_down(t->last_usable_lba + 1) - 1;
        bool extend = new_last > old_last;
        if (extend)
                gpt_entry_set_last_lba(e, new_last);
        else
                new_last = old_last;

        if (moved || extend) {
                r = gpt_write(fd, t, NULL);
                if (r < 0)
                        return log_error_errno(r, "Cannot write the GPT of \"%s\"", disk);
                r = gpt_pmbr_update_size(fd, sectors);
                if (r < 0 && r != -ENODATA)
                        return log_error_errno(r, "Cannot update the protective MBR of \"%s\"", disk);
                if (r > 0 && fsync(fd) < 0)
                        return log_error_errno(negative_errno(), "Cannot sync \"%s\"", disk);
        }
        uint64_t part_bytes = (new_last - first + 1) * GPT_SECTOR_SIZE;
        if (extend) {
                struct blkpg_partition bp = {
                        .start = (long long)(first * GPT_SECTOR_SIZE),
                        .length = (long long)part_bytes,
                        .pno = idx + 1,
                };
                struct blkpg_ioctl_arg a = { .op = BLKPG_RESIZE_PARTITION, .datalen = sizeof bp, .data = &bp };
                if (ioctl(fd, BLKPG, &a) < 0)
                        return log_error_errno(negative_errno(), "Cannot tell the kernel that partition %d of \"%s\" grew", idx + 1,
                                               disk);
        }

        uint64_t old_blocks = sfs.f_blocks;
        uint64_t want = part_bytes / (uint64_t)sfs.f_bsize;
        if (ioctl(mfd, EXT4_IOC_RESIZE_FS, &want) < 0)
                return log_error_errno(negative_errno(), "Cannot grow the filesystem on \"%s\" to %" PRIu64 " blocks", mountpoint,
                                       want);
        if (fstatfs(mfd, &sfs) < 0)
                return log_error_errno(negative_errno(), "Cannot stat \"%s\"", mountpoint);

        if (!moved && !extend && sfs.f_blocks == old_blocks) {
                printf("cairn-growroot: %s already fills the disk\n", label);
                return 0;
        }
        printf("cairn-growroot: %s grown from %" PRIu64 " to %" PRIu64 " MiB (partition %d of %s%s), filesystem %" PRIu64
               " -> %" PRIu64 " blocks\n",
               label, (old_last - first + 1) / 2048, (new_last - first + 1) / 2048, idx + 1, disk,
               moved ? ", backup GPT moved to the end" : "", old_blocks, (uint64_t)sfs.f_blocks);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        if (argc != 4) {
                fprintf(stderr, "usage: cairn-growroot DISKDEV PARTLABEL MOUNTPOINT\n");
                return 2;
        }
        return growroot(argv[1], argv[2], argv[3]) < 0 ? 1 : 0;
}
