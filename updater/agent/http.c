/* updater/agent/http.c — the agent's HTTP client on libcurl: Omaha POSTs and bounded Range GETs (CURLcode lives only here). */
#include "agent.h"

#include <limits.h>

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "parse.h"

/* ---- cancellation ---- */

static atomic_bool cancel_requested;
static atomic_bool cancel_watching;
static sigset_t cancel_set;

void agent_cancel_watch(const sigset_t *set) {
        cancel_set = *set;
        atomic_store(&cancel_watching, true);
}

void agent_cancel_request(void) {
        atomic_store(&cancel_requested, true);
}

bool agent_cancelled(void) {
        if (atomic_load(&cancel_requested))
                return true;
        if (!atomic_load(&cancel_watching))
                return false;
        /* The watched signals are blocked: a SIGTERM sent to the process stays pending, visible from any thread,
         * until the daemon's main loop reads it from its signalfd. */
        sigset_t pending;
        if (sigpending(&pending) < 0)
                return false;
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(&cancel_set, sig) == 1 && sigismember(&pending, sig) == 1) {
                        atomic_store(&cancel_requested, true);
                        return true;
                }
        return false;
}

struct AgentHttp {
        CURL *curl;
        AgentHttpOptions o;
        char proxy[1024];
        char ca_file[1024];
        char error[AGENT_ERROR_MAX];
        char curl_err[CURL_ERROR_SIZE];
        long last_status;  /* HTTP status of the last exchange (0: none) */
};

long agent_http_status(const AgentHttp *h) {
        return h->last_status;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

int agent_http_new(const AgentHttpOptions *o, AgentHttp **ret) {
        pthread_once(&curl_once, curl_init_once);
        _cleanup_free_ AgentHttp *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->o = *o;
        if (o->proxy)
                snprintf(h->proxy, sizeof h->proxy, "%s", o->proxy);
        if (o->ca_file)
                snprintf(h->ca_file, sizeof h->ca_file, "%s", o->ca_file);
        h->curl = curl_easy_init();
        if (!h->curl)
                return -ENOMEM;
        *ret = TAKE_PTR(h);
        return 0;
}

void agent_http_free(AgentHttp *h) {
        if (!h)
                return;
        if (h->curl)
                curl_easy_cleanup(h->curl);
        free(h);
}

const char *agent_http_error(const AgentHttp *h) {
        return h->error;
}

/* The one place a CURLcode becomes an errno. */
static int curl_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_TOO_MANY_REDIRECTS:
                return -ELOOP;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
                return -ECONNRESET;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                return -EPERM;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* The low-speed limit in use: the configured one, but below half of DOWNLOAD_RATE_LIMIT, so that throttling
 * itself never looks like a slow server. */
static uint64_t low_speed(const AgentHttp *h) {
        uint64_t l = h->o.low_speed_limit ? h->o.low_speed_limit : 1;
        if (h->o.rate_limit && l > h->o.rate_limit / 2)
                l = MAX(h->o.rate_limit / 2, (uint64_t)1);
        return MIN(l, (uint64_t)LONG_MAX);
}

static int xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        return agent_cancelled() ? 1 : 0;
}

static void setup(AgentHttp *h, const char *url) {
        CURL *c = h->curl;
        curl_easy_reset(c);
        h->error[0] = h->curl_err[0] = 0;
        h->last_status = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(h->o.connect_timeout ? h->o.connect_timeout : 30));
        /* A slow or stalled server: an average below the low-speed limit over the window aborts the transfer. */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)low_speed(h));
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(h->o.stall_timeout ? h->o.stall_timeout : 60));
        /* And a deadline for the whole transfer, however fast it trickles. */
        if (h->o.transfer_timeout)
                curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->o.transfer_timeout);
        /* Called about once a second even when nothing arrives: the cancellation point of every transfer. */
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-updated/1");
        if (h->o.rate_limit)
                curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)h->o.rate_limit);
        if (h->proxy[0])
                curl_easy_setopt(c, CURLOPT_PROXY, h->proxy);
        if (h->ca_file[0])
                curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
}

/* The URL as it may appear in a log line (a server chose it). */
static const char *safe_url(char *buf, size_t size, const char *url) {
        return log_safe(buf, size, url);
}

static int finish(AgentHttp *h, CURLcode cc, const char *url, int sink_error) {
        if (sink_error < 0)
                return sink_error;
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
                char u[200];
                snprintf(h->error, sizeof h->error, "'%s': interrupted (stop requested)", safe_url(u, sizeof u, url));
                return -ECANCELED;
        }
        if (cc != CURLE_OK) {
                char u[200], e[CURL_ERROR_SIZE + 8], hint[96] = "";
                if (cc == CURLE_OPERATION_TIMEDOUT) {
                        double t = 0;
                        curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME, &t);
                        if (h->o.transfer_timeout && t + 0.5 >= h->o.transfer_timeout)
                                snprintf(hint, sizeof hint, " (HTTP_TRANSFER_TIMEOUT=%u s)", h->o.transfer_timeout);
                        else
                                snprintf(hint, sizeof hint, " (below HTTP_LOW_SPEED_LIMIT=%" PRIu64
                                         " bytes/s for HTTP_STALL_TIMEOUT=%u s)", low_speed(h),
                                         h->o.stall_timeout ? h->o.stall_timeout : 60);
                }
                snprintf(h->error, sizeof h->error, "'%s': %s%s", safe_url(u, sizeof u, url),
                         log_safe(e, sizeof e, h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc)), hint);
                return curl_to_errno(cc);
        }
        return 0;
}

typedef struct PostCtx {
        Buf *out;
        size_t max;
        int error;
} PostCtx;

static size_t post_write(char *ptr, size_t size, size_t nmemb, void *ud) {
        PostCtx *p = ud;
        size_t n = size * nmemb;
        if (p->out->len + n > p->max) {
                p->error = -EMSGSIZE;
                return 0;
        }
        if (buf_put(p->out, ptr, n) < 0) {
                p->error = p->out->err;
                return 0;
        }
        return n;
}

int agent_http_post(AgentHttp *h, const char *url, const char *body, size_t len, size_t max, Buf *out) {
        setup(h, url);
        CURL *c = h->curl;
        PostCtx pc = { .out = out, .max = max };
        struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/xml");
        if (!hdr)
                return -ENOMEM;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, post_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &pc);
        /* The whole exchange is small: bound it in time too. */
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)MIN(h->o.transfer_timeout ? h->o.transfer_timeout : 120, 120u));
        CURLcode cc = curl_easy_perform(c);
        curl_slist_free_all(hdr);
        char u[200];
        if (pc.error == -EMSGSIZE)
                snprintf(h->error, sizeof h->error, "'%s': answer larger than %zu bytes", safe_url(u, sizeof u, url),
                         max);
        int r = finish(h, cc, url, pc.error);
        if (r < 0)
                return r;
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        h->last_status = code;
        if (code != 200) {
                snprintf(h->error, sizeof h->error, "'%s' answered HTTP %ld", safe_url(u, sizeof u, url), code);
                return -EPROTO;
        }
        return 0;
}

typedef struct GetCtx {
        AgentHttp *h;
        agent_sink_fn sink;
        void *userdata;
        uint64_t want, got;
        uint64_t *counter;
        bool checked;
        bool whole_ok;
        int error;
} GetCtx;

static size_t get_write(char *ptr, size_t size, size_t nmemb, void *ud) {
        GetCtx *g = ud;
        size_t n = size * nmemb;
        if (!g->checked) {
                long code = 0;
                curl_easy_getinfo(g->h->curl, CURLINFO_RESPONSE_CODE, &code);
                if (!(code == 206 || (code == 200 && g->whole_ok))) {
                        g->error = -EPROTO;
                        snprintf(g->h->error, sizeof g->h->error, "answered HTTP %ld to a Range request", code);
                        return 0;
                }
                g->checked = true;
        }
        if (g->counter)
                *g->counter += n;
        if (n > g->want - g->got) {
                g->error = -EMSGSIZE;
                snprintf(g->h->error, sizeof g->h->error, "sent more bytes than the range asked for");
                return 0;
        }
        g->got += n;
        int r = g->sink(g->userdata, (const uint8_t *)ptr, n);
        if (r < 0) {
                g->error = r;
                return 0;
        }
        return n;
}

int agent_http_get_range(AgentHttp *h, const char *url, uint64_t off, uint64_t len, agent_sink_fn sink,
                         void *userdata, uint64_t *bytes_counter) {
        if (len == 0)
                return 0;
        setup(h, url);
        CURL *c = h->curl;
        char range[64];
        snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, off, off + len - 1);
        GetCtx g = { .h = h, .sink = sink, .userdata = userdata, .want = len, .counter = bytes_counter,
                     .whole_ok = false };
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, get_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
        /* Error pages are not payload bytes. */
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        CURLcode cc = curl_easy_perform(c);
        char u[200];
        if (g.error < 0) {
                char detail[AGENT_ERROR_MAX];
                snprintf(detail, sizeof detail, "%s", h->error);
                snprintf(h->error, sizeof h->error, "'%.150s' (bytes %.44s): %.100s", safe_url(u, sizeof u, url), range,
                         detail[0] ? detail : strerror(-g.error));
                return g.error;
        }
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
                long code = 0;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                h->last_status = code;
                snprintf(h->error, sizeof h->error, "'%s' answered HTTP %ld", safe_url(u, sizeof u, url), code);
                return code == 404 || code == 410 ? -ENOENT : -EPROTO;
        }
        int r = finish(h, cc, url, 0);
        if (r < 0)
                return r;
        if (g.got != len) {
                snprintf(h->error, sizeof h->error, "'%s': got %" PRIu64 " of %" PRIu64 " bytes (bytes %s)",
                         safe_url(u, sizeof u, url), g.got, len, range);
                return -ECONNRESET;
        }
        return 0;
}
