/* updater/agent-http.c — the agent's HTTP client on libcurl: Omaha POSTs and bounded Range GETs (CURLcode lives only here). */
#include "agent.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>

struct AgentHttp {
        CURL *curl;
        AgentHttpOptions o;
        char proxy[1024];
        char ca_file[1024];
        char error[AGENT_ERROR_MAX];
        char curl_err[CURL_ERROR_SIZE];
};

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

static void setup(AgentHttp *h, const char *url) {
        CURL *c = h->curl;
        curl_easy_reset(c);
        h->error[0] = h->curl_err[0] = 0;
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
        /* A stalled server: less than 1 byte/s for stall_timeout seconds aborts the transfer. */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(h->o.stall_timeout ? h->o.stall_timeout : 60));
        curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-updated/1");
        if (h->o.rate_limit)
                curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)h->o.rate_limit);
        if (h->proxy[0])
                curl_easy_setopt(c, CURLOPT_PROXY, h->proxy);
        if (h->ca_file[0])
                curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
}

static int finish(AgentHttp *h, CURLcode cc, const char *url, int sink_error) {
        if (sink_error < 0)
                return sink_error;
        if (cc != CURLE_OK) {
                snprintf(h->error, sizeof h->error, "'%s': %s", url,
                         h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc));
                return curl_to_errno(cc);
        }
        return 0;
}

typedef struct PostCtx {
        OmahaBuf *out;
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
        if (obuf_put(p->out, ptr, n) < 0) {
                p->error = p->out->err;
                return 0;
        }
        return n;
}

int agent_http_post(AgentHttp *h, const char *url, const char *body, size_t len, size_t max, OmahaBuf *out) {
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
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
        CURLcode cc = curl_easy_perform(c);
        curl_slist_free_all(hdr);
        if (pc.error == -EMSGSIZE)
                snprintf(h->error, sizeof h->error, "'%s': answer larger than %zu bytes", url, max);
        int r = finish(h, cc, url, pc.error);
        if (r < 0)
                return r;
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200) {
                snprintf(h->error, sizeof h->error, "'%s' answered HTTP %ld", url, code);
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
        if (g.error < 0) {
                char detail[AGENT_ERROR_MAX];
                snprintf(detail, sizeof detail, "%s", h->error);
                snprintf(h->error, sizeof h->error, "'%.150s' (bytes %.44s): %.100s", url, range,
                         detail[0] ? detail : strerror(-g.error));
                return g.error;
        }
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
                long code = 0;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                snprintf(h->error, sizeof h->error, "'%s' answered HTTP %ld", url, code);
                return code == 404 || code == 410 ? -ENOENT : -EPROTO;
        }
        int r = finish(h, cc, url, 0);
        if (r < 0)
                return r;
        if (g.got != len) {
                snprintf(h->error, sizeof h->error, "'%s': got %" PRIu64 " of %" PRIu64 " bytes (bytes %s)", url,
                         g.got, len, range);
                return -ECONNRESET;
        }
        return 0;
}
