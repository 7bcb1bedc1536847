/* updater/server/http.c — cairn-server's HTTP side (libmicrohttpd): routing, bounded bodies, request deadlines and connection limits, payload files with Range, escaped request log. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "range.h"
#include "log.h"
#include "parse.h"
#include "server.h"

#define JSON_MAX (32u << 20)
#define RESPONSE_MAX (1u << 20)

/* ---- per-connection deadline for the request head and body ----
 * libmicrohttpd's own timeout is per idle period: a client sending one byte every few seconds is never timed out.
 * So every connection is registered when it opens (MHD_OPTION_NOTIFY_CONNECTION) with a deadline by which its
 * request must be complete: --request-timeout after it opened, or --idle-timeout + --request-timeout after the
 * previous answer on a kept-alive connection. A response queued disarms it. A watchdog thread shuts down the
 * socket of a connection past its deadline; libmicrohttpd then sees end of file and closes the connection.
 * The fd stays valid while registered: libmicrohttpd notifies "closed" (which unregisters, under the lock the
 * watchdog holds) before it closes the socket. */
typedef struct Conn {
        struct Conn *prev, *next;
        int fd;
        bool armed;                 /* a request head or body is due by deadline */
        bool dropped;
        unsigned allowed;           /* seconds the current deadline allowed, for the log line */
        struct timespec deadline;   /* CLOCK_MONOTONIC */
        char peer[64];
} Conn;

struct ConnWatch {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Conn *head;
        size_t n;
        bool stop;
        pthread_t thread;
        unsigned request_timeout, idle_timeout;
};

static void watch_arm_locked(Conn *k, unsigned seconds) {
        clock_gettime(CLOCK_MONOTONIC, &k->deadline);
        k->deadline.tv_sec += seconds;
        k->allowed = seconds;
        k->armed = true;
}

static void *watch_main(void *arg) {
        ConnWatch *w = arg;
        pthread_mutex_lock(&w->lock);
        while (!w->stop) {
                struct timespec now, until;
                clock_gettime(CLOCK_MONOTONIC, &now);
                until = now;
                until.tv_nsec += 200 * 1000 * 1000L; /* a deadline is enforced within 0.2 s */
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                for (Conn *k = w->head; k; k = k->next) {
                        if (!k->armed || k->dropped || now.tv_sec < k->deadline.tv_sec ||
                            (now.tv_sec == k->deadline.tv_sec && now.tv_nsec < k->deadline.tv_nsec))
                                continue;
                        k->dropped = true;
                        shutdown(k->fd, SHUT_RDWR);
                        log_msg("closed connection from %s: request not complete after %u s (--request-timeout)",
                                k->peer, k->allowed);
                }
                pthread_cond_timedwait(&w->cond, &w->lock, &until);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int watch_start(ConnWatch **ret, unsigned request_timeout, unsigned idle_timeout) {
        ConnWatch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->request_timeout = request_timeout;
        w->idle_timeout = idle_timeout;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->lock);
                free(w);
                return -EAGAIN;
        }
        *ret = w;
        return 0;
}

static void watch_stop(ConnWatch *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        for (Conn *k = w->head, *n; k; k = n) {
                n = k->next;
                free(k);
        }
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

static Conn *conn_of(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

/* The request is answered (its deadline no longer applies: sending is paced by the idle timeout), or a new
 * one is due on a kept-alive connection. */
static void conn_disarm(Server *s, struct MHD_Connection *c) {
        Conn *k = conn_of(c);
        if (!k || !s->watch)
                return;
        pthread_mutex_lock(&s->watch->lock);
        k->armed = false;
        pthread_mutex_unlock(&s->watch->lock);
}

static void format_peer(const struct sockaddr *sa, char *ip, size_t ip_size, char *peer, size_t peer_size) {
        snprintf(peer, peer_size, "-");
        if (!sa)
                return;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const void *)sa;
                inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)ip_size);
                snprintf(peer, peer_size, "%s:%u", ip, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *)sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)ip_size);
                snprintf(peer, peer_size, "[%s]:%u", ip, ntohs(in6->sin6_port));
        }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        Server *s = cls;
        ConnWatch *w = s->watch;
        if (!w)
                return;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *fdi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
                const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                Conn *k = calloc(1, sizeof *k);
                if (!k || !fdi) {
                        free(k);
                        log_msg("cannot track a new connection (out of memory): it has no request deadline");
                        return;
                }
                char ip[48] = "";
                k->fd = fdi->connect_fd;
                format_peer(ai ? ai->client_addr : NULL, ip, sizeof ip, k->peer, sizeof k->peer);
                pthread_mutex_lock(&w->lock);
                watch_arm_locked(k, w->request_timeout);
                k->next = w->head;
                if (w->head)
                        w->head->prev = k;
                w->head = k;
                w->n++;
                pthread_mutex_unlock(&w->lock);
                *socket_context = k;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                Conn *k = *socket_context;
                if (!k)
                        return;
                pthread_mutex_lock(&w->lock);
                if (k->prev)
                        k->prev->next = k->next;
                else
                        w->head = k->next;
                if (k->next)
                        k->next->prev = k->prev;
                w->n--;
                pthread_mutex_unlock(&w->lock);
                free(k);
                *socket_context = NULL;
        }
}

/* libmicrohttpd's own messages, escaped (it may quote what a client sent) and at most 20 a second. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        static time_t window;
        static unsigned in_window, suppressed;
        char raw[512], safe[1024];
        vsnprintf(raw, sizeof raw, fmt, ap);
        size_t n = strlen(raw);
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
                raw[--n] = 0;
        time_t now = time(NULL);
        pthread_mutex_lock(&lock);
        if (now != window) {
                if (suppressed)
                        log_msg("libmicrohttpd: %u more messages suppressed", suppressed);
                window = now;
                in_window = suppressed = 0;
        }
        bool show = ++in_window <= 20;
        if (!show)
                suppressed++;
        pthread_mutex_unlock(&lock);
        if (show)
                log_msg("libmicrohttpd: %s", log_safe(safe, sizeof safe, raw));
}

typedef struct Req {
        struct timespec start;
        char method[12];
        char path[160];
        char peer[64];
        char ip[48];
        unsigned status;
        uint64_t bytes;
        bool is_update;
        bool is_fleetlock;          /* POST /v1/pre-reboot or /v1/steady-state (fleetlock.c) */
        bool too_big;
        bool answered;
        Server *server;
        Buf body;
        char note[400];
} Req;

static int64_t now_sec(void) {
        return (int64_t)time(NULL);
}

static enum MHD_Result queue(struct MHD_Connection *c, Req *q, unsigned status, struct MHD_Response *resp,
                             uint64_t bytes) {
        if (!resp)
                return MHD_NO;
        conn_disarm(q->server, c);
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

/* Respond with an Buf, taking its data. */
static enum MHD_Result respond_obuf(struct MHD_Connection *c, Req *q, unsigned status, const char *type,
                                    Buf *b) {
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

/* A query parameter: digits only (common/parse.h), above max → max, anything else → def. */
static unsigned arg_uint(struct MHD_Connection *c, const char *name, unsigned def, unsigned max) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
        unsigned n;
        int r = parse_unsigned_range(v, 0, max, &n);
        return r >= 0 ? n : r == -ERANGE ? max : def;
}

static enum MHD_Result serve_api(Server *s, struct MHD_Connection *c, Req *q, const char *url) {
        _cleanup_buf_ Buf b;
        buf_init(&b, JSON_MAX);
        int r;
        if (strcmp(url, "/api/v1/instances") == 0) {
                const char *ch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "channel");
                r = server_db_instances_json(s->db, &b, ch && *ch ? ch : NULL, arg_uint(c, "limit", 1000, 100000));
        } else if (strcmp(url, "/api/v1/events") == 0) {
                const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "machine");
                r = server_db_events_json(s->db, &b, m && *m ? m : NULL, arg_uint(c, "limit", 100, 10000));
        } else if (strcmp(url, "/api/v1/instances/pcrs") == 0) {
                const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "machine");
                r = server_db_pcrs_json(s->db, &b, m && *m ? m : NULL, arg_uint(c, "limit", 1000, 100000));
        } else if (strcmp(url, "/api/v1/channels") == 0)
                r = server_channels_json(s, now_sec(), &b);
        else if (strcmp(url, "/api/v1/locks") == 0)
                r = fleetlock_status_json(s->fleetlock, &b);
        else if (strcmp(url, "/api/v1/health") == 0) {
                /* 503 while database writes fail, so a monitor or load balancer needs only the status. */
                bool failing = false;
                r = server_db_health_json(s->db, &b, &failing);
                if (r >= 0)
                        return respond_obuf(c, q, failing ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                                            "application/json", &b);
        } else
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
        _cleanup_buf_ Buf out;
        buf_init(&out, RESPONSE_MAX);
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

/* FleetLock: the answer and its JSON body come from fleetlock.c; 405 says what is allowed, 503 when to retry. */
static enum MHD_Result serve_fleetlock(Server *s, struct MHD_Connection *c, Req *q) {
        _cleanup_buf_ Buf out;
        buf_init(&out, 64u * 1024u);
        const char *hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "fleet-lock-protocol");
        unsigned status = fleetlock_answer(s->fleetlock, q->path, q->method, hdr, q->body.data, q->body.len, q->too_big,
                                           &out, q->note, sizeof q->note);
        struct MHD_Response *resp = MHD_create_response_from_buffer(out.len, out.data ? out.data : (void *)"",
                                                                    MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
        if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
                MHD_add_response_header(resp, "Retry-After", "5");
        return queue(c, q, status, resp, out.len);
}

static void peer_of(struct MHD_Connection *c, Req *q) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        format_peer(ci ? ci->client_addr : NULL, q->ip, sizeof q->ip, q->peer, sizeof q->peer);
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
                q->server = s;
                snprintf(q->method, sizeof q->method, "%s", method);
                snprintf(q->path, sizeof q->path, "%s", url);
                peer_of(c, q);
                *con_cls = q;
                q->is_update = strcmp(url, "/v1/update/") == 0 || strcmp(url, "/v1/update") == 0;
                q->is_fleetlock = strcmp(url, "/v1/pre-reboot") == 0 || strcmp(url, "/v1/steady-state") == 0;
                buf_init(&q->body, q->is_fleetlock ? FLEETLOCK_MAX_BODY : OMAHA_MAX_BODY);
                if (q->is_fleetlock && strcmp(method, "POST") == 0) {
                        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                        if (cl && strtoull(cl, NULL, 10) > FLEETLOCK_MAX_BODY) {
                                q->too_big = true;
                                return serve_fleetlock(s, c, q);
                        }
                }
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
                if (!q->is_update && !q->is_fleetlock)
                        q->too_big = true; /* bodies are only for the Omaha and FleetLock endpoints; discard */
                else if (!q->too_big && buf_put(&q->body, upload_data, *upload_data_size) < 0) {
                        q->too_big = true;
                        buf_free(&q->body);
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
        if (q->is_fleetlock)
                return serve_fleetlock(s, c, q);
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
        Server *s = cls;
        Conn *k = conn_of(c);
        if (k && s->watch) {
                /* A next request on this kept-alive connection: due within the idle and the request timeout. */
                pthread_mutex_lock(&s->watch->lock);
                watch_arm_locked(k, s->watch->idle_timeout + s->watch->request_timeout);
                pthread_mutex_unlock(&s->watch->lock);
        }
        Req *q = *con_cls;
        if (!q)
                return;
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        double ms = (double)(end.tv_sec - q->start.tv_sec) * 1e3 + (double)(end.tv_nsec - q->start.tv_nsec) / 1e6;
        /* Method, path (decoded: %0a is a real newline here) and the note can hold client text: escaped, so a
         * client cannot start a line of its own. */
        char method[sizeof q->method * 4], path[sizeof q->path * 4], note[sizeof q->note * 2];
        log_msg("%s %s %u %" PRIu64 " %.2fms %s%s%s%s", log_safe(method, sizeof method, q->method),
                log_safe(path, sizeof path, q->path), q->status, q->bytes, ms, q->peer,
                toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? " (connection closed early)" : "",
                q->note[0] ? " — " : "", log_safe(note, sizeof note, q->note));
        buf_free(&q->body);
        free(q);
        *con_cls = NULL;
}

int server_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len) {
        char host[128];
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || strlen(addr) >= sizeof host)
                return -EINVAL;
        unsigned port;
        if (parse_unsigned_range(colon + 1, 0, 65535, &port) < 0)
                return -EINVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        memset(ss, 0, sizeof *ss);
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
                host[strlen(host) - 1] = 0;
                struct sockaddr_in6 *in6 = (void *)ss;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
                        return -EINVAL;
                *len = sizeof *in6;
                return 0;
        }
        struct sockaddr_in *in = (void *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                return -EINVAL;
        *len = sizeof *in;
        return 0;
}

int server_http_start(Server *s, const char *listen_addr, const ServerLimits *lim) {
        struct sockaddr_storage ss;
        socklen_t sslen;
        int r = server_parse_listen(listen_addr, &ss, &sslen);
        if (r < 0)
                return r;
        r = watch_start(&s->watch, lim->request_timeout, lim->idle_timeout);
        if (r < 0)
                return r;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        struct MHD_Daemon *d = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, s,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, so that every message goes through it */
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)MAX(lim->threads, 1u),
                MHD_OPTION_CONNECTION_LIMIT, lim->max_conns,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim->max_conns_per_ip,
                MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_timeout,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                MHD_OPTION_END);
        if (!d) {
                r = errno ? -errno : -EADDRINUSE;
                watch_stop(s->watch);
                s->watch = NULL;
                return r;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (!info || info->port == 0) {
                MHD_stop_daemon(d);
                watch_stop(s->watch);
                s->watch = NULL;
                return -EADDRNOTAVAIL;
        }
        s->mhd = d;
        s->port = info->port;
        return 0;
}

void server_http_stop(Server *s) {
        if (s->mhd)
                MHD_stop_daemon(s->mhd); /* every connection is closed (and unregistered) first */
        s->mhd = NULL;
        watch_stop(s->watch);
        s->watch = NULL;
}
