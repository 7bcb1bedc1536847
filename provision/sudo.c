/* provision/sudo.c — cairn-sudo, installed setuid root as /usr/bin/sudo: members of group "sudo" or "wheel"
 * (and root) run a command as root (or -u USER) without a password, as Flatcar's core user does. No PAM, no
 * sudoers: the group is the policy. Usage: sudo [-n] [-E] [-u USER] [-i | -s | [--] COMMAND [ARG...]] */
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int die(const char *msg, const char *arg) {
        fprintf(stderr, "sudo: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
        return 1;
}

static bool allowed(void) {
        if (getuid() == 0)
                return true;
        gid_t groups[256];
        int n = getgroups((int)(sizeof groups / sizeof groups[0]), groups);
        if (n < 0)
                return false;
        for (int i = -1; i < n; i++) {
                struct group *g = getgrgid(i < 0 ? getgid() : groups[i]);
                if (g && (strcmp(g->gr_name, "sudo") == 0 || strcmp(g->gr_name, "wheel") == 0))
                        return true;
        }
        return false;
}

int main(int argc, char **argv) {
        const char *user = "root";
        bool login = false, shell = false, keep_env = false;
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                } else if (strcmp(a, "-u") == 0 && i + 1 < argc)
                        user = argv[++i];
                else if (strncmp(a, "-u", 2) == 0 && a[2])
                        user = a + 2;
                else if (strcmp(a, "-i") == 0)
                        login = true;
                else if (strcmp(a, "-s") == 0)
                        shell = true;
                else if (strcmp(a, "-n") == 0)
                        ; /* never asks anyway */
                else if (strcmp(a, "-E") == 0)
                        keep_env = true;
                else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        printf("usage: sudo [-n] [-E] [-u USER] [-i | -s | [--] COMMAND [ARG...]]\n"
                               "Members of group sudo or wheel run commands as USER (default root), without a password.\n");
                        return 0;
                } else
                        return die("unknown option", a);
        }
        if (!login && !shell && i >= argc)
                return die("no command given (try sudo -i)", NULL);
        if (!allowed()) {
                struct passwd *me = getpwuid(getuid());
                return die("not in group sudo or wheel; refused", me ? me->pw_name : NULL);
        }
        struct passwd *pw = getpwnam(user);
        if (!pw)
                return die("no such user", user);
        char uidbuf[32], gidbuf[32];
        snprintf(uidbuf, sizeof uidbuf, "%u", (unsigned)getuid());
        snprintf(gidbuf, sizeof gidbuf, "%u", (unsigned)getgid());
        struct passwd *me = getpwuid(getuid());
        const char *term = getenv("TERM");
        char *t = term ? strdup(term) : NULL;
        if (!keep_env)
                clearenv();
        setenv("PATH", "/usr/sbin:/usr/bin", 1);
        setenv("HOME", pw->pw_dir, 1);
        setenv("USER", pw->pw_name, 1);
        setenv("LOGNAME", pw->pw_name, 1);
        setenv("SHELL", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh", 1);
        setenv("SUDO_UID", uidbuf, 1);
        setenv("SUDO_GID", gidbuf, 1);
        if (me)
                setenv("SUDO_USER", me->pw_name, 1);
        if (t)
                setenv("TERM", t, 1);
        if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                return die("cannot change to the target user", user);
        if (login || shell) {
                const char *sh = getenv("SHELL");
                if (login && chdir(pw->pw_dir) < 0 && chdir("/") < 0)
                        return die("cannot change directory", pw->pw_dir);
                if (i < argc) { /* sudo -s CMD: run it through the shell */
                        size_t n = 1;
                        for (int k = i; k < argc; k++)
                                n += strlen(argv[k]) + 1;
                        char *cmd = calloc(1, n);
                        if (!cmd)
                                return die("out of memory", NULL);
                        for (int k = i; k < argc; k++) {
                                strcat(cmd, argv[k]);
                                if (k + 1 < argc)
                                        strcat(cmd, " ");
                        }
                        execl(sh, sh, "-c", cmd, (char *)NULL);
                } else
                        execl(sh, login ? "-sh" : sh, (char *)NULL);
                return die("cannot run the shell", sh);
        }
        execvp(argv[i], argv + i);
        return die("cannot run", argv[i]);
}
