/* updater/agent/cairnctl.c — cairnctl: talk to cairn-updated over its local socket; `status` falls back to the state
 * file; the lock verbs (lock-status, lock, unlock, set-max) talk to etcd directly, in cairn-lockctl
 * (updater/agent/lockctl-main.c, updater/lock/lockctl.c), which cairnctl runs for them. */
#include <getopt.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "measure.h"
#include "log.h"
#include "parse.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairnctl [OPTIONS] COMMAND\n"
                "commands:\n"
                "  status [--json]    state, versions, progress, last check, last error (from the state file\n"
                "                     when cairn-updated is not running)\n"
                "  check              ask the update server now; print whether an update is available\n"
                "  update [--force]   check and apply now (--force: also a version that rolled back before)\n"
                "  mark-good          mark the booted slot good\n"
                "  rollback           make the other (good) slot boot next\n"
                "  reboot             reboot now (no window) through the REBOOT_STRATEGY's lock and hooks\n"
                "  lock-status | lock [ID] | unlock [ID] | set-max N   the etcd reboot lock, like locksmithctl\n"
                "                     (cairnctl lock-status --help lists their options)\n"
                "options:\n"
                "  --root DIR         prefix of the default paths\n"
                "  --socket PATH      default ROOT/run/cairn/updated.sock\n"
                "  --state-dir DIR    default ROOT/var/lib/cairn\n"
                "Exit status: 0 ok, 1 error, 2 usage, 3 daemon not running.\n");
}

static int connect_daemon(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        return fd;
}

/* Send cmd and relay the answer: body lines to stdout, PROGRESS lines as a progress line on a terminal, until
 * the final OK/ERROR line. Returns 0 for OK, 1 for ERROR, 4 when nothing came back within timeout_sec (0: wait). */
static int converse(int fd, const char *cmd, bool show_ok, unsigned timeout_sec) {
        char line[8192];
        snprintf(line, sizeof line, "%s\n", cmd);
        if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0)
                return log_error_errno(negative_errno(), "cannot talk to cairn-updated"), 1;
        if (timeout_sec) {
                struct timeval tv = { .tv_sec = timeout_sec };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
        FILE *f = fdopen(fd, "r");
        if (!f)
                return 1;
        bool got_any = false;
        bool tty = isatty(STDOUT_FILENO);
        bool progress_shown = false;
        int rc = 1;
        bool done = false;
        while (fgets(line, sizeof line, f)) {
                got_any = true;
                if (strncmp(line, "PROGRESS ", 9) == 0) {
                        char state[64], ds[16], ts[16];
                        unsigned d = 0, t = 0;
                        if (sscanf(line + 9, "%63s %15s %15s", state, ds, ts) == 3 &&
                            parse_unsigned_range(ds, 0, UINT32_MAX, &d) >= 0 &&
                            parse_unsigned_range(ts, 0, UINT32_MAX, &t) >= 0 && tty) {
                                /* Chunk counts mean something only while an image is being written. */
                                bool applying = strcmp(state, "DOWNLOADING") == 0 || strcmp(state, "VERIFYING") == 0 ||
                                                strcmp(state, "FINALIZING") == 0;
                                if (applying)
                                        printf("\r%-20s %5.1f%% (%u/%u chunks)", state, t ? 100.0 * d / t : 0.0, d, t);
                                else
                                        printf("\r%-20s %-24s", state, "");
                                fflush(stdout);
                                progress_shown = true;
                        }
                        continue;
                }
                if (progress_shown) {
                        printf("\n");
                        progress_shown = false;
                }
                if (strncmp(line, "OK", 2) == 0 && (line[2] == '\n' || line[2] == ' ')) {
                        if (show_ok && line[2] == ' ')
                                fputs(line + 3, stdout);
                        rc = 0;
                        done = true;
                        break;
                }
                if (strncmp(line, "ERROR ", 6) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        log_msg("%s", line + 6);
                        done = true;
                        break;
                }
                fputs(line, stdout);
        }
        fclose(f);
        if (!done && !got_any && timeout_sec)
                return 4;
        if (!done)
                log_msg("cairn-updated closed the connection without an answer");
        return rc;
}

/* The lock verbs run in cairn-lockctl (beside this program), so that cairnctl itself, which prints a status,
 * links neither libcurl nor json-c. It is told to take update.conf's lock settings as its defaults and to call
 * its status verb "lock-status". */
static int exec_lockctl(char **argv) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0)
                return log_error_errno(negative_errno(), "cannot find this program's directory"), 1;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        char path[PATH_MAX];
        if (!slash || snprintf(path, sizeof path, "%.*s/cairn-lockctl", (int)(slash - self), self) >= (int)sizeof path)
                return log_error(-ENAMETOOLONG, "cannot find cairn-lockctl beside \"%s\"", self), 1;
        setenv("CAIRN_LOCKCTL_AS_CAIRNCTL", "1", 1);
        execv(path, argv);
        return log_error_errno(negative_errno(), "cannot run \"%s\" for the lock verbs", path), 1;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        /* The lock verbs have options of their own: hand the whole command line over. */
        for (int i = 1; i < argc; i++) {
                if (argv[i][0] == '-')
                        continue;
                if (strcmp(argv[i], "lock-status") == 0 || strcmp(argv[i], "lock") == 0 ||
                    strcmp(argv[i], "unlock") == 0 || strcmp(argv[i], "set-max") == 0)
                        return exec_lockctl(argv);
                if (i > 1 && argv[i - 1][0] == '-' && !strchr(argv[i - 1], '='))
                        continue; /* an option's value */
                break;
        }
        static const struct option opts[] = {
                { "root", required_argument, NULL, 'r' },
                { "socket", required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'd' },
                { "json", no_argument, NULL, 'j' },
                { "force", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *root = "", *sock = NULL, *state_dir = NULL;
        bool json = false, force = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r': root = optarg; break;
                case 's': sock = optarg; break;
                case 'd': state_dir = optarg; break;
                case 'j': json = true; break;
                case 'f': force = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind + 1 != argc) {
                usage(stderr);
                return 2;
        }
        const char *verb = argv[optind];
        char sbuf[PATH_MAX], dbuf[PATH_MAX];
        if (!sock) {
                snprintf(sbuf, sizeof sbuf, "%s/run/cairn/updated.sock", root);
                sock = sbuf;
        }
        if (!state_dir) {
                snprintf(dbuf, sizeof dbuf, "%s/var/lib/cairn", root);
                state_dir = dbuf;
        }
        const char *cmd;
        if (strcmp(verb, "status") == 0)
                cmd = json ? "status json" : "status";
        else if (strcmp(verb, "check") == 0)
                cmd = "check";
        else if (strcmp(verb, "update") == 0)
                cmd = force ? "update force" : "update";
        else if (strcmp(verb, "mark-good") == 0)
                cmd = "mark-good";
        else if (strcmp(verb, "rollback") == 0)
                cmd = "rollback";
        else if (strcmp(verb, "reboot") == 0)
                cmd = "reboot";
        else {
                log_msg("unknown command \"%s\"", verb);
                usage(stderr);
                return 2;
        }
        if ((json && strcmp(verb, "status") != 0) || (force && strcmp(verb, "update") != 0)) {
                usage(stderr);
                return 2;
        }

        bool status = strcmp(verb, "status") == 0;
        bool busy = false;
        int fd = connect_daemon(sock);
        if (fd >= 0) {
                /* The daemon answers between jobs; while it applies an update, status comes from the state file,
                 * which it keeps current at every checkpoint. */
                int r = converse(fd, cmd, true, status ? 2 : 0);
                if (r != 4)
                        return r;
                busy = true;
        } else if (!status) {
                log_error_errno(fd, "cairn-updated is not running (socket \"%s\")", sock);
                return 3;
        }
        /* The daemon is down (or busy): the state file tells what it last knew. */
        AgentState st;
        int r = agent_state_load(&st, state_dir);
        if (r < 0) {
                log_error_errno(r, "cannot read the state file \"%s/state\"", state_dir);
                return 1;
        }
        if (st.load_note[0])
                log_msg("state file \"%s/state\": %s", state_dir, st.load_note);
        /* The config says which strategy and window apply (the holders need the daemon, or lock-status). */
        AgentConfig cfg;
        agent_config_init(&cfg);
        AgentConfigError ce = { 0 };
        int cr = agent_config_load(&cfg, root, &ce);
        if (cr < 0) {
                char msg[1024];
                agent_config_error_format(&ce, cr, msg, sizeof msg);
                log_msg("%s", msg);
        }
        _cleanup_free_ char *text = NULL;
        r = agent_status_text_full(&st, cr < 0 ? NULL : &cfg, NULL, json, busy, time(NULL), &text);
        if (r >= 0)
                r = measure_status_merge(&text, state_dir, json);
        if (r < 0) {
                log_error_errno(r, "formatting the status");
                return 1;
        }
        fputs(text, stdout);
        return 0;
}
