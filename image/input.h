/* image/input.h — the entry stream between input readers (.deb, tar, directory, recipe directives) and an image sink. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct recipe;

/* Detail of the first failure, "'culprit': what went wrong", for the top level to print. */
struct img_err {
        char msg[1024];
        uint64_t inodes; /* with an -ENOSPC failure: non-zero if inodes ran out (the image's inode count) */
};
/* Record the message (only if none was recorded yet) and return r. */
int img_err_set(struct img_err *e, int r, const char *fmt, ...) _printf_(3, 4);

enum root_mode {
        ROOT_MODE_PLAIN,
        ROOT_MODE_USR,
};
int root_mode_from_string(const char *s, enum root_mode *ret);

struct img_xattr {
        const char *name;
        const void *value;
        size_t len;
};

/* One filesystem entry; paths are mapped image paths without a leading '/' (never "" = root). */
struct img_entry {
        const char *path;
        uint32_t mode; /* S_IFMT type bits | permission bits (incl. setuid/setgid/sticky) */
        uint32_t uid, gid;
        int64_t mtime;
        uint64_t size;         /* regular files */
        const char *target;    /* symlinks: link target */
        const char *hardlink;  /* hard links: mapped path of an entry already in the image */
        uint32_t rdev_major, rdev_minor;
        const struct img_xattr *xattrs;
        size_t n_xattrs;
};

/* File data of a regular entry, in increasing offsets; gaps are holes. next() returns 1 with a
 * chunk, 0 at the end, or -errno (the reader records the detail in its img_err). */
struct img_data {
        int (*next)(void *ctx, const void **ret_buf, size_t *ret_len, uint64_t *ret_off);
        void *ctx;
};

/* Where entries go: the ext4 writer, or the size estimator of fit mode. */
struct img_sink {
        int (*add)(void *sink, const struct img_entry *e, struct img_data *data);
        int (*remove)(void *sink, const char *path);
        /* mode: permission bits or -1 to keep; uid/gid: -1 to keep */
        int (*set_attr)(void *sink, const char *path, int64_t mode, int64_t uid, int64_t gid);
        int (*set_xattr)(void *sink, const char *path, const char *name, const void *value, size_t len);
};

/* Normalise an archive/host-view path ("./usr/bin/x", "/etc//y") and apply the root mode.
 * Returns 1 with *ret_path (malloc'd, no leading '/') when the entry belongs in the image, 0 when it is
 * dropped or is the root itself, -EINVAL for a ".." component, -ENAMETOOLONG beyond PATH_MAX. */
int input_map_path(const char *raw, enum root_mode mode, char **ret_path);

/* Feed the recipe's inputs and directives (in file order), then the positional inputs (.deb, tar, or
 * directory, by what they are) to sink. Excludes/includes of the recipe filter every archive/directory
 * entry. On failure returns -errno with err describing the culprit. */
int input_run(const struct recipe *recipe, char *const *inputs, size_t n_inputs, enum root_mode mode,
              const struct img_sink *sink, void *sink_data, struct img_err *err);
