/* updater/tools/latency.h — round-trip times of the lock benchmarks (cairn-lock-bench, cairn-fleetlock-bench): each
 * worker thread records into its own Latencies; the main thread merges them and reads the percentiles. */
#pragma once

#include <stddef.h>

typedef struct Latencies {
        double *ms; /* milliseconds per round */
        size_t n, cap;
} Latencies;

/* The monotonic clock in milliseconds. */
double latency_now_ms(void);

/* Appends one time; -ENOMEM (nothing recorded) when it cannot grow. */
int latencies_add(Latencies *l, double ms);

/* Moves every time of n_parts Latencies into *all (the parts are emptied): parts points at the one inside the
 * first of n_parts structs stride bytes apart (&workers[0].lat, sizeof workers[0]). -ENOMEM. */
int latencies_merge(Latencies *all, Latencies *parts, size_t n_parts, size_t stride);

/* The q-quantile (0..1, nearest rank below) of l, sorting it first; 0 for no times. */
double latencies_quantile(Latencies *l, double q);

void latencies_free(Latencies *l);
