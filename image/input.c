/* image/input.c — owns reading inputs (.deb data.tar, tar, directories, recipe directives), path mapping and excludes. */
#include "input.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "recipe.h"

#define IO_CHUNK (64 * 1024)
#define MAX_XATTRS 64
#define MAX_DIR_DEPTH 128
#define MAX_DIR_ENTRIES (1024 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

int img_err_set(struct img_err *e, int r, const char *fmt, ...) {
        if (e && !e->msg[0]) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->msg, sizeof e->msg, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* Put "prefix" in front of an already recorded message. */
static void img_err_prefix(struct img_err *e, const char *prefix) {
        char tmp[sizeof e->msg];
        size_t pl = strnlen(prefix, sizeof tmp - 1);
        memcpy(tmp, prefix, pl);
        size_t ml = strnlen(e->msg, sizeof tmp - 1 - pl);
        memcpy(tmp + pl, e->msg, ml);
        tmp[pl + ml] = 0;
        memcpy(e->msg, tmp, sizeof tmp);
}

int root_mode_from_string(const char *s, enum root_mode *ret) {
        if (strcmp(s, "plain") == 0)
                *ret = ROOT_MODE_PLAIN;
        else if (strcmp(s, "usr") == 0)
                *ret = ROOT_MODE_USR;
        else
                return -EINVAL;
        return 0;
}

/* Top-level directories that stay where they are in a /usr image (the host has /bin -> usr/bin etc.). */
static const char *const usr_kept_dirs[] = { "bin", "sbin", "lib", "lib64", "boot" };

int input_map_path(const char *raw, enum root_mode mode, char **ret_path) {
        size_t n = strlen(raw);
        if (n >= PATH_MAX)
                return -ENAMETOOLONG;
        _cleanup_free_ char *norm = malloc(n + 1);
        if (!norm)
                return -ENOMEM;
        /* normalise: drop empty and "." components (this strips "./" and leading '/'); refuse ".." */
        size_t len = 0;
        for (const char *s = raw; *s;) {
                while (*s == '/')
                        s++;
                const char *e = strchrnul(s, '/');
                size_t cl = (size_t)(e - s);
                if (cl == 2 && s[0] == '.' && s[1] == '.')
                        return -EINVAL;
                if (cl > 0 && !(cl == 1 && s[0] == '.')) {
                        if (cl > NAME_MAX)
                                return -ENAMETOOLONG;
                        if (len)
                                norm[len++] = '/';
                        memcpy(norm + len, s, cl);
                        len += cl;
                }
                s = e;
        }
        norm[len] = 0;
        if (len == 0)
                return 0; /* the root */
        if (mode == ROOT_MODE_PLAIN) {
                *ret_path = TAKE_PTR(norm);
                return 1;
        }

        const char *slash = strchr(norm, '/');
        size_t first_len = slash ? (size_t)(slash - norm) : len;
        const char *rest = slash ? slash + 1 : "";
        char *out = NULL;
        if (first_len == 3 && strncmp(norm, "usr", 3) == 0) {
                if (!*rest)
                        return 0; /* usr/ itself is the image root */
                out = strdup(rest);
        } else if (first_len == 3 && strncmp(norm, "etc", 3) == 0) {
                if (asprintf(&out, "share/cairn/etc%s%s", *rest ? "/" : "", rest) < 0)
                        out = NULL;
        } else {
                bool kept = false;
                for (size_t i = 0; i < ELEMENTSOF(usr_kept_dirs); i++)
                        if (first_len == strlen(usr_kept_dirs[i]) && strncmp(norm, usr_kept_dirs[i], first_len) == 0)
                                kept = true;
                if (!kept) {
                        log_debug("dropping '/%s' (not part of a /usr image)", norm);
                        return 0;
                }
                out = TAKE_PTR(norm);
        }
        if (!out)
                return -ENOMEM;
        *ret_path = out;
        return 1;
}

/* State shared while feeding one run. */
struct feeder {
        enum root_mode mode;
        char **excludes, **includes; /* anchored patterns ("/..." ) */
        size_t n_excludes, n_includes;
        const struct img_sink *sink;
        void *sink_data;
        struct img_err *err;
        uint8_t *buf; /* IO_CHUNK bytes for host file reads */
};

static bool excluded(const struct feeder *f, const char *mapped) {
        char path[PATH_MAX + 2];
        snprintf(path, sizeof path, "/%s", mapped);
        bool ex = false;
        for (size_t i = 0; i < f->n_excludes && !ex; i++)
                ex = fnmatch(f->excludes[i], path, 0) == 0;
        for (size_t i = 0; i < f->n_includes && ex; i++)
                ex = fnmatch(f->includes[i], path, 0) != 0;
        return ex;
}

/* Map a path from an input; 1 = keep (*ret), 0 = skip, <0 error recorded. */
static int map_input_path(struct feeder *f, const char *label, const char *raw, bool filter, char **ret) {
        char *mapped = NULL;
        int r = input_map_path(raw, f->mode, &mapped);
        if (r == -EINVAL)
                return img_err_set(f->err, r, "%s: path '%s' has a '..' component", label, raw);
        if (r < 0)
                return img_err_set(f->err, r, "%s: path '%.200s...': %s", label, raw, strerror(-r));
        if (r == 0)
                return 0;
        if (filter && excluded(f, mapped)) {
                log_debug("excluding '/%s'", mapped);
                free(mapped);
                return 0;
        }
        *ret = mapped;
        return 1;
}

/* ---- archives (tar, and the data.tar member of a .deb) ---- */

struct archive_data {
        struct archive *a;
        const char *label;
        struct img_err *err;
};

static int archive_data_next(void *ctx, const void **ret_buf, size_t *ret_len, uint64_t *ret_off) {
        struct archive_data *d = ctx;
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(d->a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
                return 0;
        if (r != ARCHIVE_OK || off < 0)
                return img_err_set(d->err, -EIO, "%s: %s", d->label, archive_error_string(d->a) ?: "read error");
        *ret_buf = buf;
        *ret_len = len;
        *ret_off = (uint64_t)off;
        return 1;
}

static int feed_archive(struct feeder *f, struct archive *a, const char *label) {
        for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return img_err_set(f->err, -EIO, "%s: %s", label, archive_error_string(a) ?: "read error");
                const char *raw = archive_entry_pathname(e);
                if (!raw)
                        raw = archive_entry_pathname_utf8(e);
                if (!raw)
                        return img_err_set(f->err, -EINVAL, "%s: entry without a usable path name", label);
                _cleanup_free_ char *path = NULL;
                r = map_input_path(f, label, raw, true, &path);
                if (r <= 0) {
                        if (r < 0)
                                return r;
                        continue;
                }

                struct img_entry ie = {
                        .path = path,
                        .mode = (uint32_t)archive_entry_mode(e),
                        .mtime = archive_entry_mtime(e),
                };
                la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
                if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
                        return img_err_set(f->err, -EINVAL, "%s: '%s': uid/gid out of range", label, raw);
                ie.uid = (uint32_t)uid;
                ie.gid = (uint32_t)gid;

                _cleanup_free_ char *link = NULL;
                const char *hl = archive_entry_hardlink(e);
                if (hl) {
                        r = map_input_path(f, label, hl, false, &link);
                        if (r < 0)
                                return r;
                        if (r == 0 || excluded(f, link))
                                return img_err_set(f->err, -ENOENT, "%s: '%s': hard link target '%s' is not in the image",
                                                   label, raw, hl);
                        ie.hardlink = link;
                        ie.mode = (ie.mode & 07777) | S_IFREG;
                        r = f->sink->add(f->sink_data, &ie, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }

                struct archive_data ad = { .a = a, .label = label, .err = f->err };
                struct img_data data = { .next = archive_data_next, .ctx = &ad };
                struct img_xattr xa[MAX_XATTRS];
                switch (archive_entry_filetype(e)) {
                case AE_IFREG:
                        if (archive_entry_size_is_set(e) && archive_entry_size(e) < 0)
                                return img_err_set(f->err, -EINVAL, "%s: '%s': negative size", label, raw);
                        ie.size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
                        break;
                case AE_IFDIR:
                        break;
                case AE_IFLNK:
                        ie.target = archive_entry_symlink(e);
                        if (!ie.target)
                                ie.target = archive_entry_symlink_utf8(e);
                        if (!ie.target || !*ie.target)
                                return img_err_set(f->err, -EINVAL, "%s: '%s': symlink without a target", label, raw);
                        break;
                case AE_IFCHR:
                case AE_IFBLK:
                case AE_IFIFO:
                        ie.rdev_major = (uint32_t)archive_entry_rdevmajor(e);
                        ie.rdev_minor = (uint32_t)archive_entry_rdevminor(e);
                        break;
                case AE_IFSOCK:
                        log_debug("%s: skipping socket '%s'", label, raw);
                        continue;
                default:
                        return img_err_set(f->err, -EINVAL, "%s: '%s': unsupported file type", label, raw);
                }

                size_t nx = 0;
                archive_entry_xattr_reset(e);
                const char *xname;
                const void *xval;
                size_t xlen;
                while (archive_entry_xattr_next(e, &xname, &xval, &xlen) == ARCHIVE_OK) {
                        if (strncmp(xname, "security.", 9) != 0 && strncmp(xname, "user.", 5) != 0 &&
                            strncmp(xname, "trusted.", 8) != 0) {
                                log_debug("%s: '%s': ignoring xattr %s", label, raw, xname);
                                continue;
                        }
                        if (nx == MAX_XATTRS)
                                return img_err_set(f->err, -E2BIG, "%s: '%s': more than %d xattrs", label, raw, MAX_XATTRS);
                        xa[nx++] = (struct img_xattr){ .name = xname, .value = xval, .len = xlen };
                }
                ie.xattrs = xa;
                ie.n_xattrs = nx;
                r = f->sink->add(f->sink_data, &ie, S_ISREG(ie.mode) ? &data : NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static struct archive *new_tar_reader(void) {
        struct archive *a = archive_read_new();
        if (!a)
                return NULL;
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        return a;
}

static int open_input_fd(struct feeder *f, const char *path, int *ret_fd) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return img_err_set(f->err, negative_errno(), "'%s': %s", path, strerror(errno));
        *ret_fd = fd;
        return 0;
}

static int feed_tar(struct feeder *f, const char *path) {
        _cleanup_close_ int fd = -1;
        int r = open_input_fd(f, path, &fd);
        if (r < 0)
                return r;
        _cleanup_(archive_read_freep) struct archive *a = new_tar_reader();
        if (!a)
                return -ENOMEM;
        char label[PATH_MAX + 8];
        snprintf(label, sizeof label, "'%s'", path);
        if (archive_read_open_fd(a, fd, IO_CHUNK) != ARCHIVE_OK)
                return img_err_set(f->err, -EINVAL, "'%s': not a tar archive (%s)", path, archive_error_string(a) ?: "?");
        r = feed_archive(f, a, label);
        if (r < 0)
                return r;
        if (archive_read_close(a) != ARCHIVE_OK)
                return img_err_set(f->err, -EIO, "'%s': %s", path, archive_error_string(a) ?: "read error");
        return 0;
}

/* The data.tar.* member of the outer ar archive, read through as the inner archive's input. */
struct deb_member {
        struct archive *outer;
        uint8_t *buf;
};

static la_ssize_t deb_member_read(struct archive *inner, void *ctx, const void **ret_buf) {
        struct deb_member *m = ctx;
        la_ssize_t n = archive_read_data(m->outer, m->buf, IO_CHUNK);
        if (n < 0) {
                archive_set_error(inner, archive_errno(m->outer), "%s", archive_error_string(m->outer) ?: "read error");
                return -1;
        }
        *ret_buf = m->buf;
        return n;
}

static int feed_deb(struct feeder *f, const char *path) {
        _cleanup_close_ int fd = -1;
        int r = open_input_fd(f, path, &fd);
        if (r < 0)
                return r;
        _cleanup_(archive_read_freep) struct archive *outer = archive_read_new();
        if (!outer)
                return -ENOMEM;
        archive_read_support_format_ar(outer);
        struct archive_entry *e;
        if (archive_read_open_fd(outer, fd, IO_CHUNK) != ARCHIVE_OK || archive_read_next_header(outer, &e) != ARCHIVE_OK ||
            strcmp(archive_entry_pathname(e) ?: "", "debian-binary") != 0)
                return img_err_set(f->err, -EINVAL, "'%s': not a Debian package", path);
        for (;;) {
                r = archive_read_next_header(outer, &e);
                if (r == ARCHIVE_EOF)
                        return img_err_set(f->err, -EINVAL, "'%s': no data.tar member (not a Debian package?)", path);
                if (r != ARCHIVE_OK)
                        return img_err_set(f->err, -EIO, "'%s': %s", path, archive_error_string(outer) ?: "read error");
                if (strncmp(archive_entry_pathname(e) ?: "", "data.tar", 8) == 0)
                        break;
        }
        char member[64];
        snprintf(member, sizeof member, "%s", archive_entry_pathname(e));

        _cleanup_(archive_read_freep) struct archive *inner = new_tar_reader();
        if (!inner)
                return -ENOMEM;
        struct deb_member m = { .outer = outer, .buf = f->buf };
        char label[PATH_MAX + 80];
        snprintf(label, sizeof label, "'%s': %s", path, member);
        if (archive_read_open(inner, &m, NULL, deb_member_read, NULL) != ARCHIVE_OK)
                return img_err_set(f->err, -EINVAL, "%s: %s", label, archive_error_string(inner) ?: "cannot open");
        r = feed_archive(f, inner, label);
        if (r < 0)
                return r;
        if (archive_read_close(inner) != ARCHIVE_OK)
                return img_err_set(f->err, -EIO, "%s: %s", label, archive_error_string(inner) ?: "read error");
        return 0;
}

/* ---- host files (directory inputs and recipe `file`) ---- */

struct fd_data {
        int fd;
        uint64_t off, size;
        uint8_t *buf;
        const char *path;
        struct img_err *err;
};

static int fd_data_next(void *ctx, const void **ret_buf, size_t *ret_len, uint64_t *ret_off) {
        struct fd_data *d = ctx;
        if (d->off >= d->size)
                return 0;
        size_t want = (size_t)MIN((uint64_t)IO_CHUNK, d->size - d->off);
        ssize_t n = pread(d->fd, d->buf, want, (off_t)d->off);
        if (n < 0)
                return img_err_set(d->err, negative_errno(), "'%s': %s", d->path, strerror(errno));
        if (n == 0)
                return img_err_set(d->err, -EIO, "'%s': file shrank while being read", d->path);
        *ret_buf = d->buf;
        *ret_len = (size_t)n;
        *ret_off = d->off;
        d->off += (uint64_t)n;
        return 1;
}

struct hardlink_seen {
        dev_t dev;
        ino_t ino;
        char *path;
};

struct dir_walk {
        struct feeder *f;
        struct hardlink_seen *seen;
        size_t n_seen, cap_seen;
};

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct dir_walk *w, int dfd, const char *host, const char *raw, unsigned depth);

static int walk_one(struct dir_walk *w, int dfd, const char *name, const char *host_dir, const char *raw_dir, unsigned depth) {
        struct feeder *f = w->f;
        _cleanup_free_ char *host = NULL, *raw = NULL, *path = NULL;
        if (asprintf(&host, "%s/%s", host_dir, name) < 0 || asprintf(&raw, "%s/%s", raw_dir, name) < 0)
                return -ENOMEM;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return img_err_set(f->err, negative_errno(), "'%s': %s", host, strerror(errno));
        char label[PATH_MAX + 8];
        snprintf(label, sizeof label, "'%s'", host);
        int r = map_input_path(f, label, raw, true, &path);
        if (r < 0)
                return r;
        if (r == 0 && !S_ISDIR(st.st_mode))
                return 0;

        struct img_entry ie = {
                .path = path, .mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid, .mtime = st.st_mtim.tv_sec,
        };
        if (r > 0 && !S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                for (size_t i = 0; i < w->n_seen; i++)
                        if (w->seen[i].dev == st.st_dev && w->seen[i].ino == st.st_ino) {
                                ie.hardlink = w->seen[i].path;
                                return f->sink->add(f->sink_data, &ie, NULL);
                        }
        }

        if (S_ISDIR(st.st_mode)) {
                if (r > 0) {
                        r = f->sink->add(f->sink_data, &ie, NULL);
                        if (r < 0)
                                return r;
                }
                if (depth >= MAX_DIR_DEPTH)
                        return img_err_set(f->err, -ELOOP, "'%s': directories nested deeper than %d", host, MAX_DIR_DEPTH);
                _cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return img_err_set(f->err, negative_errno(), "'%s': %s", host, strerror(errno));
                return walk_dir(w, TAKE_FD(sub), host, raw, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return img_err_set(f->err, negative_errno(), "'%s': %s", host, strerror(errno));
                ie.size = (uint64_t)st.st_size;
                struct fd_data fdd = { .fd = fd, .size = ie.size, .buf = f->buf, .path = host, .err = f->err };
                struct img_data data = { .next = fd_data_next, .ctx = &fdd };
                r = f->sink->add(f->sink_data, &ie, &data);
        } else if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(dfd, name, target, sizeof target);
                if (n < 0)
                        return img_err_set(f->err, negative_errno(), "'%s': %s", host, strerror(errno));
                if ((size_t)n >= sizeof target || n == 0)
                        return img_err_set(f->err, -ENAMETOOLONG, "'%s': symlink target empty or too long", host);
                target[n] = 0;
                ie.target = target;
                r = f->sink->add(f->sink_data, &ie, NULL);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
                ie.rdev_major = major(st.st_rdev);
                ie.rdev_minor = minor(st.st_rdev);
                r = f->sink->add(f->sink_data, &ie, NULL);
        } else {
                log_debug("skipping socket '%s'", host);
                return 0;
        }
        if (r < 0)
                return r;
        if (st.st_nlink > 1) {
                if (w->n_seen == w->cap_seen) {
                        size_t cap = w->cap_seen ? w->cap_seen * 2 : 16;
                        struct hardlink_seen *s = realloc(w->seen, cap * sizeof *s);
                        if (!s)
                                return -ENOMEM;
                        w->seen = s;
                        w->cap_seen = cap;
                }
                char *p = strdup(path);
                if (!p)
                        return -ENOMEM;
                w->seen[w->n_seen++] = (struct hardlink_seen){ .dev = st.st_dev, .ino = st.st_ino, .path = p };
        }
        return 0;
}

/* Walk an open directory (takes ownership of dfd) in byte-wise sorted name order. */
static int walk_dir(struct dir_walk *w, int dfd, const char *host, const char *raw, unsigned depth) {
        _cleanup_(closedirp) DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return img_err_set(w->f->err, negative_errno(), "'%s': %s", host, strerror(errno));
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == MAX_DIR_ENTRIES) {
                        r = img_err_set(w->f->err, -E2BIG, "'%s': more than %d entries", host, MAX_DIR_ENTRIES);
                        break;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 32;
                        char **nn = realloc(names, cap * sizeof *nn);
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
                errno = 0;
        }
        if (r == 0 && errno)
                r = img_err_set(w->f->err, negative_errno(), "'%s': %s", host, strerror(errno));
        if (r == 0) {
                if (n > 0) /* an empty directory has no array: qsort's base must not be NULL */
                        qsort(names, n, sizeof *names, cmp_str);
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = walk_one(w, dirfd(d), names[i], host, raw, depth);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

static int feed_dir(struct feeder *f, const char *host, const char *dest) {
        int dfd = open(host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return img_err_set(f->err, negative_errno(), "'%s': %s", host, strerror(errno));
        struct stat st;
        if (fstat(dfd, &st) < 0) {
                int r = negative_errno();
                close(dfd);
                return img_err_set(f->err, r, "'%s': %s", host, strerror(-r));
        }
        /* the directory itself becomes DEST (with its metadata), unless DEST is the root */
        _cleanup_free_ char *path = NULL;
        char label[PATH_MAX + 8];
        snprintf(label, sizeof label, "'%s'", host);
        int r = map_input_path(f, label, dest, false, &path);
        if (r > 0) {
                struct img_entry ie = {
                        .path = path, .mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid, .mtime = st.st_mtim.tv_sec,
                };
                r = f->sink->add(f->sink_data, &ie, NULL);
        }
        if (r < 0) {
                close(dfd);
                return r;
        }
        struct dir_walk w = { .f = f };
        r = walk_dir(&w, dfd, host, dest, 0);
        for (size_t i = 0; i < w.n_seen; i++)
                free(w.seen[i].path);
        free(w.seen);
        return r;
}

/* ---- recipe directives ---- */

struct mem_data {
        const uint8_t *p;
        size_t len;
        bool done;
};

static int mem_data_next(void *ctx, const void **ret_buf, size_t *ret_len, uint64_t *ret_off) {
        struct mem_data *m = ctx;
        if (m->done || m->len == 0)
                return 0;
        m->done = true;
        *ret_buf = m->p;
        *ret_len = m->len;
        *ret_off = 0;
        return 1;
}

static int image_path(struct feeder *f, const char *raw, char **ret) {
        int r = input_map_path(raw, ROOT_MODE_PLAIN, ret);
        if (r == -EINVAL)
                return img_err_set(f->err, r, "path '%s' has a '..' component", raw);
        if (r < 0)
                return img_err_set(f->err, r, "path '%.200s': %s", raw, strerror(-r));
        return r;
}

static int apply_op(struct feeder *f, const struct recipe_op *op) {
        switch (op->type) {
        case RECIPE_DEB:
                return feed_deb(f, op->src);
        case RECIPE_TAR:
                return feed_tar(f, op->src);
        case RECIPE_DIR:
                return feed_dir(f, op->src, op->dest);
        case RECIPE_EXCLUDE:
        case RECIPE_INCLUDE:
                return 0; /* collected up front */
        default:
                break;
        }

        /* directives name final image paths: normalised, but not mapped by the root mode */
        _cleanup_free_ char *path = NULL, *other = NULL;
        int r = image_path(f, op->dest, &path);
        if (r < 0)
                return r;
        if (r == 0)
                return img_err_set(f->err, -EINVAL, "%s: the image root itself cannot be the target",
                                   recipe_op_type_to_string(op->type));
        struct img_entry ie = {
                .path = path,
                .uid = op->has_uid ? op->uid : 0,
                .gid = op->has_gid ? op->gid : 0,
                .mtime = INT64_MAX, /* clamped to the epoch */
        };
        switch (op->type) {
        case RECIPE_MKDIR:
                ie.mode = S_IFDIR | (op->has_mode ? op->mode : 0755);
                return f->sink->add(f->sink_data, &ie, NULL);
        case RECIPE_FILE: {
                /* non-blocking: a FIFO must be refused below, not hang open(); reads of a regular file ignore it */
                _cleanup_close_ int fd = open(op->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        return img_err_set(f->err, negative_errno(), "'%s': %s", op->src, strerror(errno));
                if (!S_ISREG(st.st_mode))
                        return img_err_set(f->err, -EINVAL, "'%s': not a regular file", op->src);
                ie.mode = S_IFREG | (op->has_mode ? op->mode : 0644);
                ie.size = (uint64_t)st.st_size;
                struct fd_data fdd = { .fd = fd, .size = ie.size, .buf = f->buf, .path = op->src, .err = f->err };
                struct img_data data = { .next = fd_data_next, .ctx = &fdd };
                return f->sink->add(f->sink_data, &ie, &data);
        }
        case RECIPE_WRITE: {
                ie.mode = S_IFREG | (op->has_mode ? op->mode : 0644);
                ie.size = op->data_len;
                struct mem_data md = { .p = op->data, .len = op->data_len };
                struct img_data data = { .next = mem_data_next, .ctx = &md };
                return f->sink->add(f->sink_data, &ie, &data);
        }
        case RECIPE_SYMLINK:
                ie.mode = S_IFLNK | 0777;
                ie.target = op->arg;
                return f->sink->add(f->sink_data, &ie, NULL);
        case RECIPE_HARDLINK:
                r = image_path(f, op->arg, &other);
                if (r < 0)
                        return r;
                if (r == 0)
                        return img_err_set(f->err, -EINVAL, "hardlink: the image root cannot be linked");
                ie.mode = S_IFREG;
                ie.hardlink = other;
                return f->sink->add(f->sink_data, &ie, NULL);
        case RECIPE_ATTR:
                return f->sink->set_attr(f->sink_data, path, op->has_mode ? (int64_t)op->mode : -1,
                                         op->has_uid ? (int64_t)op->uid : -1, op->has_gid ? (int64_t)op->gid : -1);
        case RECIPE_XATTR:
                return f->sink->set_xattr(f->sink_data, path, op->arg, op->data, op->data_len);
        case RECIPE_RM:
                return f->sink->remove(f->sink_data, path);
        default:
                return -EINVAL;
        }
}

static void free_patterns(char **p, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(p[i]);
        free(p);
}

static int collect_patterns(struct feeder *f, const struct recipe *recipe) {
        for (size_t i = 0; recipe && i < recipe->n_ops; i++) {
                const struct recipe_op *op = &recipe->ops[i];
                if (op->type != RECIPE_EXCLUDE && op->type != RECIPE_INCLUDE)
                        continue;
                char ***arr = op->type == RECIPE_EXCLUDE ? &f->excludes : &f->includes;
                size_t *n = op->type == RECIPE_EXCLUDE ? &f->n_excludes : &f->n_includes;
                char **na = realloc(*arr, (*n + 1) * sizeof *na);
                if (!na)
                        return -ENOMEM;
                *arr = na;
                if (asprintf(&na[*n], "%s%s", op->dest[0] == '/' ? "" : "/", op->dest) < 0)
                        return -ENOMEM;
                (*n)++;
        }
        return 0;
}

int input_run(const struct recipe *recipe, char *const *inputs, size_t n_inputs, enum root_mode mode,
              const struct img_sink *sink, void *sink_data, struct img_err *err) {
        struct feeder f = { .mode = mode, .sink = sink, .sink_data = sink_data, .err = err };
        _cleanup_free_ uint8_t *buf = malloc(IO_CHUNK);
        if (!buf)
                return -ENOMEM;
        f.buf = buf;
        int r = collect_patterns(&f, recipe);
        for (size_t i = 0; r >= 0 && recipe && i < recipe->n_ops; i++) {
                r = apply_op(&f, &recipe->ops[i]);
                if (r < 0 && r != -ENOSPC && err) {
                        char prefix[PATH_MAX + 64];
                        snprintf(prefix, sizeof prefix, "'%s' line %u: ", recipe->path ?: "recipe", recipe->ops[i].line);
                        if (!err->msg[0])
                                img_err_set(err, r, "%s", strerror(-r));
                        img_err_prefix(err, prefix);
                }
        }
        for (size_t i = 0; r >= 0 && i < n_inputs; i++) {
                struct stat st;
                const char *in = inputs[i];
                size_t l = strlen(in);
                if (stat(in, &st) < 0)
                        r = img_err_set(err, negative_errno(), "'%s': %s", in, strerror(errno));
                else if (S_ISDIR(st.st_mode))
                        r = feed_dir(&f, in, "/");
                else if (l > 4 && strcmp(in + l - 4, ".deb") == 0)
                        r = feed_deb(&f, in);
                else
                        r = feed_tar(&f, in);
        }
        free_patterns(f.excludes, f.n_excludes);
        free_patterns(f.includes, f.n_includes);
        return r;
}
