/* bootcfg/fat.c — a minimal read-only FAT12/16/32 reader: find a file's clusters by path, check they are contiguous. */
#include "fat.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileio.h"
#include "macro.h"

#define FAT_DIR_MAX_BYTES (65536u * 32u) /* the FAT spec caps a directory at 65536 entries */
#define FAT_NAME_MAX 256
#define FAT_LFN_SLOTS 20 /* 20 x 13 UTF-16 units >= 255 characters */

struct fat_vol {
        int fd;
        uint64_t vol_offset, vol_size;
        uint32_t bytes_per_sector, cluster_bytes;
        uint64_t fat_offset;      /* from the volume start */
        uint64_t root_offset;     /* FAT12/16 fixed root directory */
        uint32_t root_bytes;
        uint64_t data_offset;     /* cluster 2 */
        uint32_t clusters;        /* count of data clusters */
        uint32_t root_cluster;    /* FAT32 */
        unsigned bits;
};

static uint16_t le16(const uint8_t *p) {
        return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static bool is_pow2(uint32_t v) {
        return v && !(v & (v - 1));
}

static int vol_read(const struct fat_vol *v, void *buf, size_t n, uint64_t off) {
        if (off > v->vol_size || n > v->vol_size - off)
                return -EBADMSG;
        return pread_full(v->fd, buf, n, v->vol_offset + off);
}

static int vol_open(int fd, uint64_t vol_offset, uint64_t vol_size, struct fat_vol *ret) {
        uint8_t bs[512];
        struct fat_vol v = { .fd = fd, .vol_offset = vol_offset, .vol_size = vol_size };
        int r = vol_read(&v, bs, sizeof bs, 0);
        if (r < 0)
                return r;
        if (bs[510] != 0x55 || bs[511] != 0xaa)
                return -EBADMSG;
        uint32_t bps = le16(bs + 11), spc = bs[13], rsvd = le16(bs + 14), nfats = bs[16];
        uint32_t root_ents = le16(bs + 17);
        uint64_t tot = le16(bs + 19) ? le16(bs + 19) : le32(bs + 32);
        uint64_t fatsz = le16(bs + 22) ? le16(bs + 22) : le32(bs + 36);
        if (bps < 512 || bps > 4096 || !is_pow2(bps) || !is_pow2(spc) || spc > 128 || rsvd == 0 || nfats == 0 ||
            nfats > 2 || fatsz == 0 || tot == 0 || tot * bps > vol_size)
                return -EBADMSG;
        uint64_t root_secs = ((uint64_t)root_ents * 32 + bps - 1) / bps;
        uint64_t meta = rsvd + nfats * fatsz + root_secs;
        if (meta >= tot)
                return -EBADMSG;
        uint64_t clusters = (tot - meta) / spc;
        v.bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
        if (clusters > 0x0ffffff5)
                return -EBADMSG;
        if (v.bits == 32 ? root_ents != 0 || le16(bs + 22) != 0 : root_ents == 0)
                return -EBADMSG;
        /* The FAT must have an entry for every cluster. */
        if ((clusters + 2) * v.bits / 8 + 2 > fatsz * bps)
                return -EBADMSG;
        v.bytes_per_sector = bps;
        v.cluster_bytes = bps * spc;
        v.fat_offset = (uint64_t)rsvd * bps;
        v.root_offset = (rsvd + nfats * fatsz) * bps;
        v.root_bytes = (uint32_t)(root_secs * bps);
        v.data_offset = meta * bps;
        v.clusters = (uint32_t)clusters;
        if (v.bits == 32) {
                v.root_cluster = le32(bs + 44);
                if (v.root_cluster < 2 || v.root_cluster >= v.clusters + 2)
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* Next cluster in the chain: >= 2 a cluster, 0 end of chain; -EBADMSG for free/bad/out-of-range entries. */
static int fat_next(const struct fat_vol *v, uint32_t c, uint32_t *ret) {
        uint8_t b[4] = { 0 };
        uint32_t n;
        int r;
        if (v->bits == 12) {
                r = vol_read(v, b, 2, v->fat_offset + c + c / 2);
                if (r < 0)
                        return r;
                n = le16(b);
                n = (c & 1) ? n >> 4 : n & 0xfff;
                if (n >= 0xff8) {
                        *ret = 0;
                        return 0;
                }
        } else if (v->bits == 16) {
                r = vol_read(v, b, 2, v->fat_offset + (uint64_t)c * 2);
                if (r < 0)
                        return r;
                n = le16(b);
                if (n >= 0xfff8) {
                        *ret = 0;
                        return 0;
                }
        } else {
                r = vol_read(v, b, 4, v->fat_offset + (uint64_t)c * 4);
                if (r < 0)
                        return r;
                n = le32(b) & 0x0fffffff;
                if (n >= 0x0ffffff8) {
                        *ret = 0;
                        return 0;
                }
        }
        if (n < 2 || n >= v->clusters + 2)
                return -EBADMSG;
        *ret = n;
        return 0;
}

static uint64_t cluster_offset(const struct fat_vol *v, uint32_t c) {
        return v->data_offset + (uint64_t)(c - 2) * v->cluster_bytes;
}

/* Read a whole directory (fixed root when cluster == 0 on FAT12/16) into a bounded buffer. */
static int dir_read(const struct fat_vol *v, uint32_t cluster, uint8_t **ret_buf, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        int r;
        if (cluster == 0) {
                if (v->bits == 32)
                        return -EBADMSG;
                buf = malloc(v->root_bytes);
                if (!buf)
                        return -ENOMEM;
                r = vol_read(v, buf, v->root_bytes, v->root_offset);
                if (r < 0)
                        return r;
                len = v->root_bytes;
        } else {
                uint32_t steps = 0;
                for (uint32_t c = cluster; c != 0;) {
                        if (c < 2 || c >= v->clusters + 2 || ++steps > v->clusters ||
                            len + v->cluster_bytes > FAT_DIR_MAX_BYTES)
                                return -EBADMSG;
                        uint8_t *n = realloc(buf, len + v->cluster_bytes);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        r = vol_read(v, buf + len, v->cluster_bytes, cluster_offset(v, c));
                        if (r < 0)
                                return r;
                        len += v->cluster_bytes;
                        r = fat_next(v, c, &c);
                        if (r < 0)
                                return r;
                }
        }
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static uint8_t lfn_checksum(const uint8_t *name11) {
        uint8_t sum = 0;
        for (int i = 0; i < 11; i++)
                sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + name11[i]);
        return sum;
}

/* "GRUBENV.BAK" from the 11-byte 8.3 field. */
static void short_name(const uint8_t *e, char out[13]) {
        size_t n = 0;
        for (int i = 0; i < 8 && e[i] != ' '; i++)
                out[n++] = (char)(i == 0 && e[0] == 0x05 ? 0xe5 : e[i]);
        if (e[8] != ' ') {
                out[n++] = '.';
                for (int i = 8; i < 11 && e[i] != ' '; i++)
                        out[n++] = (char)e[i];
        }
        out[n] = 0;
}

/* One directory entry as dir_next() yields it: the 32 raw bytes, its index in the directory, its long name (VFAT,
 * "" when it has none or the slots do not check out; non-ASCII units as '?') and its 8.3 name ("GRUBENV.BAK"). */
struct dir_item {
        uint8_t e[32];
        uint32_t index;
        char long_name[FAT_LFN_SLOTS * 13 + 1];
        char short_name[13];
};

struct dir_iter {
        const uint8_t *dir;
        size_t len, off;
        uint16_t lfn[FAT_LFN_SLOTS * 13];
        int lfn_count, lfn_seen;
        uint8_t lfn_sum;
};

/* The next file or directory entry (long-name slots, deleted entries and the volume label are skipped);
 * 1 with *ret filled, 0 at the end of the directory. */
static int dir_next(struct dir_iter *it, struct dir_item *ret) {
        for (; it->off + 32 <= it->len; it->off += 32) {
                const uint8_t *e = it->dir + it->off;
                if (e[0] == 0x00)
                        return 0;
                if (e[0] == 0xe5) {
                        it->lfn_count = 0;
                        continue;
                }
                if ((e[11] & 0x3f) == 0x0f) { /* long-name slot */
                        int ord = e[0] & 0x3f;
                        if (ord == 0 || ord > FAT_LFN_SLOTS) {
                                it->lfn_count = 0;
                                continue;
                        }
                        if (e[0] & 0x40) {
                                it->lfn_count = ord;
                                it->lfn_seen = 0;
                                it->lfn_sum = e[13];
                                for (size_t i = 0; i < ELEMENTSOF(it->lfn); i++)
                                        it->lfn[i] = 0xffff;
                        } else if (it->lfn_count == 0 || e[13] != it->lfn_sum || ord > it->lfn_count) {
                                it->lfn_count = 0;
                                continue;
                        }
                        static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
                        for (int i = 0; i < 13; i++)
                                it->lfn[(ord - 1) * 13 + i] = le16(e + pos[i]);
                        it->lfn_seen |= 1 << (ord - 1);
                        continue;
                }
                if (e[11] & 0x08) { /* volume label */
                        it->lfn_count = 0;
                        continue;
                }
                struct dir_item item = { .index = (uint32_t)(it->off / 32) };
                memcpy(item.e, e, 32);
                if (it->lfn_count > 0 && it->lfn_seen == (1 << it->lfn_count) - 1 && lfn_checksum(e) == it->lfn_sum) {
                        int n = 0;
                        for (; n < it->lfn_count * 13 && it->lfn[n] != 0 && it->lfn[n] != 0xffff; n++)
                                item.long_name[n] = it->lfn[n] < 0x80 ? (char)it->lfn[n] : '?';
                        item.long_name[n] = 0;
                }
                it->lfn_count = 0;
                short_name(e, item.short_name);
                it->off += 32;
                *ret = item;
                return 1;
        }
        return 0;
}

/* Find name in one directory buffer (long name, else 8.3 name, case-insensitively). */
static int dir_find(const uint8_t *dir, size_t len, const char *name, struct dir_item *ret) {
        struct dir_iter it = { .dir = dir, .len = len };
        struct dir_item item;
        while (dir_next(&it, &item) > 0)
                if ((item.long_name[0] && strcasecmp(item.long_name, name) == 0) ||
                    strcasecmp(item.short_name, name) == 0) {
                        *ret = item;
                        return 0;
                }
        return -ENOENT;
}

/* The first cluster an entry names (the high word only counts on FAT32; reserved top bits are kept, so they make
 * the cluster out of range rather than being masked away). */
static uint32_t entry_cluster(const struct fat_vol *v, const uint8_t *e) {
        uint32_t c = (uint32_t)le16(e + 20) << 16 | le16(e + 26);
        return v->bits == 32 ? c : c & 0xffff;
}

/* Resolve path to its directory entry; also where the entry sits (the first cluster of its directory, 0 for the
 * fixed root of FAT12/16, and its index there), which tells it apart from another entry with the same clusters. */
static int resolve(const struct fat_vol *v, const char *path, struct dir_item *ret, uint32_t *ret_parent) {
        uint32_t dir_cluster = v->bits == 32 ? v->root_cluster : 0, parent = dir_cluster;
        struct dir_item item = { 0 };
        bool have_entry = false;
        const char *p = path;
        int r;
        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                size_t n = strcspn(p, "/");
                if (n == 0 || n > FAT_NAME_MAX - 1)
                        return -ENOENT;
                char comp[FAT_NAME_MAX];
                memcpy(comp, p, n);
                comp[n] = 0;
                p += n;
                if (have_entry && !(item.e[11] & 0x10))
                        return -ENOENT; /* a file in the middle of the path */
                _cleanup_free_ uint8_t *dir = NULL;
                size_t len;
                r = dir_read(v, dir_cluster, &dir, &len);
                if (r < 0)
                        return r;
                r = dir_find(dir, len, comp, &item);
                if (r < 0)
                        return r;
                have_entry = true;
                parent = dir_cluster;
                dir_cluster = entry_cluster(v, item.e);
        }
        if (!have_entry || (item.e[11] & 0x10))
                return -EISDIR;
        *ret = item;
        *ret_parent = parent;
        return 0;
}

/* The chain of a file's directory entry: in range, exactly as long as the size says, and whether it is contiguous. */
static int file_chain(const struct fat_vol *v, const uint8_t *entry, struct fat_file *ret) {
        struct fat_file f = {
                .size = le32(entry + 28),
                .first_cluster = entry_cluster(v, entry),
                .cluster_bytes = v->cluster_bytes,
                .fat_bits = v->bits,
                .fat_offset = v->fat_offset,
                .contiguous = true,
        };
        int r;
        if (f.size > 0) {
                if (f.first_cluster < 2 || f.first_cluster >= v->clusters + 2)
                        return -EBADMSG;
                uint32_t need = (uint32_t)(((uint64_t)f.size + v->cluster_bytes - 1) / v->cluster_bytes);
                if (need > v->clusters)
                        return -EBADMSG; /* larger than the volume: bounds the chain walk (a loop) by its size */
                uint32_t c = f.first_cluster;
                for (uint32_t i = 1; i < need; i++) {
                        uint32_t next;
                        r = fat_next(v, c, &next);
                        if (r < 0)
                                return r;
                        if (next == 0)
                                return -EBADMSG; /* chain shorter than the size */
                        if (next != c + 1)
                                f.contiguous = false;
                        c = next;
                }
                uint32_t after;
                r = fat_next(v, c, &after);
                if (r < 0)
                        return r;
                if (after != 0)
                        return -EBADMSG; /* chain longer than the size */
                f.offset = cluster_offset(v, f.first_cluster);
                if (f.contiguous && (f.offset > v->vol_size || f.size > v->vol_size - f.offset))
                        return -EBADMSG;
        }
        *ret = f;
        return 0;
}

int fat_lookup(int fd, uint64_t vol_offset, uint64_t vol_size, const char *path, struct fat_file *ret) {
        struct fat_vol v;
        int r = vol_open(fd, vol_offset, vol_size, &v);
        if (r < 0)
                return r;
        struct dir_item item;
        uint32_t parent;
        r = resolve(&v, path, &item, &parent);
        if (r < 0)
                return r;
        return file_chain(&v, item.e, ret);
}

/* ---- Exclusive ownership of clusters (fat_check_exclusive) ---- */

#define FAT_TREE_DEPTH_MAX 32

struct owner_check {
        const struct fat_vol *v;
        const char *const *paths;
        size_t n;
        struct fat_file *files;      /* the checked files' chains */
        uint32_t *parents, *indexes; /* where their directory entries sit */
        uint8_t *mine, *seen;        /* bitmaps over cluster numbers: the checked files' clusters; walked so far */
        char *why;
        size_t whysize;
};

static bool bit_get(const uint8_t *m, uint32_t c) {
        return m[c / 8] >> (c % 8) & 1;
}
static void bit_set(uint8_t *m, uint32_t c) {
        m[c / 8] |= (uint8_t)(1u << (c % 8));
}

/* "/EFI/BOOT/grubenv" for a path given as "EFI/BOOT/grubenv". */
static const char *slash(const char *path) {
        return path[0] == '/' ? "" : "/";
}

/* Which checked file owns cluster c (its chain is walked again; only on the error path). */
static const char *owner_of(const struct owner_check *oc, uint32_t c) {
        for (size_t i = 0; i < oc->n; i++) {
                uint32_t x = oc->files[i].first_cluster;
                uint32_t need = (uint32_t)(((uint64_t)oc->files[i].size + oc->v->cluster_bytes - 1) /
                                           oc->v->cluster_bytes);
                for (uint32_t k = 0; k < need && x >= 2; k++) {
                        if (x == c)
                                return oc->paths[i];
                        if (fat_next(oc->v, x, &x) < 0)
                                break;
                }
        }
        return "?";
}

/* For messages: a name from the volume with anything but printable ASCII replaced. */
static void clean_name(char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"')
                        *s = '?';
}

/* Walk the chain that starts at first (a file's or a directory's, named path): every cluster in range and linked,
 * none of them one of the checked files'. Stops at a cluster already walked (its rest was walked then). Returns 1
 * if first had not been walked before, 0 if it had, -EBADMSG with why. */
static int walk_chain(struct owner_check *oc, uint32_t first, const char *path) {
        const struct fat_vol *v = oc->v;
        bool fresh = true;
        uint32_t steps = 0;
        for (uint32_t c = first; c != 0;) {
                if (c < 2 || c >= v->clusters + 2 || ++steps > v->clusters) {
                        snprintf(oc->why, oc->whysize, "the cluster chain of \"%s\" leaves the volume", path);
                        return -EBADMSG;
                }
                if (bit_get(oc->mine, c)) {
                        const char *o = owner_of(oc, c);
                        snprintf(oc->why, oc->whysize, "\"%s%s\" shares cluster %u with \"%s\"", slash(o), o, c, path);
                        return -EBADMSG;
                }
                if (bit_get(oc->seen, c)) {
                        if (c == first)
                                fresh = false;
                        break;
                }
                bit_set(oc->seen, c);
                int r = fat_next(v, c, &c);
                if (r == -EBADMSG) {
                        snprintf(oc->why, oc->whysize, "the cluster chain of \"%s\" is broken (free or bad cluster)",
                                 path);
                        return r;
                }
                if (r < 0)
                        return r;
        }
        return fresh;
}

/* Every entry of the directory at cluster dir (0: the fixed root of FAT12/16), recursively. */
static int walk_dir(struct owner_check *oc, uint32_t dir, const char *path, unsigned depth) {
        if (depth > FAT_TREE_DEPTH_MAX) {
                snprintf(oc->why, oc->whysize, "directory \"%s\" lies deeper than %u levels", path,
                         FAT_TREE_DEPTH_MAX);
                return -EBADMSG;
        }
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r = dir_read(oc->v, dir, &buf, &len);
        if (r == -EBADMSG)
                snprintf(oc->why, oc->whysize, "directory \"%s\" cannot be read", path);
        if (r < 0)
                return r;
        struct dir_iter it = { .dir = buf, .len = len };
        struct dir_item item;
        while (dir_next(&it, &item) > 0) {
                if (item.e[0] == '.')
                        continue; /* "." and ".." (8.3 names cannot start with a dot otherwise) */
                bool checked = false;
                for (size_t i = 0; i < oc->n; i++)
                        checked |= oc->parents[i] == dir && oc->indexes[i] == item.index;
                if (checked)
                        continue; /* the checked file's own entry */
                char sub[512];
                const char *name = item.long_name[0] ? item.long_name : item.short_name;
                snprintf(sub, sizeof sub, "%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/", name);
                clean_name(sub);
                uint32_t first = entry_cluster(oc->v, item.e);
                if (first == 0)
                        continue; /* an empty file */
                r = walk_chain(oc, first, sub);
                if (r < 0)
                        return r;
                if (r > 0 && (item.e[11] & 0x10)) {
                        r = walk_dir(oc, first, sub, depth + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int fat_check_exclusive(int fd, uint64_t vol_offset, uint64_t vol_size, const char *const *paths, size_t n,
                        char *why, size_t whysize) {
        struct fat_vol v;
        int r = vol_open(fd, vol_offset, vol_size, &v);
        if (r < 0) {
                snprintf(why, whysize, "not a valid FAT file system");
                return r;
        }
        size_t map = ((size_t)v.clusters + 2 + 7) / 8;
        _cleanup_free_ struct fat_file *files = calloc(n ? n : 1, sizeof *files);
        _cleanup_free_ uint32_t *parents = calloc(n ? n : 1, sizeof *parents);
        _cleanup_free_ uint32_t *indexes = calloc(n ? n : 1, sizeof *indexes);
        _cleanup_free_ uint8_t *mine = calloc(map, 1), *seen = calloc(map, 1);
        if (!files || !parents || !indexes || !mine || !seen)
                return -ENOMEM;
        struct owner_check oc = { .v = &v, .paths = paths, .n = 0, .files = files, .parents = parents,
                                  .indexes = indexes, .mine = mine, .seen = seen, .why = why, .whysize = whysize };
        /* The checked files: each chain as long as its size says, no cluster in two of them. */
        for (size_t i = 0; i < n; i++) {
                struct dir_item item;
                r = resolve(&v, paths[i], &item, &parents[i]);
                if (r >= 0)
                        r = file_chain(&v, item.e, &files[i]);
                if (r < 0) {
                        snprintf(why, whysize, "\"%s%s\": %s", slash(paths[i]), paths[i],
                                 r == -ENOENT || r == -EISDIR ? "no such file" : "broken cluster chain or directory");
                        return r == -EISDIR ? -ENOENT : r;
                }
                indexes[i] = item.index;
                uint32_t c = files[i].first_cluster;
                uint32_t need = (uint32_t)(((uint64_t)files[i].size + v.cluster_bytes - 1) / v.cluster_bytes);
                for (uint32_t k = 0; k < need; k++) {
                        if (bit_get(mine, c)) {
                                const char *o = owner_of(&oc, c);
                                snprintf(why, whysize, "\"%s%s\" shares cluster %u with \"%s%s\"", slash(o), o, c,
                                         slash(paths[i]), paths[i]);
                                return -EBADMSG;
                        }
                        bit_set(mine, c);
                        if (k + 1 < need && fat_next(&v, c, &c) < 0)
                                return -EBADMSG; /* file_chain() walked it just now */
                }
                oc.n = i + 1;
        }
        /* Everything else in the tree: directories (their own clusters too) and files. */
        if (v.bits == 32) {
                r = walk_chain(&oc, v.root_cluster, "/");
                if (r < 0)
                        return r;
        }
        return walk_dir(&oc, v.bits == 32 ? v.root_cluster : 0, "/", 0);
}
