/* tests/unit/test-provision.c — the Ignition subset: a config applied to a scratch root (files, modes, owners,
 * users, groups, keys, links), and every refusal leaving the root exactly as it was. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sys/stat.h>

#include "unit.h"
#include "fileio.h"
#include "macro.h"
#include "provision/ignition.h"

static char root[600];
static int nroot;

/* A fresh root with the factory /etc of a Cairn image. */
static void fresh_root(void) {
        snprintf(root, sizeof root, "%s/root%d", unit_tmpdir(), nroot++);
        char p[700];
        mkdir(root, 0755);
        snprintf(p, sizeof p, "%s/etc", root);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/var", root);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/root", root);
        mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/etc/passwd", root);
        const char *pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
        write_file_atomic(p, pw, strlen(pw), 0644);
        snprintf(p, sizeof p, "%s/etc/group", root);
        const char *gr = "root:x:0:\nwheel:x:10:\nsudo:x:27:\nnogroup:x:65534:\n";
        write_file_atomic(p, gr, strlen(gr), 0644);
        snprintf(p, sizeof p, "%s/etc/os-release", root);
        CHECK(symlink("../usr/lib/os-release", p) == 0);
        snprintf(p, sizeof p, "%s/etc/existing", root);
        write_file_atomic(p, "old\n", 4, 0644);
}

/* A listing of everything under root: path, type, mode, owner, size (and link target). */
static char listing[65536];
static size_t listing_len;
static int list_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
        char t[256] = "";
        if (S_ISLNK(st->st_mode)) {
                ssize_t n = readlink(path, t, sizeof t - 1);
                t[n > 0 ? n : 0] = 0;
        }
        listing_len += (size_t)snprintf(listing + listing_len, sizeof listing - listing_len, "%s %o %u:%u %lld %s\n",
                                        path + strlen(root), st->st_mode, st->st_uid, st->st_gid, (long long)st->st_size, t);
        return 0;
}
static char *snapshot(void) {
        listing_len = 0;
        nftw(root, list_one, 16, FTW_PHYS);
        return strdup(listing);
}

static char *slurp(const char *rel) {
        char p[800];
        snprintf(p, sizeof p, "%s%s", root, rel);
        char *b = NULL;
        size_t n;
        return read_file_bounded(p, 1 << 20, &b, &n) < 0 ? NULL : b;
}

static int fake_fetch(const char *url, size_t max, char **ret, size_t *ret_len, struct prov_err *err) {
        if (strcmp(url, "http://10.0.2.100/remote") == 0) {
                *ret = strdup("remote data\n");
                *ret_len = strlen(*ret);
                return 0;
        }
        snprintf(err->msg, sizeof err->msg, "cannot fetch '%s'", url);
        return -EIO;
}

/* Parse, stage and apply: 0, or the error with err filled. */
static int run(const char *json, struct prov_err *err) {
        struct prov_plan *p = NULL;
        memset(err, 0, sizeof *err);
        int r = prov_parse(json, strlen(json), &p, err);
        if (r >= 0)
                r = prov_stage(p, root, fake_fetch, err);
        if (r >= 0)
                r = prov_apply(p, root, err);
        prov_plan_free(p);
        return r;
}

static void test_data_url(void) {
        char *d;
        size_t n;
        CHECK_EQ(prov_data_url_decode("data:,a%20b%0A", &d, &n), 0);
        CHECK_EQ(n, 4);
        CHECK(memcmp(d, "a b\n", 4) == 0);
        free(d);
        CHECK_EQ(prov_data_url_decode("data:text/plain;charset=utf-8;base64,aGkK", &d, &n), 0);
        CHECK_EQ(n, 3);
        CHECK(memcmp(d, "hi\n", 3) == 0);
        free(d);
        CHECK_EQ(prov_data_url_decode("data:;base64,aGk", &d, &n), 0); /* no padding */
        CHECK_EQ(n, 2);
        free(d);
        CHECK_EQ(prov_data_url_decode("data:,", &d, &n), 0);
        CHECK_EQ(n, 0);
        free(d);
        CHECK(prov_data_url_decode("data:;base64,a@@@", &d, &n) < 0);
        CHECK(prov_data_url_decode("data:;base64,aGk=x", &d, &n) < 0);
        CHECK(prov_data_url_decode("data:;base64,a", &d, &n) < 0);
        CHECK(prov_data_url_decode("data:,%ZZ", &d, &n) < 0);
        CHECK(prov_data_url_decode("data:,%4", &d, &n) < 0);
        CHECK(prov_data_url_decode("data:no-comma", &d, &n) < 0);
        CHECK(prov_data_url_decode("http://x", &d, &n) < 0);
}

static void test_paths(void) {
        CHECK(prov_path_allowed("/etc/hostname"));
        CHECK(prov_path_allowed("/var/lib/x"));
        CHECK(prov_path_allowed("/home/core/.bashrc"));
        CHECK(prov_path_allowed("/root/x"));
        CHECK(prov_path_allowed("/opt/bin/tool"));
        CHECK(!prov_path_allowed("/usr/bin/x"));
        CHECK(!prov_path_allowed("/etc"));
        CHECK(!prov_path_allowed("/etc/"));
        CHECK(!prov_path_allowed("/etc/../usr/x"));
        CHECK(!prov_path_allowed("/etc/./x"));
        CHECK(!prov_path_allowed("/etc//x"));
        CHECK(!prov_path_allowed("etc/x"));
        CHECK(!prov_path_allowed("/etcetera/x"));
        CHECK(!prov_path_allowed("/boot/x"));
        CHECK(!prov_path_allowed(""));
}

static void test_full_config(void) {
        fresh_root();
        struct prov_err err;
        const char *cfg =
                "{\"ignition\":{\"version\":\"3.3.0\"},"
                "\"passwd\":{\"groups\":[{\"name\":\"ops\",\"gid\":2000}],"
                "\"users\":[{\"name\":\"core\",\"sshAuthorizedKeys\":[\"ssh-ed25519 AAAAC3 core@test\"],\"groups\":[\"sudo\",\"ops\"],"
                "\"passwordHash\":\"$6$salt$hash\"},"
                "{\"name\":\"root\",\"sshAuthorizedKeys\":[\"ssh-ed25519 AAAAroot r\"]}]},"
                "\"storage\":{\"files\":["
                "{\"path\":\"/etc/hostname\",\"mode\":420,\"contents\":{\"source\":\"data:,myhost%0A\"}},"
                "{\"path\":\"/opt/bin/hello\",\"mode\":493,\"user\":{\"name\":\"core\"},\"group\":{\"name\":\"ops\"},"
                "\"contents\":{\"source\":\"data:;base64,aGkK\",\"verification\":{\"hash\":"
                "\"sha256-98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\"}}},"
                "{\"path\":\"/var/lib/gz\",\"contents\":{\"compression\":\"gzip\",\"source\":"
                "\"data:;base64,H4sIAAAAAAACA8tIzcnJV0ivyizgAgA5fGNWCwAAAA==\"}},"
                "{\"path\":\"/var/lib/remote\",\"mode\":384,\"contents\":{\"source\":\"http://10.0.2.100/remote\","
                "\"verification\":{\"hash\":\"sha512-949755f5eff4be2840f0f488b5721da881afa2434659bdacc6f3a16bc635f42506d7ae5119e398bc9370847e671efa7be065371e76a93882b94fd2bb4342865b\"}}},"
                "{\"path\":\"/etc/existing\",\"overwrite\":true,\"contents\":{\"source\":\"data:,new\"}},"
                "{\"path\":\"/var/empty-file\"}],"
                "\"directories\":[{\"path\":\"/var/lib/app/data\",\"mode\":448,\"user\":{\"id\":1234}}],"
                "\"links\":[{\"path\":\"/etc/motd\",\"target\":\"/etc/hostname\"},"
                "{\"path\":\"/var/lib/hard\",\"target\":\"/var/lib/remote\",\"hard\":true}]}}";
        int r = run(cfg, &err);
        CHECK_EQ(r, 0);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", err.msg);
                return;
        }
        char *s;
        CHECK_STREQ(s = slurp("/etc/hostname"), "myhost\n");
        free(s);
        CHECK_STREQ(s = slurp("/opt/bin/hello"), "hi\n");
        free(s);
        CHECK_STREQ(s = slurp("/var/lib/gz"), "hello gzip\n");
        free(s);
        CHECK_STREQ(s = slurp("/var/lib/remote"), "remote data\n");
        free(s);
        CHECK_STREQ(s = slurp("/etc/existing"), "new");
        free(s);
        CHECK_STREQ(s = slurp("/var/empty-file"), "");
        free(s);
        struct stat st;
        char p[800];
        snprintf(p, sizeof p, "%s/opt/bin/hello", root);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755 && st.st_uid == 1000 && st.st_gid == 2000);
        snprintf(p, sizeof p, "%s/var/lib/remote", root);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_nlink == 2);
        snprintf(p, sizeof p, "%s/var/lib/app/data", root);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == 1234);
        snprintf(p, sizeof p, "%s/etc/motd", root);
        char t[64] = "";
        CHECK(readlink(p, t, sizeof t - 1) == 13 && strcmp(t, "/etc/hostname") == 0);
        snprintf(p, sizeof p, "%s/home/core/.ssh/authorized_keys", root);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == 1000 && st.st_gid == 1000);
        snprintf(p, sizeof p, "%s/home/core", root);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == 1000);
        CHECK_STREQ(s = slurp("/home/core/.ssh/authorized_keys"), "ssh-ed25519 AAAAC3 core@test\n");
        free(s);
        CHECK_STREQ(s = slurp("/root/.ssh/authorized_keys"), "ssh-ed25519 AAAAroot r\n");
        free(s);
        s = slurp("/etc/passwd");
        CHECK(s && strstr(s, "\ncore:x:1000:1000::/home/core:/bin/sh\n"));
        CHECK(s && strncmp(s, "root:x:0:0:root:/root:/bin/sh\n", 30) == 0);
        free(s);
        s = slurp("/etc/group");
        CHECK(s && strstr(s, "\nsudo:x:27:core\n") && strstr(s, "\nops:x:2000:core\n") && strstr(s, "\ncore:x:1000:\n"));
        free(s);
        s = slurp("/etc/shadow");
        CHECK(s && strstr(s, "core:$6$salt$hash:") && strstr(s, "root:*:"));
        free(s);
        /* no temporary names left behind */
        char *all = snapshot();
        CHECK(!strstr(all, ".cairn-provision"));
        free(all);
}

struct bad {
        const char *name, *json, *want;
};

static void test_refusals(void) {
        static char big[(10u << 20) + 64];
        memset(big, ' ', sizeof big - 1);
        memcpy(big, "{\"ignition\":{\"version\":\"3.3.0\"}}", 32);
        big[sizeof big - 1] = 0;
#define F(x) "{\"ignition\":{\"version\":\"3.3.0\"},\"storage\":{\"files\":[{\"path\":\"/etc/a\",\"contents\":{\"source\":\"data:,a\"}}," x "]}}"
        const struct bad cases[] = {
                { "not json", "{\"ignition\": {\"version\": \"3.3.0\"", "not valid JSON" },
                { "not json at all", "hello", "not valid JSON" },
                { "trailing text", "{\"ignition\":{\"version\":\"3.3.0\"}} x", "not valid JSON" },
                { "array", "[]", "not a JSON object" },
                { "no ignition", "{\"storage\":{}}", "no 'ignition' object" },
                { "spec 2", "{\"ignition\":{\"version\":\"2.2.0\"}}", "version '2.2.0' is not supported" },
                { "spec 3.9", "{\"ignition\":{\"version\":\"3.9.0\"}}", "not supported" },
                { "no version", "{\"ignition\":{}}", "'ignition.version' is required" },
                { "systemd", "{\"ignition\":{\"version\":\"3.3.0\"},\"systemd\":{\"units\":[{\"name\":\"a.service\"}]}}",
                  "unsupported field 'systemd'" },
                { "disks", "{\"ignition\":{\"version\":\"3.3.0\"},\"storage\":{\"disks\":[{\"device\":\"/dev/vda\"}]}}",
                  "unsupported field 'storage.disks'" },
                { "user system", "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"a\",\"system\":true}]}}",
                  "unsupported field 'passwd.users[0].system'" },
                { "merge", "{\"ignition\":{\"version\":\"3.3.0\",\"config\":{\"merge\":[{\"source\":\"http://x\"}]}}}",
                  "unsupported field 'ignition.config'" },
                { "append", F("{\"path\":\"/etc/b\",\"append\":[{\"source\":\"data:,x\"}]}"), "unsupported field 'storage.files[1].append'" },
                { "unknown", F("{\"path\":\"/etc/b\",\"colour\":1}"), "unknown field 'storage.files[1].colour'" },
                { "bad base64", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"data:;base64,@@@\"}}"), "data: URL does not decode" },
                { "bad escape", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"data:,%zz\"}}"), "data: URL does not decode" },
                { "hash mismatch", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"data:,hi%0A\",\"verification\":{\"hash\":"
                                     "\"sha256-00ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\"}}}"),
                  "do not match contents.verification.hash" },
                { "remote hash mismatch", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"http://10.0.2.100/remote\",\"verification\":{\"hash\":"
                                            "\"sha256-00ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\"}}}"),
                  "do not match" },
                { "fetch fails", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"http://10.0.2.100/missing\"}}"), "cannot fetch" },
                { "bad hash form", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"data:,x\",\"verification\":{\"hash\":\"md5-00\"}}}"),
                  "only sha512-HEX and sha256-HEX" },
                { "tftp", F("{\"path\":\"/etc/b\",\"contents\":{\"source\":\"tftp://x/y\"}}"), "scheme 'tftp' is not supported" },
                { "usr path", F("{\"path\":\"/usr/bin/evil\",\"contents\":{\"source\":\"data:,x\"}}"), "'/usr/bin/evil' is not allowed" },
                { "dotdot path", F("{\"path\":\"/etc/../usr/x\"}"), "is not allowed" },
                { "relative path", F("{\"path\":\"etc/x\"}"), "is not allowed" },
                { "symlinked parent", F("{\"path\":\"/etc/os-release/x\"}"), "is a symbolic link" },
                { "exists", F("{\"path\":\"/etc/existing\",\"contents\":{\"source\":\"data:,x\"}}"), "exists already" },
                { "exists as dir", F("{\"path\":\"/etc\",\"overwrite\":true}"), "is not allowed" },
                { "duplicate", F("{\"path\":\"/etc/a\"}"), "also written by" },
                { "file as parent", F("{\"path\":\"/etc/a/b\"}"), "cannot both exist" },
                { "mode range", F("{\"path\":\"/etc/b\",\"mode\":99999}"), "out of range" },
                { "mode type", F("{\"path\":\"/etc/b\",\"mode\":\"0644\"}"), "must be an integer" },
                { "missing group", "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"a\",\"groups\":[\"docker\"]}]}}",
                  "group 'docker' does not exist" },
                { "bad user name", "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"a:b\"}]}}",
                  "not a valid user name" },
                { "key with newline", "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"a\",\"sshAuthorizedKeys\":[\"k\\nroot\"]}]}}",
                  "single-line" },
                { "hash colon", "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"a\",\"passwordHash\":\"x:0\"}]}}",
                  "may not contain ':'" },
                { "owner unknown", F("{\"path\":\"/etc/b\",\"user\":{\"name\":\"nobodyhere\"}}"), "no user 'nobodyhere'" },
                { "hard link outside", "{\"ignition\":{\"version\":\"3.3.0\"},\"storage\":{\"links\":[{\"path\":\"/etc/l\",\"hard\":true,\"target\":\"/usr/bin/sh\"}]}}",
                  "hard link target" },
                { "gzip bad", F("{\"path\":\"/etc/b\",\"contents\":{\"compression\":\"gzip\",\"source\":\"data:,notgzip\"}}"), "not valid gzip" },
                { "nul", "{\"ignition\":{\"version\":\"3.3.0\\u0000\"}}", "NUL" },
                { "10 MB config", big, "larger than 2 MiB" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                fresh_root();
                char *before = snapshot();
                struct prov_err err;
                int r = run(cases[i].json, &err);
                char *after = snapshot();
                if (r >= 0 || !strstr(err.msg, cases[i].want) || strcmp(before, after) != 0 || strchr(err.msg, '\n')) {
                        fprintf(stderr, "case '%s': r=%d msg='%s' (want '%s')%s\n", cases[i].name, r, err.msg, cases[i].want,
                                strcmp(before, after) ? " and the root changed" : "");
                        unit_failures++;
                }
                free(before);
                free(after);
        }
}

/* A failure while the temporary names are being written takes back what was made. */
static void test_apply_rollback(void) {
        fresh_root();
        const char *cfg = "{\"ignition\":{\"version\":\"3.3.0\"},\"passwd\":{\"users\":[{\"name\":\"core\"}]},"
                          "\"storage\":{\"files\":[{\"path\":\"/etc/a\",\"contents\":{\"source\":\"data:,a\"}},"
                          "{\"path\":\"/opt/x/y\",\"contents\":{\"source\":\"data:,b\"}}]}}";
        struct prov_plan *p = NULL;
        struct prov_err err;
        CHECK_EQ(prov_parse(cfg, strlen(cfg), &p, &err), 0);
        CHECK_EQ(prov_stage(p, root, fake_fetch, &err), 0);
        /* something appears between staging and applying: /opt/x as a file */
        char q[800];
        snprintf(q, sizeof q, "%s/opt", root);
        mkdir(q, 0755);
        snprintf(q, sizeof q, "%s/opt/x", root);
        write_file_atomic(q, "", 0, 0644);
        char *before = snapshot();
        CHECK(prov_apply(p, root, &err) < 0);
        CHECK(strstr(err.msg, "/opt/x/y") != NULL);
        char *after = snapshot();
        CHECK_STREQ(after, before);
        free(before);
        free(after);
        prov_plan_free(p);
}

static void test_second_user_ids(void) {
        fresh_root();
        struct prov_err err;
        const char *cfg = "{\"ignition\":{\"version\":\"3.0.0\"},\"passwd\":{\"users\":[{\"name\":\"a\"},{\"name\":\"b\",\"uid\":1000}]}}";
        CHECK(run(cfg, &err) < 0 && strstr(err.msg, "uid 1000 is taken"));
        cfg = "{\"ignition\":{\"version\":\"3.0.0\"},\"passwd\":{\"users\":[{\"name\":\"a\",\"uid\":1000},{\"name\":\"b\"}]}}";
        CHECK_EQ(run(cfg, &err), 0);
        char *s = slurp("/etc/passwd");
        CHECK(s && strstr(s, "a:x:1000:1000:") && strstr(s, "b:x:1001:1001:"));
        free(s);
}

int main(void) {
        RUN(test_data_url);
        RUN(test_paths);
        RUN(test_full_config);
        RUN(test_refusals);
        RUN(test_apply_rollback);
        RUN(test_second_user_ids);
        return unit_main_end();
}
