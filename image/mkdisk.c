/* image/mkdisk.c — cairn-mkdisk: assembles a GPT disk image (partitions, contents, GRUB BIOS boot code). */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "diskbios.h"
#include "diskguid.h"
#include "fileio.h"
#include "gpt.h"
#include "log.h"
#include "parse.h"
#include "macro.h"

#define MAX_PARTS 128
#define COPY_BUF (1024 * 1024)
#define ZERO_BLOCK 4096

struct part {
        unsigned num; /* 1-based entry index */
        char label[GPT_NAME_MAX_UTF8];
        struct gpt_guid type;
        uint64_t bytes; /* 0 with rest */
        bool rest;
        const char *file;
        char *spec; /* our copy of the --part argument; label and file point into it */
        uint64_t first, last; /* LBAs, filled by the layout */
};

struct options {
        const char *out;
        uint64_t size;
        const char *size_arg;
        const char *seed;
        const char *boot_code;
        const char *core;
        struct part parts[MAX_PARTS];
        unsigned n_parts;
};

static void usage(FILE *f) {
        fprintf(f, "usage: cairn-mkdisk -o OUT --size SIZE --seed STR [--bios-boot-code boot.img --bios-core core.img]\n"
                   "                    --part NUM:LABEL:TYPE:SIZE[:FILE] ...\n"
                   "  TYPE: esp bios usr linux root or a GUID; SIZE: bytes with K/M/G/T suffix, or 'rest' (last only)\n");
}

/* Parse "123", "64M", "2G"... (binary units); -EINVAL, -ERANGE. */
static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno)
                return -ERANGE;
        unsigned shift = 0;
        if (*end) {
                switch (*end) {
                case 'K': case 'k': shift = 10; break;
                case 'M': case 'm': shift = 20; break;
                case 'G': case 'g': shift = 30; break;
                case 'T': case 't': shift = 40; break;
                default: return -EINVAL;
                }
                if (end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = (uint64_t)v << shift;
        return 0;
}

static int parse_type(const char *s, struct gpt_guid *ret) {
        static const struct {
                const char *name;
                const struct gpt_guid *g;
        } names[] = {
                { "esp", &GPT_TYPE_ESP },          { "bios", &GPT_TYPE_BIOS_BOOT }, { "usr", &GPT_TYPE_USR_X86_64 },
                { "linux", &GPT_TYPE_LINUX_DATA }, { "root", &GPT_TYPE_ROOT_X86_64 },
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i].name) == 0) {
                        *ret = *names[i].g;
                        return 0;
                }
        struct gpt_guid g;
        if (gpt_guid_parse(s, &g) < 0 || gpt_guid_is_null(&g))
                return -EINVAL;
        *ret = g;
        return 0;
}

/* NUM:LABEL:TYPE:SIZE[:FILE] — logs its own error (top level). */
static int parse_part(const char *spec, struct part *p) {
        p->spec = strdup(spec);
        if (!p->spec)
                return log_error(-ENOMEM, "Out of memory");
        char *f[4], *rest = p->spec;
        for (int i = 0; i < 4; i++) {
                f[i] = rest;
                char *c = rest ? strchr(rest, ':') : NULL;
                if (!rest || (!c && i < 3))
                        return log_error(-EINVAL, "--part \"%s\": expected NUM:LABEL:TYPE:SIZE[:FILE]", spec);
                if (c)
                        *c = 0;
                rest = c ? c + 1 : NULL;
        }
        if (parse_unsigned_range(f[0], 1, GPT_DEFAULT_ENTRIES, &p->num) < 0)
                return log_error(-EINVAL, "--part: partition number \"%s\" must be 1..%u", f[0], GPT_DEFAULT_ENTRIES);
        uint8_t probe[GPT_ENTRY_SIZE] = { 0 };
        if (!*f[1] || gpt_entry_set_name(probe, f[1]) < 0)
                return log_error(-EINVAL, "--part %u: label \"%s\" must be 1..36 UTF-16 units of valid UTF-8", p->num, f[1]);
        snprintf(p->label, sizeof p->label, "%s", f[1]);
        if (parse_type(f[2], &p->type) < 0)
                return log_error(-EINVAL, "--part %u: unknown partition type \"%s\" (esp, bios, usr, linux, root or a GUID)",
                                 p->num, f[2]);
        if (strcmp(f[3], "rest") == 0)
                p->rest = true;
        else if (parse_size(f[3], &p->bytes) < 0 || p->bytes == 0 || p->bytes % GPT_SECTOR_SIZE)
                return log_error(-EINVAL, "--part %u: size \"%s\" must be a non-zero multiple of 512 (K/M/G/T suffix) or \"rest\"",
                                 p->num, f[3]);
        p->file = rest && *rest ? rest : NULL;
        return 0;
}

/* Unlinks the temp file unless disarmed. */
struct tmpfile {
        char *path;
        bool keep;
};
static void tmpfile_done(struct tmpfile *t) {
        if (t->path && !t->keep)
                unlink(t->path);
        free(t->path);
}

static bool all_zero(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* Copy path into fd at byte offset off, at most max bytes, skipping zero 4 KiB blocks (fd is sparse and zero).
 * -EFBIG if the file is larger than max; *ret_size is the file size. */
static int copy_sparse(int fd, const char *path, uint64_t off, uint64_t max, uint64_t *ret_size) {
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return negative_errno();
        struct stat st;
        if (fstat(in, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return -EINVAL;
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
                *ret_size = (uint64_t)st.st_size;
                return -EFBIG;
        }
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUF);
        if (!buf)
                return -ENOMEM;
        uint64_t done = 0;
        for (;;) {
                ssize_t n = read_full(in, buf, COPY_BUF);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        break;
                if ((uint64_t)n > max - done) {
                        *ret_size = done + (uint64_t)n;
                        return -EFBIG;
                }
                for (size_t i = 0; i < (size_t)n;) {
                        size_t len = MIN((size_t)ZERO_BLOCK, (size_t)n - i);
                        if (all_zero(buf + i, len)) {
                                i += len;
                                continue;
                        }
                        size_t j = i + len; /* extend the run over the following non-zero blocks */
                        while (j < (size_t)n) {
                                size_t l2 = MIN((size_t)ZERO_BLOCK, (size_t)n - j);
                                if (all_zero(buf + j, l2))
                                        break;
                                j += l2;
                        }
                        int r = pwrite_full(fd, buf + i, j - i, off + done + i);
                        if (r < 0)
                                return r;
                        i = j;
                }
                done += (uint64_t)n;
                if ((size_t)n < COPY_BUF)
                        break;
        }
        *ret_size = done;
        return 0;
}

static int layout(struct options *o, struct gpt_table *t) {
        uint64_t next = t->first_usable_lba;
        for (unsigned i = 0; i < o->n_parts; i++) {
                struct part *p = &o->parts[i];
                p->first = gpt_align_up(next);
                if (p->rest) {
                        if (i != o->n_parts - 1)
                                return log_error(-EINVAL, "--part %u \"%s\": only the last partition may be \"rest\"", p->num,
                                                 p->label);
                        uint64_t end = gpt_align_down(t->last_usable_lba + 1);
                        if (end <= p->first)
                                return log_error(-ENOSPC, "--size %s is too small: no room left for partition %u \"%s\" (\"rest\")",
                                                 o->size_arg, p->num, p->label);
                        p->last = end - 1;
                } else
                        p->last = p->first + p->bytes / GPT_SECTOR_SIZE - 1;
                if (p->last > t->last_usable_lba) {
                        uint64_t need = (p->last + 1 + gpt_entries_sectors(t) + 1) * GPT_SECTOR_SIZE;
                        return log_error(-ENOSPC, "--size %s is too small: partition %u \"%s\" needs a disk of at least %" PRIu64 " bytes",
                                         o->size_arg, p->num, p->label, need);
                }
                next = p->last + 1;
        }
        return 0;
}

/* The partition entries from the options; *ret_bios_idx: the index of the BIOS boot partition, or -1. */
static int fill_entries(struct options *o, struct gpt_table *t, int *ret_bios_idx) {
        int r;
        int bios_idx = -1;
        for (unsigned i = 0; i < o->n_parts; i++) {
                struct part *p = &o->parts[i];
                uint8_t *e = gpt_entry(t, p->num - 1);
                struct gpt_guid uuid;
                char purpose[GPT_NAME_MAX_UTF8 + 16];
                snprintf(purpose, sizeof purpose, "partition:%s", p->label);
                r = disk_guid_derive(o->seed, purpose, &uuid);
                if (r < 0)
                        return log_error_errno(r, "Failed to derive the GUID of partition %u", p->num);
                gpt_entry_set_type(e, &p->type);
                gpt_entry_set_uuid(e, &uuid);
                gpt_entry_set_first_lba(e, p->first);
                gpt_entry_set_last_lba(e, p->last);
                r = gpt_entry_set_name(e, p->label);
                if (r < 0)
                        return log_error_errno(r, "Invalid label \"%s\"", p->label);
                if (gpt_guid_equal(&p->type, &GPT_TYPE_BIOS_BOOT)) {
                        if (bios_idx >= 0)
                                return log_error(-EINVAL, "more than one partition of type bios");
                        bios_idx = (int)i;
                }
        }

        *ret_bios_idx = bios_idx;
        return 0;
}

/* GRUB's boot.img and core.img for BIOS boot, read and checked before anything is written. */
static int read_boot_code(const struct options *o, int bios_idx, char **ret_boot, char **ret_core, size_t *ret_core_len) {
        int r;
        _cleanup_free_ char *boot = NULL, *core = NULL;
        size_t boot_len = 0, core_len = 0;
        if (!!o->boot_code != !!o->core)
                return log_error(-EINVAL, "--bios-boot-code and --bios-core go together");
        if (o->boot_code) {
                if (bios_idx < 0)
                        return log_error(-EINVAL, "--bios-core needs a partition of type bios");
                r = read_file_bounded(o->boot_code, GPT_SECTOR_SIZE + 1, &boot, &boot_len);
                if (r < 0 || boot_len != GPT_SECTOR_SIZE)
                        return log_error(r < 0 ? r : -EINVAL, "Boot code \"%s\" must be a readable 512-byte boot.img%s%s",
                                         o->boot_code, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
                r = read_file_bounded(o->core, (size_t)GRUB_CORE_MAX_SECTORS * GPT_SECTOR_SIZE + 1, &core, &core_len);
                if (r == -EFBIG || (r >= 0 && core_len > (size_t)GRUB_CORE_MAX_SECTORS * GPT_SECTOR_SIZE))
                        return log_error(-EFBIG, "Core image \"%s\" is larger than GRUB allows (0xFFFF sectors)", o->core);
                if (r < 0)
                        return log_error_errno(r, "Cannot read core image \"%s\"", o->core);
                const struct part *bp = &o->parts[bios_idx];
                uint64_t room = (bp->last - bp->first + 1) * GPT_SECTOR_SIZE;
                if (ALIGN_UP((uint64_t)core_len, GPT_SECTOR_SIZE) > room)
                        return log_error(-EFBIG, "Core image \"%s\" (%zu bytes) does not fit partition %u \"%s\" (%" PRIu64 " bytes)",
                                         o->core, core_len, bp->num, bp->label, room);
        }

        *ret_boot = TAKE_PTR(boot);
        *ret_core = TAKE_PTR(core);
        *ret_core_len = core_len;
        return 0;
}

/* The protective MBR, with GRUB's boot code and core image in the BIOS boot partition when given. */
static int write_mbr_and_core(const struct options *o, int fd, const char *path, uint64_t sectors, int bios_idx,
                              const char *boot, const char *core, size_t core_len) {
        int r;
        uint8_t mbr[GPT_SECTOR_SIZE];
        gpt_pmbr_build(mbr, sectors, NULL);
        if (o->boot_code) {
                const struct part *bp = &o->parts[bios_idx];
                size_t padded = ALIGN_UP(core_len, GPT_SECTOR_SIZE);
                _cleanup_free_ uint8_t *img = calloc(1, padded);
                if (!img)
                        return log_error(-ENOMEM, "Out of memory");
                memcpy(img, core, core_len);
                r = disk_bios_patch(mbr, (const uint8_t *)boot, img, core_len, bp->first);
                if (r < 0)
                        return log_error(r, "\"%s\" / \"%s\" are not a GRUB i386-pc boot.img / core.img pair", o->boot_code,
                                         o->core);
                r = pwrite_full(fd, img, padded, bp->first * GPT_SECTOR_SIZE);
                if (r < 0)
                        return log_error_errno(r, "Cannot write \"%s\"", path);
        }
        r = pwrite_full(fd, mbr, sizeof mbr, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot write \"%s\"", path);
        return 0;
}

static int run(struct options *o) {
        int r;
        if (o->size % GPT_SECTOR_SIZE)
                return log_error(-EINVAL, "--size %s is not a multiple of 512 bytes", o->size_arg);
        uint64_t sectors = o->size / GPT_SECTOR_SIZE;

        struct gpt_guid disk_guid;
        r = disk_guid_derive(o->seed, "disk", &disk_guid);
        if (r < 0)
                return log_error_errno(r, "Failed to derive the disk GUID");
        _cleanup_gpt_ struct gpt_table *t = NULL;
        r = gpt_new(sectors, &disk_guid, &t);
        if (r < 0)
                return log_error(r, "--size %s is too small for a GPT disk", o->size_arg);
        r = layout(o, t);
        if (r < 0)
                return r;

        int bios_idx = -1;
        r = fill_entries(o, t, &bios_idx);
        if (r < 0)
                return r;
        _cleanup_free_ char *boot = NULL, *core = NULL;
        size_t core_len = 0;
        r = read_boot_code(o, bios_idx, &boot, &core, &core_len);
        if (r < 0)
                return r;

        /* Temp file beside OUT, removed on any failure. */
        _cleanup_(tmpfile_done) struct tmpfile tmp = { 0 };
        if (asprintf(&tmp.path, "%s.tmpXXXXXX", o->out) < 0) {
                tmp.path = NULL;
                return log_error(-ENOMEM, "Out of memory");
        }
        _cleanup_close_ int fd = mkostemp(tmp.path, O_CLOEXEC);
        if (fd < 0) {
                r = negative_errno();
                free(TAKE_PTR(tmp.path));
                return log_error_errno(r, "Cannot create the output \"%s\"", o->out);
        }
        if (fchmod(fd, 0644) < 0 || ftruncate(fd, (off_t)o->size) < 0)
                return log_error_errno(negative_errno(), "Cannot size the output \"%s\"", tmp.path);

        for (unsigned i = 0; i < o->n_parts; i++) {
                struct part *p = &o->parts[i];
                if (!p->file)
                        continue;
                uint64_t room = (p->last - p->first + 1) * GPT_SECTOR_SIZE, fsize = 0;
                r = copy_sparse(fd, p->file, p->first * GPT_SECTOR_SIZE, room, &fsize);
                if (r == -EFBIG)
                        return log_error(r, "File \"%s\" (%" PRIu64 " bytes) is larger than partition %u \"%s\" (%" PRIu64 " bytes)",
                                         p->file, fsize, p->num, p->label, room);
                if (r < 0)
                        return log_error_errno(r, "Cannot copy \"%s\" into partition %u \"%s\"", p->file, p->num, p->label);
        }

        r = write_mbr_and_core(o, fd, tmp.path, sectors, bios_idx, boot, core, core_len);
        if (r < 0)
                return r;
        r = gpt_write(fd, t, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot write the GPT to \"%s\"", tmp.path);
        if (rename(tmp.path, o->out) < 0)
                return log_error_errno(negative_errno(), "Cannot rename \"%s\" to \"%s\"", tmp.path, o->out);
        tmp.keep = true;
        r = fsync_parent_dir(o->out);
        if (r < 0)
                return log_error_errno(r, "Cannot sync the directory of \"%s\"", o->out);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "output", required_argument, NULL, 'o' },
                { "size", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },
                { "bios-boot-code", required_argument, NULL, 'b' },
                { "bios-core", required_argument, NULL, 'c' },
                { "part", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static struct options o;
        bool used[GPT_DEFAULT_ENTRIES + 1] = { false };
        int c;

        log_init(argv[0]);
        while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'o': o.out = optarg; break;
                case 's':
                        o.size_arg = optarg;
                        if (parse_size(optarg, &o.size) < 0) {
                                log_error(-EINVAL, "--size \"%s\": expected bytes with an optional K/M/G/T suffix", optarg);
                                return 2;
                        }
                        break;
                case 'S': o.seed = optarg; break;
                case 'b': o.boot_code = optarg; break;
                case 'c': o.core = optarg; break;
                case 'p':
                        if (o.n_parts >= MAX_PARTS) {
                                log_error(-E2BIG, "too many --part options (at most %d)", MAX_PARTS);
                                return 2;
                        }
                        if (parse_part(optarg, &o.parts[o.n_parts]) < 0)
                                return 2;
                        if (used[o.parts[o.n_parts].num]) {
                                log_error(-EINVAL, "--part: partition number %u given twice", o.parts[o.n_parts].num);
                                return 2;
                        }
                        used[o.parts[o.n_parts].num] = true;
                        o.n_parts++;
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc || !o.out || !o.size_arg || !o.seed || o.n_parts == 0) {
                usage(stderr);
                return 2;
        }
        return run(&o) < 0 ? 1 : 0;
}
