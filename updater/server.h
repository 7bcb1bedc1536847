/* updater/server.h — cairn-server's shared state and the seams between its parts (Omaha answers, HTTP, JSON). */
#pragma once

#include <stdint.h>

#include "omaha.h"
#include "server-channels.h"
#include "server-db.h"

#define SERVER_DEFAULT_APPID "{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}"
#define SERVER_NAME "cairn-server"

typedef struct Server {
        int reldir_fd;
        const char *reldir;
        ServerDb *db;
        PayloadCache *cache;
        ChannelCache *channels;
        char appid[OMAHA_ATTR_MAX + 1];
        char base_url[512];      /* codebase prefix; "<base_url><version>/" is put in answers */
        struct MHD_Daemon *mhd;
        uint16_t port;           /* the bound port */
} Server;

/* Answer a parsed Omaha request into out (a whole <response> document). note (size note_size) receives a
 * short explanation of any error answers, for the request log line. -EBUSY: the DB stayed locked (→ 503). */
int server_answer_omaha(Server *s, const OmahaRequest *req, const char *peer_ip, int64_t now, OmahaBuf *out,
                        char *note, size_t note_size);

/* JSON for GET /api/v1/channels: every channel with its policy, payload and counters. */
int server_channels_json(Server *s, int64_t now, OmahaBuf *out);

/* Start the HTTP daemon on addr ("IPv4:PORT" or "[IPv6]:PORT"; port 0 picks a free one) with threads
 * worker threads; s->port is set to the bound port. -EADDRINUSE etc. on failure. */
int server_http_start(Server *s, const char *listen_addr, unsigned threads);
void server_http_stop(Server *s);
