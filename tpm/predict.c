/* tpm/predict.c — predict PCR 8, 9 and 11 of the next boot from the disk: GRUB's run of grub.cfg replayed
 * command by command for the slot state, the files it reads, and the initramfs's PCR 11 events. */
#include "predict.h"

#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bootcfg/bootcfg.h"
#include "eventlog.h"
#include "bootcfg/fat.h"
#include "fileio.h"
#include "gpt.h"
#include "bootcfg/grubenv.h"
#include "slotid.h"

#define GRUB_CFG_PATH "EFI/BOOT/grub.cfg"
#define GRUB_PREFIX_DIR "/EFI/BOOT" /* grub-mkimage -p */
#define PREDICT_MAX_FILE (512u << 20)
#define PREDICT_MAX_EVENTS 256

struct ctx {
        const struct predict_options *o;
        struct tpm_error *err;
        struct prediction *p;
        int fd;
};

static int add_event(struct ctx *c, unsigned pcr, uint32_t type, uint32_t tag, const char *text, const void *obj,
                     size_t objlen) {
        struct prediction *p = c->p;
        if (p->n_events == PREDICT_MAX_EVENTS)
                return tpm_error_set(c->err, -E2BIG, TPM_ERR_TOO_LARGE, "more than %d measurements", PREDICT_MAX_EVENTS);
        if (p->n_events % 32 == 0) {
                struct predict_event *n = realloc(p->events, (p->n_events + 32) * sizeof *n);
                if (!n)
                        return tpm_error_set(c->err, -ENOMEM, TPM_ERR_IO, "out of memory");
                p->events = n;
        }
        struct predict_event *e = &p->events[p->n_events];
        *e = (struct predict_event){ .pcr = pcr, .type = type, .tag = tag };
        int r = tpm_hash_data(c->o->algs, c->o->n_algs, obj, objlen, &e->d, c->err);
        if (r < 0)
                return r;
        if (!(e->text = strdup(text)))
                return tpm_error_set(c->err, -ENOMEM, TPM_ERR_IO, "out of memory");
        p->n_events++;
        return 0;
}

/* A GRUB command as measured: "grub_cmd: <argv joined by spaces>", digest H(the string without the prefix). */
static int _printf_(2, 3) cmd(struct ctx *c, const char *fmt, ...) {
        if (c->o->bios)
                return 0;
        char s[2048];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s, sizeof s, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof s)
                return tpm_error_set(c->err, -E2BIG, TPM_ERR_TOO_LARGE, "a GRUB command line longer than %zu bytes",
                                     sizeof s);
        char text[2100];
        snprintf(text, sizeof text, "grub_cmd: %s", s);
        return add_event(c, 8, EV_IPL, 0, text, s, (size_t)n);
}

/* A file GRUB reads through its verifiers: PCR 9, digest H(bytes), event text = the name as GRUB opened it. */
static int file_event(struct ctx *c, const char *grubname, const void *bytes, size_t len) {
        return c->o->bios ? 0 : add_event(c, 9, EV_IPL, 0, grubname, bytes, len);
}

/* ---- the disk ---- */

static int read_esp_file(struct ctx *c, const struct gpt_table *t, int esp, const char *path, size_t max,
                         uint8_t **ret, size_t *ret_len) {
        const uint8_t *e = gpt_entry(t, (unsigned)esp);
        uint64_t off = gpt_entry_first_lba(e) * GPT_SECTOR_SIZE;
        uint64_t size = (gpt_entry_last_lba(e) - gpt_entry_first_lba(e) + 1) * GPT_SECTOR_SIZE;
        struct fat_file f;
        int r = fat_lookup(c->fd, off, size, path, &f);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_IO, "\"%s\": cannot find /%s on the ESP: %s", c->o->disk, path,
                                     strerror(-r));
        if (f.size > max)
                return tpm_error_set(c->err, -EFBIG, TPM_ERR_TOO_LARGE, "\"%s\": /%s on the ESP is larger than %zu bytes",
                                     c->o->disk, path, max);
        if (!f.contiguous)
                return tpm_error_set(c->err, -EXDEV, TPM_ERR_IO,
                                     "\"%s\": /%s on the ESP is fragmented; cannot read it without mounting", c->o->disk,
                                     path);
        _cleanup_free_ uint8_t *buf = malloc(f.size ? f.size : 1);
        if (!buf)
                return tpm_error_set(c->err, -ENOMEM, TPM_ERR_IO, "out of memory");
        r = pread_full(c->fd, buf, f.size, off + f.offset);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_IO, "\"%s\": cannot read /%s: %s", c->o->disk, path, strerror(-r));
        *ret = TAKE_PTR(buf);
        *ret_len = f.size;
        return 0;
}

/* The GRUB environment as load_env sees it: the block's KEY=VALUE lines, backslash escapes undone. */
struct env {
        char a_prio[8], a_tries[8], a_ok[8], b_prio[8], b_tries[8], b_ok[8];
        char extra[512]; /* CAIRN_EXTRA_CMDLINE */
        bool have[6];
};

static int env_parse(struct ctx *c, const uint8_t *blk, size_t len, const char *name, struct env *ret) {
        char why[160];
        if (grubenv_validate(blk, len, NULL, why, sizeof why) < 0)
                return tpm_error_set(c->err, -EBADMSG, TPM_ERR_INVALID,
                                     "environment block %s is damaged (%s): GRUB's reading of it cannot be predicted; "
                                     "repair it with cairn-bootcfg",
                                     name, why);
        struct env e = { 0 };
        static const char *const keys[6] = { "A_PRIORITY", "A_TRIES", "A_SUCCESSFUL",
                                             "B_PRIORITY", "B_TRIES", "B_SUCCESSFUL" };
        char *vals[6] = { e.a_prio, e.a_tries, e.a_ok, e.b_prio, e.b_tries, e.b_ok };
        const char *p = (const char *)blk, *end = p + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        break;
                const char *eq = memchr(p, '=', (size_t)(nl - p));
                if (*p != '#' && eq) {
                        size_t klen = (size_t)(eq - p);
                        char val[512];
                        size_t vn = 0;
                        for (const char *q = eq + 1; q < nl; q++) {
                                char ch = *q;
                                if (ch == '\\' && q + 1 < nl) {
                                        ch = *++q;
                                        if (ch == 'n')
                                                ch = '\n';
                                }
                                if (vn + 1 >= sizeof val)
                                        return tpm_error_set(c->err, -E2BIG, TPM_ERR_TOO_LARGE,
                                                             "environment block %s: a value is too long", name);
                                val[vn++] = ch;
                        }
                        val[vn] = 0;
                        for (int k = 0; k < 6; k++)
                                if (klen == strlen(keys[k]) && memcmp(p, keys[k], klen) == 0) {
                                        /* GRUB compares strings: "01" is not "1". Only canonical decimals. */
                                        if (vn == 0 || vn > 2 || (vn == 2 && val[0] == '0'))
                                                return tpm_error_set(c->err, -EINVAL, TPM_ERR_INVALID,
                                                                     "environment block %s: %s=\"%s\" is not a "
                                                                     "canonical decimal",
                                                                     name, keys[k], vn > 2 ? "…" : val);
                                        memcpy(vals[k], val, vn + 1);
                                        e.have[k] = true;
                                }
                        if (klen == 19 && memcmp(p, "CAIRN_EXTRA_CMDLINE", 19) == 0)
                                snprintf(e.extra, sizeof e.extra, "%s", val);
                }
                p = nl + 1;
        }
        for (int k = 0; k < 6; k++)
                if (!e.have[k])
                        return tpm_error_set(c->err, -ENODATA, TPM_ERR_INVALID,
                                             "environment block %s has no %s (GRUB would expand it to nothing); write "
                                             "the state once with cairn-bootcfg",
                                             name, keys[k]);
        /* GRUB splits an unquoted variable on blanks and does not re-parse quotes or $ in its value; keep to words. */
        for (const char *q = e.extra; *q; q++)
                if (*q == '"' || *q == '\'' || *q == '\\' || *q == '$' || *q == '\n' || (unsigned char)*q < ' ')
                        return tpm_error_set(c->err, -EINVAL, TPM_ERR_INVALID,
                                             "CAIRN_EXTRA_CMDLINE in %s holds quotes, '$', '\\' or control characters; "
                                             "its command line cannot be predicted",
                                             name);
        *ret = e;
        return 0;
}

/* A whole file of the slot's ext4 (following symlinks inside the slot), at most max bytes. */
static int slot_file(struct ctx *c, ext2_filsys fs, const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        ext2_ino_t ino;
        errcode_t er = ext2fs_namei_follow(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
        if (er)
                return tpm_error_set(c->err, -ENOENT, TPM_ERR_IO, "slot %c of \"%s\" has no /usr/%s (%s)",
                                     bootcfg_slot_name(c->p->slot), c->o->disk, path, error_message(er));
        struct ext2_inode inode;
        er = ext2fs_read_inode(fs, ino, &inode);
        if (er || !LINUX_S_ISREG(inode.i_mode))
                return tpm_error_set(c->err, -EINVAL, TPM_ERR_IO, "slot %c of \"%s\": /usr/%s is not a regular file",
                                     bootcfg_slot_name(c->p->slot), c->o->disk, path);
        uint64_t size = EXT2_I_SIZE(&inode);
        if (size > max)
                return tpm_error_set(c->err, -EFBIG, TPM_ERR_TOO_LARGE, "slot %c: /usr/%s is larger than %zu bytes",
                                     bootcfg_slot_name(c->p->slot), path, max);
        ext2_file_t f;
        er = ext2fs_file_open(fs, ino, 0, &f);
        if (er)
                return tpm_error_set(c->err, -EIO, TPM_ERR_IO, "slot %c: cannot open /usr/%s: %s",
                                     bootcfg_slot_name(c->p->slot), path, error_message(er));
        _cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
        size_t got = 0;
        while (buf && got < size) {
                unsigned int k = 0;
                size_t chunk = size - got > (1u << 20) ? (1u << 20) : size - got;
                er = ext2fs_file_read(f, buf + got, (unsigned)chunk, &k);
                if (er || k == 0)
                        break;
                got += k;
        }
        ext2fs_file_close(f);
        if (!buf)
                return tpm_error_set(c->err, -ENOMEM, TPM_ERR_IO, "out of memory");
        if (got != size)
                return tpm_error_set(c->err, -EIO, TPM_ERR_IO, "slot %c: cannot read /usr/%s%s%s",
                                     bootcfg_slot_name(c->p->slot), path, er ? ": " : " (short read)",
                                     er ? error_message(er) : "");
        *ret = TAKE_PTR(buf);
        *ret_len = size;
        return 0;
}

/* dm-verity (the verity work's grub.cfg block, docs/verity.md): GRUB reads usrhash_sector from the slot's
 * /lib/cairn/verity.env, then usrhash from the env block at that sector of the slot (2 sectors), and puts
 * cairn.usrhash=$usrhash on the command line. Predict reads the same two blocks. ret_sector/usrhash are "" when
 * absent (GRUB then expands them to nothing). */
static int slot_usrhash(struct ctx *c, ext2_filsys fs, uint64_t part_off, uint64_t part_size, char *sector,
                        size_t ssize, char *usrhash, size_t hsize) {
        sector[0] = usrhash[0] = 0;
        _cleanup_free_ uint8_t *venv = NULL;
        size_t vlen;
        struct tpm_error ignore = { 0 };
        struct tpm_error *saved = c->err;
        c->err = &ignore;
        int r = slot_file(c, fs, "lib/cairn/verity.env", 4096, &venv, &vlen);
        c->err = saved;
        if (r < 0)
                return 0;
        if (grubenv_get(venv, vlen, "usrhash_sector", sector, ssize) < 0)
                return 0;
        char *end;
        errno = 0;
        unsigned long long sec = strtoull(sector, &end, 10);
        if (errno || *end || end == sector || sec > part_size / GPT_SECTOR_SIZE - 2)
                return tpm_error_set(c->err, -EINVAL, TPM_ERR_INVALID,
                                     "slot %c: /usr/lib/cairn/verity.env names sector \"%.32s\" outside the slot",
                                     bootcfg_slot_name(c->p->slot), sector);
        uint8_t blk[1024];
        r = pread_full(c->fd, blk, sizeof blk, part_off + sec * GPT_SECTOR_SIZE);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_IO, "slot %c: cannot read its root-hash block: %s",
                                     bootcfg_slot_name(c->p->slot), strerror(-r));
        if (grubenv_get(blk, sizeof blk, "usrhash", usrhash, hsize) < 0)
                usrhash[0] = 0;
        return 0;
}

/* ---- GRUB's run of image/grub/grub.cfg, command by command (keep in step with grub.cfg; docs/boot.md) ---- */

static bool num_gt(const char *a, unsigned b) { /* GRUB's [ a -gt b ] for our canonical decimals */
        return strtoul(a, NULL, 10) > b;
}

static int grub_run(struct ctx *c, const struct gpt_table *t, int esp, const struct env *env, bool fallback,
                    const char *cfgname, int *ret_slot) {
        const char *gd = c->o->grub_disk ?: "hd0";
        char prefix[128];
        snprintf(prefix, sizeof prefix, "(%s,gpt%d)%s", gd, esp + 1, GRUB_PREFIX_DIR);
        int r;
        (void)cfgname;
        if ((r = cmd(c, "serial --unit=0 --speed=115200")) < 0 || (r = cmd(c, "terminal_input serial console")) < 0 ||
            (r = cmd(c, "terminal_output serial console")) < 0 || (r = cmd(c, "set envfile=%s/grubenv", prefix)) < 0 ||
            (r = cmd(c, "! load_env --skip-sig -f %s/grubenv", prefix)) < 0)
                return r;
        if (fallback) {
                if ((r = cmd(c, "echo cairn: boot selection in %s/grubenv is unreadable; trying the copy", prefix)) < 0 ||
                    (r = cmd(c, "set envfile=%s/grubenv.bak", prefix)) < 0 ||
                    (r = cmd(c, "load_env --skip-sig -f %s/grubenv.bak", prefix)) < 0)
                        return r;
        }
        const char *envfile = fallback ? "grubenv.bak" : "grubenv";
        if ((r = cmd(c, "regexp --set=1:disk ^([^,]*) %s,gpt%d", gd, esp + 1)) < 0 || (r = cmd(c, "set slot=none")) < 0 ||
            (r = cmd(c, "[ %s -ge %s ]", env->a_prio, env->b_prio)) < 0)
                return r;
        bool a_first = strtoul(env->a_prio, NULL, 10) >= strtoul(env->b_prio, NULL, 10);
        const char *order[2] = { a_first ? "A" : "B", a_first ? "B" : "A" };
        if ((r = cmd(c, "set order=%s %s", order[0], order[1])) < 0)
                return r;
        const char *slot = "none";
        for (int i = 0; i < 2; i++) {
                const char *s = order[i];
                if ((r = cmd(c, "[ %s != none ]", slot)) < 0)
                        return r;
                if (strcmp(slot, "none") != 0) {
                        if ((r = cmd(c, "break")) < 0)
                                return r;
                        break;
                }
                bool is_a = strcmp(s, "A") == 0;
                const char *p = is_a ? env->a_prio : env->b_prio, *tv = is_a ? env->a_tries : env->b_tries,
                           *ok = is_a ? env->a_ok : env->b_ok;
                if ((r = cmd(c, "[ %s = A ]", s)) < 0)
                        return r;
                if ((r = cmd(c, "set p=%s", p)) < 0 || (r = cmd(c, "set t=%s", tv)) < 0 ||
                    (r = cmd(c, "set ok=%s", ok)) < 0 || (r = cmd(c, "[ %s -gt 0 ]", p)) < 0)
                        return r;
                if (!num_gt(p, 0))
                        continue;
                if ((r = cmd(c, "[ %s = 1 ]", ok)) < 0)
                        return r;
                if (strcmp(ok, "1") == 0) {
                        slot = s;
                        if ((r = cmd(c, "set slot=%s", s)) < 0)
                                return r;
                        continue;
                }
                if ((r = cmd(c, "[ %s -gt 0 ]", tv)) < 0)
                        return r;
                if (!num_gt(tv, 0))
                        continue;
                slot = s;
                if ((r = cmd(c, "set slot=%s", s)) < 0)
                        return r;
                /* The tries-1 table: [ $t = 1 ], [ $t = 2 ], … until one matches; 15 falls through to 14. */
                unsigned tn = (unsigned)strtoul(tv, NULL, 10);
                for (unsigned k = 1; k <= 14 && k <= tn; k++)
                        if ((r = cmd(c, "[ %s = %u ]", tv, k)) < 0)
                                return r;
                if ((r = cmd(c, "set t=%u", tn - 1)) < 0 || (r = cmd(c, "[ %s = A ]", s)) < 0 ||
                    (r = cmd(c, "set %s_TRIES=%u", s, tn - 1)) < 0 ||
                    (r = cmd(c, "save_env -f %s/%s %s_TRIES", prefix, envfile, s)) < 0)
                        return r;
        }
        bool none = strcmp(slot, "none") == 0;
        if ((r = cmd(c, "[ %s = A ]", slot)) < 0)
                return r;
        if (strcmp(slot, "A") != 0 && (r = cmd(c, "[ %s = B ]", slot)) < 0)
                return r;
        if (!none && (r = cmd(c, "set part=gpt%d", strcmp(slot, "A") == 0 ? 3 : 4)) < 0)
                return r;
        if ((r = cmd(c, "[ %s = none ]", slot)) < 0)
                return r;
        if (none)
                return tpm_error_set(c->err, -ENOENT, TPM_ERR_INVALID,
                                     "no slot is bootable in this state (GRUB stops at its rescue message)");
        *ret_slot = strcmp(slot, "A") == 0 ? 0 : 1;
        return 0;
}

/* The rest of the run once the slot's files are known: probe, command line, linux, initrd, boot. */
static int grub_boot(struct ctx *c, int esp, unsigned partno, const char *partuuid, const struct env *env,
                     bool verity, const char *sector, const char *usrhash, const uint8_t *kernel, size_t klen,
                     const uint8_t *initrd, size_t ilen) {
        const char *gd = c->o->grub_disk ?: "hd0";
        char slot = bootcfg_slot_name(c->p->slot);
        (void)esp;
        int r;
        char cmdline[1024];
        int n = snprintf(cmdline, sizeof cmdline,
                         "console=tty0 console=ttyS0,115200n8 panic=5 cairn.slot=%c cairn.usr=PARTUUID=%s%s%s %s", slot,
                         partuuid, verity ? " cairn.usrhash=" : "", verity ? usrhash : "", env->extra);
        if (n < 0 || (size_t)n >= sizeof cmdline)
                return tpm_error_set(c->err, -E2BIG, TPM_ERR_TOO_LARGE, "kernel command line too long");
        /* The arguments of linux: $cmdline split on blanks (the empty tail vanishes). */
        char words[1024] = "";
        size_t wl = 0;
        for (const char *q = cmdline; *q;) {
                while (*q == ' ' || *q == '\t')
                        q++;
                const char *s = q;
                while (*q && *q != ' ' && *q != '\t')
                        q++;
                if (q > s)
                        wl += (size_t)snprintf(words + wl, sizeof words - wl, " %.*s", (int)(q - s), s);
        }
        char kpath[128], ipath[128];
        snprintf(kpath, sizeof kpath, "(%s,gpt%u)/boot/vmlinuz", gd, partno);
        snprintf(ipath, sizeof ipath, "(%s,gpt%u)/boot/initrd", gd, partno);
        if ((r = cmd(c, "probe --part-uuid --set=usruuid (%s,gpt%u)", gd, partno)) < 0)
                return r;
        if (verity && ((r = cmd(c, "unset usrhash_sector")) < 0 || (r = cmd(c, "unset usrhash")) < 0 ||
                       (r = cmd(c, "load_env --skip-sig -f (%s,gpt%u)/lib/cairn/verity.env usrhash_sector", gd,
                                partno)) < 0 ||
                       (r = cmd(c, "load_env --skip-sig -f (%s,gpt%u)%s+2 usrhash", gd, partno, sector)) < 0))
                return r;
        if ((r = cmd(c, "set cmdline=%s", cmdline)) < 0 || (r = cmd(c, "echo cairn: booting slot %c", slot)) < 0 ||
            (r = cmd(c, "[ %s = efi ]", c->o->bios ? "pc" : "efi")) < 0 || (r = cmd(c, "linuxefi %s%s", kpath, words)) < 0 ||
            (r = file_event(c, kpath, kernel, klen)) < 0)
                return r;
        if (!c->o->bios) {
                char kc[1200];
                snprintf(kc, sizeof kc, "%s%s", kpath, words);
                char text[1300];
                snprintf(text, sizeof text, "kernel_cmdline: %s", kc);
                if ((r = add_event(c, 8, EV_IPL, 0, text, kc, strlen(kc))) < 0)
                        return r;
        }
        if ((r = cmd(c, "initrdefi %s", ipath)) < 0 || (r = file_event(c, ipath, initrd, ilen)) < 0 ||
            (r = cmd(c, "boot")) < 0)
                return r;
        return 0;
}

static void fs_closep(ext2_filsys *fs) {
        if (*fs)
                (void)ext2fs_close_free(fs);
}

static int predict_run(struct ctx *c) {
        const struct predict_options *o = c->o;
        struct prediction *p = c->p;
        _cleanup_gpt_ struct gpt_table *t = NULL;
        struct gpt_status gs;
        int r = gpt_read(c->fd, 0, GPT_READ_DEGRADED, &t, &gs);
        if (r < 0) {
                char d[200];
                gpt_status_describe(&gs, d, sizeof d);
                return tpm_error_set(c->err, r, TPM_ERR_INVALID, "\"%s\" has no usable GPT (%s)", o->disk, d);
        }
        int esp = gpt_find_by_label(t, "EFI-SYSTEM");
        int ua = gpt_find_by_label(t, "USR-A"), ub = gpt_find_by_label(t, "USR-B");
        if (esp < 0 || ua < 0 || ub < 0)
                return tpm_error_set(c->err, -ENOENT, TPM_ERR_INVALID,
                                     "\"%s\" is not a Cairn disk: no unique EFI-SYSTEM, USR-A and USR-B partitions",
                                     o->disk);
        /* grub.cfg names the slots by number (GRUB 2.06 has no lookup by label). */
        if (ua != 2 || ub != 3)
                return tpm_error_set(c->err, -EINVAL, TPM_ERR_INVALID,
                                     "\"%s\": USR-A/USR-B are partitions %d/%d, but grub.cfg boots 3 and 4", o->disk,
                                     ua + 1, ub + 1);

        /* PCR 9 starts with grub.cfg as configfile reads it. */
        _cleanup_free_ uint8_t *cfg = NULL;
        size_t cfglen;
        if ((r = read_esp_file(c, t, esp, GRUB_CFG_PATH, 1u << 20, &cfg, &cfglen)) < 0)
                return r;
        char cfgname[160];
        snprintf(cfgname, sizeof cfgname, "(%s,gpt%d)/%s", o->grub_disk ?: "hd0", esp + 1, GRUB_CFG_PATH);
        if ((r = file_event(c, cfgname, cfg, cfglen)) < 0)
                return r;

        /* The environment: GRUB's load_env fails only on a missing file or header; then it reads the copy. */
        _cleanup_free_ uint8_t *blk = NULL;
        size_t blen = 0;
        bool fallback = false;
        char envname[300];
        if (o->env) {
                r = read_file_bounded(o->env, 2 * GRUBENV_SIZE, (char **)&blk, &blen);
                if (r < 0)
                        return tpm_error_set(c->err, r, TPM_ERR_IO, "cannot read \"%s\": %s", o->env, strerror(-r));
                snprintf(envname, sizeof envname, "\"%s\"", o->env);
        } else {
                r = read_esp_file(c, t, esp, GRUBENV_PATH, 4096, &blk, &blen);
                if (r < 0 && r != -ENOENT)
                        return r;
                fallback = r < 0 || blen < strlen(GRUBENV_SIGNATURE) ||
                           memcmp(blk, GRUBENV_SIGNATURE, strlen(GRUBENV_SIGNATURE)) != 0;
                if (fallback) {
                        free(TAKE_PTR(blk));
                        if ((r = read_esp_file(c, t, esp, GRUBENV_BAK_PATH, 4096, &blk, &blen)) < 0)
                                return r;
                }
                snprintf(envname, sizeof envname, "/%s on \"%s\"", fallback ? GRUBENV_BAK_PATH : GRUBENV_PATH,
                         o->disk);
        }
        struct env env;
        if ((r = env_parse(c, blk, blen, envname, &env)) < 0)
                return r;
        int slot = -1;
        if ((r = grub_run(c, t, esp, &env, fallback, cfgname, &slot)) < 0)
                return r;
        /* The script and the C rule of the loader must agree (bootcfg_pick); a disagreement is a bug here. */
        struct bootcfg_state st;
        char why[160];
        if (grubenv_state_get(blk, blen, &st, why, sizeof why) < 0 || bootcfg_pick(&st, NULL) != slot)
                return tpm_error_set(c->err, -EPROTO, TPM_ERR_INVALID, "internal: GRUB script model and bootcfg_pick() "
                                                                       "disagree on the slot");
        if (o->slot >= 0 && o->slot != slot)
                return tpm_error_set(c->err, -ESRCH, TPM_ERR_INVALID,
                                     "the boot state in %s boots slot %c, not %c (set-next %c first)", envname,
                                     bootcfg_slot_name(slot), bootcfg_slot_name(o->slot), bootcfg_slot_name(o->slot));
        p->slot = slot;
        int idx = slot == 0 ? ua : ub;
        p->partno = (unsigned)idx + 1;
        const uint8_t *e = gpt_entry(t, (unsigned)idx);
        struct gpt_guid g;
        gpt_entry_get_uuid(e, &g);
        gpt_guid_format(&g, p->partuuid);
        for (char *q = p->partuuid; *q; q++)
                if (*q >= 'A' && *q <= 'F')
                        *q = (char)(*q - 'A' + 'a');

        /* The slot's file system, read in place. */
        uint64_t off = gpt_entry_first_lba(e) * GPT_SECTOR_SIZE;
        uint8_t fsuuid[16];
        r = slotid_ext4_uuid(c->fd, off, fsuuid);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_INVALID, "slot %c (partition %u) of \"%s\" holds no ext4 file "
                                                                 "system",
                                     bootcfg_slot_name(slot), p->partno, o->disk);
        char io_opts[64];
        snprintf(io_opts, sizeof io_opts, "offset=%llu", (unsigned long long)off);
        _cleanup_(fs_closep) ext2_filsys fs = NULL;
        initialize_ext2_error_table();
        errcode_t er = ext2fs_open2(o->disk, io_opts, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
        if (er)
                return tpm_error_set(c->err, -EIO, TPM_ERR_IO, "slot %c of \"%s\": cannot open its ext4: %s",
                                     bootcfg_slot_name(slot), o->disk, error_message(er));
        _cleanup_free_ uint8_t *kernel = NULL, *initrd = NULL, *osr = NULL;
        size_t klen, ilen, olen;
        if ((r = slot_file(c, fs, "boot/vmlinuz", PREDICT_MAX_FILE, &kernel, &klen)) < 0 ||
            (r = slot_file(c, fs, "boot/initrd", PREDICT_MAX_FILE, &initrd, &ilen)) < 0 ||
            (r = slot_file(c, fs, "lib/os-release", 64u << 10, &osr, &olen)) < 0)
                return r;
        r = slotid_version((const char *)osr, olen, p->version, sizeof p->version);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_INVALID, "slot %c: /usr/lib/os-release has no usable VERSION_ID",
                                     bootcfg_slot_name(slot));
        /* grub.cfg with the dm-verity block reads the root hash from the slot (see slot_usrhash()). */
        bool verity = memmem(cfg, cfglen, "lib/cairn/verity.env", 20) != NULL;
        char usrhash[160] = "", sector[32] = "";
        uint64_t psize = (gpt_entry_last_lba(e) - gpt_entry_first_lba(e) + 1) * GPT_SECTOR_SIZE;
        if (verity && (r = slot_usrhash(c, fs, off, psize, sector, sizeof sector, usrhash, sizeof usrhash)) < 0)
                return r;
        bool have_hash = usrhash[0] != 0;
        if ((r = grub_boot(c, esp, p->partno, p->partuuid, &env, verity, sector, usrhash, kernel, klen, initrd,
                           ilen)) < 0)
                return r;

        /* PCR 11: the initramfs's three events (tpm/slotid.h). */
        r = slotid_text(have_hash ? usrhash : NULL, p->partuuid, fsuuid, p->identity, sizeof p->identity);
        if (r < 0)
                return tpm_error_set(c->err, r, TPM_ERR_INVALID, "slot %c: malformed slot identity",
                                     bootcfg_slot_name(slot));
        const char *texts[3] = { p->identity, p->version, SLOTID_LEAVE_INITRD };
        const uint32_t tags[3] = { CAIRN_TAG_SLOT, CAIRN_TAG_VERSION, CAIRN_TAG_LEAVE_INITRD };
        for (int k = 0; k < 3; k++)
                if ((r = add_event(c, CAIRN_PCR_OS, EV_EVENT_TAG, tags[k], texts[k], texts[k], strlen(texts[k]))) < 0)
                        return r;

        /* The fold, from the reset value (zero) of each PCR. */
        p->pcrs.n = o->n_algs;
        for (size_t b = 0; b < o->n_algs; b++) {
                struct pcr_bank *k = &p->pcrs.bank[b];
                k->alg = o->algs[b];
                k->size = (uint16_t)tpm_alg_size(o->algs[b]);
                k->mask = PREDICT_PCR_MASK;
                for (size_t i = 0; i < p->n_events; i++)
                        if ((r = tpm_fold(k->alg, k->value[p->events[i].pcr], p->events[i].d.d[b].bytes, c->err)) < 0)
                                return r;
        }
        return 0;
}

int predict_boot(const struct predict_options *o, struct prediction **ret, struct tpm_error *err) {
        if (!o || !o->disk || !o->algs || o->n_algs == 0 || o->n_algs > TPM_MAX_BANKS || o->slot < -1 || o->slot > 1)
                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "bad prediction options");
        for (size_t i = 0; i < o->n_algs; i++)
                if (!tpm_alg_supported(o->algs[i]))
                        return tpm_error_set(err, -EOPNOTSUPP, TPM_ERR_UNSUPPORTED, "bank 0x%04x cannot be computed here",
                                             o->algs[i]);
        struct prediction *p = calloc(1, sizeof *p);
        if (!p)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        struct ctx c = { .o = o, .err = err, .p = p, .fd = open(o->disk, O_RDONLY | O_CLOEXEC) };
        int r;
        if (c.fd < 0)
                r = tpm_error_set(err, negative_errno(), TPM_ERR_IO, "cannot open \"%s\": %s", o->disk, strerror(errno));
        else {
                r = predict_run(&c);
                close(c.fd);
        }
        if (r < 0) {
                prediction_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void prediction_free(struct prediction *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_events; i++)
                free(p->events[i].text);
        free(p->events);
        free(p);
}
