/* tpm/initrd.c — cairn-tpm-initrd: the initramfs's PCR 11 measurement of the /usr slot it mounted (static).
 *
 * Speaks TPM 2.0 directly (TPM2_GetCapability for the active banks, TPM2_PCR_Extend with a password session) to
 * /dev/tpmrm0 or /dev/tpm0 — or to a swtpm socket in tests — instead of linking tpm2-tss: two commands do not
 * need the TSS's 1 MiB of libraries, its dlopen()ed TCTIs or OpenSSL in the initramfs. Hashes with
 * tpm/minisha.c. Writes our TCG crypto-agile log (tpm/eventlog.c's encoders and strict parser), each record
 * appended and fsynced before its extend, like `cairn-tpm extend`. The events: tpm/slotid.h. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "eventlog.h"
#include "fileio.h"
#include "gpt.h"
#include "log.h"
#include "minisha.h"
#include "parse.h"
#include "slotid.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NO_TPM = 3, EXIT_LOG_AHEAD = 4, EXIT_REFUSED = 5 };

#define STUB_GUID "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f" /* systemd's loader/stub vendor GUID */
#define TPM_BUF 4096

/* ---- TPM 2.0 commands, marshalled by hand (big-endian) ---- */

struct wbuf {
        uint8_t b[TPM_BUF];
        size_t n;
};
static void put8(struct wbuf *w, uint8_t v) {
        w->b[w->n++] = v;
}
static void put16(struct wbuf *w, uint16_t v) {
        put8(w, (uint8_t)(v >> 8));
        put8(w, (uint8_t)v);
}
static void put32(struct wbuf *w, uint32_t v) {
        put16(w, (uint16_t)(v >> 16));
        put16(w, (uint16_t)v);
}
static uint32_t get32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Send a command (its size field filled in here) and read the whole response. 0, or -errno; *ret_rc = the TPM's
 * response code. */
static int tpm_transact(int fd, struct wbuf *cmd, uint8_t *resp, size_t *ret_len, uint32_t *ret_rc) {
        cmd->b[2] = (uint8_t)(cmd->n >> 24), cmd->b[3] = (uint8_t)(cmd->n >> 16);
        cmd->b[4] = (uint8_t)(cmd->n >> 8), cmd->b[5] = (uint8_t)cmd->n;
        int r = write_full(fd, cmd->b, cmd->n);
        if (r < 0)
                return r;
        size_t got = 0, want = 10;
        while (got < want) {
                ssize_t k = read(fd, resp + got, TPM_BUF - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return -ECONNRESET;
                got += (size_t)k;
                if (got >= 6) {
                        want = get32(resp + 2);
                        if (want < 10 || want > TPM_BUF)
                                return -EBADMSG;
                }
        }
        *ret_len = want;
        *ret_rc = get32(resp + 6);
        return 0;
}

/* The active PCR banks (TPM2_GetCapability(TPM_CAP_PCRS)): those with at least one PCR allocated. */
static int tpm_active_banks(int fd, uint16_t *algs, size_t *ret_n, uint32_t *ret_rc) {
        struct wbuf c = { .n = 0 };
        put16(&c, 0x8001), put32(&c, 0), put32(&c, 0x17A); /* TPM_ST_NO_SESSIONS, size, TPM_CC_GetCapability */
        put32(&c, 5), put32(&c, 0), put32(&c, 16);          /* TPM_CAP_PCRS, property 0, count */
        uint8_t resp[TPM_BUF];
        size_t len;
        int r = tpm_transact(fd, &c, resp, &len, ret_rc);
        if (r < 0 || *ret_rc)
                return r < 0 ? r : -EIO;
        return slotid_parse_pcr_capability(resp, len, algs, ret_n);
}

static int tpm_extend(int fd, unsigned pcr, const struct tpm_digests *d, uint32_t *ret_rc) {
        struct wbuf c = { .n = 0 };
        put16(&c, 0x8002), put32(&c, 0), put32(&c, 0x182); /* TPM_ST_SESSIONS, size, TPM_CC_PCR_Extend */
        put32(&c, pcr);
        put32(&c, 9);                                        /* authorizationSize */
        put32(&c, 0x40000009), put16(&c, 0), put8(&c, 0), put16(&c, 0); /* TPM_RS_PW, no nonce, attrs, no hmac */
        put32(&c, (uint32_t)d->n);
        for (size_t i = 0; i < d->n; i++) {
                put16(&c, d->d[i].alg);
                memcpy(c.b + c.n, d->d[i].bytes, d->d[i].size);
                c.n += d->d[i].size;
        }
        uint8_t resp[TPM_BUF];
        size_t len;
        int r = tpm_transact(fd, &c, resp, &len, ret_rc);
        return r < 0 ? r : *ret_rc ? -EIO : 0;
}

/* A connected stream socket of family to a (the fd), or -errno. */
static int connect_stream(int family, const struct sockaddr *a, socklen_t len) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, a, len) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        return fd;
}

/* "unix:PATH" or "tcp:127.0.0.1:PORT" (a swtpm data socket, for tests) or a character device; NULL: /dev/tpmrm0, then /dev/tpm0. */
static int tpm_connect(const char *dev, char *used, size_t usize) {
        if (dev && strncmp(dev, "unix:", 5) == 0) {
                struct sockaddr_un a = { .sun_family = AF_UNIX };
                if (strlen(dev + 5) >= sizeof a.sun_path)
                        return -ENAMETOOLONG;
                strcpy(a.sun_path, dev + 5);
                snprintf(used, usize, "%s", dev);
                return connect_stream(AF_UNIX, (struct sockaddr *)&a, sizeof a);
        }
        if (dev && strncmp(dev, "tcp:127.0.0.1:", 14) == 0) { /* swtpm --server type=tcp, tests only */
                unsigned port;
                if (parse_unsigned_range(dev + 14, 1, 65535, &port) < 0)
                        return -EINVAL;
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                snprintf(used, usize, "%s", dev);
                return connect_stream(AF_INET, (struct sockaddr *)&a, sizeof a);
        }
        const char *cands[] = { dev ? dev : "/dev/tpmrm0", dev ? NULL : "/dev/tpm0" };
        int r = -ENOENT;
        for (size_t i = 0; i < 2 && cands[i]; i++) {
                int fd = open(cands[i], O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        snprintf(used, usize, "%s", cands[i]);
                        return fd;
                }
                r = negative_errno();
        }
        return r;
}

/* ---- what was mounted ---- */

/* The PARTUUID of partition device dev (e.g. /dev/vda3): its number from sysfs, the GPT of its disk. */
static int partuuid_of(const char *dev, char *buf) {
        struct stat st;
        if (stat(dev, &st) < 0)
                return negative_errno();
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        char p[64], link[256];
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
        char pp[96];
        snprintf(pp, sizeof pp, "%s/partition", p);
        /* sysfs attributes claim 4096 bytes: read, do not stat. */
        char num[32] = "";
        _cleanup_close_ int nfd = open(pp, O_RDONLY | O_CLOEXEC);
        if (nfd < 0)
                return errno == ENOENT ? -ENOTBLK : negative_errno();
        if (read(nfd, num, sizeof num - 1) <= 0)
                return -EIO;
        int r;
        int partno = atoi(num);
        /* The parent directory of the partition in sysfs is the disk. */
        ssize_t k = readlink(p, link, sizeof link - 1);
        if (k < 0)
                return negative_errno();
        link[k] = 0;
        char *slash = strrchr(link, '/');
        if (!slash)
                return -ENOENT;
        *slash = 0;
        char *disk = strrchr(link, '/');
        char dpath[300];
        snprintf(dpath, sizeof dpath, "/dev/%s", disk ? disk + 1 : link);
        _cleanup_close_ int fd = open(dpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_gpt_ struct gpt_table *t = NULL;
        r = gpt_read(fd, 0, GPT_READ_DEGRADED, &t, NULL);
        if (r < 0)
                return r;
        if (partno < 1 || (unsigned)partno > t->num_entries)
                return -ENOENT;
        struct gpt_guid g;
        gpt_entry_get_uuid(gpt_entry(t, (unsigned)partno - 1), &g);
        gpt_guid_format(&g, buf);
        for (char *c = buf; *c; c++)
                *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
        return 0;
}

/* Is PCR 11 someone else's? systemd-stub sets StubInfo (and, when it measured, StubPcrKernelImage); any stub or
 * loader that measured into PCR 11 leaves events in the firmware log. */
static int pcr11_owner(const char *efivars, const char *fwlog, char *why, size_t wsize) {
        static const char *const vars[] = { "StubInfo-" STUB_GUID, "StubPcrKernelImage-" STUB_GUID };
        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                char p[512];
                snprintf(p, sizeof p, "%s/%s", efivars, vars[i]);
                if (access(p, F_OK) == 0) {
                        snprintf(why, wsize, "systemd-stub is in use (EFI variable %s exists)", vars[i]);
                        return 1;
                }
        }
        _cleanup_free_ char *buf = NULL;
        size_t len;
        if (read_file_bounded(fwlog, EVENTLOG_MAX_SIZE, &buf, &len) < 0 || len == 0)
                return 0;
        _cleanup_eventlog_ struct eventlog *log = NULL;
        struct tpm_error e = { 0 };
        if (eventlog_parse(buf, len, 0, &log, &e) < 0) {
                log_msg("notice: cannot parse the firmware log \"%s\" (%s); not checking it for PCR 11 events", fwlog,
                        e.msg);
                return 0;
        }
        for (size_t i = 0; i < log->n_events; i++)
                if (log->events[i].pcr == CAIRN_PCR_OS && log->events[i].type != EV_NO_ACTION) {
                        snprintf(why, wsize, "the firmware log already has events for PCR 11 (record %zu)", i + 1);
                        return 1;
                }
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "usage: cairn-tpm-initrd --usr-dev DEV --os-release FILE [--usrhash HEX] [--log PATH]\n"
                   "                        [--device DEV|unix:SOCKET|tcp:127.0.0.1:PORT] [--efivars DIR] [--firmware PATH]\n"
                   "Extend PCR 11 (every active bank) with the slot identity, the version and leave-initrd, as\n"
                   "EV_EVENT_TAG records of a TCG log (default /run/cairn/tpm-events.log).\n"
                   "exit: 0 measured, 1 error, 2 usage, 3 no TPM, 4 extend failed after the record was written,\n"
                   "5 refused (PCR 11 belongs to systemd-stub or the firmware log)\n");
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        static const struct option opts[] = {
                { "usr-dev", required_argument, NULL, 'u' }, { "os-release", required_argument, NULL, 'o' },
                { "usrhash", required_argument, NULL, 'H' }, { "log", required_argument, NULL, 'l' },
                { "device", required_argument, NULL, 'd' },  { "efivars", required_argument, NULL, 'e' },
                { "firmware", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *usrdev = NULL, *osr = NULL, *usrhash = NULL, *logpath = "/run/cairn/tpm-events.log";
        const char *dev = NULL, *efivars = "/sys/firmware/efi/efivars";
        const char *fwlog = "/sys/kernel/security/tpm0/binary_bios_measurements";
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'u': usrdev = optarg; break;
                case 'o': osr = optarg; break;
                case 'H': usrhash = optarg; break;
                case 'l': logpath = optarg; break;
                case 'd': dev = optarg; break;
                case 'e': efivars = optarg; break;
                case 'f': fwlog = optarg; break;
                case 'h': usage(stdout); return EXIT_OK;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (optind != argc || !osr || (!usrdev && !(usrhash && *usrhash))) {
                usage(stderr);
                return EXIT_USAGE;
        }

        /* 1. What to measure: nothing is written or extended unless all three texts are well-formed. */
        char ident[SLOTID_TEXT_MAX], version[SLOTID_VERSION_MAX];
        int r;
        if (usrhash && *usrhash)
                r = slotid_text(usrhash, NULL, NULL, ident, sizeof ident);
        else {
                char pu[GPT_GUID_STRLEN + 1];
                uint8_t fsu[16];
                r = partuuid_of(usrdev, pu);
                if (r < 0)
                        return log_error_errno(r, "cannot find the PARTUUID of \"%s\"", usrdev), EXIT_FAIL;
                _cleanup_close_ int fd = open(usrdev, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return log_error_errno(-errno, "cannot open \"%s\"", usrdev), EXIT_FAIL;
                r = slotid_ext4_uuid(fd, 0, fsu);
                if (r < 0)
                        return log_error_errno(r, "cannot read the ext4 UUID of \"%s\"", usrdev), EXIT_FAIL;
                r = slotid_text(NULL, pu, fsu, ident, sizeof ident);
        }
        if (r < 0)
                return log_msg("cairn.usrhash=\"%.140s\" is not a hex root hash (32-128 hex digits)", usrhash),
                       EXIT_FAIL;
        _cleanup_free_ char *osrbuf = NULL;
        size_t osrlen;
        r = read_file_bounded(osr, 64 << 10, &osrbuf, &osrlen);
        if (r < 0)
                return log_error_errno(r, "cannot read \"%s\"", osr), EXIT_FAIL;
        r = slotid_version(osrbuf, osrlen, version, sizeof version);
        if (r < 0)
                return log_msg("\"%s\" has no usable VERSION_ID (%s)", osr, r == -ENOENT ? "absent" : "malformed"),
                       EXIT_FAIL;

        /* 2. PCR 11 must be ours. */
        char why[256];
        if (pcr11_owner(efivars, fwlog, why, sizeof why)) {
                log_msg("%s: it owns PCR 11; not measuring the slot (see docs/measured-boot.md)", why);
                return EXIT_REFUSED;
        }

        /* 3. The TPM and its banks. */
        char used[256] = "";
        _cleanup_close_ int tfd = tpm_connect(dev, used, sizeof used);
        if (tfd < 0) {
                log_msg("notice: no TPM (%s: %s); boot continues without measuring the slot", dev ?: "/dev/tpmrm0",
                        strerror(-tfd));
                return EXIT_NO_TPM;
        }
        uint16_t algs[TPM_MAX_BANKS];
        size_t n = 0;
        uint32_t rc = 0;
        r = tpm_active_banks(tfd, algs, &n, &rc);
        if (r < 0) {
                if (rc)
                        log_msg("TPM at \"%s\": GetCapability failed with TPM response code 0x%03x", used, rc);
                else
                        log_error_errno(r, "TPM at \"%s\": GetCapability failed", used);
                return EXIT_FAIL;
        }
        if (n == 0)
                return log_msg("TPM at \"%s\" has no active PCR bank", used), EXIT_FAIL;
        for (size_t i = 0; i < n; i++) {
                uint8_t tmp[64];
                if (!minisha(algs[i], "", 0, tmp) || !tpm_alg_size(algs[i]))
                        return log_msg("TPM at \"%s\": active bank 0x%04x cannot be computed here; not measuring", used,
                                       algs[i]),
                               EXIT_FAIL;
        }

        /* 4. The log: created with its header, or an existing log of ours for exactly these banks. */
        r = mkdir_parents(logpath, false);
        if (r < 0)
                return log_error_errno(r, "cannot create the directory of \"%s\"", logpath), EXIT_FAIL;
        _cleanup_close_ int lfd = open(logpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (lfd < 0)
                return log_error_errno(-errno, "cannot open \"%s\"", logpath), EXIT_FAIL;
        while (flock(lfd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return log_error_errno(-errno, "cannot lock \"%s\"", logpath), EXIT_FAIL;
        struct stat st;
        if (fstat(lfd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > EVENTLOG_MAX_SIZE)
                return log_msg("\"%s\" is not a regular file of at most %u bytes", logpath, EVENTLOG_MAX_SIZE),
                       EXIT_FAIL;
        uint64_t end = (uint64_t)st.st_size;
        if (end == 0) {
                uint8_t h[EVENTLOG_HEADER_MAX];
                size_t hlen;
                r = eventlog_header_encode(algs, n, h, &hlen);
                if (r >= 0)
                        r = pwrite_full(lfd, h, hlen, 0);
                if (r >= 0 && fsync(lfd) < 0)
                        r = negative_errno();
                if (r < 0) {
                        (void)!ftruncate(lfd, 0);
                        return log_error_errno(r, "cannot write the header of \"%s\"", logpath), EXIT_FAIL;
                }
                end = hlen;
        } else {
                _cleanup_free_ uint8_t *untrusted = malloc(end);
                if (!untrusted || pread_full(lfd, untrusted, end, 0) < 0)
                        return log_msg("cannot read \"%s\"", logpath), EXIT_FAIL;
                _cleanup_eventlog_ struct eventlog *log = NULL;
                struct tpm_error e = { 0 };
                if (eventlog_parse(untrusted, end, EVENTLOG_PARSE_OURS, &log, &e) < 0)
                        return log_msg("\"%s\" is damaged, not appending: %s", logpath, e.msg), EXIT_FAIL;
                bool same = log->n_algs == n;
                for (size_t i = 0; same && i < n; i++)
                        same = log->algs[i].alg == algs[i];
                if (!same)
                        return log_msg("\"%s\" was written for other banks than the TPM's; not appending", logpath),
                               EXIT_FAIL;
        }

        /* 5. Each event: record appended and fsynced, then the extend (a record may be ahead, never missing). */
        const struct {
                uint32_t tag;
                const char *text;
        } ev[3] = { { CAIRN_TAG_SLOT, ident }, { CAIRN_TAG_VERSION, version },
                    { CAIRN_TAG_LEAVE_INITRD, SLOTID_LEAVE_INITRD } };
        for (size_t k = 0; k < 3; k++) {
                struct tpm_digests d = { .n = n };
                for (size_t i = 0; i < n; i++) {
                        d.d[i].alg = algs[i];
                        d.d[i].size = (uint16_t)minisha(algs[i], ev[k].text, strlen(ev[k].text), d.d[i].bytes);
                }
                _cleanup_free_ uint8_t *tagged = NULL, *rec = NULL;
                size_t tlen, rlen;
                r = eventlog_tagged_encode(ev[k].tag, ev[k].text, strlen(ev[k].text), &tagged, &tlen);
                if (r >= 0)
                        r = eventlog_record_encode(CAIRN_PCR_OS, EV_EVENT_TAG, &d, tagged, tlen, &rec, &rlen);
                if (r < 0)
                        return log_error_errno(r, "cannot encode event %zu", k + 1), EXIT_FAIL;
                r = pwrite_full(lfd, rec, rlen, end);
                if (r >= 0 && fsync(lfd) < 0)
                        r = negative_errno();
                if (r < 0) {
                        (void)!ftruncate(lfd, (off_t)end);
                        return log_error_errno(r, "cannot append to \"%s\"", logpath), EXIT_FAIL;
                }
                end += rlen;
                r = tpm_extend(tfd, CAIRN_PCR_OS, &d, &rc);
                if (r < 0) {
                        if (rc)
                                log_msg("TPM at \"%s\": PCR_Extend failed with response code 0x%03x; the record of "
                                        "\"%s\" stays (the log is one event ahead)",
                                        used, rc, ev[k].text);
                        else
                                log_error_errno(r, "TPM at \"%s\": PCR_Extend of \"%s\" failed; the record stays",
                                                used, ev[k].text);
                        return EXIT_LOG_AHEAD;
                }
        }
        printf("cairn-tpm-initrd: PCR 11 (%zu banks) <- %s, version %s, leave-initrd (log %s)\n", n, ident, version,
               logpath);
        return EXIT_OK;
}
