/* updater/server/server.h — cairn-server's shared state and the seams between its parts (Omaha answers, HTTP, JSON). */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "omaha/omaha.h"
#include "channels.h"
#include "db.h"
#include "fleetlock.h"

#define SERVER_DEFAULT_APPID "{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}"
#define SERVER_NAME "cairn-server"

typedef struct ConnWatch ConnWatch;

/* What one client may hold and for how long (docs/server.md, "Limits"). */
typedef struct ServerLimits {
        unsigned threads;           /* HTTP worker threads */
        unsigned request_timeout;   /* s: the request head and body must have arrived within this */
        unsigned idle_timeout;      /* s: a connection silent this long is closed */
        unsigned max_conns;         /* connections in all */
        unsigned max_conns_per_ip;  /* connections from one IP address; 0 = no limit */
} ServerLimits;

#define SERVER_DEFAULT_THREADS 4
#define SERVER_DEFAULT_REQUEST_TIMEOUT 20
#define SERVER_DEFAULT_IDLE_TIMEOUT 30
#define SERVER_DEFAULT_MAX_CONNS 2048
#define SERVER_DEFAULT_MAX_CONNS_PER_IP 32

typedef struct Server {
        int reldir_fd;
        const char *reldir;
        ServerDb *db;
        PayloadCache *cache;
        ChannelCache *channels;
        char appid[OMAHA_ATTR_MAX + 1];
        char base_url[512];      /* codebase prefix; "<base_url><version>/" is put in answers */
        struct MHD_Daemon *mhd;
        ConnWatch *watch;        /* request deadlines (server-http.c) */
        uint16_t port;           /* the bound port */
        FleetLock *fleetlock;    /* POST /v1/pre-reboot, /v1/steady-state, GET /api/v1/locks (fleetlock.c) */
} Server;

/* Answer a parsed Omaha request into out (a whole <response> document). note (size note_size) receives a
 * short explanation of any error answers, for the request log line. -EBUSY: the DB stayed locked (→ 503). */
int server_answer_omaha(Server *s, const OmahaRequest *req, const char *peer_ip, int64_t now, Buf *out,
                        char *note, size_t note_size);

/* JSON for GET /api/v1/channels: every channel with its policy, payload and counters. */
int server_channels_json(Server *s, int64_t now, Buf *out);

/* Parse "IPv4:PORT" or "[IPv6]:PORT" (PORT 0..65535). -EINVAL if malformed. */
int server_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len);
/* Start the HTTP daemon on addr (port 0 picks a free one) with the given limits; s->port is set to the bound
 * port. -EADDRINUSE etc. on failure. */
int server_http_start(Server *s, const char *listen_addr, const ServerLimits *lim);
void server_http_stop(Server *s);
