/* updater/tools/fleetlock-bench.c — cairn-fleetlock-bench: N threads, each its own keep-alive HTTP connection and
 * holder id, doing FleetLock rounds (POST /v1/pre-reboot, then POST /v1/steady-state) against cairn-server for S
 * seconds. A 409 (semaphore full) or 503 (the server's etcd request slots all taken) is counted as busy and retried
 * at once. Prints one line of key=value: rounds,
 * rounds_per_s, busy, p50_ms, p99_ms. Any other answer stops the run with exit 1. Used by scripts/bench/fleetlock.sh;
 * not installed. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "log.h"
#include "parse.h"
#include "tools/latency.h"

static const char *base, *group = "default";
static unsigned seconds = 5;
static atomic_bool stop;
static atomic_int failed;

typedef struct Worker {
        pthread_t t;
        unsigned n;
        uint64_t rounds, busy;
        Latencies lat;
} Worker;

static size_t sink(char *p, size_t size, size_t n, void *ud) {
        char *b = ud;
        size_t k = size * n, have = strlen(b);
        if (have + 1 < 512)
                snprintf(b + have, 512 - have, "%.*s", (int)k, p);
        return k;
}

/* POST one FleetLock request; the HTTP status, or -1. */
static long post(CURL *c, const char *path, const char *body, char *answer) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", base, path);
        answer[0] = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (curl_easy_perform(c) != CURLE_OK)
                return -1;
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        return st;
}

static void *worker(void *ud) {
        Worker *w = ud;
        CURL *c = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "fleet-lock-protocol: true");
        if (!c || !h) {
                failed = 1;
                return NULL;
        }
        char body[256], answer[512];
        snprintf(body, sizeof body, "{\"client_params\":{\"id\":\"bench-%03u\",\"group\":\"%s\"}}", w->n, group);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        while (!stop) {
                double t0 = latency_now_ms();
                long st = post(c, "/v1/pre-reboot", body, answer);
                if (st == 409 || st == 503) { /* full, or (etcd) every request slot of the server busy */
                        w->busy++;
                        continue;
                }
                if (st == 200)
                        st = post(c, "/v1/steady-state", body, answer);
                if (st != 200 || !strstr(answer, "\"released\"")) {
                        log_msg("worker %u: HTTP %ld %s", w->n, st, answer);
                        failed = 1;
                        break;
                }
                if (latencies_add(&w->lat, latency_now_ms() - t0) < 0)
                        break;
                w->rounds++;
        }
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return NULL;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        static const struct option lo[] = {
                { "url", required_argument, NULL, 'u' },     { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' }, { "group", required_argument, NULL, 'g' },
                {},
        };
        unsigned clients = 1;
        int c;
        while ((c = getopt_long(argc, argv, "", lo, NULL)) >= 0) {
                switch (c) {
                case 'u':
                        base = optarg;
                        break;
                case 'c':
                        if (parse_unsigned_range(optarg, 1, 1024, &clients) < 0)
                                return log_error(-EINVAL, "--clients 1..1024"), 2;
                        break;
                case 's':
                        if (parse_unsigned_range(optarg, 1, 3600, &seconds) < 0)
                                return log_error(-EINVAL, "--seconds 1..3600"), 2;
                        break;
                case 'g':
                        group = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (!base)
                return log_error(-EINVAL, "--url http://HOST:PORT is required"), 2;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        Worker *w = calloc(clients, sizeof *w);
        if (!w)
                return 1;
        for (unsigned i = 0; i < clients; i++) {
                w[i].n = i;
                if (pthread_create(&w[i].t, NULL, worker, &w[i]) != 0)
                        return log_error(-EAGAIN, "cannot start thread"), 1;
        }
        struct timespec ts = { .tv_sec = seconds };
        nanosleep(&ts, NULL);
        stop = true;
        uint64_t rounds = 0, busy = 0;
        for (unsigned i = 0; i < clients; i++) {
                pthread_join(w[i].t, NULL);
                rounds += w[i].rounds;
                busy += w[i].busy;
        }
        Latencies all = { 0 };
        if (latencies_merge(&all, &w[0].lat, clients, sizeof w[0]) < 0)
                return log_error(-ENOMEM, "latencies"), 1;
        double p50 = latencies_quantile(&all, 0.50), p99 = latencies_quantile(&all, 0.99);
        printf("rounds=%" PRIu64 " rounds_per_s=%.0f busy=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f\n", rounds,
               (double)rounds / seconds, busy, p50, p99);
        latencies_free(&all);
        free(w);
        return failed ? 1 : 0;
}
