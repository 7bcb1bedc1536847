/* provision/fetch.c — bounded HTTP(S) GETs for provisioning (configs and file contents), on libcurl. */
#include "fetch.h"

#include <curl/curl.h>

#include "macro.h"

struct sink {
        char *buf;
        size_t len, cap, max;
        bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct sink *s = userdata;
        size_t n = size * nmemb;
        if (s->len + n > s->max) {
                s->too_big = true;
                return 0;
        }
        if (s->len + n + 1 > s->cap) {
                size_t nc = MAX(s->cap * 2, s->len + n + 1);
                char *t = realloc(s->buf, nc);
                if (!t)
                        return 0;
                s->buf = t, s->cap = nc;
        }
        memcpy(s->buf + s->len, ptr, n);
        s->len += n;
        s->buf[s->len] = 0;
        return n;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);

int prov_http_timeout = 60;

int prov_fetch_http(const char *url, size_t max, char **ret_data, size_t *ret_len, struct prov_err *err) {
        static bool inited;
        if (!inited) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                inited = true;
        }
        _cleanup_(curl_easy_cleanupp) CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        struct sink s = { .max = max };
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)prov_http_timeout);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-provision");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        CURLcode cr = curl_easy_perform(c);
        /* only the scheme and host go into the message: a URL may carry a token */
        char shown[200];
        size_t h = strcspn(url + (strstr(url, "://") ? (size_t)(strstr(url, "://") - url) + 3 : 0), "/?#");
        snprintf(shown, sizeof shown, "%.*s", (int)MIN(h + (strstr(url, "://") ? (size_t)(strstr(url, "://") - url) + 3 : 0), 150u), url);
        for (char *x = shown; *x; x++)
                if ((unsigned char)*x < 0x20 || (unsigned char)*x >= 0x7f)
                        *x = '?';
        if (s.too_big) {
                free(s.buf);
                snprintf(err->msg, sizeof err->msg, "'%s/...': the answer is larger than %zu bytes", shown, max);
                return -EFBIG;
        }
        if (cr != CURLE_OK) {
                free(s.buf);
                snprintf(err->msg, sizeof err->msg, "cannot fetch '%s/...': %s", shown, *cerr ? cerr : curl_easy_strerror(cr));
                return -EIO;
        }
        if (!s.buf && !(s.buf = calloc(1, 1)))
                return -ENOMEM;
        *ret_data = s.buf;
        *ret_len = s.len;
        return 0;
}
