/* updater/agent/health.c — the post-boot health gate (health.d scripts with a timeout; the pre-reboot.d and
 * post-boot.d hooks run the same way) and the reboot command. The reboot strategies live in reboot.c. */
#include "agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define HEALTH_SCRIPTS_MAX 256

static int name_cmp(const void *a, const void *b) {
        return strcmp(strrchr(*(char *const *)a, '/'), strrchr(*(char *const *)b, '/'));
}

void agent_child_reset_signals(void) {
        /* Dispositions first (a handler or SIG_IGN would otherwise take an unblocked signal), then the mask. */
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &sa, NULL); /* EINVAL for the few that cannot be changed */
        sigset_t none;
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Wait for pid at most timeout_ms; kill its process group on timeout (or a stop request). Returns the wait status,
 * -ETIMEDOUT or -ECANCELED. */
static int wait_timeout(pid_t pid, unsigned timeout_ms) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                int st;
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid)
                        return st;
                if (w < 0 && errno != EINTR)
                        return negative_errno();
                clock_gettime(CLOCK_MONOTONIC, &now);
                long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                bool cancel = agent_cancelled();
                if (ms >= (long)timeout_ms || cancel) {
                        kill(-pid, SIGKILL);
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return cancel ? -ECANCELED : -ETIMEDOUT;
                }
                struct timespec d = { 0, 20 * 1000 * 1000 };
                nanosleep(&d, NULL);
        }
}

static int run_one(const char *path, unsigned timeout_sec, char *const *envp) {
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                agent_child_reset_signals();
                setpgid(0, 0);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, 0);
                if (envp) { /* a hook: its own environment (hook-env.c), from / */
                        if (chdir("/") < 0)
                                _exit(127);
                        char *const argv[] = { (char *)path, NULL };
                        execve(path, argv, envp);
                } else
                        execl(path, path, (char *)NULL);
                _exit(127);
        }
        setpgid(pid, pid);
        int st = wait_timeout(pid, timeout_sec * 1000u);
        if (st < 0)
                return st;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

int agent_health_run(const char *const *dirs, size_t n_dirs, unsigned timeout_sec, const char **ret_failed) {
        return agent_hooks_run(dirs, n_dirs, timeout_sec, NULL, ret_failed);
}

int agent_hooks_run(const char *const *dirs, size_t n_dirs, unsigned timeout_sec, char *const *envp,
                    const char **ret_failed) {
        static char failed[PATH_MAX];
        char *names[HEALTH_SCRIPTS_MAX];
        size_t owner[HEALTH_SCRIPTS_MAX];
        size_t n = 0;
        int r = 0;
        for (size_t d = 0; d < n_dirs && r >= 0; d++) {
                DIR *dir = opendir(dirs[d]);
                if (!dir)
                        continue; /* a missing directory holds no checks */
                struct dirent *de;
                while ((de = readdir(dir))) {
                        if (de->d_name[0] == '.')
                                continue;
                        bool masked = false;
                        for (size_t i = 0; i < n; i++)
                                masked |= strcmp(names[i], de->d_name) == 0;
                        if (masked)
                                continue;
                        char path[PATH_MAX];
                        snprintf(path, sizeof path, "%s/%s", dirs[d], de->d_name);
                        struct stat stt;
                        if (stat(path, &stt) < 0 || !S_ISREG(stt.st_mode) || !(stt.st_mode & 0111))
                                continue;
                        if (n == HEALTH_SCRIPTS_MAX) {
                                r = -E2BIG;
                                break;
                        }
                        names[n] = strdup(de->d_name);
                        if (!names[n]) {
                                r = -ENOMEM;
                                break;
                        }
                        owner[n++] = d;
                }
                closedir(dir);
        }
        char *paths[HEALTH_SCRIPTS_MAX];
        size_t m = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", dirs[owner[i]], names[i]);
                paths[m] = strdup(path);
                if (!paths[m]) {
                        r = -ENOMEM;
                        break;
                }
                m++;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        /* Run in the order of the script names, whichever directory they come from. */
        qsort(paths, m, sizeof paths[0], name_cmp);
        for (size_t i = 0; i < m && r >= 0; i++) {
                r = run_one(paths[i], timeout_sec, envp);
                if (r < 0) {
                        snprintf(failed, sizeof failed, "%s", paths[i]);
                        if (ret_failed)
                                *ret_failed = failed;
                }
        }
        for (size_t i = 0; i < m; i++)
                free(paths[i]);
        return r;
}

int agent_run_command(const char *command) {
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                agent_child_reset_signals();
                execl("/bin/sh", "sh", "-c", command, (char *)NULL);
                _exit(127);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}
