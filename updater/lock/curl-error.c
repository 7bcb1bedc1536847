/* updater/lock/curl-error.c — CURLcode → errno and one sentence, for the lock's HTTP backends (see curl-error.h). */
#include "curl-error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

void lock_curl_global_init(void) {
        pthread_once(&curl_once, curl_init_once);
}

void lock_curl_post_setup(CURL *c, const LockOptions *o, const char *url, struct curl_slist *hdr, const char *body,
                          char *errbuf, curl_write_callback write_fn, void *write_data) {
        curl_easy_reset(c);
        errbuf[0] = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)o->timeout);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)o->connect_timeout);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "cairn-lock/1");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_fn);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, write_data);
        if (o->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
        if (o->cert_file)
                curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert_file);
        if (o->key_file)
                curl_easy_setopt(c, CURLOPT_SSLKEY, o->key_file);
}

int lock_curl_error(CURLcode c, const char *url, const LockCurlContext *x, char *err, size_t errsize) {
        const char *w = x->what ? x->what : "";
        const char *detail = x->curl_err && x->curl_err[0] ? x->curl_err : curl_easy_strerror(c);
        switch (c) {
        case CURLE_OPERATION_TIMEDOUT:
                snprintf(err, errsize, "%s'%s': no answer within %u s (%s)", w, url, x->timeout, detail);
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                snprintf(err, errsize, "%s'%s': cannot connect (%s)", w, url, detail);
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
                snprintf(err, errsize, "%s'%s': cannot resolve the host (%s)", w, url, detail);
                return -EHOSTUNREACH;
        case CURLE_FILESIZE_EXCEEDED:
                snprintf(err, errsize, "%s'%s': answer larger than %zu bytes, refused", w, url, x->max);
                return -EMSGSIZE;
        case CURLE_WRITE_ERROR:
                if (x->too_big) {
                        snprintf(err, errsize, "%s'%s': answer larger than %zu bytes, refused", w, url, x->max);
                        return -EMSGSIZE;
                }
                snprintf(err, errsize, "%s'%s': out of memory reading the answer", w, url);
                return -ENOMEM;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
                snprintf(err, errsize, "%s'%s': TLS: the server's certificate is not trusted by the CA '%s' (%s)", w, url,
                         x->ca_file ? x->ca_file : "(system store)", detail);
                return -EPERM;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
                snprintf(err, errsize, "%s'%s': TLS handshake failed (%s)%s", w, url, detail,
                         x->etcd_hints ? "; check --cacert, --cert and --key" : "");
                return -EPERM;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
                snprintf(err, errsize, "%s'%s': connection broken (%s)%s", w, url, detail,
                         x->etcd_hints && strncmp(url, "https:", 6) == 0 && !x->has_client_cert
                                 ? "; if etcd wants client certificates, pass --cert and --key"
                                 : "");
                return -ECONNRESET;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                snprintf(err, errsize, "%s'%s': not a usable http:// or https:// URL (%s)", w, url, detail);
                return -EINVAL;
        default:
                snprintf(err, errsize, "%s'%s': %s", w, url, detail);
                return -EIO;
        }
}
