/* updater/server/channels.c — reads the release directory (channel files, payload files) and decides rollout buckets. */
#include "channels.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "fileio.h"
#include "hash.h"
#include "kvfile.h"
#include "parse.h"

/* ---- opening files beneath the release directory ---- */

/* "a/b/c": 1..16 components, none empty, "." or "..", no leading or trailing '/'. */
static bool relpath_valid(const char *relpath) {
        size_t len = strlen(relpath);
        if (len == 0 || len >= PATH_MAX || relpath[0] == '/' || relpath[len - 1] == '/')
                return false;
        unsigned n = 0;
        for (const char *p = relpath; *p;) {
                size_t k = strcspn(p, "/");
                if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.') || ++n > 16)
                        return false;
                p += k + (p[k] == '/');
        }
        return true;
}

int reldir_openat_walk(int dirfd, const char *relpath, int flags) {
        if (!relpath_valid(relpath))
                return -EINVAL;
        char buf[PATH_MAX];
        strcpy(buf, relpath);
        int cur = dirfd;
        char *save = NULL;
        for (char *c = strtok_r(buf, "/", &save); c;) {
                char *next = strtok_r(NULL, "/", &save);
                int fd = openat(cur, c,
                                next ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : flags | O_NOFOLLOW | O_CLOEXEC);
                int err = fd < 0 ? -errno : 0;
                struct stat st;
                /* A symlink opened with O_DIRECTORY|O_NOFOLLOW fails with ENOTDIR: report it as openat2() does. */
                if (err == -ENOTDIR && fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                        err = -ELOOP;
                if (cur != dirfd)
                        close(cur);
                if (fd < 0)
                        return err;
                cur = fd;
                c = next;
        }
        return cur;
}

/* Set when the kernel (or a seccomp filter) has no openat2(): every later call walks instead. */
static atomic_bool openat2_missing;

int reldir_openat(int dirfd, const char *relpath, int flags) {
        if (!relpath_valid(relpath))
                return -EINVAL;
        if (!atomic_load_explicit(&openat2_missing, memory_order_relaxed)) {
                struct open_how how = {
                        .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                };
                long fd = syscall(SYS_openat2, dirfd, relpath, &how, sizeof how);
                if (fd >= 0)
                        return (int)fd;
                /* ENOSYS: kernel < 5.6. EPERM: container seccomp profiles that predate openat2 answer EPERM to it,
                 * and open() itself never says EPERM for the read-only opens done here. */
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                atomic_store_explicit(&openat2_missing, true, memory_order_relaxed);
        }
        return reldir_openat_walk(dirfd, relpath, flags);
}

int reldir_stat(int dirfd, const char *relpath, struct stat *ret) {
        /* O_PATH opens nothing (a FIFO does not block, a device is not touched); a final symlink comes back as
         * itself and fails the callers' S_ISREG(). */
        _cleanup_close_ int fd = reldir_openat(dirfd, relpath, O_PATH);
        if (fd < 0)
                return fd;
        return fstat(fd, ret) < 0 ? negative_errno() : 0;
}

const char *reldir_strerror(int r) {
        switch (r) {
        case -ELOOP:
                return "a symbolic link (never followed)";
        case -EXDEV:
                return "outside the release directory";
        case -RELDIR_ENOTREG:
                return "not a regular file";
        case -EFBIG:
                return "larger than 4096 bytes";
        default:
                return strerror(-r);
        }
}

static int channel_kv(const char *k, const char *v, unsigned line, void *userdata, const char **ret_why) {
        Channel *c = userdata;
        if (strcmp(k, "VERSION") == 0) {
                if (*v && !omaha_version_valid(v))
                        return -EINVAL;
                strcpy(c->version, v);
        } else if (strcmp(k, "ROLLOUT") == 0)
                return parse_unsigned_range(v, 0, 100, &c->rollout) < 0 ? -EINVAL : 0;
        else if (strcmp(k, "PAUSED") == 0) {
                unsigned b;
                if (parse_unsigned_range(v, 0, 1, &b) < 0)
                        return -EINVAL;
                c->paused = b;
        } else if (strcmp(k, "MAX_PER_PERIOD") == 0)
                return parse_unsigned_range(v, 0, 100000000, &c->max_per_period) < 0 ? -EINVAL : 0;
        else if (strcmp(k, "POLL_INTERVAL") == 0)
                return parse_unsigned_range(v, 0, 7u * 86400u, &c->poll_interval) < 0 ? -EINVAL : 0;
        else if (strcmp(k, "PERIOD") == 0) {
                if (parse_unsigned_range(v, 0, 366u * 86400u, &c->period) < 0 || c->period == 0)
                        return -EINVAL;
        }
        /* Unknown keys are ignored, so newer tools can add some. */
        return 0;
}

int channel_parse(const char *name, const char *text, Channel *ret, unsigned *ret_line) {
        if (!omaha_name_valid(name, CHANNEL_NAME_MAX))
                return -EINVAL;
        Channel c = { .rollout = 100, .period = 3600 };
        strcpy(c.name, name);
        KvfileError e;
        if (kvfile_parse(text, strlen(text), channel_kv, &c, &e) < 0) {
                if (ret_line)
                        *ret_line = e.line;
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

int channel_load(int reldir_fd, const char *name, Channel *ret) {
        if (!omaha_name_valid(name, CHANNEL_NAME_MAX))
                return -EINVAL;
        char path[CHANNEL_NAME_MAX + 16];
        snprintf(path, sizeof path, "channels/%s", name);
        /* O_NONBLOCK: a FIFO put here must not block the open (and the request, and shutdown). */
        _cleanup_close_ int fd = reldir_openat(reldir_fd, path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -RELDIR_ENOTREG;
        if (st.st_size > CHANNEL_FILE_MAX)
                return -EFBIG;
        char buf[CHANNEL_FILE_MAX + 1];
        ssize_t n = read_full(fd, buf, sizeof buf);
        if (n < 0)
                return (int)n;
        if ((size_t)n > CHANNEL_FILE_MAX)
                return -EFBIG;
        buf[n] = 0;
        if (memchr(buf, 0, (size_t)n))
                return -EINVAL;
        return channel_parse(name, buf, ret, NULL);
}

/* ---- channel cache ---- */

#define CHANNEL_CACHE_SLOTS 64
/* A file changed less than this long ago is not cached: two edits in place within the file system's timestamp
 * granularity, leaving the size alone, would look the same to stat (git's "racy" index entries). */
#define CHANNEL_SETTLE_SEC 2

int channel_cache_new(ChannelCache **ret) {
        return statcache_new(CHANNEL_CACHE_SLOTS, sizeof(Channel), ret);
}

void channel_cache_free(ChannelCache *c) {
        statcache_free(c);
}

int channel_load_cached(ChannelCache *c, int reldir_fd, const char *name, Channel *ret) {
        if (!omaha_name_valid(name, CHANNEL_NAME_MAX))
                return -EINVAL;
        char path[CHANNEL_NAME_MAX + 16];
        snprintf(path, sizeof path, "channels/%s", name);
        struct stat st;
        int r = reldir_stat(reldir_fd, path, &st);
        if (r < 0)
                return r;
        if (!S_ISREG(st.st_mode))
                return channel_load(reldir_fd, name, ret); /* its error, uncached */

        if (statcache_get(c, name, &st, ret))
                return 0;

        /* Read it, then stat the file again: only if nothing changed meanwhile and the last change has
         * settled is the result cached. */
        Channel ch;
        r = channel_load(reldir_fd, name, &ch);
        if (r < 0)
                return r;
        struct stat st2;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (reldir_stat(reldir_fd, path, &st2) >= 0 && S_ISREG(st2.st_mode) && stat_same_file(&st2, &st) &&
            st.st_mtim.tv_sec + CHANNEL_SETTLE_SEC <= now.tv_sec && st.st_ctim.tv_sec + CHANNEL_SETTLE_SEC <= now.tv_sec)
                statcache_put(c, name, &st, &ch);
        *ret = ch;
        return 0;
}

void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

int channel_list(int reldir_fd, char ***ret_names) {
        int fd = reldir_openat(reldir_fd, "channels", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        _cleanup_(closedirp) DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        size_t n = 0, cap = 16;
        _cleanup_(strv_freep) char **v = calloc(cap + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!omaha_name_valid(de->d_name, CHANNEL_NAME_MAX) || strstr(de->d_name, ".tmp"))
                        continue;
                if (n >= 1024)
                        return -E2BIG;
                if (n == cap) {
                        char **nv = realloc(v, (cap * 2 + 1) * sizeof *v);
                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                        cap *= 2;
                }
                if (!(v[n] = strdup(de->d_name)))
                        return -ENOMEM;
                v[++n] = NULL;
        }
        qsort(v, n, sizeof *v, cmp_str);
        *ret_names = TAKE_PTR(v);
        return 0;
}

/* SHA-256 fetched once: EVP_sha256() in EVP_DigestInit_ex() looks the provider up (under a lock) per call. */
static EVP_MD *sha256_md;
static void sha256_fetch(void) {
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

unsigned rollout_bucket(const char *channel, const char *version, const char *machineid) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, sha256_fetch);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return 0;
        EVP_DigestInit_ex(ctx, sha256_md ? sha256_md : EVP_sha256(), NULL);
        EVP_DigestUpdate(ctx, channel, strlen(channel));
        EVP_DigestUpdate(ctx, "\n", 1);
        EVP_DigestUpdate(ctx, version, strlen(version));
        EVP_DigestUpdate(ctx, "\n", 1);
        EVP_DigestUpdate(ctx, machineid, strlen(machineid));
        EVP_DigestFinal_ex(ctx, md, &mdlen);
        EVP_MD_CTX_free(ctx);
        uint32_t x = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
        return x % 100;
}

/* ---- payload lookup and hash cache ---- */

#define CACHE_SLOTS 64

int payload_cache_new(PayloadCache **ret) {
        return statcache_new(CACHE_SLOTS, sizeof(PayloadInfo), ret);
}

void payload_cache_free(PayloadCache *c) {
        statcache_free(c);
}

static int hash_fd(int fd, uint64_t size, char sha256_b64[48], char sha1_b64[32]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *c256 = EVP_MD_CTX_new();
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *c1 = EVP_MD_CTX_new();
        if (!c256 || !c1)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(c256, EVP_sha256(), NULL) || !EVP_DigestInit_ex(c1, EVP_sha1(), NULL))
                return -EIO;
        _cleanup_free_ uint8_t *buf = malloc(1 << 20);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        while (off < size) {
                size_t want = (size_t)MIN((uint64_t)(1 << 20), size - off);
                int r = pread_full(fd, buf, want, off);
                if (r < 0)
                        return r;
                EVP_DigestUpdate(c256, buf, want);
                EVP_DigestUpdate(c1, buf, want);
                off += want;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len;
        EVP_DigestFinal_ex(c256, md, &len);
        EVP_EncodeBlock((unsigned char *)sha256_b64, md, (int)len);
        EVP_DigestFinal_ex(c1, md, &len);
        EVP_EncodeBlock((unsigned char *)sha1_b64, md, (int)len);
        return 0;
}

/* info.name and info.relpath are set: stat, hash (or take from the cache) RELDIR/payloads/<relpath>. */
static int payload_lookup_info(PayloadCache *c, int reldir_fd, PayloadInfo info, PayloadInfo *ret);

int payload_lookup(PayloadCache *c, int reldir_fd, const char *version, const char *board, PayloadInfo *ret) {
        if (!omaha_version_valid(version) || !omaha_name_valid(board, 64))
                return -EINVAL;
        PayloadInfo info = { 0 };
        snprintf(info.name, sizeof info.name, "cairn-%s-%s.cairn", version, board);
        snprintf(info.relpath, sizeof info.relpath, "%s/%s", version, info.name);
        return payload_lookup_info(c, reldir_fd, info, ret);
}

int payload_lookup_delta(PayloadCache *c, int reldir_fd, const char *version, const char *from, const char *board,
                         PayloadInfo *ret) {
        if (!omaha_version_valid(version) || !omaha_version_valid(from) || !omaha_name_valid(board, 64))
                return -EINVAL;
        PayloadInfo info = { 0 };
        snprintf(info.name, sizeof info.name, "cairn-%s-%s-from-%s.cairn", version, board, from);
        snprintf(info.relpath, sizeof info.relpath, "%s/deltas/%s", version, info.name);
        return payload_lookup_info(c, reldir_fd, info, ret);
}

static int payload_lookup_info(PayloadCache *c, int reldir_fd, PayloadInfo info, PayloadInfo *ret) {
        int r;
        char path[300];
        snprintf(path, sizeof path, "payloads/%s", info.relpath);

        /* The hit path opens nothing for reading: an O_PATH resolution beneath the release directory (no
         * symlink in any component) and fstat. A symlink or FIFO is never cached: it is not a regular file. */
        struct stat st;
        r = reldir_stat(reldir_fd, path, &st);
        if (r < 0)
                return r == -ELOOP ? -ENOENT : r;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        if (statcache_get(c, info.relpath, &st, ret))
                return 0;

        _cleanup_close_ int fd = reldir_openat(reldir_fd, path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
                return fd == -ELOOP ? -ENOENT : fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        if (statcache_get(c, info.relpath, &st, ret))
                return 0;

        /* Not cached: hash without holding the lock (two threads may both hash; harmless). */
        info.size = (uint64_t)st.st_size;
        r = hash_fd(fd, info.size, info.sha256_b64, info.sha1_b64);
        if (r < 0)
                return r;
        struct stat st2;
        if (fstat(fd, &st2) < 0)
                return negative_errno();
        if (!stat_same_file(&st2, &st))
                return -EAGAIN; /* modified while hashing; a published payload never changes */
        statcache_put(c, info.relpath, &st, &info);
        *ret = info;
        return 0;
}
