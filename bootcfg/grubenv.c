/* bootcfg/grubenv.c — the grubenv backend: slot state in /EFI/BOOT/grubenv (+ .bak) on the ESP, edited in place. */
#include "grubenv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bootcfg-internal.h"
#include "fat.h"
#include "fileio.h"

#define SIG_LEN (sizeof(GRUBENV_SIGNATURE) - 1)

static const char *const var_names[BOOTCFG_SLOTS][3] = {
        { "A_PRIORITY", "A_TRIES", "A_SUCCESSFUL" },
        { "B_PRIORITY", "B_TRIES", "B_SUCCESSFUL" },
};

/* Index 0..5 of a slot variable, or -1. */
static int var_index(const uint8_t *key, size_t n) {
        for (int s = 0; s < BOOTCFG_SLOTS; s++)
                for (int k = 0; k < 3; k++)
                        if (strlen(var_names[s][k]) == n && memcmp(var_names[s][k], key, n) == 0)
                                return s * 3 + k;
        return -1;
}

struct line {
        size_t start, key_len, val_start, end; /* end: offset of the '\n' */
};

/* Walk the lines; callback gets each. Returns 0 and the padding offset, or -EBADMSG with why. */
typedef int (*line_fn)(const uint8_t *blk, const struct line *l, void *userdata);
static int walk(const uint8_t *blk, size_t len, line_fn fn, void *userdata, size_t *ret_end, char *why, size_t ws) {
        if (len != GRUBENV_SIZE) {
                snprintf(why, ws, "size is %zu bytes, not %u", len, GRUBENV_SIZE);
                return -EBADMSG;
        }
        if (memcmp(blk, GRUBENV_SIGNATURE, SIG_LEN) != 0) {
                snprintf(why, ws, "no \"# GRUB Environment Block\" header");
                return -EBADMSG;
        }
        size_t i = SIG_LEN;
        unsigned lineno = 1;
        while (i < len) {
                lineno++;
                if (blk[i] == '#') {
                        /* A comment line (Debian's grub-editenv writes one), or the padding when no newline follows. */
                        const uint8_t *nl = memchr(blk + i, '\n', len - i);
                        if (!nl)
                                break;
                        if (memchr(blk + i, 0, (size_t)(nl - (blk + i)))) {
                                snprintf(why, ws, "line %u: NUL byte in a comment", lineno);
                                return -EBADMSG;
                        }
                        if (fn) {
                                struct line c = { .start = i, .key_len = 0, .val_start = i, .end = (size_t)(nl - blk) };
                                int r = fn(blk, &c, userdata);
                                if (r < 0) {
                                        snprintf(why, ws, "line %u: %s", lineno, (const char *)userdata);
                                        return r;
                                }
                        }
                        i = (size_t)(nl - blk) + 1;
                        continue;
                }
                struct line l = { .start = i };
                while (i < len && blk[i] != '=' && blk[i] != '\n') {
                        uint8_t c = blk[i];
                        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
                                snprintf(why, ws, "line %u: not KEY=VALUE (byte 0x%02x in the key)", lineno, c);
                                return -EBADMSG;
                        }
                        i++;
                }
                if (i >= len || blk[i] != '=' || i == l.start) {
                        snprintf(why, ws, "line %u: not KEY=VALUE", lineno);
                        return -EBADMSG;
                }
                l.key_len = i - l.start;
                l.val_start = ++i;
                while (i < len && blk[i] != '\n') {
                        if (blk[i] == 0) {
                                snprintf(why, ws, "line %u: NUL byte in the value", lineno);
                                return -EBADMSG;
                        }
                        if (blk[i] == '\\' && i + 1 < len && blk[i + 1] != 0)
                                i++; /* escaped character, may be a newline (but not NUL: checked above) */
                        i++;
                }
                if (i >= len) {
                        snprintf(why, ws, "line %u: not terminated before the end of the block", lineno);
                        return -EBADMSG;
                }
                l.end = i++;
                if (fn) {
                        int r = fn(blk, &l, userdata);
                        if (r < 0) {
                                snprintf(why, ws, "line %u: %s", lineno, (const char *)userdata);
                                return r;
                        }
                }
        }
        size_t end = i;
        for (; i < len; i++)
                if (blk[i] != '#') {
                        snprintf(why, ws, "padding at byte %zu is not '#'", i);
                        return -EBADMSG;
                }
        if (ret_end)
                *ret_end = end;
        return 0;
}

struct collect {
        char msg[64]; /* must stay first: walk() prints it on error */
        bool seen[6];
        unsigned value[6];
};

static int collect_line(const uint8_t *blk, const struct line *l, void *userdata) {
        struct collect *c = userdata;
        int idx = var_index(blk + l->start, l->key_len);
        if (idx < 0)
                return 0;
        if (c->seen[idx]) {
                snprintf(c->msg, sizeof c->msg, "%s set twice", var_names[idx / 3][idx % 3]);
                return -EBADMSG;
        }
        c->seen[idx] = true;
        size_t n = l->end - l->val_start;
        unsigned max = idx % 3 == 2 ? 1 : 15, v = 0;
        if (n == 0 || n > 2) {
                snprintf(c->msg, sizeof c->msg, "%s is not a number in 0-%u", var_names[idx / 3][idx % 3], max);
                return -EBADMSG;
        }
        for (size_t k = 0; k < n; k++) {
                uint8_t ch = blk[l->val_start + k];
                if (ch < '0' || ch > '9' || (k == 0 && ch == '0' && n > 1)) {
                        snprintf(c->msg, sizeof c->msg, "%s is not a number in 0-%u", var_names[idx / 3][idx % 3], max);
                        return -EBADMSG;
                }
                v = v * 10 + (ch - '0');
        }
        if (v > max) {
                snprintf(c->msg, sizeof c->msg, "%s=%u is out of range 0-%u", var_names[idx / 3][idx % 3], v, max);
                return -EBADMSG;
        }
        c->value[idx] = v;
        return 0;
}

int grubenv_validate(const uint8_t *blk, size_t len, size_t *ret_content_end, char *why, size_t why_size) {
        struct collect c = { .msg = "" };
        return walk(blk, len, collect_line, &c, ret_content_end, why, why_size);
}

int grubenv_state_get(const uint8_t *blk, size_t len, struct bootcfg_state *ret, char *why, size_t why_size) {
        struct collect c = { .msg = "" };
        int r = walk(blk, len, collect_line, &c, NULL, why, why_size);
        if (r < 0)
                return r;
        struct bootcfg_state s;
        for (int i = 0; i < BOOTCFG_SLOTS; i++) {
                s.slot[i].priority = c.value[i * 3];
                s.slot[i].tries = c.value[i * 3 + 1];
                s.slot[i].successful = c.value[i * 3 + 2] != 0;
        }
        *ret = s;
        return 0;
}

struct rebuild {
        char msg[64];
        const struct bootcfg_state *s;
        uint8_t *out;
        size_t pos;
        bool written[6];
};

static unsigned var_value(const struct bootcfg_state *s, int idx) {
        const struct bootcfg_slot_state *x = &s->slot[idx / 3];
        return idx % 3 == 0 ? x->priority : idx % 3 == 1 ? x->tries : (unsigned)x->successful;
}

static int put(struct rebuild *rb, const void *p, size_t n) {
        if (rb->pos + n > GRUBENV_SIZE) {
                snprintf(rb->msg, sizeof rb->msg, "variables do not fit");
                return -EFBIG;
        }
        memcpy(rb->out + rb->pos, p, n);
        rb->pos += n;
        return 0;
}

static int put_var(struct rebuild *rb, int idx) {
        char line[32];
        int n = snprintf(line, sizeof line, "%s=%u\n", var_names[idx / 3][idx % 3], var_value(rb->s, idx));
        rb->written[idx] = true;
        return put(rb, line, (size_t)n);
}

static int rebuild_line(const uint8_t *blk, const struct line *l, void *userdata) {
        struct rebuild *rb = userdata;
        int idx = var_index(blk + l->start, l->key_len);
        if (idx >= 0)
                return put_var(rb, idx);
        return put(rb, blk + l->start, l->end + 1 - l->start);
}

int grubenv_state_set(const uint8_t *blk, size_t len, const struct bootcfg_state *s, uint8_t ret[GRUBENV_SIZE]) {
        char why[128];
        struct collect c = { .msg = "" };
        int r = walk(blk, len, collect_line, &c, NULL, why, sizeof why);
        if (r < 0)
                return r;
        for (int i = 0; i < BOOTCFG_SLOTS; i++)
                if (s->slot[i].priority > BOOTCFG_MAX_PRIORITY || s->slot[i].tries > BOOTCFG_MAX_TRIES)
                        return -EINVAL;
        uint8_t out[GRUBENV_SIZE];
        struct rebuild rb = { .s = s, .out = out };
        r = put(&rb, GRUBENV_SIGNATURE, SIG_LEN);
        if (r < 0)
                return r;
        r = walk(blk, len, rebuild_line, &rb, NULL, why, sizeof why);
        if (r < 0)
                return r;
        for (int idx = 0; idx < 6; idx++)
                if (!rb.written[idx]) {
                        r = put_var(&rb, idx);
                        if (r < 0)
                                return r;
                }
        if (rb.pos > GRUBENV_SECTOR)
                return -EFBIG;
        memset(out + rb.pos, '#', GRUBENV_SIZE - rb.pos);
        memcpy(ret, out, GRUBENV_SIZE);
        return 0;
}

/* ---- The backend: the two files on the ESP, found through the FAT and written in place ---- */

static int locate(struct bootcfg *b, const char *path, uint64_t *ret_offset) {
        struct fat_file f;
        int r = fat_lookup(b->fd, b->esp.offset, b->esp.size, path, &f);
        if (r == -ENOENT || r == -EISDIR)
                return bootcfg_fail(b, -ENOENT, "\"/%s\" not found on the ESP of \"%s\"", path, b->disk);
        if (r == -EBADMSG)
                return bootcfg_fail(b, r, "the ESP (partition %d) of \"%s\" is not a valid FAT file system",
                                    b->esp.index + 1, b->disk);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot read the ESP of \"%s\"", b->disk);
        if (f.size != GRUBENV_SIZE)
                return bootcfg_fail(b, -EBADMSG, "\"/%s\" on \"%s\" is %u bytes, not %u", path, b->disk, f.size,
                                    GRUBENV_SIZE);
        if (!f.contiguous)
                return bootcfg_fail(b, -EXDEV,
                                    "\"/%s\" on \"%s\" is fragmented; GRUB's save_env and in-place writes need "
                                    "contiguous clusters", path, b->disk);
        *ret_offset = b->esp.offset + f.offset;
        return 0;
}

static int read_block(struct bootcfg *b, const char *path, uint8_t blk[GRUBENV_SIZE], uint64_t *ret_offset) {
        uint64_t off = 0;
        int r = locate(b, path, &off);
        if (r < 0)
                return r;
        r = pread_full(b->fd, blk, GRUBENV_SIZE, off);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot read \"/%s\" on \"%s\"", path, b->disk);
        *ret_offset = off;
        return 0;
}

/* Read and check one copy; -EBADMSG with the reason in b->error. */
static int read_valid(struct bootcfg *b, const char *path, uint8_t blk[GRUBENV_SIZE], uint64_t *ret_offset,
                      struct bootcfg_state *ret_state) {
        char why[128];
        uint64_t off = 0;
        struct bootcfg_state s;
        int r = read_block(b, path, blk, &off);
        if (r < 0)
                return r;
        r = grubenv_state_get(blk, GRUBENV_SIZE, &s, why, sizeof why);
        if (r < 0)
                return bootcfg_fail(b, r, "environment block \"/%s\" on \"%s\" is corrupt: %s", path, b->disk, why);
        *ret_offset = off;
        if (ret_state)
                *ret_state = s;
        return 0;
}

static int ge_read(struct bootcfg *b, struct bootcfg_state *ret) {
        uint8_t blk[GRUBENV_SIZE];
        uint64_t off = 0;
        return read_valid(b, GRUBENV_PATH, blk, &off, ret);
}

static int ge_read_as_loader(struct bootcfg *b, struct bootcfg_state *ret) {
        uint8_t blk[GRUBENV_SIZE];
        uint64_t off = 0;
        if (read_valid(b, GRUBENV_PATH, blk, &off, ret) >= 0)
                return 0;
        int r = read_valid(b, GRUBENV_BAK_PATH, blk, &off, ret);
        if (r < 0)
                return bootcfg_fail(b, -EBADMSG, "neither \"/%s\" nor \"/%s\" on \"%s\" is a valid environment block",
                                    GRUBENV_PATH, GRUBENV_BAK_PATH, b->disk);
        return 0;
}

/* Before either copy is written in place: both own their clusters, shared with no other file or directory on the
 * ESP and not with each other (a cross-linked entry would put the block into GRUB's binary, or make the fallback
 * copy the primary itself). */
static int check_clusters(struct bootcfg *b) {
        static const char *const paths[] = { GRUBENV_PATH, GRUBENV_BAK_PATH };
        char why[256];
        int r = fat_check_exclusive(b->fd, b->esp.offset, b->esp.size, paths, ELEMENTSOF(paths), why, sizeof why);
        if (r == -EBADMSG || r == -ENOENT)
                return bootcfg_fail(b, -EBADMSG, "the ESP (partition %d) of \"%s\" is inconsistent: %s; not writing "
                                    "the environment blocks", b->esp.index + 1, b->disk, why);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot check the clusters of the env files on \"%s\": %s", b->disk,
                                    strerror(-r));
        return 0;
}

/* Write blk over the copy at off and flush it. */
static int put_block(struct bootcfg *b, const char *path, const uint8_t blk[GRUBENV_SIZE], uint64_t off) {
        int r = bootcfg_io_write(b, blk, GRUBENV_SIZE, off);
        if (r >= 0)
                r = bootcfg_io_sync(b);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot write \"/%s\" on \"%s\"", path, b->disk);
        return 0;
}

static int ge_write(struct bootcfg *b, const struct bootcfg_state *s) {
        uint8_t cur[GRUBENV_SIZE], bak[GRUBENV_SIZE], next[GRUBENV_SIZE];
        uint64_t cur_off = 0, bak_off = 0;
        size_t end;
        char why[8];
        int r = read_valid(b, GRUBENV_PATH, cur, &cur_off, NULL);
        if (r < 0)
                return r;
        r = read_block(b, GRUBENV_BAK_PATH, bak, &bak_off);
        if (r < 0)
                return r;
        if (grubenv_validate(cur, GRUBENV_SIZE, &end, why, sizeof why) < 0 || end > GRUBENV_SECTOR)
                return bootcfg_fail(b, -EFBIG,
                                    "environment block \"/%s\" on \"%s\" holds variables past its first 512-byte "
                                    "sector; a torn write could mix old and new lines, so it is not rewritten",
                                    GRUBENV_PATH, b->disk);
        r = grubenv_state_set(cur, GRUBENV_SIZE, s, next);
        if (r == -EFBIG)
                return bootcfg_fail(b, r, "the variables in \"/%s\" on \"%s\" would not fit in its first sector",
                                    GRUBENV_PATH, b->disk);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot update \"/%s\" on \"%s\"", GRUBENV_PATH, b->disk);
        r = check_clusters(b);
        if (r < 0)
                return r;
        /* Copy first: while the primary is being written, the loader can fall back to a complete new state. */
        r = put_block(b, GRUBENV_BAK_PATH, next, bak_off);
        if (r < 0)
                return r;
        return put_block(b, GRUBENV_PATH, next, cur_off);
}

static int ge_repair(struct bootcfg *b) {
        uint8_t cur[GRUBENV_SIZE], bak[GRUBENV_SIZE];
        uint64_t cur_off = 0, bak_off = 0;
        char why[128];
        int r = read_block(b, GRUBENV_PATH, cur, &cur_off);
        if (r < 0)
                return r;
        r = read_block(b, GRUBENV_BAK_PATH, bak, &bak_off);
        if (r < 0)
                return r;
        bool cur_ok = grubenv_validate(cur, GRUBENV_SIZE, NULL, why, sizeof why) >= 0;
        bool bak_ok = grubenv_validate(bak, GRUBENV_SIZE, NULL, why, sizeof why) >= 0;
        /* Also when nothing is to be copied: two entries on the same clusters read alike, and the fallback copy
         * they pretend to be does not exist. */
        r = check_clusters(b);
        if (r < 0)
                return r;
        if (cur_ok && bak_ok && memcmp(cur, bak, GRUBENV_SIZE) == 0)
                return 0;
        if (cur_ok) {
                r = put_block(b, GRUBENV_BAK_PATH, cur, bak_off);
                return r < 0 ? r : 1;
        }
        if (bak_ok) {
                r = put_block(b, GRUBENV_PATH, bak, cur_off);
                return r < 0 ? r : 1;
        }
        return bootcfg_fail(b, -EBADMSG,
                            "neither \"/%s\" nor \"/%s\" on \"%s\" is valid; recreate them by hand (see docs/boot.md)",
                            GRUBENV_PATH, GRUBENV_BAK_PATH, b->disk);
}

const struct bootcfg_backend bootcfg_backend_grubenv = {
        .name = "grubenv",
        .read = ge_read,
        .read_as_loader = ge_read_as_loader,
        .write = ge_write,
        .repair = ge_repair,
};
