/* updater/server.c — cairn-server main: options, opening the release dir and DB, signals, clean shutdown. */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>

#include "log.h"
#include "server.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: cairn-server --reldir DIR --db FILE [options]\n"
                "Omaha v3 update server for Cairn hosts (POST /v1/update/), payload files under /payloads/,\n"
                "JSON status at /api/v1/channels, /api/v1/instances, /api/v1/events.\n\n"
                "  --reldir DIR        release directory (channels/, payloads/)\n"
                "  --db FILE           SQLite database (created if missing)\n"
                "  --listen ADDR:PORT  default 127.0.0.1:8470; port 0 picks a free port\n"
                "  --base-url URL      codebase prefix for payload URLs (default http://ADDR:PORT/payloads/)\n"
                "  --appid GUID        application id hosts must send (default %s)\n"
                "  --threads N         HTTP worker threads (default 4)\n"
                "  --busy-timeout MS   wait this long for a locked DB before answering 503 (default 2000)\n",
                SERVER_DEFAULT_APPID);
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *reldir = NULL, *dbpath = NULL, *listen_addr = "127.0.0.1:8470", *base_url = NULL;
        const char *appid = SERVER_DEFAULT_APPID;
        unsigned threads = 4, busy_ms = 2000;
        static const struct option opts[] = {
                { "reldir", required_argument, NULL, 'r' },  { "db", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' },  { "base-url", required_argument, NULL, 'b' },
                { "appid", required_argument, NULL, 'a' },   { "threads", required_argument, NULL, 't' },
                { "busy-timeout", required_argument, NULL, 'T' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        int o;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (o) {
                case 'r': reldir = optarg; break;
                case 'd': dbpath = optarg; break;
                case 'l': listen_addr = optarg; break;
                case 'b': base_url = optarg; break;
                case 'a': appid = optarg; break;
                case 't':
                        threads = (unsigned)strtoul(optarg, NULL, 10);
                        if (threads < 1 || threads > 64)
                                return log_error(EINVAL, "--threads must be 1..64"), 2;
                        break;
                case 'T': busy_ms = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!reldir || !dbpath || optind < argc) {
                usage(stderr);
                return 2;
        }
        if (strlen(appid) > OMAHA_ATTR_MAX || !*appid)
                return log_error(EINVAL, "--appid '%s' is empty or too long", appid), 2;
        if (base_url && strlen(base_url) > 400)
                return log_error(EINVAL, "--base-url is too long (max 400 bytes)"), 2;

        Server s = { .reldir = reldir, .reldir_fd = -1 };
        snprintf(s.appid, sizeof s.appid, "%s", appid);
        s.reldir_fd = open(reldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s.reldir_fd < 0)
                return log_error_errno(negative_errno(), "cannot open release directory '%s'", reldir), 1;

        int r = server_db_open(dbpath, (int)busy_ms, &s.db);
        if (r == -EROFS)
                return log_error(r, "database '%s' is read-only: give cairn-server write access to the file and its "
                                    "directory", dbpath), 1;
        if (r == -EACCES)
                return log_error(r, "database '%s' cannot be opened for writing: check the permissions of the file "
                                    "and its directory", dbpath), 1;
        if (r < 0)
                return log_error_errno(r, "cannot open database '%s'", dbpath), 1;
        if ((r = payload_cache_new(&s.cache)) < 0 || (r = channel_cache_new(&s.channels)) < 0)
                return log_error_errno(r, "out of memory"), 1;

        /* Block the stop signals in every thread; main waits for them with sigwait(). */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = server_http_start(&s, listen_addr, threads);
        if (r < 0) {
                server_db_close(s.db);
                return log_error_errno(r, "cannot listen on '%s'", listen_addr), 1;
        }
        if (base_url)
                snprintf(s.base_url, sizeof s.base_url, "%s%s", base_url,
                         base_url[0] && base_url[strlen(base_url) - 1] == '/' ? "" : "/");
        else {
                char host[128];
                const char *colon = strrchr(listen_addr, ':');
                snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
                snprintf(s.base_url, sizeof s.base_url, "http://%s:%u/payloads/", host, s.port);
        }
        printf("cairn-server: listening on %.*s:%u\n", (int)(strrchr(listen_addr, ':') - listen_addr), listen_addr,
               s.port);
        fflush(stdout);

        int sig = 0;
        sigwait(&mask, &sig);
        log_msg("stopping on %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        server_http_stop(&s);
        server_db_close(s.db);
        payload_cache_free(s.cache);
        channel_cache_free(s.channels);
        close(s.reldir_fd);
        return 0;
}
