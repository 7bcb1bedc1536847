/* common/fileio.h — bounded, EINTR-safe I/O and atomic file replacement. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read exactly n bytes at offset off; -EIO on short read (end of file). */
int pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Write exactly n bytes at offset off. */
int pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* Read exactly n bytes from the current position; returns bytes read (< n only at EOF) or -errno. */
ssize_t read_full(int fd, void *buf, size_t n);
int write_full(int fd, const void *buf, size_t n);
/* Read a whole file of at most max bytes into a NUL-terminated buffer; -EFBIG if larger. */
/* The size of a regular file or a block device; -EBADFD for anything else. */
int fd_size(int fd, uint64_t *ret_size, bool *ret_regular);

int read_file_bounded(const char *path, size_t max, char **ret_buf, size_t *ret_len);
/* Replace path atomically with data: temp file in the same dir, fsync, rename, fsync dir. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* fsync the directory containing path. */
int fsync_parent_dir(const char *path);
/* mkdir -p of the directories above path's last component, and of path itself if with_last (mode 0755). */
int mkdir_parents(const char *path, bool with_last);
/* Take an exclusive flock(2) on fd without waiting: 0; -EAGAIN when another open file description holds a lock on
 * the same file (another process, or another open() in this one); -errno otherwise. The lock lasts until every
 * descriptor of this open file description is closed (dup() shares it). */
int lock_exclusive_nb(int fd);
/* Open the directory path (O_RDONLY|O_DIRECTORY|O_CLOEXEC) and lock it with lock_exclusive_nb(); *ret_fd holds the
 * lock until it is closed. */
int lock_dir(const char *path, int *ret_fd);
