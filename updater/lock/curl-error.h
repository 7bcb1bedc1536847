/* updater/lock/curl-error.h — what the lock's two HTTP backends (etcd.c, fleetlock-client.c) share: libcurl's one-time
 * set-up, one POST handle set-up (same protocols, limits and TLS files for both), and the one place a CURLcode
 * becomes an errno and a sentence naming the URL. Internal to the lock room. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "lock.h"

typedef struct LockCurlContext {
        const char *what;      /* "" or a prefix such as "FleetLock " */
        const char *curl_err;  /* CURLOPT_ERRORBUFFER's text, may be "" */
        unsigned timeout;      /* seconds, for "no answer within N s" */
        const char *ca_file;   /* NULL: the system store */
        bool has_client_cert;  /* the hint about client certificates is given only without one */
        bool etcd_hints;       /* name the --cacert/--cert/--key options in TLS failures */
        bool too_big;          /* the write callback refused an answer over max bytes */
        size_t max;
} LockCurlContext;

/* Writes the sentence into err and returns the errno (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EMSGSIZE,
 * -ENOMEM, -EPERM, -ECONNRESET, -EINVAL, -EIO). */
int lock_curl_error(CURLcode c, const char *url, const LockCurlContext *x, char *err, size_t errsize);

/* curl_global_init once per process (thread-safe). */
void lock_curl_global_init(void);

/* Resets c and sets it up for one POST of body to url: http/https only, no redirects, the options' timeouts and
 * TLS files, hdr as the headers, errbuf (CURL_ERROR_SIZE) for curl's detail, the answer to write_fn(write_data). */
void lock_curl_post_setup(CURL *c, const LockOptions *o, const char *url, struct curl_slist *hdr, const char *body,
                          char *errbuf, curl_write_callback write_fn, void *write_data);
