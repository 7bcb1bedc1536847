/* updater/server/statcache.h — a small thread-safe LRU cache of values derived from files (a parsed channel file,
 * a payload's hashes), keyed by a name and the file's identity as stat(2) reports it: device, inode, size, mtime
 * and ctime. A file that changes in place or is replaced by rename is a miss on the next lookup. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

typedef struct StatCache StatCache;

/* slots entries of value_size bytes each. */
int statcache_new(size_t slots, size_t value_size, StatCache **ret);
void statcache_free(StatCache *c);
/* Copies the value cached for (key, st) into ret_value; false on a miss. */
bool statcache_get(StatCache *c, const char *key, const struct stat *st, void *ret_value);
/* Caches value for (key, st), replacing an entry of the same key or else the least recently used one. */
void statcache_put(StatCache *c, const char *key, const struct stat *st, const void *value);
/* The same file, unchanged: what the cache compares. */
bool stat_same_file(const struct stat *a, const struct stat *b);
