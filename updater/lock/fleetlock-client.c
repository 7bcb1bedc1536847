/* updater/lock/fleetlock-client.c — the FleetLock backend of the reboot lock (the client side of Zincati's and
 * airlock's protocol): POST <base>/v1/pre-reboot takes a slot, POST <base>/v1/steady-state gives it back, each
 * with the header "fleet-lock-protocol: true" and the body {"client_params":{"id":ID,"group":GROUP}}. Any 2xx is
 * success; anything else is a refusal whose body should be {"kind":…,"value":…}. The protocol has no way to read
 * the semaphore, evict another holder or set max: those are -EOPNOTSUPP here (the server's own API does them).
 * CURLcode becomes errno here and nowhere else in this file. */
#include "lock.h"
#include "curl-error.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>

#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

#define FLEETLOCK_RESPONSE_MAX (64u * 1024u)
#define FLEETLOCK_URL_MAX 1024
#define FLEETLOCK_GROUP_MAX 128

struct Lock {
        LockOptions o;
        CURL *curl;
        LockStats stats;
        char base[FLEETLOCK_URL_MAX];
        char group[FLEETLOCK_GROUP_MAX];
        char curl_err[CURL_ERROR_SIZE];
        char error[LOCK_ERROR_MAX];
};

_printf_(2, 3) static void set_error(Lock *l, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->error, sizeof l->error, fmt, ap);
        va_end(ap);
}

bool lock_fleetlock_group_valid(const char *g) {
        size_t n = strlen(g);
        if (n == 0 || n >= FLEETLOCK_GROUP_MAX)
                return false;
        for (; *g; g++)
                if (!((*g >= 'a' && *g <= 'z') || (*g >= 'A' && *g <= 'Z') || (*g >= '0' && *g <= '9') || *g == '.' ||
                      *g == '-'))
                        return false;
        return true;
}

typedef struct Answer {
        char data[FLEETLOCK_RESPONSE_MAX + 1];
        size_t len;
        bool too_big;
} Answer;

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *ud) {
        Answer *a = ud;
        size_t n = size * nmemb;
        if (a->len + n > FLEETLOCK_RESPONSE_MAX) {
                a->too_big = true;
                return 0;
        }
        memcpy(a->data + a->len, ptr, n);
        a->len += n;
        a->data[a->len] = 0;
        return n;
}

static int curl_fail(Lock *l, CURLcode c, const char *url, const Answer *a) {
        LockCurlContext x = { .what = "FleetLock ", .curl_err = l->curl_err, .timeout = l->o.timeout,
                              .ca_file = l->o.ca_file, .has_client_cert = l->o.cert_file != NULL,
                              .too_big = a->too_big, .max = FLEETLOCK_RESPONSE_MAX };
        return lock_curl_error(c, url, &x, l->error, sizeof l->error);
}

int lock_fleetlock_parse_error(const char *untrusted, size_t len, char *kind, size_t kind_size, char *value,
                               size_t value_size) {
        if (len == 0 || len > FLEETLOCK_RESPONSE_MAX || memchr(untrusted, 0, len) || kind_size == 0 || value_size == 0)
                return -EBADMSG;
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new_ex(4);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse_ex(tok, untrusted, (int)len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", untrusted[i]))
                        return -EBADMSG;
        json_object *k, *v;
        if (!json_object_object_get_ex(o, "kind", &k) || !json_object_is_type(k, json_type_string) ||
            !json_object_object_get_ex(o, "value", &v) || !json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(k) == 0)
                return -EBADMSG;
        log_safe(kind, kind_size, json_object_get_string(k));
        log_safe(value, value_size, json_object_get_string(v));
        return 0;
}

/* A refusal: the server's {"kind","value"} (escaped for a log line), or what the HTTP status alone says.
 * "failed_lock_semaphore_full" (Zincati's and airlock's name) and HTTP 409 mean no slot: -EBUSY. */
static int refusal(Lock *l, const char *url, long status, const Answer *a) {
        char kind[128] = "", value[320] = "";
        if (lock_fleetlock_parse_error(a->data, a->len, kind, sizeof kind, value, sizeof value) < 0)
                kind[0] = value[0] = 0;
        bool full = strcmp(kind, "failed_lock_semaphore_full") == 0 || (!kind[0] && status == 409);
        if (kind[0])
                set_error(l, "FleetLock '%s': HTTP %ld, %s: %s", url, status, kind, value);
        else {
                char body[120];
                log_safe_n(body, sizeof body, a->data, MIN(a->len, (size_t)80));
                set_error(l, "FleetLock '%s': HTTP %ld without a FleetLock error body (\"%s\")", url, status, body);
        }
        if (full)
                return -EBUSY;
        if (status == 400 || status == 404 || status == 405 || status == 401 || status == 403)
                return -EPROTO; /* not a FleetLock server there, or it refuses us: retrying will not help soon */
        return -EAGAIN;
}

static int call(Lock *l, const char *op, const char *id) {
        if (!semaphore_id_valid(id)) {
                set_error(l, "'%s' is not a usable FleetLock id", id);
                return -EINVAL;
        }
        char url[FLEETLOCK_URL_MAX + 32];
        snprintf(url, sizeof url, "%s/v1/%s", l->base, op);
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        json_object *params = json_object_new_object();
        if (!body || !params) {
                json_object_put(params);
                return -ENOMEM;
        }
        json_object_object_add(body, "client_params", params);
        json_object_object_add(params, "id", json_object_new_string(id));
        json_object_object_add(params, "group", json_object_new_string(l->group));
        const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_(curl_slist_free_allp) struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
        struct curl_slist *h2 = hdr ? curl_slist_append(hdr, "fleet-lock-protocol: true") : NULL;
        if (!h2)
                return -ENOMEM;
        hdr = h2;
        CURL *c = l->curl;
        Answer *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        lock_curl_post_setup(c, &l->o, url, hdr, text, l->curl_err, answer_write, a);
        l->stats.requests++;
        CURLcode cc = curl_easy_perform(c);
        int r = 0;
        if (cc != CURLE_OK)
                r = curl_fail(l, cc, url, a);
        else {
                long status = 0;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                if (status < 200 || status > 299)
                        r = refusal(l, url, status, a);
        }
        free(a);
        return r;
}

static int fl_open(const LockOptions *o, Lock **ret) {
        if (o->n_endpoints != 1)
                return -EDESTADDRREQ;
        const char *u = o->endpoints[0];
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                return -EPROTONOSUPPORT;
        if ((o->cert_file == NULL) != (o->key_file == NULL))
                return -EINVAL;
        const char *g = o->group && *o->group ? o->group : "default"; /* Zincati's default group */
        if (!lock_fleetlock_group_valid(g))
                return -EINVAL;
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
                n--;
        if (n >= FLEETLOCK_URL_MAX)
                return -ENAMETOOLONG;
        lock_curl_global_init();
        _cleanup_free_ Lock *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->o = *o;
        if (!l->o.timeout)
                l->o.timeout = 10;
        if (!l->o.connect_timeout)
                l->o.connect_timeout = MIN(3u, l->o.timeout);
        memcpy(l->base, u, n);
        l->base[n] = 0;
        snprintf(l->group, sizeof l->group, "%s", g);
        l->curl = curl_easy_init();
        if (!l->curl)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static void fl_close(Lock *l) {
        if (!l)
                return;
        if (l->curl)
                curl_easy_cleanup(l->curl);
        free(l);
}

/* The protocol does not say whether the slot was new: 1 for every success. */
static int fl_take(Lock *l, const char *id) {
        int r = call(l, "pre-reboot", id);
        return r < 0 ? r : 1;
}

static int fl_release(Lock *l, const char *id) {
        int r = call(l, "steady-state", id);
        return r < 0 ? r : 1;
}

static int fl_unsupported(Lock *l, const char *what) {
        set_error(l, "FleetLock has no %s operation (ask the FleetLock server's own interface)", what);
        return -EOPNOTSUPP;
}
static int fl_evict(Lock *l, const char *id) {
        return fl_unsupported(l, "unlock-another-machine");
}
static int fl_status(Lock *l, Semaphore *ret) {
        return fl_unsupported(l, "status");
}
static int fl_set_max(Lock *l, int64_t max, int64_t *ret_old) {
        return fl_unsupported(l, "set-max");
}
static const char *fl_error(const Lock *l) {
        return l->error;
}
static void fl_stats(const Lock *l, LockStats *ret) {
        *ret = l->stats;
}
static const char *fl_name(const Lock *l) {
        return l->base;
}

const LockBackend lock_backend_fleetlock = {
        .name = "fleetlock",
        .open = fl_open,
        .close = fl_close,
        .take = fl_take,
        .release = fl_release,
        .evict = fl_evict,
        .status = fl_status,
        .set_max = fl_set_max,
        .error = fl_error,
        .stats = fl_stats,
        .name_of = fl_name,
};
