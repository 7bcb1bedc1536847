/* common/fileio.c — bounded, EINTR-safe I/O and atomic file replacement. */
#include "fileio.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "macro.h"

/* The loop both positional helpers share: retry on EINTR, continue after short transfers, -EIO on a zero one
 * (end of file for a read; a device that takes nothing for a write). */
static int positional_full(int fd, uint8_t *p, size_t n, uint64_t off, bool write) {
        while (n > 0) {
                ssize_t r = write ? pwrite(fd, p, n, (off_t)off) : pread(fd, p, n, (off_t)off);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        return -EIO;
                p += r;
                n -= (size_t)r;
                off += (uint64_t)r;
        }
        return 0;
}

int pread_full(int fd, void *buf, size_t n, uint64_t off) {
        return positional_full(fd, buf, n, off, false);
}

int pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
        return positional_full(fd, (uint8_t *)(uintptr_t)buf, n, off, true);
}

ssize_t read_full(int fd, void *buf, size_t n) {
        uint8_t *p = buf;
        size_t done = 0;
        while (done < n) {
                ssize_t r = read(fd, p + done, n - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                done += (size_t)r;
        }
        return (ssize_t)done;
}

int write_full(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;
        while (n > 0) {
                ssize_t r = write(fd, p, n);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret_buf, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
                return -EFBIG;
        size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max)
                                return -EFBIG;
                        size_t ncap = MIN(cap * 2, max + 2);
                        char *nb = realloc(buf, ncap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap = ncap;
                }
                ssize_t r = read(fd, buf + len, cap - 1 - len);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                len += (size_t)r;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret_buf = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int fsync_parent_dir(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        size_t n = strlen(path) + 16;
        _cleanup_free_ char *tmp = malloc(n);
        if (!tmp)
                return -ENOMEM;
        snprintf(tmp, n, "%s.tmpXXXXXX", path);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = write_full(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_parent_dir(path);
}

int mkdir_parents(const char *path, bool with_last) {
        char buf[PATH_MAX];
        if ((size_t)snprintf(buf, sizeof buf, "%s%s", path, with_last ? "/" : "") >= sizeof buf)
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        return 0;
}

int lock_exclusive_nb(int fd) {
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        return 0;
}

int lock_dir(const char *path, int *ret_fd) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = lock_exclusive_nb(fd);
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int fd_size(int fd, uint64_t *ret_size, bool *ret_regular) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode)) {
                *ret_size = (uint64_t)st.st_size;
                *ret_regular = true;
                return 0;
        }
        if (S_ISBLK(st.st_mode)) {
                uint64_t sz;
                if (ioctl(fd, BLKGETSIZE64, &sz) < 0)
                        return negative_errno();
                *ret_size = sz;
                *ret_regular = false;
                return 0;
        }
        return -EBADFD;
}
