/* common/outfile.c — owns temp files of atomic outputs: signal-time removal and the target-type check. */
#include "outfile.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>

static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP };

/* Read by the signal handler: a path is used only while its slot is armed (stored with release order). */
static char slot_path[OUTFILE_SLOTS][PATH_MAX];
static volatile sig_atomic_t slot_armed[OUTFILE_SLOTS];

/* Async-signal-safe: only unlink(), sigaction() and raise(). */
static void on_signal(int sig) {
        int saved = errno;
        for (size_t i = 0; i < OUTFILE_SLOTS; i++)
                if (__atomic_load_n(&slot_armed[i], __ATOMIC_ACQUIRE))
                        (void)unlink(slot_path[i]);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigemptyset(&dfl.sa_mask);
        (void)sigaction(sig, &dfl, NULL);
        /* still blocked while we run: delivered with the default action as soon as the handler returns */
        (void)raise(sig);
        errno = saved;
}

static void cleanup_set(sigset_t *set) {
        sigemptyset(set);
        for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++)
                sigaddset(set, cleanup_signals[i]);
}

int outfile_install_signal_cleanup(void) {
        struct sigaction sa = { .sa_handler = on_signal };
        cleanup_set(&sa.sa_mask); /* one handler at a time */
        for (size_t i = 0; i < ELEMENTSOF(cleanup_signals); i++) {
                struct sigaction old;
                if (sigaction(cleanup_signals[i], NULL, &old) < 0)
                        return negative_errno();
                if (old.sa_handler == SIG_IGN)
                        continue;
                if (sigaction(cleanup_signals[i], &sa, NULL) < 0)
                        return negative_errno();
        }
        return 0;
}

int outfile_mkostemp(char *template, int flags, int *ret_slot) {
        size_t len = strlen(template);
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        sigset_t block, old;
        cleanup_set(&block);
        int r = pthread_sigmask(SIG_BLOCK, &block, &old); /* in this thread; handlers elsewhere see only armed slots */
        if (r != 0)
                return -r;
        int slot = -1;
        for (int i = 0; i < OUTFILE_SLOTS && slot < 0; i++)
                if (!__atomic_load_n(&slot_armed[i], __ATOMIC_ACQUIRE))
                        slot = i;
        int fd = -EMFILE;
        if (slot >= 0) {
                fd = mkostemp(template, flags);
                if (fd < 0)
                        fd = negative_errno();
                else {
                        memcpy(slot_path[slot], template, len + 1);
                        __atomic_store_n(&slot_armed[slot], 1, __ATOMIC_RELEASE);
                }
        }
        int saved = errno;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        if (fd >= 0)
                *ret_slot = slot;
        return fd;
}

void outfile_forget(int slot) {
        if (slot >= 0 && slot < OUTFILE_SLOTS)
                __atomic_store_n(&slot_armed[slot], 0, __ATOMIC_RELEASE);
}

int outfile_check_target(const char *path, const char **ret_what) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        const char *what;
        switch (st.st_mode & S_IFMT) {
        case S_IFREG: return 0;
        case S_IFLNK: what = "a symbolic link"; break;
        case S_IFDIR: what = "a directory"; break;
        case S_IFCHR: what = "a character device"; break;
        case S_IFBLK: what = "a block device"; break;
        case S_IFIFO: what = "a FIFO"; break;
        case S_IFSOCK: what = "a socket"; break;
        default: what = "not a regular file"; break;
        }
        if (ret_what)
                *ret_what = what;
        return -EEXIST;
}
