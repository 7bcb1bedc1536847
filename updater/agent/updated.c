/* updater/agent/updated.c — cairn-updated: parse options, be polite (nice/ionice), and run the agent's daemon loop. */
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "bootcfg/bootcfg.h"
#include "agent.h"
#include "log.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairn-updated [OPTIONS]\n"
                "Keeps this host on its release channel: checks the update server, writes the other /usr slot,\n"
                "makes it boot next, reboots per REBOOT_STRATEGY, and marks a new boot good after its health checks.\n"
                "  --once                 post-boot gate + one check/apply, then exit (0 ok, 1 error)\n"
                "  --root DIR             prefix for every default path (config, keys, os-release, state)\n"
                "  --disk PATH            disk image or block device holding USR-A/USR-B (default: discover)\n"
                "  --backend grubenv|gpt  boot selection backend (default grubenv)\n"
                "  --cmdline FILE         kernel command line with cairn.slot= (default /proc/cmdline)\n"
                "  --booted A|B           the booted slot (overrides the command line)\n"
                "  --state-dir DIR        default ROOT/var/lib/cairn\n"
                "  --socket PATH          default ROOT/run/cairn/updated.sock\n"
                "  --keys DIR             trusted release keys (default ROOT/usr/share/cairn/keys)\n"
                "  --machine-id ID        default: ROOT/etc/machine-id\n"
                "  --os-version V         running version (default: VERSION_ID of ROOT/usr/lib/os-release)\n"
                "  --board NAME           default: CAIRN_BOARD of os-release, else amd64\n"
                "  --boot-id ID           default: /proc/sys/kernel/random/boot_id\n"
                "  --server URL           overrides SERVER=\n"
                "  --group NAME           overrides GROUP=\n"
                "  --reboot-cmd CMD       overrides REBOOT_COMMAND= (run with /bin/sh -c)\n"
                "  --health-dir DIR       health checks (twice: first masks second; default ROOT/etc/cairn/health.d,\n"
                "                         ROOT/usr/lib/cairn/health.d)\n"
                "  --no-delta             download every chunk (do not reuse the active slot)\n"
                "  --no-nice              keep the normal CPU and I/O priority\n");
}

enum {
        OPT_ONCE = 256, OPT_ROOT, OPT_DISK, OPT_BACKEND, OPT_CMDLINE, OPT_BOOTED, OPT_STATE_DIR, OPT_SOCKET, OPT_KEYS,
        OPT_MACHINE_ID, OPT_OS_VERSION, OPT_BOARD, OPT_BOOT_ID, OPT_SERVER, OPT_GROUP, OPT_REBOOT_CMD, OPT_HEALTH_DIR,
        OPT_NO_DELTA, OPT_NO_NICE,
};

int main(int argc, char **argv) {
        log_init(argv[0]);
        /* A file-size limit (ulimit -f) must not kill the agent without a word: the write fails with EFBIG and the
         * agent says so. Children get SIG_DFL back (agent_child_reset_signals). */
        signal(SIGXFSZ, SIG_IGN);
        /* Chunk buffers are large and short-lived: keep them out of the heap so freeing them returns the memory
         * (glibc would otherwise raise its mmap threshold after the first free and keep them resident). */
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        static const struct option opts[] = {
                { "once", no_argument, NULL, OPT_ONCE },
                { "root", required_argument, NULL, OPT_ROOT },
                { "disk", required_argument, NULL, OPT_DISK },
                { "backend", required_argument, NULL, OPT_BACKEND },
                { "cmdline", required_argument, NULL, OPT_CMDLINE },
                { "booted", required_argument, NULL, OPT_BOOTED },
                { "state-dir", required_argument, NULL, OPT_STATE_DIR },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "keys", required_argument, NULL, OPT_KEYS },
                { "machine-id", required_argument, NULL, OPT_MACHINE_ID },
                { "os-version", required_argument, NULL, OPT_OS_VERSION },
                { "board", required_argument, NULL, OPT_BOARD },
                { "boot-id", required_argument, NULL, OPT_BOOT_ID },
                { "server", required_argument, NULL, OPT_SERVER },
                { "group", required_argument, NULL, OPT_GROUP },
                { "reboot-cmd", required_argument, NULL, OPT_REBOOT_CMD },
                { "health-dir", required_argument, NULL, OPT_HEALTH_DIR },
                { "no-delta", no_argument, NULL, OPT_NO_DELTA },
                { "no-nice", no_argument, NULL, OPT_NO_NICE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        AgentOptions o = { .booted = -1 };
        AgentDaemonOptions d = { 0 };
        size_t n_health = 0;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_ONCE: d.once = true; break;
                case OPT_ROOT: o.root = optarg; break;
                case OPT_DISK: o.disk = optarg; break;
                case OPT_BACKEND: {
                        enum bootcfg_backend_id id;
                        if (bootcfg_backend_parse(optarg, &id) < 0) {
                                log_msg("unknown backend \"%s\" (grubenv or gpt)", optarg);
                                return 2;
                        }
                        o.backend = (int)id;
                        break;
                }
                case OPT_CMDLINE: o.cmdline = optarg; break;
                case OPT_BOOTED:
                        o.booted = bootcfg_slot_parse(optarg);
                        if (o.booted < 0) {
                                log_msg("\"%s\" is not a slot (A or B)", optarg);
                                return 2;
                        }
                        break;
                case OPT_STATE_DIR: o.state_dir = optarg; break;
                case OPT_SOCKET: d.socket_path = optarg; break;
                case OPT_KEYS: o.keys_dir = optarg; break;
                case OPT_MACHINE_ID: o.machine_id = optarg; break;
                case OPT_OS_VERSION: o.os_version = optarg; break;
                case OPT_BOARD: o.board = optarg; break;
                case OPT_BOOT_ID: o.boot_id = optarg; break;
                case OPT_SERVER: o.server = optarg; break;
                case OPT_GROUP: o.group = optarg; break;
                case OPT_REBOOT_CMD: o.reboot_cmd = optarg; break;
                case OPT_HEALTH_DIR:
                        if (n_health == 2) {
                                log_msg("--health-dir given more than twice");
                                return 2;
                        }
                        o.health_dirs[n_health++] = optarg;
                        break;
                case OPT_NO_DELTA: o.no_delta = true; break;
                case OPT_NO_NICE: o.no_nice = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if (n_health == 1)
                o.health_dirs[1] = "/nonexistent";
        if (!o.no_nice) {
                /* The host's own work first: lowest CPU priority, best-effort I/O class at its lowest level. */
                /* I/O class first: whoever sees the nice value set can rely on the I/O class being set too. */
                (void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (2 << 13) | 7);
                (void)setpriority(PRIO_PROCESS, 0, 19);
        }
        char sock[PATH_MAX];
        if (!d.socket_path) {
                snprintf(sock, sizeof sock, "%s/run/cairn/updated.sock", o.root ? o.root : "");
                d.socket_path = sock;
        }
        char err[512] = "";
        Agent *a = NULL;
        int r = agent_new(&o, &a, err, sizeof err);
        if (r < 0) {
                log_msg("%s", err);
                return 1;
        }
        AgentState *st = agent_state(a);
        if (st->load_note[0]) {
                log_msg("state file \"%s\": %s", agent_state_path(a), st->load_note);
                st->load_note[0] = 0;
        }
        r = agent_daemon_run(a, &d);
        agent_free(a);
        return r < 0 ? 1 : 0;
}
