/* updater/lock/lockctl.h — the lock verbs' command line (status/lock/unlock/set-max), shared by cairnctl and
 * cairn-lockctl. */
#pragma once

/* Settings from the host's config that fill what options and environment leave unset (strings stay owned by the
 * callback's caller; NULL or "" unset). */
typedef struct LockCliDefaults {
        char *endpoints; /* comma list (modified when split) */
        const char *group, *ca_file, *cert_file, *key_file, *user, *password;
} LockCliDefaults;
/* Fill *d from ROOT's config; < 0 after printing one line on stderr. */
typedef int (*lock_cli_defaults_fn)(const char *root, LockCliDefaults *d);

/* argv[0] is the program; the verbs follow the options. status_name: what the status verb is called ("status"
 * for cairn-lockctl, "lock-status" for cairnctl). Returns the exit status. */
int lock_cli_main(int argc, char **argv, const char *status_name, lock_cli_defaults_fn load_defaults);
