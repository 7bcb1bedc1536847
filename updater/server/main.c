/* updater/server/main.c — cairn-server main: options, opening the release dir and DB, signals, clean shutdown. */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include "log.h"
#include "parse.h"
#include "server.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: cairn-server --reldir DIR --db FILE [options]\n"
                "Omaha v3 update server for Cairn hosts (POST /v1/update/), payload files under /payloads/,\n"
                "JSON status at /api/v1/channels, /api/v1/instances, /api/v1/events, /api/v1/health.\n\n"
                "  --reldir DIR             release directory (channels/, payloads/)\n"
                "  --db FILE                SQLite database (created if missing)\n"
                "  --listen ADDR:PORT       default 127.0.0.1:8470; port 0 picks a free port\n"
                "  --base-url URL           codebase prefix for payload URLs (default http://ADDR:PORT/payloads/)\n"
                "  --appid GUID             application id hosts must send (default %s)\n"
                "  --threads N              HTTP worker threads, 1..64 (default %u)\n"
                "  --busy-timeout MS        wait this long for a locked DB before answering 503, 0..3600000 (default 2000)\n"
                "  --write-queue N          visits kept in memory for the DB writer, 1..1048576 (default %u)\n"
                "  --request-timeout SECS   a request's head and body must arrive within this, 1..3600 (default %u)\n"
                "  --idle-timeout SECS      close a connection silent this long, 1..3600 (default %u)\n"
                "  --max-conns N            connections in all, 1..65535 (default %u)\n"
                "  --max-conns-per-ip N     connections from one IP address, 0..65535, 0 = no limit (default %u)\n"
                "FleetLock (POST /v1/pre-reboot, /v1/steady-state; JSON at /api/v1/locks):\n"
                "  --lock-group NAME=MAX    a reboot group and how many of its hosts may reboot at once (repeatable;\n"
                "                           default: default=1); other groups are refused\n"
                "  --lock-etcd URLS         keep the semaphores in etcd (locksmith's keys) instead of the database\n"
                "  --lock-etcd-cacert FILE, --lock-etcd-cert FILE, --lock-etcd-key FILE, --lock-etcd-user USER:PASS,\n"
                "  --lock-etcd-timeout SECS (one etcd request, default 5)\n"
                "SECS take an optional suffix s, m or h.\n",
                SERVER_DEFAULT_APPID, SERVER_DEFAULT_THREADS, SERVER_DB_QUEUE_DEFAULT, SERVER_DEFAULT_REQUEST_TIMEOUT,
                SERVER_DEFAULT_IDLE_TIMEOUT, SERVER_DEFAULT_MAX_CONNS, SERVER_DEFAULT_MAX_CONNS_PER_IP);
}

/* A numeric option: strictly min..max, else one line naming the option, the value and the range. */
static int opt_number(const char *opt, const char *val, unsigned min, unsigned max, bool seconds, unsigned *ret) {
        int r;
        if (seconds) {
                uint64_t v;
                r = parse_seconds_range(val, min, max, &v);
                if (r >= 0)
                        *ret = (unsigned)v;
        } else
                r = parse_unsigned_range(val, min, max, ret);
        if (r >= 0)
                return 0;
        char safe[96];
        log_error(r, "%s '%s': expected %s %u..%u%s", opt, log_safe(safe, sizeof safe, val),
                  seconds ? "seconds" : "a whole number", min, max, seconds ? " (suffix s, m or h allowed)" : "");
        return -EINVAL;
}

/* Room for every connection (and the DB, the release directory, the listening sockets): the soft limit of open
 * files is often 1024, below the default --max-conns. */
static void raise_nofile(unsigned max_conns) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        rlim_t want = (rlim_t)max_conns + 64;
        if (rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
                log_msg("warning: only %llu open files allowed (ulimit -n), fewer than --max-conns %u needs",
                        (unsigned long long)rl.rlim_cur, max_conns);
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *reldir = NULL, *dbpath = NULL, *listen_addr = "127.0.0.1:8470", *base_url = NULL;
        const char *appid = SERVER_DEFAULT_APPID;
        unsigned busy_ms = 2000, queue_max = SERVER_DB_QUEUE_DEFAULT;
        ServerLimits lim = {
                .threads = SERVER_DEFAULT_THREADS,
                .request_timeout = SERVER_DEFAULT_REQUEST_TIMEOUT,
                .idle_timeout = SERVER_DEFAULT_IDLE_TIMEOUT,
                .max_conns = SERVER_DEFAULT_MAX_CONNS,
                .max_conns_per_ip = SERVER_DEFAULT_MAX_CONNS_PER_IP,
        };
        enum { OPT_WRITE_QUEUE = 256, OPT_REQUEST_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_MAX_CONNS, OPT_MAX_CONNS_PER_IP, OPT_LOCK };
        FleetLockConfig flc = { 0 };
        static const struct option opts[] = {
                { "reldir", required_argument, NULL, 'r' },  { "db", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' },  { "base-url", required_argument, NULL, 'b' },
                { "appid", required_argument, NULL, 'a' },   { "threads", required_argument, NULL, 't' },
                { "busy-timeout", required_argument, NULL, 'T' },
                { "write-queue", required_argument, NULL, OPT_WRITE_QUEUE },
                { "request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT },
                { "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
                { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
                { "max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP },
                { "lock-group", required_argument, NULL, OPT_LOCK },
                { "lock-etcd", required_argument, NULL, OPT_LOCK },
                { "lock-etcd-cacert", required_argument, NULL, OPT_LOCK },
                { "lock-etcd-cert", required_argument, NULL, OPT_LOCK },
                { "lock-etcd-key", required_argument, NULL, OPT_LOCK },
                { "lock-etcd-user", required_argument, NULL, OPT_LOCK },
                { "lock-etcd-timeout", required_argument, NULL, OPT_LOCK },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int o, idx = 0;
        char why[512];
        while ((o = getopt_long(argc, argv, "h", opts, &idx)) >= 0) {
                int r = 0;
                switch (o) {
                case 'r': reldir = optarg; break;
                case 'd': dbpath = optarg; break;
                case 'l': listen_addr = optarg; break;
                case 'b': base_url = optarg; break;
                case 'a': appid = optarg; break;
                case 't': r = opt_number("--threads", optarg, 1, 64, false, &lim.threads); break;
                case 'T': r = opt_number("--busy-timeout", optarg, 0, 3600000, false, &busy_ms); break;
                case OPT_WRITE_QUEUE: r = opt_number("--write-queue", optarg, 1, 1048576, false, &queue_max); break;
                case OPT_REQUEST_TIMEOUT:
                        r = opt_number("--request-timeout", optarg, 1, 3600, true, &lim.request_timeout);
                        break;
                case OPT_IDLE_TIMEOUT: r = opt_number("--idle-timeout", optarg, 1, 3600, true, &lim.idle_timeout); break;
                case OPT_MAX_CONNS: r = opt_number("--max-conns", optarg, 1, 65535, false, &lim.max_conns); break;
                case OPT_MAX_CONNS_PER_IP:
                        r = opt_number("--max-conns-per-ip", optarg, 0, 65535, false, &lim.max_conns_per_ip);
                        break;
                case OPT_LOCK:
                        if ((r = fleetlock_config_option(&flc, opts[idx].name, optarg, why, sizeof why)) < 0)
                                log_error(r, "%s", why);
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
                if (r < 0)
                        return 2;
        }
        if (!reldir || !dbpath || optind < argc) {
                usage(stderr);
                return 2;
        }
        if (fleetlock_config_check(&flc, why, sizeof why) < 0)
                return log_error(EINVAL, "%s", why), 2;
        if (strlen(appid) > OMAHA_ATTR_MAX || !*appid)
                return log_error(EINVAL, "--appid '%s' is empty or too long", appid), 2;
        if (base_url && strlen(base_url) > 400)
                return log_error(EINVAL, "--base-url is too long (max 400 bytes)"), 2;
        struct sockaddr_storage ss;
        socklen_t sslen;
        if (server_parse_listen(listen_addr, &ss, &sslen) < 0) {
                char safe[160];
                return log_error(EINVAL, "--listen '%s': expected IPv4:PORT or [IPv6]:PORT with PORT 0..65535",
                                 log_safe(safe, sizeof safe, listen_addr)), 2;
        }
        raise_nofile(lim.max_conns);

        Server s = { .reldir = reldir, .reldir_fd = -1 };
        snprintf(s.appid, sizeof s.appid, "%s", appid);
        s.reldir_fd = open(reldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s.reldir_fd < 0)
                return log_error_errno(negative_errno(), "cannot open release directory '%s'", reldir), 1;

        int r = server_db_open(dbpath, (int)busy_ms, queue_max, &s.db);
        if (r == -EROFS)
                return log_error(r, "database '%s' is read-only: give cairn-server write access to the file and its "
                                    "directory", dbpath), 1;
        if (r == -EACCES)
                return log_error(r, "database '%s' cannot be opened for writing: check the permissions of the file "
                                    "and its directory", dbpath), 1;
        if (r < 0)
                return log_error_errno(r, "cannot open database '%s'", dbpath), 1;
        flc.max_inflight = lim.threads > 1 ? lim.threads - 1 : 1; /* one HTTP thread stays for the rest */
        r = fleetlock_open(&flc, dbpath, (int)busy_ms, &s.fleetlock);
        if (r < 0)
                return log_error_errno(r, "cannot set up the FleetLock semaphores (%s)",
                                       flc.etcd.n_endpoints ? "--lock-etcd options" : dbpath), 1;
        if ((r = payload_cache_new(&s.cache)) < 0 || (r = channel_cache_new(&s.channels)) < 0)
                return log_error_errno(r, "out of memory"), 1;

        /* Block the stop signals in every thread; main waits for them with sigwait(). */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = server_http_start(&s, listen_addr, &lim);
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
        fleetlock_close(s.fleetlock);
        r = server_db_close(s.db); /* logs what it could not write */
        payload_cache_free(s.cache);
        channel_cache_free(s.channels);
        close(s.reldir_fd);
        return r < 0 ? 1 : 0;
}
