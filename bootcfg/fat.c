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

/* Find name in one directory buffer; fills the 32-byte entry. */
static int dir_find(const uint8_t *dir, size_t len, const char *name, uint8_t ret_entry[32]) {
        uint16_t lfn[FAT_LFN_SLOTS * 13];
        int lfn_count = 0, lfn_seen = 0;
        uint8_t lfn_sum = 0;
        for (size_t off = 0; off + 32 <= len; off += 32) {
                const uint8_t *e = dir + off;
                if (e[0] == 0x00)
                        break;
                if (e[0] == 0xe5) {
                        lfn_count = 0;
                        continue;
                }
                if ((e[11] & 0x3f) == 0x0f) { /* long-name slot */
                        int ord = e[0] & 0x3f;
                        if (ord == 0 || ord > FAT_LFN_SLOTS) {
                                lfn_count = 0;
                                continue;
                        }
                        if (e[0] & 0x40) {
                                lfn_count = ord;
                                lfn_seen = 0;
                                lfn_sum = e[13];
                                for (size_t i = 0; i < ELEMENTSOF(lfn); i++)
                                        lfn[i] = 0xffff;
                        } else if (lfn_count == 0 || e[13] != lfn_sum || ord > lfn_count) {
                                lfn_count = 0;
                                continue;
                        }
                        static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
                        for (int i = 0; i < 13; i++)
                                lfn[(ord - 1) * 13 + i] = le16(e + pos[i]);
                        lfn_seen |= 1 << (ord - 1);
                        continue;
                }
                if (e[11] & 0x08) { /* volume label */
                        lfn_count = 0;
                        continue;
                }
                bool match = false;
                if (lfn_count > 0 && lfn_seen == (1 << lfn_count) - 1 && lfn_checksum(e) == lfn_sum) {
                        char ln[FAT_LFN_SLOTS * 13 + 1];
                        int n = 0;
                        for (; n < lfn_count * 13 && lfn[n] != 0 && lfn[n] != 0xffff; n++)
                                ln[n] = lfn[n] < 0x80 ? (char)lfn[n] : '?';
                        ln[n] = 0;
                        match = strcasecmp(ln, name) == 0;
                }
                lfn_count = 0;
                if (!match) {
                        char sn[13];
                        short_name(e, sn);
                        match = strcasecmp(sn, name) == 0;
                }
                if (match) {
                        memcpy(ret_entry, e, 32);
                        return 0;
                }
        }
        return -ENOENT;
}

int fat_lookup(int fd, uint64_t vol_offset, uint64_t vol_size, const char *path, struct fat_file *ret) {
        struct fat_vol v;
        int r = vol_open(fd, vol_offset, vol_size, &v);
        if (r < 0)
                return r;
        uint32_t dir_cluster = v.bits == 32 ? v.root_cluster : 0;
        uint8_t entry[32] = { 0 };
        bool have_entry = false;
        const char *p = path;
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
                if (have_entry && !(entry[11] & 0x10))
                        return -ENOENT; /* a file in the middle of the path */
                _cleanup_free_ uint8_t *dir = NULL;
                size_t len;
                r = dir_read(&v, dir_cluster, &dir, &len);
                if (r < 0)
                        return r;
                r = dir_find(dir, len, comp, entry);
                if (r < 0)
                        return r;
                have_entry = true;
                dir_cluster = (uint32_t)le16(entry + 20) << 16 | le16(entry + 26);
                if (v.bits != 32)
                        dir_cluster &= 0xffff;
        }
        if (!have_entry)
                return -EISDIR;
        if (entry[11] & 0x10)
                return -EISDIR;

        struct fat_file f = {
                .size = le32(entry + 28),
                .first_cluster = dir_cluster,
                .cluster_bytes = v.cluster_bytes,
                .fat_bits = v.bits,
                .fat_offset = v.fat_offset,
                .contiguous = true,
        };
        if (f.size > 0) {
                if (f.first_cluster < 2 || f.first_cluster >= v.clusters + 2)
                        return -EBADMSG;
                uint32_t need = (uint32_t)(((uint64_t)f.size + v.cluster_bytes - 1) / v.cluster_bytes);
                if (need > v.clusters)
                        return -EBADMSG; /* larger than the volume: bounds the chain walk (a loop) by its size */
                uint32_t c = f.first_cluster;
                for (uint32_t i = 1; i < need; i++) {
                        uint32_t next;
                        r = fat_next(&v, c, &next);
                        if (r < 0)
                                return r;
                        if (next == 0)
                                return -EBADMSG; /* chain shorter than the size */
                        if (next != c + 1)
                                f.contiguous = false;
                        c = next;
                }
                uint32_t after;
                r = fat_next(&v, c, &after);
                if (r < 0)
                        return r;
                if (after != 0)
                        return -EBADMSG; /* chain longer than the size */
                f.offset = cluster_offset(&v, f.first_cluster);
                if (f.contiguous && (f.offset > vol_size || f.size > vol_size - f.offset))
                        return -EBADMSG;
        }
        *ret = f;
        return 0;
}
