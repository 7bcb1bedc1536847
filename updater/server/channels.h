/* updater/server/channels.h — the release directory: channel files, payload lookup with a hash cache, rollout policy. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "omaha/omaha.h"
#include "statcache.h"

#define CHANNEL_NAME_MAX 64
#define CHANNEL_FILE_MAX 4096

struct stat;

/* Files of the release directory are opened only beneath it: relpath ("a/b/c", no "." or "..", no leading '/')
 * is resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below dirfd, or, where the kernel has no
 * openat2, component by component with O_NOFOLLOW. A symlink in any component → -ELOOP; O_NOFOLLOW|O_CLOEXEC
 * are always added to flags. Returns the fd. */
int reldir_openat(int dirfd, const char *relpath, int flags);
/* The component-by-component fallback itself (tests call it directly). */
int reldir_openat_walk(int dirfd, const char *relpath, int flags);
/* fstat of relpath resolved as above, through an O_PATH fd (nothing is opened for reading). */
int reldir_stat(int dirfd, const char *relpath, struct stat *ret);
/* A file that must be regular is not (FIFO, device, directory, socket, symlink): -RELDIR_ENOTREG. */
#define RELDIR_ENOTREG EMEDIUMTYPE
/* strerror() with the release directory's own cases said plainly (symlink, not a regular file, too big). */
const char *reldir_strerror(int r);

/* RELDIR/channels/<name>: KEY=VALUE lines (see docs/server.md). */
typedef struct Channel {
        char name[CHANNEL_NAME_MAX + 1];
        char version[OMAHA_ATTR_MAX + 1]; /* "" = no release published yet */
        unsigned rollout;                 /* 0..100 percent of machines offered the release */
        bool paused;                      /* no new offers */
        unsigned max_per_period;          /* distinct machines offered per period; 0 = unlimited */
        unsigned period;                  /* seconds, >= 1 */
        unsigned poll_interval;           /* seconds between checks suggested to hosts (PollInterval); 0 = none */
} Channel;

/* Parse a channel file's text. -EINVAL with *ret_line set to the 1-based bad line. */
int channel_parse(const char *name, const char *text, Channel *ret, unsigned *ret_line);
/* Load channel name from reldir_fd (opened non-blocking, beneath it, at most CHANNEL_FILE_MAX bytes).
 * -ENOENT: no such channel; -EINVAL: bad name or bad file; -ELOOP: a symlink; -RELDIR_ENOTREG: not a regular
 * file (a FIFO never blocks); -EFBIG: too large. */
int channel_load(int reldir_fd, const char *name, Channel *ret);
/* channel_load() behind a cache keyed by the file's (dev, inode, size, mtime, ctime), so an unchanged channel
 * costs one fstatat() per update check. An edit (in place or by rename) is seen on the next call; a file
 * changed in the last 2 seconds is re-read every time. Thread-safe. */
typedef StatCache ChannelCache;
int channel_cache_new(ChannelCache **ret);
void channel_cache_free(ChannelCache *c);
int channel_load_cached(ChannelCache *c, int reldir_fd, const char *name, Channel *ret);
/* List channel names (sorted, NULL-terminated, at most 1024) in RELDIR/channels. Free with strv_free(). */
int channel_list(int reldir_fd, char ***ret_names);
void strv_free(char **v);

/* Start of the fixed window of length period that contains now. */
static inline int64_t channel_period_start(const Channel *c, int64_t now) {
        return c->period ? now - now % (int64_t)c->period : now;
}

/* The machine's stable bucket 0..99 for this channel and version: the first 4 bytes (big endian) of
 * SHA-256(channel "\n" version "\n" machineid) mod 100. */
unsigned rollout_bucket(const char *channel, const char *version, const char *machineid);
static inline bool rollout_selected(const Channel *c, const char *machineid) {
        return rollout_bucket(c->name, c->version, machineid) < c->rollout;
}

/* A payload file: RELDIR/payloads/<version>/cairn-<version>-<board>.cairn */
typedef struct PayloadInfo {
        char relpath[256];    /* relative to RELDIR/payloads/, e.g. "1.2.3/cairn-1.2.3-amd64.cairn" */
        char name[200];       /* file name */
        uint64_t size;
        char sha256_b64[48];  /* base64 SHA-256 of the whole file */
        char sha1_b64[32];    /* base64 SHA-1 of the whole file */
} PayloadInfo;

typedef StatCache PayloadCache;
int payload_cache_new(PayloadCache **ret);
void payload_cache_free(PayloadCache *c);
/* Find the payload for version+board; hashes are computed once per (file, size, mtime) and cached.
 * -ENOENT when the file is missing (vanished), -EINVAL for bad names. Thread-safe. */
int payload_lookup(PayloadCache *c, int reldir_fd, const char *version, const char *board, PayloadInfo *ret);
/* The delta from release `from` to `version`: RELDIR/payloads/<version>/deltas/cairn-<version>-<board>-from-<from>.cairn
 * (made by ci/release.sh). Same errors; -ENOENT when there is none. */
int payload_lookup_delta(PayloadCache *c, int reldir_fd, const char *version, const char *from, const char *board,
                         PayloadInfo *ret);
