/* updater/lock/lockctl-main.c — cairn-lockctl, kept as a thin alias of `cairnctl lock-status|lock|unlock|set-max`
 * for scripts written against part 1 (its status verb is "status", as locksmithctl's). */
#include "lockctl.h"
#include "log.h"

int main(int argc, char **argv) {
        log_init(argv[0]);
        return lock_cli_main(argc, argv, "status", NULL);
}
