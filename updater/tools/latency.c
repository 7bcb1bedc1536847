/* updater/tools/latency.c — round-trip times of the lock benchmarks (see latency.h). */
#include "latency.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double latency_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int grow(Latencies *l, size_t need) {
        if (need <= l->cap)
                return 0;
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < need)
                cap *= 2;
        double *d = realloc(l->ms, cap * sizeof *d);
        if (!d)
                return -ENOMEM;
        l->ms = d;
        l->cap = cap;
        return 0;
}

int latencies_add(Latencies *l, double ms) {
        int r = grow(l, l->n + 1);
        if (r < 0)
                return r;
        l->ms[l->n++] = ms;
        return 0;
}

/* parts points at the Latencies inside the first of n_parts structs stride bytes apart (&workers[0].lat,
 * sizeof workers[0]), so the i-th is at (char *)parts + i * stride. */
int latencies_merge(Latencies *all, Latencies *parts, size_t n_parts, size_t stride) {
        for (size_t i = 0; i < n_parts; i++) {
                Latencies *p = (Latencies *)((char *)parts + i * stride);
                if (p->n && grow(all, all->n + p->n) < 0)
                        return -ENOMEM;
                if (p->n)
                        memcpy(all->ms + all->n, p->ms, p->n * sizeof *p->ms);
                all->n += p->n;
                latencies_free(p);
        }
        return 0;
}

static int cmp_d(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double latencies_quantile(Latencies *l, double q) {
        if (!l->n)
                return 0;
        qsort(l->ms, l->n, sizeof *l->ms, cmp_d);
        return l->ms[(size_t)((double)(l->n - 1) * q)];
}

void latencies_free(Latencies *l) {
        free(l->ms);
        *l = (Latencies){ 0 };
}
