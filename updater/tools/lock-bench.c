/* updater/tools/lock-bench.c — cairn-lock-bench: N threads, each its own etcd client, doing lock+unlock rounds on the
 * reboot semaphore for S seconds (mode "lock"), or the ceiling (mode "raw"): the same round trips as bare
 * compare-and-swap transactions on a counter key over the JSON gateway (range, then txn comparing mod_revision,
 * retried at once with the failure branch's revision), no semaphore logic. Prints one line of key=value:
 * rounds, rounds_per_s, conflicts, p50_ms, p99_ms. Used by scripts/bench/lock.sh; not installed. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "lock/lock.h"
#include "log.h"
#include "parse.h"
#include "tools/latency.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static LockOptions opts;
static unsigned seconds = 5;
static bool raw;
static atomic_bool stop;
static atomic_int failed;

typedef struct Worker {
        pthread_t t;
        unsigned n;
        uint64_t rounds, conflicts, gave_up;
        Latencies lat;
} Worker;

static void record(Worker *w, double ms) {
        if (latencies_add(&w->lat, ms) == 0)
                w->rounds++;
}

static void *lock_worker(void *ud) {
        Worker *w = ud;
        const LockBackend *b = &lock_backend_etcd;
        Lock *l = NULL;
        if (b->open(&opts, &l) < 0) {
                failed = 1;
                return NULL;
        }
        char id[64];
        snprintf(id, sizeof id, "bench-%03u", w->n);
        while (!stop) {
                double t0 = latency_now_ms();
                int r = b->take(l, id);
                if (r == -EBUSY)
                        continue;
                if (r == -EAGAIN) { /* gave up after LOCK_DEFAULT_ATTEMPTS conflicts: counted, tried again */
                        w->gave_up++;
                        continue;
                }
                while (r == 1 && (r = b->release(l, id)) == -EAGAIN) {
                        w->gave_up++;
                        r = 1;
                }
                if (r != 1) {
                        log_msg("worker %u: %s", w->n, b->error(l));
                        failed = 1;
                        break;
                }
                record(w, latency_now_ms() - t0);
        }
        LockStats st;
        b->stats(l, &st);
        w->conflicts = st.conflicts;
        b->close(l);
        return NULL;
}

/* ---- the ceiling: bare CAS on a counter ---- */

typedef struct Buf {
        char data[65536];
        size_t len;
} Buf;

static size_t buf_write(char *p, size_t size, size_t n, void *ud) {
        Buf *b = ud;
        size_t k = size * n;
        if (b->len + k >= sizeof b->data)
                return 0;
        memcpy(b->data + b->len, p, k);
        b->len += k;
        b->data[b->len] = 0;
        return k;
}

static int post(CURL *c, const char *path, const char *body, json_object **ret) {
        static _Thread_local Buf b;
        b.len = 0;
        char url[1024];
        snprintf(url, sizeof url, "%s%s", opts.endpoints[0], path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        if (curl_easy_perform(c) != CURLE_OK)
                return -EIO;
        json_object *o = json_tokener_parse(b.data);
        if (!o)
                return -EBADMSG;
        *ret = o;
        return 0;
}

static int64_t mod_rev_of(json_object *range) {
        json_object *kvs, *m;
        if (!json_object_object_get_ex(range, "kvs", &kvs) || json_object_array_length(kvs) != 1 ||
            !json_object_object_get_ex(json_object_array_get_idx(kvs, 0), "mod_revision", &m))
                return 0;
        return strtoll(json_object_get_string(m), NULL, 10);
}

static void *raw_worker(void *ud) {
        Worker *w = ud;
        CURL *c = curl_easy_init();
        if (!c) {
                failed = 1;
                return NULL;
        }
        const char *k = "Y2Fpcm4vYmVuY2gvY2Fz"; /* base64("cairn/bench/cas") */
        char body[1024];
        snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
        uint64_t counter = 0;
        while (!stop) {
                double t0 = latency_now_ms();
                for (int op = 0; op < 2 && !stop; op++) { /* a round: two CAS, like lock + unlock */
                        _cleanup_(json_object_putp) json_object *o = NULL;
                        if (post(c, "/v3/kv/range", body, &o) < 0) {
                                failed = 1;
                                goto out;
                        }
                        int64_t rev = mod_rev_of(o);
                        for (;;) {
                                char txn[2048];
                                /* The value: this worker's counter, base64 of 8 digits. */
                                char v[16], v64[32];
                                snprintf(v, sizeof v, "%08" PRIu64, counter++ % 100000000);
                                static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                                size_t o64 = 0;
                                for (size_t i = 0; i < 6; i += 3) {
                                        uint32_t x = (uint32_t)(unsigned char)v[i] << 16 | (uint32_t)(unsigned char)v[i + 1] << 8 |
                                                     (unsigned char)v[i + 2];
                                        for (int j = 18; j >= 0; j -= 6)
                                                v64[o64++] = t[x >> j & 63];
                                }
                                snprintf(v64 + o64, sizeof v64 - o64, "%c%c%c=", t[(unsigned char)v[6] >> 2],
                                         t[((unsigned char)v[6] & 3) << 4 | (unsigned char)v[7] >> 4],
                                         t[((unsigned char)v[7] & 15) << 2]);
                                snprintf(txn, sizeof txn,
                                         "{\"compare\":[{\"target\":\"MOD\",\"key\":\"%s\",\"mod_revision\":\"%" PRId64 "\"}],"
                                         "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
                                         "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
                                         k, rev, k, v64, k);
                                _cleanup_(json_object_putp) json_object *r = NULL;
                                if (post(c, "/v3/kv/txn", txn, &r) < 0) {
                                        failed = 1;
                                        goto out;
                                }
                                json_object *s, *resp;
                                if (json_object_object_get_ex(r, "succeeded", &s) && json_object_get_boolean(s))
                                        break;
                                w->conflicts++;
                                if (!json_object_object_get_ex(r, "responses", &resp) || json_object_array_length(resp) != 1) {
                                        failed = 1;
                                        goto out;
                                }
                                json_object *rr;
                                if (!json_object_object_get_ex(json_object_array_get_idx(resp, 0), "response_range", &rr)) {
                                        failed = 1;
                                        goto out;
                                }
                                rev = mod_rev_of(rr);
                        }
                }
                if (!stop)
                        record(w, latency_now_ms() - t0);
        }
out:
        curl_easy_cleanup(c);
        return NULL;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        static const struct option lo[] = {
                { "endpoint", required_argument, NULL, 'e' }, { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },  { "mode", required_argument, NULL, 'm' },
                {},
        };
        unsigned clients = 1;
        int c;
        while ((c = getopt_long(argc, argv, "", lo, NULL)) >= 0) {
                switch (c) {
                case 'e':
                        if (lock_options_add_endpoints(&opts, optarg) < 0)
                                return 2;
                        break;
                case 'c':
                        if (parse_unsigned_range(optarg, 1, 1024, &clients) < 0)
                                return log_error(-EINVAL, "--clients 1..1024"), 2;
                        break;
                case 's':
                        if (parse_unsigned_range(optarg, 1, 3600, &seconds) < 0)
                                return log_error(-EINVAL, "--seconds 1..3600"), 2;
                        break;
                case 'm':
                        raw = strcmp(optarg, "raw") == 0;
                        if (!raw && strcmp(optarg, "lock") != 0)
                                return log_error(-EINVAL, "--mode lock|raw"), 2;
                        break;
                default:
                        return 2;
                }
        }
        if (!opts.n_endpoints)
                return log_error(-EINVAL, "--endpoint URL is required"), 2;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        Worker *w = calloc(clients, sizeof *w);
        if (!w)
                return 1;
        for (unsigned i = 0; i < clients; i++) {
                w[i].n = i;
                if (pthread_create(&w[i].t, NULL, raw ? raw_worker : lock_worker, &w[i]) != 0)
                        return log_error(-EAGAIN, "cannot start thread"), 1;
        }
        struct timespec ts = { .tv_sec = seconds };
        nanosleep(&ts, NULL);
        stop = true;
        uint64_t rounds = 0, conflicts = 0, gave_up = 0;
        for (unsigned i = 0; i < clients; i++) {
                pthread_join(w[i].t, NULL);
                rounds += w[i].rounds;
                conflicts += w[i].conflicts;
                gave_up += w[i].gave_up;
        }
        Latencies all = { 0 };
        if (latencies_merge(&all, &w[0].lat, clients, sizeof w[0]) < 0)
                return log_error(-ENOMEM, "latencies"), 1;
        double p50 = latencies_quantile(&all, 0.50), p99 = latencies_quantile(&all, 0.99);
        printf("mode=%s clients=%u rounds=%" PRIu64 " rounds_per_s=%.1f conflicts=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f gave_up=%" PRIu64 " failed=%d\n",
               raw ? "raw" : "lock", clients, rounds, (double)rounds / seconds, conflicts, p50, p99, gave_up, (int)failed);
        latencies_free(&all);
        free(w);
        return failed ? 1 : 0;
}
