/* tpm/ourlog.c — Cairn's own event log on disk: locked (flock) for the whole of header + append + extend, each
 * write fsynced before the TPM is extended; and bounded loading of any log file. */
#include "ourlog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "fileio.h"

int eventlog_load(const char *path, unsigned flags, struct eventlog **ret, struct tpm_error *err) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, EVENTLOG_MAX_SIZE, &buf, &len);
        if (r == -EFBIG)
                return tpm_error_set(err, r, TPM_ERR_TOO_LARGE, "\"%s\" is larger than %u bytes", path,
                                     EVENTLOG_MAX_SIZE);
        if (r < 0)
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot read \"%s\": %s", path, strerror(-r));
        if (len == 0)
                return tpm_error_set(err, -ENODATA, TPM_ERR_NO_SPEC_HEADER, "\"%s\" is empty", path);
        struct tpm_error e = { 0 };
        struct eventlog *log = NULL;
        r = eventlog_parse(buf, len, flags, &log, &e);
        if (r < 0)
                return tpm_error_set(err, r, e.kind, "\"%s\": %s", path, e.msg);
        *ret = log;
        return 0;
}

static int read_fd_bounded(int fd, uint8_t **ret, size_t *ret_len, struct tpm_error *err, const char *path) {
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot stat \"%s\": %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return tpm_error_set(err, -EINVAL, TPM_ERR_IO, "\"%s\" is not a regular file", path);
        if ((uint64_t)st.st_size > EVENTLOG_MAX_SIZE)
                return tpm_error_set(err, -EFBIG, TPM_ERR_TOO_LARGE, "\"%s\" is larger than %u bytes; not appending",
                                     path, EVENTLOG_MAX_SIZE);
        size_t len = (size_t)st.st_size;
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        int r = pread_full(fd, buf, len, 0);
        if (r < 0)
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot read \"%s\": %s", path, strerror(-r));
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int ourlog_lock(const char *path, struct ourlog **ret, struct tpm_error *err) {
        int r = mkdir_parents(path, false);
        if (r < 0)
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot create the directory of \"%s\": %s", path,
                                     strerror(-r));
        _cleanup_free_ struct ourlog *l = calloc(1, sizeof *l);
        if (!l || !(l->path = strdup(path))) {
                if (l)
                        free(l->path);
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        }
        l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (l->fd < 0) {
                r = negative_errno();
                free(l->path);
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot open \"%s\": %s", path, strerror(-r));
        }
        /* Held until ourlog_unlock(): the append and the extend are one step for every other cairn-tpm. */
        while (flock(l->fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        r = negative_errno();
                        close(l->fd);
                        free(l->path);
                        return tpm_error_set(err, r, TPM_ERR_IO, "cannot lock \"%s\": %s", path, strerror(-r));
                }
        *ret = TAKE_PTR(l);
        return 0;
}

void ourlog_unlock(struct ourlog *l) {
        if (!l)
                return;
        if (l->fd >= 0)
                close(l->fd);
        free(l->path);
        free(l);
}

int ourlog_extend(struct ourlog *l, struct tpm *t, unsigned pcr, uint32_t type, const struct tpm_digests *d,
                  const void *event, size_t event_len, struct ourlog_append *ret, struct tpm_error *err) {
        const char *path = l->path;
        int fd = l->fd;
        if (pcr >= TPM_PCRS || d->n == 0 || d->n > TPM_MAX_BANKS)
                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "bad measurement (PCR %u, %zu digests)", pcr,
                                     d->n);
        int r;
        _cleanup_free_ uint8_t *untrusted = NULL;
        size_t len = 0;
        r = read_fd_bounded(fd, &untrusted, &len, err, path);
        if (r < 0)
                return r;
        bool created = false;
        if (len == 0) {
                /* New (or left empty by a crash before its header): write the header for d's banks. */
                uint16_t algs[TPM_MAX_BANKS];
                for (size_t i = 0; i < d->n; i++)
                        algs[i] = d->d[i].alg;
                uint8_t h[EVENTLOG_HEADER_MAX];
                size_t hlen;
                r = eventlog_header_encode(algs, d->n, h, &hlen);
                if (r < 0)
                        return tpm_error_set(err, r, TPM_ERR_UNSUPPORTED, "cannot write a log header for these banks");
                r = pwrite_full(fd, h, hlen, 0);
                if (r >= 0 && fsync(fd) < 0)
                        r = negative_errno();
                if (r >= 0)
                        r = fsync_parent_dir(path);
                if (r < 0) {
                        if (ftruncate(fd, 0) == 0)
                                (void)fsync(fd);
                        return tpm_error_set(err, r, TPM_ERR_IO, "cannot write the header of \"%s\": %s", path,
                                             strerror(-r));
                }
                free(untrusted);
                untrusted = malloc(hlen);
                if (!untrusted)
                        return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
                memcpy(untrusted, h, hlen);
                len = hlen;
                created = true;
        }
        struct tpm_error e = { 0 };
        _cleanup_eventlog_ struct eventlog *log = NULL;
        r = eventlog_parse(untrusted, len, EVENTLOG_PARSE_OURS, &log, &e);
        if (r < 0)
                return tpm_error_set(err, r, e.kind, "\"%s\" is damaged, not appending: %s", path, e.msg);
        /* The record carries the digests in the header's order; the header must list exactly the TPM's banks. */
        struct tpm_digests ordered = { .n = log->n_algs };
        bool same = log->n_algs == d->n;
        for (size_t i = 0; same && i < log->n_algs; i++) {
                size_t j;
                for (j = 0; j < d->n && d->d[j].alg != log->algs[i].alg; j++)
                        ;
                if (j == d->n)
                        same = false;
                else
                        ordered.d[i] = d->d[j];
        }
        if (!same) {
                char have[128] = "", want[128] = "";
                for (size_t i = 0; i < log->n_algs; i++)
                        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? "," : "",
                                 tpm_alg_name(log->algs[i].alg) ?: "?");
                for (size_t i = 0; i < d->n; i++)
                        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? "," : "",
                                 tpm_alg_name(d->d[i].alg) ?: "?");
                return tpm_error_set(err, -EINVAL, TPM_ERR_BANKS,
                                     "\"%s\" was written for banks %s, but the TPM has %s active; not appending", path,
                                     have, want);
        }
        _cleanup_free_ uint8_t *rec = NULL;
        size_t rlen;
        r = eventlog_record_encode(pcr, type, &ordered, event, event_len, &rec, &rlen);
        if (r < 0)
                return tpm_error_set(err, r, TPM_ERR_INVALID, "cannot encode the record");
        r = pwrite_full(fd, rec, rlen, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                /* Not extended yet: put the log back as it was. */
                if (ftruncate(fd, (off_t)len) == 0)
                        (void)fsync(fd);
                return tpm_error_set(err, r, TPM_ERR_IO, "cannot append to \"%s\": %s", path, strerror(-r));
        }
        r = tpm_pcr_extend(t, pcr, &ordered, &e);
        if (r < 0)
                return tpm_error_set(err, r, TPM_ERR_LOG_AHEAD,
                                     "%s; record %zu (offset %zu) of \"%s\" was written first and stays: the TPM "
                                     "may not have it",
                                     e.msg, log->n_events + 1, len, path);
        if (ret)
                *ret = (struct ourlog_append){ .created = created, .record = log->n_events + 1, .offset = len };
        return 0;
}
