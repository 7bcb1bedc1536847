/* tests/unit/test-outfile.c — temp files of atomic outputs: removed when a signal kills the process, target checks. */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "unit.h"
#include "outfile.h"

static char *path_in(const char *name) {
        static char buf[4][600];
        static int n;
        char *p = buf[n++ % 4];
        snprintf(p, 600, "%s/%s", unit_tmpdir(), name);
        return p;
}

static size_t count_temps(const char *prefix) {
        char cmd[800], out[64] = "";
        snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^%s\\.tmp' || true", unit_tmpdir(), prefix);
        FILE *f = popen(cmd, "r");
        if (f) {
                if (!fgets(out, sizeof out, f))
                        out[0] = 0;
                pclose(f);
        }
        return (size_t)strtoul(out, NULL, 10);
}

/* In a child: register a temp file, then die by sig (sent to itself, and from another thread-free context). */
static void die_with_temp(int sig, bool forget) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                if (outfile_install_signal_cleanup() < 0)
                        _exit(3);
                char tmpl[600];
                snprintf(tmpl, sizeof tmpl, "%s", path_in(forget ? "kept.tmpXXXXXX" : "out.tmpXXXXXX"));
                int slot = -1;
                int fd = outfile_mkostemp(tmpl, O_CLOEXEC, &slot);
                if (fd < 0 || slot < 0)
                        _exit(4);
                if (forget)
                        outfile_forget(slot);
                kill(getpid(), sig);
                _exit(5); /* not reached: the signal kills us */
        }
        int st = 0;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        CHECK(WIFSIGNALED(st));
        if (WIFSIGNALED(st))
                CHECK_EQ(WTERMSIG(st), sig);
}

static void test_signal_cleanup(void) {
        die_with_temp(SIGTERM, false);
        CHECK_EQ(count_temps("out"), 0);
        die_with_temp(SIGINT, false);
        CHECK_EQ(count_temps("out"), 0);
        die_with_temp(SIGHUP, false);
        CHECK_EQ(count_temps("out"), 0);
        /* forgotten (already renamed into place): left alone */
        die_with_temp(SIGTERM, true);
        CHECK_EQ(count_temps("kept"), 1);
}

static void test_slots(void) {
        char t[OUTFILE_SLOTS + 1][600];
        int slots[OUTFILE_SLOTS + 1], fds[OUTFILE_SLOTS + 1];
        for (int i = 0; i <= OUTFILE_SLOTS; i++) {
                snprintf(t[i], sizeof t[i], "%s", path_in("slot.tmpXXXXXX"));
                fds[i] = outfile_mkostemp(t[i], O_CLOEXEC, &slots[i]);
        }
        for (int i = 0; i < OUTFILE_SLOTS; i++)
                CHECK(fds[i] >= 0);
        CHECK_EQ(fds[OUTFILE_SLOTS], -EMFILE);
        outfile_forget(slots[0]);
        snprintf(t[OUTFILE_SLOTS], sizeof t[0], "%s", path_in("slot.tmpXXXXXX"));
        fds[OUTFILE_SLOTS] = outfile_mkostemp(t[OUTFILE_SLOTS], O_CLOEXEC, &slots[OUTFILE_SLOTS]);
        CHECK(fds[OUTFILE_SLOTS] >= 0);
        CHECK_EQ(slots[OUTFILE_SLOTS], slots[0]);
        for (int i = 0; i <= OUTFILE_SLOTS; i++) {
                if (fds[i] < 0)
                        continue;
                close(fds[i]);
                unlink(t[i]);
                outfile_forget(slots[i]);
        }
        char bad[600] = "/nonexistent-dir/x.tmpXXXXXX";
        int slot = 77;
        CHECK_EQ(outfile_mkostemp(bad, O_CLOEXEC, &slot), -ENOENT);
        CHECK_EQ(slot, 77);
}

static void test_check_target(void) {
        const char *what = NULL;
        CHECK_EQ(outfile_check_target(path_in("absent"), &what), 0);
        const char *reg = path_in("regular");
        int fd = open(reg, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        close(fd);
        CHECK_EQ(outfile_check_target(reg, &what), 0);
        const char *lnk = path_in("link");
        CHECK(symlink("regular", lnk) == 0);
        CHECK_EQ(outfile_check_target(lnk, &what), -EEXIST);
        CHECK_STREQ(what, "a symbolic link");
        const char *fifo = path_in("fifo");
        CHECK(mkfifo(fifo, 0600) == 0);
        CHECK_EQ(outfile_check_target(fifo, &what), -EEXIST);
        CHECK_STREQ(what, "a FIFO");
        CHECK_EQ(outfile_check_target(unit_tmpdir(), &what), -EEXIST);
        CHECK_STREQ(what, "a directory");
        CHECK_EQ(outfile_check_target("/dev/null", &what), -EEXIST);
        CHECK_STREQ(what, "a character device");
        CHECK_EQ(outfile_check_target("/dev/stdout", &what), -EEXIST); /* a symlink on Linux */
}

int main(void) {
        RUN(test_check_target);
        RUN(test_slots);
        RUN(test_signal_cleanup);
        return unit_main_end();
}
