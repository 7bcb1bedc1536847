/* updater/server-http.c — cairn-server's HTTP side (libmicrohttpd): routing, bounded bodies, payload files with Range, request log. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <time.h>

#include "http-range.h"
#include "log.h"
#include "server.h"

#define JSON_MAX (32u << 20)
#define RESPONSE_MAX (1u << 20)

typedef struct Req {
        struct timespec start;
        char method[12];
        char path[160];
        char peer[64];
        char ip[48];
        unsigned status;
        uint64_t bytes;
        bool is_update;
        bool too_big;
        bool answered;
        OmahaBuf body;
        char note[400];
} Req;

static int64_t now_sec(void) {
        return (int64_t)time(NULL);
}

static enum MHD_Result queue(struct MHD_Connection *c, Req *q, unsigned status, struct MHD_Response *resp,
                             uint64_t bytes) {
        if (!resp)
                return MHD_NO;
        q->status = status;
        q->bytes = bytes;
        q->answered = true;
        enum MHD_Result ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* Respond with a copy of (data, len). */
static enum MHD_Result respond(struct MHD_Connection *c, Req *q, unsigned status, const char *type, const char *data,
                               size_t len) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        return queue(c, q, status, resp, len);
}

/* Respond with a one-line text message. */
static enum MHD_Result respond_text(struct MHD_Connection *c, Req *q, unsigned status, const char *msg) {
        char buf[512];
        int n = snprintf(buf, sizeof buf, "%s\n", msg);
        return respond(c, q, status, "text/plain; charset=utf-8", buf, (size_t)MIN(n, (int)sizeof buf - 1));
}

/* Respond with an OmahaBuf, taking its data. */
static enum MHD_Result respond_obuf(struct MHD_Connection *c, Req *q, unsigned status, const char *type,
                                    OmahaBuf *b) {
        size_t len = b->len;
        struct MHD_Response *resp =
                len ? MHD_create_response_from_buffer(len, b->data, MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        if (len)
                b->data = NULL, b->len = b->cap = 0;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        return queue(c, q, status, resp, len);
}

/* "1.2.3/cairn-1.2.3-amd64.cairn": 1..4 components of safe names, so no traversal, no hidden files. */
static bool payload_path_valid(const char *rel) {
        if (!*rel || *rel == '/' || strlen(rel) > 255)
                return false;
        char buf[256];
        strcpy(buf, rel);
        int n = 0;
        char *save = NULL;
        for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
                if (!omaha_name_valid(t, 200) || ++n > 4)
                        return false;
        }
        return n > 0 && rel[strlen(rel) - 1] != '/' && !strstr(rel, "//");
}

static enum MHD_Result serve_payload(Server *s, struct MHD_Connection *c, Req *q, const char *rel) {
        if (!payload_path_valid(rel))
                return respond_text(c, q, MHD_HTTP_NOT_FOUND, "not found");
        char path[300];
        snprintf(path, sizeof path, "payloads/%s", rel);
        /* Beneath the release directory only: no symlink in any component (payloads/evil -> /etc is refused),
         * non-blocking so that a FIFO cannot hang this thread, regular files only. */
        int fd = reldir_openat(s->reldir_fd, path, O_RDONLY | O_NONBLOCK);
        if (fd < 0) {
                snprintf(q->note, sizeof q->note, "'%s/%s': %s", s->reldir, path, reldir_strerror(fd));
                return respond_text(c, q, MHD_HTTP_NOT_FOUND, "not found");
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(q->note, sizeof q->note, "'%s/%s': %s", s->reldir, path, reldir_strerror(-RELDIR_ENOTREG));
                return respond_text(c, q, MHD_HTTP_NOT_FOUND, "not found");
        }
        uint64_t size = (uint64_t)st.st_size, start = 0, len = size;
        unsigned status = MHD_HTTP_OK;
        const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
        if (range) {
                int r = http_range_parse(range, size, &start, &len);
                if (r == -ERANGE) {
                        close(fd);
                        char cr[64];
                        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
                        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
                        if (!resp)
                                return MHD_NO;
                        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
                        return queue(c, q, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp, 0);
                }
                if (r == 1)
                        status = MHD_HTTP_PARTIAL_CONTENT;
                else
                        start = 0, len = size;
        }
        struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, start);
        if (!resp) {
                close(fd);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
        if (status == MHD_HTTP_PARTIAL_CONTENT) {
                char cr[96];
                snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1, size);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        }
        bool head = strcmp(q->method, "HEAD") == 0;
        return queue(c, q, status, resp, head ? 0 : len);
}

static unsigned arg_uint(struct MHD_Connection *c, const char *name, unsigned def, unsigned max) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
        if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
                return def;
        return MIN((unsigned)strtoul(v, NULL, 10), max);
}

static enum MHD_Result serve_api(Server *s, struct MHD_Connection *c, Req *q, const char *url) {
        _cleanup_obuf_ OmahaBuf b;
        obuf_init(&b, JSON_MAX);
        int r;
        if (strcmp(url, "/api/v1/instances") == 0) {
                const char *ch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "channel");
                r = server_db_instances_json(s->db, &b, ch && *ch ? ch : NULL, arg_uint(c, "limit", 1000, 100000));
        } else if (strcmp(url, "/api/v1/events") == 0) {
                const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "machine");
                r = server_db_events_json(s->db, &b, m && *m ? m : NULL, arg_uint(c, "limit", 100, 10000));
        } else if (strcmp(url, "/api/v1/channels") == 0)
                r = server_channels_json(s, now_sec(), &b);
        else
                return respond_text(c, q, MHD_HTTP_NOT_FOUND, "not found");
        if (r == -EBUSY)
                return respond_text(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, "database busy, retry later");
        if (r < 0) {
                snprintf(q->note, sizeof q->note, "%s", strerror(-r));
                return respond_text(c, q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
        }
        return respond_obuf(c, q, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result serve_update(Server *s, struct MHD_Connection *c, Req *q) {
        if (q->too_big)
                return respond_text(c, q, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large (max 65536 bytes)");
        _cleanup_free_ OmahaRequest *req = NULL;
        int r = omaha_request_parse(q->body.data ? q->body.data : "", q->body.len, &req);
        if (r < 0) {
                snprintf(q->note, sizeof q->note, "%s", omaha_parse_strerror(r));
                char msg[160];
                snprintf(msg, sizeof msg, "bad Omaha request: %s", omaha_parse_strerror(r));
                return respond_text(c, q, r == -EMSGSIZE ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, msg);
        }
        _cleanup_obuf_ OmahaBuf out;
        obuf_init(&out, RESPONSE_MAX);
        r = server_answer_omaha(s, req, q->ip, now_sec(), &out, q->note, sizeof q->note);
        if (r == -EBUSY) {
                struct MHD_Response *resp = MHD_create_response_from_buffer(
                        strlen("database busy, retry later\n"), (void *)"database busy, retry later\n",
                        MHD_RESPMEM_PERSISTENT);
                if (!resp)
                        return MHD_NO;
                MHD_add_response_header(resp, "Retry-After", "5");
                return queue(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, resp, strlen("database busy, retry later\n"));
        }
        if (r < 0) {
                if (!q->note[0])
                        snprintf(q->note, sizeof q->note, "%s", strerror(-r));
                return respond_text(c, q, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
        }
        return respond_obuf(c, q, MHD_HTTP_OK, "application/xml", &out);
}

static void peer_of(struct MHD_Connection *c, Req *q) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        strcpy(q->peer, "-");
        if (!ci || !ci->client_addr)
                return;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const void *)sa;
                inet_ntop(AF_INET, &in->sin_addr, q->ip, sizeof q->ip);
                snprintf(q->peer, sizeof q->peer, "%s:%u", q->ip, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *)sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, q->ip, sizeof q->ip);
                snprintf(q->peer, sizeof q->peer, "[%s]:%u", q->ip, ntohs(in6->sin6_port));
        }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        Server *s = cls;
        Req *q = *con_cls;
        if (!q) {
                q = calloc(1, sizeof *q);
                if (!q)
                        return MHD_NO;
                clock_gettime(CLOCK_MONOTONIC, &q->start);
                snprintf(q->method, sizeof q->method, "%s", method);
                snprintf(q->path, sizeof q->path, "%s", url);
                obuf_init(&q->body, OMAHA_MAX_BODY);
                peer_of(c, q);
                *con_cls = q;
                q->is_update = strcmp(url, "/v1/update/") == 0 || strcmp(url, "/v1/update") == 0;
                if (q->is_update && strcmp(method, "POST") == 0) {
                        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                        if (cl && strtoull(cl, NULL, 10) > OMAHA_MAX_BODY)
                                /* Answered before the body is read: MHD closes the connection after it. */
                                return respond_text(c, q, MHD_HTTP_CONTENT_TOO_LARGE,
                                                    "request body too large (max 65536 bytes)");
                }
                /* Answer on a later call, once the whole request is in: that keeps the connection alive. */
                return MHD_YES;
        }
        if (q->answered) {
                *upload_data_size = 0; /* discard any body of an already answered request */
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (!q->is_update)
                        q->too_big = true; /* bodies are only for the Omaha endpoint; discard */
                else if (!q->too_big && obuf_put(&q->body, upload_data, *upload_data_size) < 0) {
                        q->too_big = true;
                        obuf_free(&q->body);
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
        if (q->is_update) {
                if (strcmp(method, "POST") != 0)
                        return respond_text(c, q, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
                return serve_update(s, c, q);
        }
        if (strncmp(url, "/payloads/", 10) == 0) {
                if (!get && !head)
                        return respond_text(c, q, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or HEAD");
                return serve_payload(s, c, q, url + 10);
        }
        if (strncmp(url, "/api/", 5) == 0) {
                if (!get && !head)
                        return respond_text(c, q, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
                return serve_api(s, c, q, url);
        }
        return respond_text(c, q, MHD_HTTP_NOT_FOUND, "not found");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        Req *q = *con_cls;
        if (!q)
                return;
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        double ms = (double)(end.tv_sec - q->start.tv_sec) * 1e3 + (double)(end.tv_nsec - q->start.tv_nsec) / 1e6;
        log_msg("%s %s %u %" PRIu64 " %.2fms %s%s%s%s", q->method, q->path, q->status, q->bytes, ms, q->peer,
                toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? " (connection closed early)" : "",
                q->note[0] ? " — " : "", q->note);
        obuf_free(&q->body);
        free(q);
        *con_cls = NULL;
}

static int parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len) {
        char host[128];
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || strlen(addr) >= sizeof host)
                return -EINVAL;
        const char *ps = colon + 1;
        if (!*ps || strspn(ps, "0123456789") != strlen(ps) || strtoul(ps, NULL, 10) > 65535)
                return -EINVAL;
        uint16_t port = (uint16_t)strtoul(ps, NULL, 10);
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        memset(ss, 0, sizeof *ss);
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
                host[strlen(host) - 1] = 0;
                struct sockaddr_in6 *in6 = (void *)ss;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
                        return -EINVAL;
                *len = sizeof *in6;
                return 0;
        }
        struct sockaddr_in *in = (void *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                return -EINVAL;
        *len = sizeof *in;
        return 0;
}

int server_http_start(Server *s, const char *listen_addr, unsigned threads) {
        struct sockaddr_storage ss;
        socklen_t sslen;
        int r = parse_listen(listen_addr, &ss, &sslen);
        if (r < 0)
                return r;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        struct MHD_Daemon *d = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, s,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)MAX(threads, 1u),
                MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                MHD_OPTION_END);
        if (!d)
                return errno ? -errno : -EADDRINUSE;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                MHD_stop_daemon(d);
                return -EADDRNOTAVAIL;
        }
        s->mhd = d;
        s->port = info->port;
        return 0;
}

void server_http_stop(Server *s) {
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
}
