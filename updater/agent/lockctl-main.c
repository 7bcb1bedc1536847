/* updater/agent/lockctl-main.c — cairn-lockctl: the lock verbs (updater/lock/lockctl.c) as a program of their own.
 * `cairnctl lock-status|lock|unlock|set-max` runs it (CAIRN_LOCKCTL_AS_CAIRNCTL=1: update.conf's lock settings are
 * the defaults and the status verb is "lock-status"); run by itself it keeps part 1's interface (status verb
 * "status", no defaults from update.conf), as locksmithctl's. */
#include <stdlib.h>

#include "agent.h"
#include "lock/lockctl.h"
#include "log.h"

/* update.conf's lock settings as the lock verbs' defaults. */
static int lock_defaults(const char *root, LockCliDefaults *d) {
        static AgentConfig c;
        agent_config_init(&c);
        AgentConfigError e = { 0 };
        int r = agent_config_load(&c, root, &e);
        if (r < 0) {
                char msg[1024];
                agent_config_error_format(&e, r, msg, sizeof msg);
                log_msg("%s", msg);
                return r;
        }
        *d = (LockCliDefaults){ .endpoints = c.etcd_endpoints, .group = c.lock_group, .ca_file = c.etcd_ca,
                                .cert_file = c.etcd_cert, .key_file = c.etcd_key, .user = c.etcd_user,
                                .password = c.etcd_password };
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *as = getenv("CAIRN_LOCKCTL_AS_CAIRNCTL");
        if (as && strcmp(as, "1") == 0) {
                unsetenv("CAIRN_LOCKCTL_AS_CAIRNCTL");
                return lock_cli_main(argc, argv, "lock-status", lock_defaults);
        }
        return lock_cli_main(argc, argv, "status", NULL);
}
