/* updater/lock/curl-error.c — CURLcode → errno and one sentence, for the lock's HTTP backends (see curl-error.h). */
#include "curl-error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
