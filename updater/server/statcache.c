/* updater/server/statcache.c — the stat-keyed LRU cache (see statcache.h). */
#include "statcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STATCACHE_KEY_MAX 256

typedef struct Entry {
        bool used;
        char key[STATCACHE_KEY_MAX];
        struct stat st;
        uint64_t lru;
} Entry;

struct StatCache {
        pthread_mutex_t lock;
        uint64_t tick;
        size_t slots, value_size;
        Entry *e;
        unsigned char *values; /* slots * value_size */
};

int statcache_new(size_t slots, size_t value_size, StatCache **ret) {
        StatCache *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->e = calloc(slots, sizeof *c->e);
        c->values = calloc(slots, value_size);
        if (!c->e || !c->values) {
                free(c->e);
                free(c->values);
                free(c);
                return -ENOMEM;
        }
        c->slots = slots;
        c->value_size = value_size;
        pthread_mutex_init(&c->lock, NULL);
        *ret = c;
        return 0;
}

void statcache_free(StatCache *c) {
        if (!c)
                return;
        pthread_mutex_destroy(&c->lock);
        free(c->e);
        free(c->values);
        free(c);
}

static bool ts_equal(const struct timespec *a, const struct timespec *b) {
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool stat_same_file(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               ts_equal(&a->st_mtim, &b->st_mtim) && ts_equal(&a->st_ctim, &b->st_ctim);
}

bool statcache_get(StatCache *c, const char *key, const struct stat *st, void *ret_value) {
        bool hit = false;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->slots; i++)
                if (c->e[i].used && stat_same_file(&c->e[i].st, st) && strcmp(c->e[i].key, key) == 0) {
                        c->e[i].lru = ++c->tick;
                        memcpy(ret_value, c->values + i * c->value_size, c->value_size);
                        hit = true;
                        break;
                }
        pthread_mutex_unlock(&c->lock);
        return hit;
}

void statcache_put(StatCache *c, const char *key, const struct stat *st, const void *value) {
        if (strlen(key) >= STATCACHE_KEY_MAX)
                return; /* not cached; never wrong */
        pthread_mutex_lock(&c->lock);
        size_t victim = 0;
        for (size_t i = 0; i < c->slots; i++) {
                if (!c->e[i].used || strcmp(c->e[i].key, key) == 0) {
                        victim = i;
                        break;
                }
                if (c->e[i].lru < c->e[victim].lru)
                        victim = i;
        }
        Entry *e = &c->e[victim];
        e->used = true;
        strcpy(e->key, key);
        e->st = *st;
        e->lru = ++c->tick;
        memcpy(c->values + victim * c->value_size, value, c->value_size);
        pthread_mutex_unlock(&c->lock);
}
