/* image/ext4w.c — owns the ext4 image: libext2fs creation, adding/overriding/removing entries, epoch timestamps, atomic rename. */
#include "ext4w.h"

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "outfile.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "superblock patching assumes little endian");

#define MAX_SB_COPIES 64
#define TOMBSTONE ((char *)1)

/* path -> inode of everything in the image (open addressing, FNV-1a). */
struct slot {
        char *key;
        uint32_t hash;
        ext2_ino_t ino;
        bool dir;
};
struct path_map {
        struct slot *slots;
        size_t cap, used, tombs;
};

struct ext4w {
        ext2_filsys fs;
        char *out_path, *tmp_path;
        int fd;
        int tmp_slot; /* outfile slot: the temp file is removed on SIGINT/SIGTERM/SIGHUP */
        int64_t epoch;
        struct img_err *err;
        struct path_map map;
        uint8_t *block; /* one block, for sparse detection */
        uint64_t sb_offsets[MAX_SB_COPIES];
        size_t n_sb;
        /* Placement padding (see place_pad()): free blocks held back while files are written, released at the end. */
        struct { blk64_t start, len; } *pads;
        size_t n_pads;
        blk64_t padded;
};

/* ---- errors: the one place errcode_t becomes -errno ---- */

static int errcode_to_errno(errcode_t e) {
        if (e > 0 && e < 4096)
                return -(int)e; /* plain errno */
        switch (e) {
        case EXT2_ET_BLOCK_ALLOC_FAIL:
        case EXT2_ET_INODE_ALLOC_FAIL:
        case EXT2_ET_DIR_NO_SPACE:
        case EXT2_ET_TOOSMALL:
        case EXT2_ET_RES_GDT_BLOCKS:
        case EXT2_ET_EA_NO_SPACE:
                return -ENOSPC;
        case EXT2_ET_NO_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

static int fail_ext(struct ext4w *w, errcode_t e, const char *path, const char *what) {
        int r = errcode_to_errno(e);
        if (e == EXT2_ET_INODE_ALLOC_FAIL && !w->err->msg[0])
                w->err->inodes = w->fs->super->s_inodes_count; /* out of inodes, not of blocks */
        if (r == -ENOSPC && e != EXT2_ET_EA_NO_SPACE)
                return img_err_set(w->err, r, "/%s", path);
        return img_err_set(w->err, r, "'/%s': %s: %s", path, what, error_message(e));
}

/* ---- path map ---- */

static uint32_t hash_str(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 16777619u;
        return h;
}

static struct slot *map_find(struct path_map *m, const char *key) {
        if (!m->cap)
                return NULL;
        uint32_t h = hash_str(key);
        for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                struct slot *s = &m->slots[i];
                if (!s->key)
                        return NULL;
                if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
                        return s;
        }
}

static int map_put(struct path_map *m, const char *key, ext2_ino_t ino, bool dir) {
        if ((m->used + m->tombs + 1) * 4 >= m->cap * 3) {
                size_t ncap = m->cap ? (m->used * 4 >= m->cap ? m->cap * 2 : m->cap) : 1024;
                struct slot *ns = calloc(ncap, sizeof *ns);
                if (!ns)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++) {
                        struct slot *s = &m->slots[i];
                        if (!s->key || s->key == TOMBSTONE)
                                continue;
                        size_t j = s->hash & (ncap - 1);
                        while (ns[j].key)
                                j = (j + 1) & (ncap - 1);
                        ns[j] = *s;
                }
                free(m->slots);
                m->slots = ns;
                m->cap = ncap;
                m->tombs = 0;
        }
        uint32_t h = hash_str(key);
        size_t i = h & (m->cap - 1);
        while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
                i = (i + 1) & (m->cap - 1);
        char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        if (m->slots[i].key == TOMBSTONE)
                m->tombs--;
        m->slots[i] = (struct slot){ .key = k, .hash = h, .ino = ino, .dir = dir };
        m->used++;
        return 0;
}

static void map_del(struct path_map *m, struct slot *s) {
        free(s->key);
        s->key = TOMBSTONE;
        m->used--;
        m->tombs++;
}

static void map_free(struct path_map *m) {
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
                        free(m->slots[i].key);
        free(m->slots);
        *m = (struct path_map){ 0 };
}

/* ---- inode helpers ---- */

static int file_type(uint32_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG: return EXT2_FT_REG_FILE;
        case S_IFDIR: return EXT2_FT_DIR;
        case S_IFLNK: return EXT2_FT_SYMLINK;
        case S_IFCHR: return EXT2_FT_CHRDEV;
        case S_IFBLK: return EXT2_FT_BLKDEV;
        case S_IFIFO: return EXT2_FT_FIFO;
        default: return EXT2_FT_UNKNOWN;
        }
}

static uint32_t clamp_mtime(const struct ext4w *w, int64_t mtime) {
        return (uint32_t)(mtime < 0 ? 0 : MIN(mtime, w->epoch));
}

static void stamp(struct ext4w *w, struct ext2_inode_large *in, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime) {
        in->i_mode = (uint16_t)mode;
        in->i_uid = (uint16_t)uid;
        ext2fs_set_i_uid_high(*in, uid >> 16);
        in->i_gid = (uint16_t)gid;
        ext2fs_set_i_gid_high(*in, gid >> 16);
        in->i_atime = in->i_ctime = (uint32_t)w->epoch;
        in->i_mtime = clamp_mtime(w, mtime);
        in->i_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
        in->i_crtime = (uint32_t)w->epoch;
        in->i_atime_extra = in->i_ctime_extra = in->i_mtime_extra = in->i_crtime_extra = 0;
}

static int set_meta(struct ext4w *w, ext2_ino_t ino, const char *path, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime) {
        struct ext2_inode_large in;
        errcode_t e = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        if (!e) {
                stamp(w, &in, mode, uid, gid, mtime);
                e = ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        }
        return e ? fail_ext(w, e, path, "writing inode") : 0;
}

static int set_xattrs(struct ext4w *w, ext2_ino_t ino, const char *path, const struct img_xattr *xa, size_t n) {
        if (n == 0)
                return 0;
        struct ext2_xattr_handle *h = NULL;
        errcode_t e = ext2fs_xattrs_open(w->fs, ino, &h);
        if (!e)
                e = ext2fs_xattrs_read(h);
        for (size_t i = 0; !e && i < n; i++)
                e = ext2fs_xattr_set(h, xa[i].name, xa[i].value, xa[i].len);
        if (h) {
                errcode_t e2 = ext2fs_xattrs_close(&h);
                if (!e)
                        e = e2;
        }
        return e ? fail_ext(w, e, path, "setting xattrs") : 0;
}

static int link_name(struct ext4w *w, ext2_ino_t parent, const char *name, ext2_ino_t ino, uint32_t mode, const char *path) {
        for (int tries = 0;; tries++) {
                errcode_t e = ext2fs_link(w->fs, parent, name, ino, file_type(mode));
                if (e == EXT2_ET_DIR_NO_SPACE && tries < 2) {
                        e = ext2fs_expand_dir(w->fs, parent);
                        if (!e)
                                continue;
                }
                return e ? fail_ext(w, e, path, "linking") : 0;
        }
}

static int adjust_links(struct ext4w *w, ext2_ino_t ino, int delta, const char *path) {
        struct ext2_inode_large in;
        errcode_t e = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        if (!e) {
                if (delta > 0 && in.i_links_count >= EXT2_LINK_MAX)
                        return img_err_set(w->err, -EMLINK, "'/%s': too many links", path);
                in.i_links_count = (uint16_t)(in.i_links_count + delta);
                e = ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        }
        return e ? fail_ext(w, e, path, "updating link count") : 0;
}

/* Release an inode whose last name is gone: its blocks, its xattr block, and the inode itself (zeroed). */
static int free_inode(struct ext4w *w, ext2_ino_t ino, const char *path) {
        struct ext2_inode_large in;
        errcode_t e = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        bool dir = !e && LINUX_S_ISDIR(in.i_mode);
        if (!e && ext2fs_inode_has_valid_blocks2(w->fs, (struct ext2_inode *)&in))
                e = ext2fs_punch(w->fs, ino, (struct ext2_inode *)&in, NULL, 0, ~0ULL);
        if (!e) {
                blk64_t acl = ext2fs_file_acl_block(w->fs, (struct ext2_inode *)&in);
                if (acl) {
                        __u32 count = 0;
                        e = ext2fs_adjust_ea_refcount3(w->fs, acl, NULL, -1, &count, ino);
                        if (!e && count == 0)
                                ext2fs_block_alloc_stats2(w->fs, acl, -1);
                }
        }
        if (!e) {
                memset(&in, 0, sizeof in);
                e = ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        }
        if (e)
                return fail_ext(w, e, path, "freeing inode");
        ext2fs_inode_alloc_stats2(w->fs, ino, -1, dir);
        return 0;
}

static ext2_ino_t parent_ino_of(struct ext4w *w, const char *path, const char **ret_name);

struct child_list {
        char **names;
        size_t n, cap;
        int err;
};

static int collect_child(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize, char *buf, void *priv) {
        struct child_list *c = priv;
        size_t nl = ext2fs_dirent_name_len(de);
        if (!de->inode || (nl == 1 && de->name[0] == '.') || (nl == 2 && de->name[0] == '.' && de->name[1] == '.'))
                return 0;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                char **nn = realloc(c->names, cap * sizeof *nn);
                if (!nn) {
                        c->err = -ENOMEM;
                        return DIRENT_ABORT;
                }
                c->names = nn;
                c->cap = cap;
        }
        if (!(c->names[c->n] = strndup(de->name, nl))) {
                c->err = -ENOMEM;
                return DIRENT_ABORT;
        }
        c->n++;
        return 0;
}

/* Remove path (and, for a directory, its whole subtree) from the image. */
static int remove_path(struct ext4w *w, const char *path) {
        struct slot *s = map_find(&w->map, path);
        if (!s)
                return img_err_set(w->err, -ENOENT, "'/%s': not in the image", path);
        ext2_ino_t ino = s->ino;
        bool dir = s->dir;
        int r;
        if (dir) {
                struct child_list c = { 0 };
                errcode_t e = ext2fs_dir_iterate2(w->fs, ino, 0, NULL, collect_child, &c);
                r = e ? fail_ext(w, e, path, "reading directory") : c.err;
                for (size_t i = 0; r >= 0 && i < c.n; i++) {
                        _cleanup_free_ char *sub = NULL;
                        if (asprintf(&sub, "%s/%s", path, c.names[i]) < 0)
                                r = -ENOMEM;
                        else
                                r = remove_path(w, sub);
                }
                for (size_t i = 0; i < c.n; i++)
                        free(c.names[i]);
                free(c.names);
                if (r < 0)
                        return r;
                s = map_find(&w->map, path); /* the map may have been rehashed */
        }
        const char *name;
        ext2_ino_t parent = parent_ino_of(w, path, &name);
        errcode_t e = ext2fs_unlink(w->fs, parent, name, ino, 0);
        if (e)
                return fail_ext(w, e, path, "unlinking");
        map_del(&w->map, s);
        if (dir) {
                if ((r = adjust_links(w, parent, -1, path)) < 0)
                        return r;
                return free_inode(w, ino, path);
        }
        struct ext2_inode_large in;
        e = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in);
        if (e)
                return fail_ext(w, e, path, "reading inode");
        if (in.i_links_count > 1)
                return adjust_links(w, ino, -1, path);
        return free_inode(w, ino, path);
}

/* The parent's inode of an existing path (its parent is always in the map). */
static ext2_ino_t parent_ino_of(struct ext4w *w, const char *path, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        *ret_name = slash ? slash + 1 : path;
        if (!slash)
                return EXT2_ROOT_INO;
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        struct slot *s = map_find(&w->map, parent);
        return s ? s->ino : 0;
}

static int make_dir(struct ext4w *w, ext2_ino_t parent, const char *name, const char *path, ext2_ino_t *ret) {
        ext2_ino_t ino;
        errcode_t e = ext2fs_new_inode(w->fs, parent, LINUX_S_IFDIR | 0755, NULL, &ino);
        if (e)
                return fail_ext(w, e, path, "allocating inode");
        struct ext2_inode pin;
        if ((e = ext2fs_read_inode(w->fs, parent, &pin)))
                return fail_ext(w, e, path, "reading parent");
        uint16_t before = pin.i_links_count;
        /* no name: ext2fs_mkdir would leak the inode if linking failed for lack of space */
        if ((e = ext2fs_mkdir(w->fs, parent, ino, NULL)))
                return fail_ext(w, e, path, "creating directory");
        int r = link_name(w, parent, name, ino, S_IFDIR, path);
        if (r < 0)
                return r;
        if ((e = ext2fs_read_inode(w->fs, parent, &pin)))
                return fail_ext(w, e, path, "reading parent");
        if (pin.i_links_count == before && (r = adjust_links(w, parent, +1, path)) < 0)
                return r;
        *ret = ino;
        return 0;
}

/* Find the parent directory of path, creating missing ones (0755 root:root). */
static int ensure_parent(struct ext4w *w, const char *path, ext2_ino_t *ret_parent, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        if (!slash) {
                *ret_parent = EXT2_ROOT_INO;
                *ret_name = path;
                return 0;
        }
        char parent[PATH_MAX];
        if ((size_t)(slash - path) >= sizeof parent)
                return img_err_set(w->err, -ENAMETOOLONG, "'/%s': path too long", path);
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        struct slot *s = map_find(&w->map, parent);
        if (s && !s->dir)
                return img_err_set(w->err, -ENOTDIR, "'/%s': parent '/%s' is not a directory", path, parent);
        if (!s) {
                ext2_ino_t gp, ino;
                const char *name;
                int r = ensure_parent(w, parent, &gp, &name);
                if (r < 0)
                        return r;
                if ((r = make_dir(w, gp, name, parent, &ino)) < 0)
                        return r;
                if ((r = set_meta(w, ino, parent, S_IFDIR | 0755, 0, 0, w->epoch)) < 0)
                        return r;
                if ((r = map_put(&w->map, parent, ino, true)) < 0)
                        return r;
                *ret_parent = ino;
        } else
                *ret_parent = s->ino;
        *ret_name = slash + 1;
        return 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Stream file data into ino; 4 KiB blocks that are entirely zero (or never written) stay holes. */
static int write_data(struct ext4w *w, ext2_ino_t ino, const char *path, uint64_t size, struct img_data *data) {
        ext2_file_t file;
        errcode_t e = ext2fs_file_open(w->fs, ino, EXT2_FILE_WRITE, &file);
        if (e)
                return fail_ext(w, e, path, "opening");
        const uint64_t bs = EXT4W_BLOCK_SIZE;
        uint64_t cur = UINT64_MAX; /* block index held in w->block */
        int r = 0;
        for (;;) {
                const void *buf;
                size_t len;
                uint64_t off;
                r = data->next(data->ctx, &buf, &len, &off);
                if (r <= 0)
                        break;
                if (off > size || len > size - off) {
                        r = img_err_set(w->err, -EINVAL, "'/%s': data beyond its declared size", path);
                        break;
                }
                const uint8_t *p = buf;
                while (len > 0 && r >= 0) {
                        uint64_t blk = off / bs;
                        if (blk != cur) {
                                if (cur != UINT64_MAX && !all_zero(w->block, bs)) {
                                        unsigned n = (unsigned)MIN(bs, size - cur * bs);
                                        e = ext2fs_file_llseek(file, cur * bs, EXT2_SEEK_SET, NULL);
                                        if (!e)
                                                e = ext2fs_file_write(file, w->block, n, NULL);
                                        if (e)
                                                r = fail_ext(w, e, path, "writing");
                                }
                                cur = blk;
                                memset(w->block, 0, bs);
                        }
                        size_t in_blk = (size_t)(off % bs), n = (size_t)MIN((uint64_t)len, bs - in_blk);
                        memcpy(w->block + in_blk, p, n);
                        p += n;
                        off += n;
                        len -= n;
                }
                if (r < 0)
                        break;
        }
        if (r >= 0 && cur != UINT64_MAX && !all_zero(w->block, bs)) {
                unsigned n = (unsigned)MIN(bs, size - cur * bs);
                e = ext2fs_file_llseek(file, cur * bs, EXT2_SEEK_SET, NULL);
                if (!e)
                        e = ext2fs_file_write(file, w->block, n, NULL);
                if (e)
                        r = fail_ext(w, e, path, "writing");
        }
        e = ext2fs_file_close(file);
        if (e && r >= 0)
                r = fail_ext(w, e, path, "closing");
        return r;
}

/* ---- placement: files that span whole payload chunks start on a chunk boundary, and so does what follows ----
 * Blocks are otherwise allocated first-free in stream order, so a file that grows by one block moves every file
 * written after it, and a delta between two releases then finds none of those files at their old offsets. A file
 * of at least PLACE_ALIGN blocks (1 MiB, the payload's default chunk size) therefore starts at the next 1 MiB
 * boundary, and the free blocks after its end up to the next boundary are held back while the rest is written:
 * it can grow (or shrink) within its last MiB without moving anything behind it. Small files still pack. At most
 * 1/16 of the filesystem is held back (fit mode's estimate has 10 % slack); the held blocks are free again in the
 * finished image. Deterministic: the same stream gives the same layout. */
#define PLACE_ALIGN 256u
#define PLACE_MAX_SHARE 16u

static int place_pad(struct ext4w *w) {
        ext2_filsys fs = w->fs;
        blk64_t first = fs->super->s_first_data_block, last = ext2fs_blocks_count(fs->super) - 1, f;
        if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, first, last, &f))
                return 0; /* full: nothing to hold back */
        blk64_t a = MIN((f + PLACE_ALIGN - 1) / PLACE_ALIGN * PLACE_ALIGN, last + 1), n = a - f;
        if (n == 0 || w->padded + n > ext2fs_blocks_count(fs->super) / PLACE_MAX_SHARE ||
            !ext2fs_test_block_bitmap_range2(fs->block_map, f, (unsigned)n))
                return 0;
        void *np = realloc(w->pads, (w->n_pads + 1) * sizeof *w->pads);
        if (!np)
                return img_err_set(w->err, -ENOMEM, "out of memory");
        w->pads = np;
        w->pads[w->n_pads].start = f;
        w->pads[w->n_pads++].len = n;
        w->padded += n;
        ext2fs_mark_block_bitmap_range2(fs->block_map, f, (unsigned)n);
        return 0;
}

static void place_release(struct ext4w *w) {
        for (size_t i = 0; i < w->n_pads; i++)
                ext2fs_unmark_block_bitmap_range2(w->fs->block_map, w->pads[i].start, (unsigned)w->pads[i].len);
        w->n_pads = 0;
        w->padded = 0;
}

static int add_inode(struct ext4w *w, const struct img_entry *ie, ext2_ino_t parent, const char *name, struct img_data *data) {
        const char *path = ie->path;
        uint32_t type = ie->mode & S_IFMT, mode = type | (ie->mode & 07777);
        ext2_ino_t ino;
        errcode_t e;
        int r;

        if (type == S_IFDIR) {
                if ((r = make_dir(w, parent, name, path, &ino)) < 0)
                        return r;
        } else if (type == S_IFLNK) {
                size_t tl = strlen(ie->target);
                if (tl == 0 || tl >= EXT4W_BLOCK_SIZE)
                        return img_err_set(w->err, -ENAMETOOLONG, "'/%s': symlink target must be 1..4095 bytes", path);
                if ((e = ext2fs_new_inode(w->fs, parent, LINUX_S_IFLNK | 0777, NULL, &ino)))
                        return fail_ext(w, e, path, "allocating inode");
                if ((e = ext2fs_symlink(w->fs, parent, ino, NULL, ie->target)))
                        return fail_ext(w, e, path, "creating symlink");
                if ((r = link_name(w, parent, name, ino, S_IFLNK, path)) < 0)
                        return r;
        } else if (type == S_IFREG || type == S_IFCHR || type == S_IFBLK || type == S_IFIFO) {
                if ((e = ext2fs_new_inode(w->fs, parent, mode, NULL, &ino)))
                        return fail_ext(w, e, path, "allocating inode");
                struct ext2_inode_large in = { 0 };
                stamp(w, &in, mode, ie->uid, ie->gid, ie->mtime);
                in.i_links_count = 1;
                if (type == S_IFREG) {
                        if ((e = ext2fs_inode_size_set(w->fs, (struct ext2_inode *)&in, ie->size)))
                                return fail_ext(w, e, path, "setting size");
                        ext2_extent_handle_t h;
                        if ((e = ext2fs_extent_open2(w->fs, ino, (struct ext2_inode *)&in, &h)))
                                return fail_ext(w, e, path, "initialising extents");
                        ext2fs_extent_free(h);
                } else if (type != S_IFIFO) {
                        uint32_t ma = ie->rdev_major, mi = ie->rdev_minor;
                        if (ma < 256 && mi < 256) {
                                in.i_block[0] = ma * 256 + mi;
                        } else {
                                in.i_block[1] = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
                        }
                }
                if ((e = ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof in)))
                        return fail_ext(w, e, path, "writing inode");
                ext2fs_inode_alloc_stats2(w->fs, ino, +1, 0);
                if ((r = link_name(w, parent, name, ino, mode, path)) < 0)
                        return r;
        } else
                return img_err_set(w->err, -EINVAL, "'/%s': unsupported file type 0%o", path, type);

        if (type == S_IFDIR || type == S_IFLNK) {
                if ((r = set_meta(w, ino, path, mode, ie->uid, ie->gid, ie->mtime)) < 0)
                        return r;
        }
        if ((r = map_put(&w->map, path, ino, type == S_IFDIR)) < 0)
                return r;
        if ((r = set_xattrs(w, ino, path, ie->xattrs, ie->n_xattrs)) < 0)
                return r;
        if (type == S_IFREG && data) {
                bool big = ie->size >= (uint64_t)PLACE_ALIGN * EXT4W_BLOCK_SIZE;
                if (big && (r = place_pad(w)) < 0)
                        return r;
                r = write_data(w, ino, path, ie->size, data);
                if (r >= 0 && big)
                        r = place_pad(w);
                return r;
        }
        return 0;
}

static int sink_add(void *sink, const struct img_entry *ie, struct img_data *data) {
        struct ext4w *w = sink;
        ext2_ino_t parent;
        const char *name;
        int r = ensure_parent(w, ie->path, &parent, &name);
        if (r < 0)
                return r;
        struct slot *old = map_find(&w->map, ie->path);
        if (old && old->dir && S_ISDIR(ie->mode) && !ie->hardlink) {
                /* directory over directory: merge, take the later metadata */
                ext2_ino_t ino = old->ino;
                r = set_meta(w, ino, ie->path, S_IFDIR | (ie->mode & 07777), ie->uid, ie->gid, ie->mtime);
                return r < 0 ? r : set_xattrs(w, ino, ie->path, ie->xattrs, ie->n_xattrs);
        }
        if (ie->hardlink) {
                struct slot *t = map_find(&w->map, ie->hardlink);
                if (!t)
                        return img_err_set(w->err, -ENOENT, "'/%s': hard link target '/%s' is not in the image", ie->path, ie->hardlink);
                if (t->dir)
                        return img_err_set(w->err, -EPERM, "'/%s': hard link target '/%s' is a directory", ie->path, ie->hardlink);
                ext2_ino_t ino = t->ino;
                if (old && old->ino == ino)
                        return 0; /* already that inode */
                if (old && (r = remove_path(w, ie->path)) < 0)
                        return r;
                struct ext2_inode in;
                errcode_t e = ext2fs_read_inode(w->fs, ino, &in);
                if (e)
                        return fail_ext(w, e, ie->path, "reading link target");
                if ((r = adjust_links(w, ino, +1, ie->path)) < 0)
                        return r;
                if ((r = link_name(w, parent, name, ino, in.i_mode, ie->path)) < 0)
                        return r;
                return map_put(&w->map, ie->path, ino, false);
        }
        if (old && (r = remove_path(w, ie->path)) < 0)
                return r;
        return add_inode(w, ie, parent, name, data);
}

static int sink_remove(void *sink, const char *path) {
        return remove_path(sink, path);
}

static int sink_set_attr(void *sink, const char *path, int64_t mode, int64_t uid, int64_t gid) {
        struct ext4w *w = sink;
        struct slot *s = map_find(&w->map, path);
        if (!s)
                return img_err_set(w->err, -ENOENT, "'/%s': not in the image", path);
        struct ext2_inode_large in;
        errcode_t e = ext2fs_read_inode_full(w->fs, s->ino, (struct ext2_inode *)&in, sizeof in);
        if (e)
                return fail_ext(w, e, path, "reading inode");
        if (mode >= 0)
                in.i_mode = (uint16_t)((in.i_mode & S_IFMT) | (mode & 07777));
        if (uid >= 0) {
                in.i_uid = (uint16_t)uid;
                ext2fs_set_i_uid_high(in, (uint32_t)uid >> 16);
        }
        if (gid >= 0) {
                in.i_gid = (uint16_t)gid;
                ext2fs_set_i_gid_high(in, (uint32_t)gid >> 16);
        }
        e = ext2fs_write_inode_full(w->fs, s->ino, (struct ext2_inode *)&in, sizeof in);
        return e ? fail_ext(w, e, path, "writing inode") : 0;
}

static int sink_set_xattr(void *sink, const char *path, const char *name, const void *value, size_t len) {
        struct ext4w *w = sink;
        struct slot *s = map_find(&w->map, path);
        if (!s)
                return img_err_set(w->err, -ENOENT, "'/%s': not in the image", path);
        struct img_xattr x = { .name = name, .value = value, .len = len };
        return set_xattrs(w, s->ino, path, &x, 1);
}

const struct img_sink ext4w_sink = {
        .add = sink_add,
        .remove = sink_remove,
        .set_attr = sink_set_attr,
        .set_xattr = sink_set_xattr,
};

/* ---- creating and finishing ---- */

static int sha256(const char *prefix, const char *s, uint8_t out[32]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!c)
                return -ENOMEM;
        int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, prefix, strlen(prefix)) &&
                 EVP_DigestUpdate(c, s, strlen(s)) && EVP_DigestFinal_ex(c, out, NULL);
        EVP_MD_CTX_free(c);
        return ok ? 0 : -EIO;
}

int ext4w_uuid_from_seed(const char *seed, uint8_t ret_uuid[16]) {
        uint8_t d[32];
        int r = sha256("cairn-fs-uuid:", seed, d);
        if (r < 0)
                return r;
        d[6] = (d[6] & 0x0f) | 0x40; /* version 4 */
        d[8] = (d[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        memcpy(ret_uuid, d, 16);
        return 0;
}

static void ext4w_free(struct ext4w *w) {
        if (w->fs)
                ext2fs_free(w->fs);
        if (w->fd >= 0)
                close(w->fd);
        if (w->tmp_path)
                unlink(w->tmp_path);
        outfile_forget(w->tmp_slot);
        map_free(&w->map);
        free(w->block);
        free(w->pads);
        free(w->tmp_path);
        free(w->out_path);
        free(w);
}

void ext4w_abort(struct ext4w *w) {
        if (w)
                ext4w_free(w);
}

static int setup_fs(struct ext4w *w, const struct ext4w_params *p) {
        ext2_filsys fs = w->fs;
        struct ext2_super_block *sb = fs->super;
        errcode_t e;
        fs->now = p->epoch; /* 0 means "wall clock" to libext2fs: the final pass and the sb patch cover that */
        sb->s_mkfs_time = sb->s_lastcheck = (uint32_t)p->epoch;
        sb->s_max_mnt_count = 0xffff;
        sb->s_checkinterval = 0;
        sb->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
        sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
        sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
        int r = ext4w_uuid_from_seed(p->seed, sb->s_uuid);
        if (r < 0)
                return r;
        uint8_t d[32];
        if ((r = sha256("cairn-fs-hash-seed:", p->seed, d)) < 0)
                return r;
        memcpy(sb->s_hash_seed, d, sizeof sb->s_hash_seed);
        if (p->label)
                strncpy((char *)sb->s_volume_name, p->label, sizeof sb->s_volume_name);
        ext2fs_init_csum_seed(fs);

        if ((e = ext2fs_allocate_tables(fs)))
                return fail_ext(w, e, "", "allocating group tables");
        if ((e = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map)))
                return fail_ext(w, e, "", "converting bitmap");
        /* the image file is new and sparse, so every inode table already reads as zeros */
        for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
                ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
                ext2fs_group_desc_csum_set(fs, g);
        }

        if ((e = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, NULL)))
                return fail_ext(w, e, "", "creating root directory");
        ext2_ino_t lpf;
        if ((r = make_dir(w, EXT2_ROOT_INO, "lost+found", "lost+found", &lpf)) < 0)
                return r;
        for (int i = 1; i < 4; i++) /* 16 KiB, as mke2fs makes it, so e2fsck need not allocate */
                if ((e = ext2fs_expand_dir(fs, lpf)))
                        return fail_ext(w, e, "lost+found", "expanding");
        if ((r = set_meta(w, lpf, "lost+found", LINUX_S_IFDIR | 0700, 0, 0, p->epoch)) < 0)
                return r;
        if ((r = map_put(&w->map, "lost+found", lpf, true)) < 0)
                return r;
        if ((r = set_meta(w, EXT2_ROOT_INO, "", LINUX_S_IFDIR | 0755, 0, 0, p->epoch)) < 0)
                return r;

        for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(sb); i++)
                ext2fs_inode_alloc_stats2(fs, i, +1, 0);
        ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
        if ((e = ext2fs_update_bb_inode(fs, NULL)))
                return fail_ext(w, e, "", "creating bad block inode");
        if ((e = ext2fs_create_resize_inode(fs)))
                return fail_ext(w, e, "", "creating resize inode");
        if (p->journal) {
                struct ext2fs_journal_params jp;
                if ((e = ext2fs_get_journal_params(&jp, fs)) || jp.num_journal_blocks == 0)
                        return img_err_set(w->err, -ENOSPC, "--size too small for a journal (use --no-journal or a larger --size)");
                /* LAZYINIT: no need to zero the journal, the fresh file reads as zeros */
                if ((e = ext2fs_add_journal_inode3(fs, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK)))
                        return fail_ext(w, e, "", "creating journal");
        }
        /* remember where the superblock copies are, for the final s_wtime stamp */
        for (dgrp_t g = 0; g < fs->group_desc_count && w->n_sb < MAX_SB_COPIES; g++)
                if (ext2fs_bg_has_super(fs, g))
                        w->sb_offsets[w->n_sb++] = g == 0 ? SUPERBLOCK_OFFSET : ext2fs_group_first_block2(fs, g) * fs->blocksize;
        return 0;
}

int ext4w_create(const char *out_path, const struct ext4w_params *p, struct img_err *err, struct ext4w **ret) {
        static bool et_init;
        if (!et_init) {
                initialize_ext2_error_table();
                et_init = true;
        }
        if (p->epoch < 0 || p->epoch > INT32_MAX)
                return img_err_set(err, -ERANGE, "epoch %lld out of range (0..%d)", (long long)p->epoch, INT32_MAX);
        if (p->label && strlen(p->label) > 16)
                return img_err_set(err, -EINVAL, "label '%s' longer than 16 bytes", p->label);
        uint64_t blocks = p->size / EXT4W_BLOCK_SIZE;
        if (blocks < 64 || blocks >= (1ULL << 32))
                return img_err_set(err, -ENOSPC, "size %llu bytes out of range (256K .. 16T)", (unsigned long long)p->size);

        struct ext4w *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->tmp_slot = -1;
        w->err = err;
        w->epoch = p->epoch;
        if (!(w->out_path = strdup(out_path)) || asprintf(&w->tmp_path, "%s.tmpXXXXXX", out_path) < 0 ||
            !(w->block = malloc(EXT4W_BLOCK_SIZE))) {
                w->tmp_path = NULL;
                ext4w_free(w);
                return -ENOMEM;
        }
        const char *what = NULL;
        int r = outfile_check_target(out_path, &what);
        if (r == -EEXIST)
                r = img_err_set(err, r, "'%s' is %s: refusing to replace it (give the path of a regular file or a new one)",
                                out_path, what);
        else if (r < 0)
                r = img_err_set(err, r, "'%s': cannot create output: %s", out_path, strerror(-r));
        else {
                r = outfile_mkostemp(w->tmp_path, O_CLOEXEC, &w->tmp_slot);
                if (r < 0)
                        r = img_err_set(err, r, "'%s': cannot create output: %s", out_path, strerror(-r));
                else
                        w->fd = r;
        }
        if (r < 0) {
                free(w->tmp_path);
                w->tmp_path = NULL;
                ext4w_free(w);
                return r;
        }
        if (ftruncate(w->fd, (off_t)(blocks * EXT4W_BLOCK_SIZE)) < 0) {
                int r = img_err_set(err, negative_errno(), "'%s': %s", w->tmp_path, strerror(errno));
                ext4w_free(w);
                return r;
        }

        struct ext2_super_block param = { 0 };
        ext2fs_blocks_count_set(&param, blocks);
        param.s_log_block_size = 2; /* 1024 << 2 */
        param.s_rev_level = EXT2_DYNAMIC_REV;
        param.s_inode_size = 256;
        param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
        param.s_log_groups_per_flex = 4;
        uint64_t inodes = MAX(blocks * EXT4W_BLOCK_SIZE / EXT4W_BYTES_PER_INODE, p->min_inodes);
        param.s_inodes_count = (uint32_t)MIN(inodes, (uint64_t)UINT32_MAX - 1);
        param.s_feature_compat = EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX | EXT2_FEATURE_COMPAT_EXT_ATTR |
                                 (p->journal ? EXT3_FEATURE_COMPAT_HAS_JOURNAL : 0);
        param.s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT |
                                   EXT4_FEATURE_INCOMPAT_FLEX_BG;
        param.s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
                                    EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
                                    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;

        errcode_t e = ext2fs_initialize(w->tmp_path, EXT2_FLAG_64BITS, &param, unix_io_manager, &w->fs);
        if (e) {
                int r = errcode_to_errno(e);
                if (r == -ENOSPC)
                        img_err_set(err, r, "size %llu bytes is too small for the filesystem layout",
                                    (unsigned long long)p->size);
                else
                        img_err_set(err, r, "'%s': %s", w->tmp_path, error_message(e));
                w->fs = NULL;
                ext4w_free(w);
                return r;
        }
        r = setup_fs(w, p);
        if (r < 0) {
                ext4w_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

/* Every timestamp comes from the epoch: libext2fs stamps the wall clock where fs->now is 0. */
static int stamp_all_inodes(struct ext4w *w) {
        ext2_filsys fs = w->fs;
        for (ext2_ino_t ino = 1; ino <= fs->super->s_inodes_count; ino++) {
                if (!ext2fs_test_inode_bitmap2(fs->inode_map, ino))
                        continue;
                struct ext2_inode_large in;
                errcode_t e = ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&in, sizeof in);
                if (e)
                        return fail_ext(w, e, "", "reading inode");
                if (!in.i_mode && !in.i_links_count && !in.i_atime && !in.i_ctime && !in.i_mtime)
                        continue;
                uint32_t mtime = in.i_mtime > (uint32_t)w->epoch ? (uint32_t)w->epoch : in.i_mtime;
                in.i_atime = in.i_ctime = (uint32_t)w->epoch;
                in.i_mtime = mtime;
                in.i_atime_extra = in.i_ctime_extra = in.i_mtime_extra = 0;
                if (in.i_extra_isize >= offsetof(struct ext2_inode_large, i_crtime_extra) + 4 - EXT2_GOOD_OLD_INODE_SIZE) {
                        in.i_crtime = (uint32_t)w->epoch;
                        in.i_crtime_extra = 0;
                }
                if ((e = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&in, sizeof in)))
                        return fail_ext(w, e, "", "writing inode");
        }
        return 0;
}

/* ext2fs_close() writes s_wtime = fs->now ?: time(NULL); put the epoch into every superblock copy. */
static int stamp_superblocks(struct ext4w *w) {
        for (size_t i = 0; i < w->n_sb; i++) {
                struct ext2_super_block sb;
                int r = pread_full(w->fd, &sb, sizeof sb, w->sb_offsets[i]);
                if (r < 0)
                        return img_err_set(w->err, r, "'%s': %s", w->tmp_path, strerror(-r));
                if (sb.s_magic != EXT2_SUPER_MAGIC)
                        return img_err_set(w->err, -EIO, "'%s': no superblock at %llu", w->tmp_path,
                                           (unsigned long long)w->sb_offsets[i]);
                if (sb.s_wtime == (uint32_t)w->epoch && sb.s_wtime_hi == 0)
                        continue;
                sb.s_wtime = (uint32_t)w->epoch;
                sb.s_wtime_hi = 0;
                if (sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)
                        sb.s_checksum = ext2fs_crc32c_le(~0U, (unsigned char *)&sb, offsetof(struct ext2_super_block, s_checksum));
                if ((r = pwrite_full(w->fd, &sb, sizeof sb, w->sb_offsets[i])) < 0)
                        return img_err_set(w->err, r, "'%s': %s", w->tmp_path, strerror(-r));
        }
        return 0;
}

int ext4w_finish(struct ext4w *w) {
        place_release(w);
        int r = stamp_all_inodes(w);
        errcode_t e = 0;
        if (r >= 0 && (e = ext2fs_set_gdt_csum(w->fs)))
                r = fail_ext(w, e, "", "group descriptor checksums");
        if (r >= 0) {
                e = ext2fs_close2(w->fs, EXT2_FLAG_FLUSH_NO_SYNC);
                if (e) {
                        r = img_err_set(w->err, errcode_to_errno(e), "'%s': writing filesystem: %s", w->tmp_path, error_message(e));
                } else
                        w->fs = NULL; /* closed and freed */
        }
        if (r >= 0)
                r = stamp_superblocks(w);
        if (r >= 0 && fsync(w->fd) < 0)
                r = img_err_set(w->err, negative_errno(), "'%s': %s", w->tmp_path, strerror(errno));
        if (r >= 0 && fchmod(w->fd, 0644) < 0)
                r = img_err_set(w->err, negative_errno(), "'%s': %s", w->tmp_path, strerror(errno));
        if (r >= 0 && rename(w->tmp_path, w->out_path) < 0)
                r = img_err_set(w->err, negative_errno(), "'%s': %s", w->out_path, strerror(errno));
        if (r >= 0) {
                free(w->tmp_path);
                w->tmp_path = NULL; /* renamed: nothing to remove */
                (void)fsync_parent_dir(w->out_path);
        }
        ext4w_free(w);
        return r;
}

/* ---- fit mode ---- */

static int count_add(void *sink, const struct img_entry *ie, struct img_data *data) {
        struct ext4w_count *c = sink;
        const char *name = strrchr(ie->path, '/');
        name = name ? name + 1 : ie->path;
        c->entries++;
        c->dirent_bytes += ALIGN_UP(8 + strlen(name), 4);
        if (ie->hardlink)
                return 0;
        if (S_ISDIR(ie->mode))
                c->dirs++;
        else if (S_ISREG(ie->mode))
                c->blocks += (ie->size + EXT4W_BLOCK_SIZE - 1) / EXT4W_BLOCK_SIZE;
        else if (S_ISLNK(ie->mode) && strlen(ie->target) >= 60)
                c->blocks++;
        size_t xbytes = 0;
        for (size_t i = 0; i < ie->n_xattrs; i++)
                xbytes += 16 + strlen(ie->xattrs[i].name) + ie->xattrs[i].len;
        if (xbytes > 80)
                c->blocks++;
        return 0;
}
static int count_remove(void *sink, const char *path) {
        return 0;
}
static int count_set_attr(void *sink, const char *path, int64_t mode, int64_t uid, int64_t gid) {
        return 0;
}
static int count_set_xattr(void *sink, const char *path, const char *name, const void *value, size_t len) {
        ((struct ext4w_count *)sink)->blocks++;
        return 0;
}
const struct img_sink ext4w_count_sink = {
        .add = count_add,
        .remove = count_remove,
        .set_attr = count_set_attr,
        .set_xattr = count_set_xattr,
};

uint64_t ext4w_fit_size(const struct ext4w_count *c, bool journal, uint64_t *ret_min_inodes) {
        const uint64_t bs = EXT4W_BLOCK_SIZE, bpg = bs * 8;
        uint64_t data = c->blocks + c->dirs + c->dirent_bytes / bs + 16 /* root, lost+found, slack */;
        uint64_t need_inodes = c->entries + c->entries / 10 + 64;
        uint64_t total = data;
        for (int i = 0; i < 4; i++) {
                uint64_t groups = (total + bpg - 1) / bpg;
                uint64_t inodes = MAX(need_inodes, total * bs / EXT4W_BYTES_PER_INODE);
                uint64_t itable = (inodes * 256 + bs - 1) / bs + groups; /* per-group rounding */
                int j = journal ? ext2fs_default_journal_size(MAX(total, 2048)) : 0;
                /* bitmaps, and superblock + descriptors + reserved GDT blocks in the backup groups */
                uint64_t overhead = groups * 2 + 64 * (groups < 8 ? groups : 8 + groups / 16);
                total = (data + itable + (uint64_t)(j > 0 ? j : 0) + overhead) * 11 / 10 + (4 << 20) / bs;
        }
        total = ALIGN_UP(total, (1 << 20) / bs);
        if (ret_min_inodes)
                *ret_min_inodes = need_inodes;
        return total * bs;
}
