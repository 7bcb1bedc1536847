/* updater/lock/etcd.c — the etcd v3 backend of the reboot lock: locksmith's keys and value over etcd's JSON
 * gateway (POST /v3/kv/range, /v3/kv/txn, /v3/auth/authenticate) with libcurl and json-c. Every change is one
 * transaction comparing the key's mod_revision (create_revision 0 for a missing key); its failure branch
 * returns the current value, so a conflict costs one round trip. CURLcode and etcd's gRPC codes become errno
 * here and nowhere else. */
#include "lock.h"
#include "curl-error.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/random.h>
#include <time.h>

#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

#define ETCD_RESPONSE_MAX (1024u * 1024u) /* any answer larger than this is refused */
#define ETCD_KEY_MAX 512
#define ETCD_TOKEN_MAX 2048

struct Lock {
        LockOptions o;
        CURL *curl;
        size_t current; /* the endpoint that answered last */
        uint64_t rng;
        LockStats stats;
        bool resent; /* the last etcd_call re-sent its request after an endpoint failed mid-request */
        char key[ETCD_KEY_MAX];
        char key_b64[ETCD_KEY_MAX * 2];
        char token[ETCD_TOKEN_MAX];
        char curl_err[CURL_ERROR_SIZE];
        char error[LOCK_ERROR_MAX];
};

_printf_(2, 3) static void set_error(Lock *l, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->error, sizeof l->error, fmt, ap);
        va_end(ap);
}

/* ---- base64 (the gateway's encoding of keys and values) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_encode(const void *data, size_t len, char **ret) {
        const unsigned char *p = data;
        _cleanup_free_ char *out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                             (i + 2 < len ? p[i + 2] : 0);
                out[o++] = b64[v >> 18 & 63];
                out[o++] = b64[v >> 12 & 63];
                out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
                out[o++] = i + 2 < len ? b64[v & 63] : '=';
        }
        out[o] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

static int b64_val(char c) {
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int)(p - b64) : -1;
}

/* Strict: length a multiple of 4, padding only at the end. */
static int b64_decode(const char *s, size_t len, char **ret, size_t *ret_len) {
        if (len % 4)
                return -EBADMSG;
        _cleanup_free_ char *out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                for (int j = 0; j < 4; j++) {
                        v[j] = s[i + j] == '=' ? -2 : b64_val(s[i + j]);
                        if (v[j] == -1)
                                return -EBADMSG;
                }
                bool last = i + 4 == len;
                if (v[0] < 0 || v[1] < 0 || (v[2] == -2 && v[3] != -2) || ((v[2] == -2 || v[3] == -2) && !last))
                        return -EBADMSG;
                uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)(v[2] < 0 ? 0 : v[2]) << 6 |
                             (uint32_t)(v[3] < 0 ? 0 : v[3]);
                out[o++] = (char)(x >> 16);
                if (v[2] >= 0)
                        out[o++] = (char)(x >> 8 & 0xff);
                if (v[3] >= 0)
                        out[o++] = (char)(x & 0xff);
        }
        out[o] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

/* ---- keys ---- */

int lock_etcd_key(const char *group, char *buf, size_t size) {
        static const char prefix[] = "coreos.com/updateengine/rebootlock/";
        if (!group || !*group) {
                int n = snprintf(buf, size, "%ssemaphore", prefix);
                return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
        }
        if (strlen(group) > 128)
                return -ENAMETOOLONG;
        size_t o = (size_t)snprintf(buf, size, "%sgroups/", prefix);
        for (const unsigned char *p = (const unsigned char *)group; *p; p++) {
                if (o + 4 >= size)
                        return -ENAMETOOLONG;
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
                        buf[o++] = (char)*p;
                else if (*p == ' ')
                        buf[o++] = '+';
                else
                        o += (size_t)snprintf(buf + o, size - o, "%%%02X", *p);
        }
        int n = snprintf(buf + o, size - o, "/semaphore");
        return n < 0 || (size_t)n >= size - o ? -ENAMETOOLONG : 0;
}

int lock_options_add_endpoints(LockOptions *o, char *list) {
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!*t)
                        continue;
                if (o->n_endpoints >= LOCK_MAX_ENDPOINTS)
                        return -E2BIG;
                o->endpoints[o->n_endpoints++] = t;
        }
        return 0;
}

/* ---- HTTP ---- */

typedef struct Buf {
        char *data;
        size_t len, cap;
        bool too_big;
} Buf;

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud) {
        Buf *b = ud;
        size_t n = size * nmemb;
        if (b->len + n > ETCD_RESPONSE_MAX) {
                b->too_big = true;
                return 0;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1);
                cap = MIN(cap, (size_t)ETCD_RESPONSE_MAX + 1);
                char *d = realloc(b->data, cap);
                if (!d)
                        return 0;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, ptr, n);
        b->len += n;
        b->data[b->len] = 0;
        return n;
}

static int curl_fail(Lock *l, CURLcode c, const char *url, const Buf *b) {
        LockCurlContext x = { .curl_err = l->curl_err, .timeout = l->o.timeout, .ca_file = l->o.ca_file,
                              .has_client_cert = l->o.cert_file != NULL, .etcd_hints = true, .too_big = b && b->too_big,
                              .max = ETCD_RESPONSE_MAX };
        return lock_curl_error(c, url, &x, l->error, sizeof l->error);
}

static int http_post(Lock *l, const char *url, const char *body, Buf *out, long *ret_status) {
        CURL *c = l->curl;
        _cleanup_(curl_slist_free_allp) struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
        if (!hdr)
                return -ENOMEM;
        if (l->token[0]) {
                char h[ETCD_TOKEN_MAX + 32];
                snprintf(h, sizeof h, "Authorization: %s", l->token);
                struct curl_slist *n = curl_slist_append(hdr, h);
                if (!n)
                        return -ENOMEM;
                hdr = n;
        }
        lock_curl_post_setup(c, &l->o, url, hdr, body, l->curl_err, buf_write, out);
        l->stats.requests++;
        CURLcode cc = curl_easy_perform(c);
        if (cc != CURLE_OK)
                return curl_fail(l, cc, url, out);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        *ret_status = status;
        return 0;
}

/* ---- etcd JSON ---- */

static int json_parse_bounded(const char *s, size_t len, json_object **ret) {
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new_ex(12);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse_ex(tok, s, (int)len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", s[i]))
                        return -EBADMSG;
        *ret = TAKE_PTR(o);
        return 0;
}

/* An int64 the gateway sends as a decimal string (or, tolerated, a JSON integer). */
static int json_get_i64(json_object *o, const char *name, int64_t *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, name, &v))
                return -ENOENT;
        if (json_object_is_type(v, json_type_string)) {
                uint64_t u;
                int r = parse_u64_range(json_object_get_string(v), 0, INT64_MAX, &u);
                if (r < 0)
                        return -EBADMSG;
                *ret = (int64_t)u;
                return 0;
        }
        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
            json_object_get_int64(v) < INT64_MAX) {
                *ret = json_object_get_int64(v);
                return 0;
        }
        return -EBADMSG;
}

typedef struct Kv {
        bool exists;
        int64_t mod_revision;
        char *value; /* untrusted bytes, NUL-terminated */
        size_t len;
} Kv;

static void kv_done(Kv *kv) {
        free(kv->value);
        *kv = (Kv){ 0 };
}

/* A RangeResponse: no "kvs" (or an empty list) means the key does not exist. */
static int parse_range(Lock *l, const char *url, json_object *resp, Kv *ret) {
        _cleanup_free_ char *value = NULL; /* before the first goto: the label is in its scope */
        json_object *kvs;
        if (!json_object_object_get_ex(resp, "kvs", &kvs) || !kvs) {
                *ret = (Kv){ 0 };
                return 0;
        }
        if (!json_object_is_type(kvs, json_type_array) || json_object_array_length(kvs) > 1)
                goto bad;
        if (json_object_array_length(kvs) == 0) {
                *ret = (Kv){ 0 };
                return 0;
        }
        json_object *kv = json_object_array_get_idx(kvs, 0), *k, *v;
        if (!json_object_is_type(kv, json_type_object) || !json_object_object_get_ex(kv, "key", &k) ||
            !json_object_is_type(k, json_type_string) || strcmp(json_object_get_string(k), l->key_b64) != 0)
                goto bad;
        int64_t mod = 0;
        if (json_get_i64(kv, "mod_revision", &mod) < 0 || mod <= 0)
                goto bad;
        size_t len = 0;
        if (json_object_object_get_ex(kv, "value", &v)) { /* absent: an empty value */
                if (!json_object_is_type(v, json_type_string) ||
                    b64_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v), &value, &len) < 0)
                        goto bad;
        } else if (!(value = strdup("")))
                return -ENOMEM;
        *ret = (Kv){ .exists = true, .mod_revision = mod, .value = TAKE_PTR(value), .len = len };
        return 0;
bad:
        set_error(l, "'%s': the range answer for '%s' is not what etcd sends (malformed \"kvs\")", url, l->key);
        return -EBADMSG;
}

static bool unavailable(int code, const char *msg) {
        return code == 14 || code == 4 || code == 2 || strstr(msg, "no leader") || strstr(msg, "timed out") ||
               strstr(msg, "deadline exceeded") || strstr(msg, "unavailable");
}

static int authenticate(Lock *l, const char *endpoint);

/* One request to one endpoint. 0 and *ret: an answer; -EAGAIN unavailable (no leader/quorum), other errors
 * of the endpoint (unreachable, stalled, garbage): try the next one; *ret_final set: the cluster's verdict
 * (permission denied, bad request), do not try others. */
static int call_endpoint(Lock *l, const char *ep, const char *path, const char *body, json_object **ret,
                         bool *ret_final) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", ep, path);
        for (int attempt = 0; attempt < 2; attempt++) {
                if (l->o.user && !l->token[0]) {
                        int r = authenticate(l, ep);
                        if (r < 0) {
                                *ret_final = r == -EACCES;
                                return r;
                        }
                }
                Buf b = { 0 };
                long status = 0;
                int r = http_post(l, url, body, &b, &status);
                _cleanup_free_ char *data = b.data;
                if (r < 0)
                        return r;
                _cleanup_(json_object_putp) json_object *o = NULL;
                char safe[200];
                if (!data || json_parse_bounded(data, strlen(data), &o) < 0) {
                        set_error(l, "'%s': HTTP %ld, answer is not etcd's JSON: \"%s\"", url, status,
                                  log_safe(safe, 96, data ? data : ""));
                        return -EBADMSG;
                }
                json_object *e, *c;
                const char *msg = json_object_object_get_ex(o, "error", &e) ? json_object_get_string(e) : NULL;
                int code = json_object_object_get_ex(o, "code", &c) && json_object_is_type(c, json_type_int)
                                   ? json_object_get_int(c)
                                   : 0;
                if (!msg && status == 200) {
                        *ret = TAKE_PTR(o);
                        return 0;
                }
                log_safe(safe, sizeof safe, msg ? msg : "(no message)");
                if (l->o.user && attempt == 0 && (code == 16 || strstr(safe, "invalid auth token"))) {
                        l->token[0] = 0; /* expired token: authenticate again, once */
                        continue;
                }
                if (unavailable(code, safe)) {
                        set_error(l, "'%s': etcd unavailable (no leader or no quorum): %s", url, safe);
                        return -EAGAIN;
                }
                *ret_final = true;
                if (code == 16 || code == 7 || strstr(safe, "permission denied") || strstr(safe, "user name is empty") ||
                    strstr(safe, "authentication failed")) {
                        set_error(l, "'%s': etcd refused us: %s%s", url, safe,
                                  l->o.user ? "" : " (auth is enabled there: pass --user)");
                        return -EACCES;
                }
                set_error(l, "'%s': etcd error (HTTP %ld, code %d): %s", url, status, code, safe);
                return code == 3 ? -EINVAL : -EIO;
        }
        set_error(l, "'%s': etcd rejected a fresh auth token", url);
        *ret_final = true;
        return -EACCES;
}

/* POST body to path on each endpoint in turn (starting with the one that answered last) until one answers. */
static int etcd_call(Lock *l, const char *path, const char *body, json_object **ret) {
        char errors[LOCK_ERROR_MAX] = "";
        int last = -EIO;
        bool any_unavailable = false;
        l->resent = false;
        for (size_t k = 0; k < l->o.n_endpoints; k++) {
                size_t idx = (l->current + k) % l->o.n_endpoints;
                bool final = false;
                int r = call_endpoint(l, l->o.endpoints[idx], path, body, ret, &final);
                if (r >= 0) {
                        l->current = idx;
                        return 0;
                }
                if (final)
                        return r;
                last = r;
                any_unavailable |= r == -EAGAIN;
                /* Refused connections sent nothing; anything else may have reached etcd and been applied. */
                if (r != -ECONNREFUSED && r != -EHOSTUNREACH)
                        l->resent = true;
                size_t n = strlen(errors);
                if (snprintf(errors + n, sizeof errors - n, "%s%s", n ? "; " : "", l->error) < 0)
                        errors[n] = 0;
        }
        if (l->o.n_endpoints > 1)
                set_error(l, "no etcd endpoint answered%s: %s", any_unavailable ? " (cluster unavailable: no quorum?)" : "",
                          errors);
        return any_unavailable ? -EAGAIN : last;
}

static int authenticate(Lock *l, const char *endpoint) {
        _cleanup_(json_object_putp) json_object *req = json_object_new_object();
        if (!req || json_object_object_add(req, "name", json_object_new_string(l->o.user)) < 0 ||
            json_object_object_add(req, "password", json_object_new_string(l->o.password ? l->o.password : "")) < 0)
                return -ENOMEM;
        char url[1024];
        snprintf(url, sizeof url, "%s/v3/auth/authenticate", endpoint);
        Buf b = { 0 };
        long status = 0;
        int r = http_post(l, url, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &b, &status);
        _cleanup_free_ char *data = b.data;
        if (r < 0)
                return r;
        _cleanup_(json_object_putp) json_object *o = NULL;
        char safe[200];
        if (!data || json_parse_bounded(data, strlen(data), &o) < 0) {
                set_error(l, "'%s': HTTP %ld, answer is not etcd's JSON: \"%s\"", url, status,
                          log_safe(safe, sizeof safe, data ? data : ""));
                return -EBADMSG;
        }
        json_object *t, *e;
        if (json_object_object_get_ex(o, "error", &e)) {
                log_safe(safe, sizeof safe, json_object_get_string(e));
                if (unavailable(0, safe)) {
                        set_error(l, "'%s': etcd unavailable (no leader or no quorum): %s", url, safe);
                        return -EAGAIN;
                }
                set_error(l, "'%s': authentication of user '%s' failed: %s", url, l->o.user, safe);
                return -EACCES;
        }
        if (!json_object_object_get_ex(o, "token", &t) || !json_object_is_type(t, json_type_string) ||
            !json_object_get_string_len(t) || (size_t)json_object_get_string_len(t) >= sizeof l->token ||
            strpbrk(json_object_get_string(t), "\r\n")) {
                set_error(l, "'%s': authentication answer without a usable token", url);
                return -EBADMSG;
        }
        snprintf(l->token, sizeof l->token, "%s", json_object_get_string(t));
        return 0;
}

static int etcd_get(Lock *l, Kv *ret) {
        char body[ETCD_KEY_MAX * 2 + 32];
        snprintf(body, sizeof body, "{\"key\":\"%s\"}", l->key_b64);
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r = etcd_call(l, "/v3/kv/range", body, &o);
        if (r < 0)
                return r;
        return parse_range(l, l->o.endpoints[l->current], o, ret);
}

/* Put value if the key is still at mod_revision (0: still missing). 1 written; 0 lost the race, *ret_now is
 * the current key (from the failure branch's range). */
static int etcd_cas(Lock *l, int64_t mod_revision, const char *value, Kv *ret_now) {
        _cleanup_free_ char *v64 = NULL;
        int r = b64_encode(value, strlen(value), &v64);
        if (r < 0)
                return r;
        size_t size = strlen(v64) + 3 * strlen(l->key_b64) + 512;
        _cleanup_free_ char *body = malloc(size);
        if (!body)
                return -ENOMEM;
        if (mod_revision > 0)
                snprintf(body, size,
                         "{\"compare\":[{\"target\":\"MOD\",\"result\":\"EQUAL\",\"key\":\"%s\",\"mod_revision\":\"%" PRId64
                         "\"}],\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
                         "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
                         l->key_b64, mod_revision, l->key_b64, v64, l->key_b64);
        else
                snprintf(body, size,
                         "{\"compare\":[{\"target\":\"CREATE\",\"result\":\"EQUAL\",\"key\":\"%s\",\"create_revision\":\"0\"}],"
                         "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
                         "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
                         l->key_b64, l->key_b64, v64, l->key_b64);
        _cleanup_(json_object_putp) json_object *o = NULL;
        r = etcd_call(l, "/v3/kv/txn", body, &o);
        if (r < 0)
                return r;
        const char *url = l->o.endpoints[l->current];
        json_object *s = NULL, *resp;
        bool succeeded = json_object_object_get_ex(o, "succeeded", &s) && json_object_get_boolean(s);
        if (s && !json_object_is_type(s, json_type_boolean))
                goto bad;
        if (succeeded)
                return 1;
        /* Lost: the failure branch's range tells us the key as it is now. */
        if (!json_object_object_get_ex(o, "responses", &resp) || !json_object_is_type(resp, json_type_array) ||
            json_object_array_length(resp) != 1)
                goto bad;
        json_object *rr, *range;
        rr = json_object_array_get_idx(resp, 0);
        if (!json_object_is_type(rr, json_type_object) || !json_object_object_get_ex(rr, "response_range", &range) ||
            !json_object_is_type(range, json_type_object))
                goto bad;
        r = parse_range(l, url, range, ret_now);
        return r < 0 ? r : 0;
bad:
        set_error(l, "'%s': the transaction answer is not what etcd sends", url);
        return -EBADMSG;
}

/* ---- the read-modify-write loop ---- */

static uint64_t rng_next(Lock *l) {
        uint64_t x = l->rng; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return l->rng = x;
}

static void backoff(Lock *l, unsigned attempt) {
        uint64_t cap_us = MIN(5000ull << MIN(attempt, 10u), 500000ull) /* 10 ms, 20 ms, ... 500 ms */;
        uint64_t us = 1000 + rng_next(l) % cap_us; /* "full jitter": spreads a herd of writers best */
        struct timespec ts = { .tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* mutate returns > 0 to write the changed value (and that is our result), <= 0 to stop with that result. */
typedef int (*MutateFn)(Semaphore *s, void *arg);

static int update(Lock *l, MutateFn mutate, void *arg) {
        _cleanup_(kv_done) Kv kv = { 0 };
        int r = etcd_get(l, &kv);
        if (r < 0)
                return r;
        /* Set when a transaction's answer was lost (its endpoint died mid-request) and the resent one lost
         * its compare: the first may have been applied. If the key then already is as we wanted it, it was. */
        bool maybe_applied = false;
        for (unsigned attempt = 1;; attempt++) {
                _cleanup_semaphore_ Semaphore s = { 0 };
                if (!kv.exists)
                        semaphore_init_default(&s);
                else {
                        char why[200];
                        r = semaphore_parse(kv.value, kv.len, &s, why, sizeof why);
                        if (r < 0) {
                                set_error(l, "etcd key '%s' (mod_revision %" PRId64 ") does not hold a valid semaphore: "
                                          "%s; left unchanged (fix it with etcdctl put, or delete it)",
                                          l->key, kv.mod_revision, why);
                                return r;
                        }
                }
                int m = mutate(&s, arg);
                if ((m == 0 || m == -ENOENT) && maybe_applied)
                        return 1;
                if (m <= 0)
                        return m;
                _cleanup_free_ char *value = NULL;
                r = semaphore_format(&s, &value);
                if (r < 0)
                        return r;
                Kv now = { 0 };
                r = etcd_cas(l, kv.exists ? kv.mod_revision : 0, value, &now);
                if (r < 0)
                        return r;
                if (r == 1)
                        return m;
                l->stats.conflicts++;
                maybe_applied |= l->resent;
                kv_done(&kv);
                kv = now;
                if (attempt >= l->o.max_attempts) {
                        set_error(l, "etcd key '%s': gave up after %u attempts, each lost to a concurrent writer", l->key,
                                  attempt);
                        return -EAGAIN;
                }
                backoff(l, attempt);
                /* The failure branch's value is as old as our sleep: read afresh, or the next compare is
                 * likely to lose again (and an unlucky writer starves). */
                kv_done(&kv);
                r = etcd_get(l, &kv);
                if (r < 0)
                        return r;
        }
}

/* ---- the backend ---- */

static int etcd_open(const LockOptions *o, Lock **ret) {
        if (o->n_endpoints == 0)
                return -EDESTADDRREQ;
        for (size_t i = 0; i < o->n_endpoints; i++)
                if (strncmp(o->endpoints[i], "http://", 7) != 0 && strncmp(o->endpoints[i], "https://", 8) != 0)
                        return -EPROTONOSUPPORT;
        if ((o->cert_file == NULL) != (o->key_file == NULL))
                return -EINVAL;
        lock_curl_global_init();
        _cleanup_free_ Lock *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->o = *o;
        if (!l->o.timeout)
                l->o.timeout = 10;
        if (!l->o.connect_timeout)
                l->o.connect_timeout = MIN(3u, l->o.timeout);
        if (!l->o.max_attempts)
                l->o.max_attempts = LOCK_DEFAULT_ATTEMPTS;
        int r = lock_etcd_key(o->group, l->key, sizeof l->key);
        if (r < 0)
                return r;
        _cleanup_free_ char *k64 = NULL;
        r = b64_encode(l->key, strlen(l->key), &k64);
        if (r < 0)
                return r;
        snprintf(l->key_b64, sizeof l->key_b64, "%s", k64);
        if (getrandom(&l->rng, sizeof l->rng, 0) != sizeof l->rng || l->rng == 0)
                l->rng = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() ^ 1;
        l->curl = curl_easy_init();
        if (!l->curl)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static void etcd_close(Lock *l) {
        if (!l)
                return;
        if (l->curl)
                curl_easy_cleanup(l->curl);
        explicit_bzero(l->token, sizeof l->token);
        free(l);
}

static int m_take(Semaphore *s, void *arg) {
        return semaphore_take(s, arg);
}

static int etcd_take(Lock *l, const char *id) {
        if (!semaphore_id_valid(id)) {
                set_error(l, "'%s' is not a valid holder id", id);
                return -EINVAL;
        }
        int r = update(l, m_take, (void *)id);
        if (r == -EBUSY)
                set_error(l, "etcd key '%s': no slot free (all taken by other holders)", l->key);
        return r;
}

static int m_release(Semaphore *s, void *arg) {
        return semaphore_release(s, arg);
}

static int etcd_release(Lock *l, const char *id) {
        return update(l, m_release, (void *)id);
}

static int m_evict(Semaphore *s, void *arg) {
        int r = semaphore_release(s, arg);
        return r == 0 ? -ENOENT : r;
}

static int etcd_evict(Lock *l, const char *id) {
        int r = update(l, m_evict, (void *)id);
        if (r == -ENOENT) {
                char safe[80];
                set_error(l, "etcd key '%s': '%s' holds no slot", l->key, log_safe(safe, sizeof safe, id));
        }
        return r;
}

static int etcd_status(Lock *l, Semaphore *ret) {
        _cleanup_(kv_done) Kv kv = { 0 };
        int r = etcd_get(l, &kv);
        if (r < 0)
                return r;
        if (!kv.exists) {
                semaphore_init_default(ret);
                return 0;
        }
        char why[200];
        r = semaphore_parse(kv.value, kv.len, ret, why, sizeof why);
        if (r < 0)
                set_error(l, "etcd key '%s' (mod_revision %" PRId64 ") does not hold a valid semaphore: %s", l->key,
                          kv.mod_revision, why);
        return r;
}

typedef struct SetMax {
        int64_t max, old;
} SetMax;

static int m_set_max(Semaphore *s, void *arg) {
        SetMax *m = arg;
        m->old = s->max;
        int r = semaphore_set_max(s, m->max);
        return r < 0 ? r : 1;
}

static int etcd_set_max(Lock *l, int64_t max, int64_t *ret_old) {
        SetMax m = { .max = max };
        if (max < 0 || max > SEMAPHORE_MAX_MAX) {
                set_error(l, "max %" PRId64 " is outside 0..%d", max, SEMAPHORE_MAX_MAX);
                return -ERANGE;
        }
        int r = update(l, m_set_max, &m);
        if (r < 0)
                return r;
        *ret_old = m.old;
        return 0;
}

static const char *etcd_error(const Lock *l) {
        return l->error[0] ? l->error : "unknown error";
}

static void etcd_stats(const Lock *l, LockStats *ret) {
        *ret = l->stats;
}

static const char *etcd_name(const Lock *l) {
        return l->key;
}

const LockBackend lock_backend_etcd = {
        .name = "etcd",
        .open = etcd_open,
        .close = etcd_close,
        .take = etcd_take,
        .release = etcd_release,
        .evict = etcd_evict,
        .status = etcd_status,
        .set_max = etcd_set_max,
        .error = etcd_error,
        .stats = etcd_stats,
        .name_of = etcd_name,
};
