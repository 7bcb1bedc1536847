/* tests/unit/test-recipe.c — recipe parsing: every directive, quoting, variables, comments, and errors with line numbers. */
#include <sys/stat.h>

#include "unit.h"
#include "fileio.h"
#include "macro.h"
#include "image/recipe.h"

static char dir[512];

static int parse(const char *text, struct recipe **ret, struct recipe_error *err) {
        char *vars[] = { "DEBS=debs", "NAME=world", "NAME2=two words" };
        return recipe_parse(text, strlen(text), dir, vars, ELEMENTSOF(vars), ret, err);
}

static void setup(void) {
        snprintf(dir, sizeof dir, "%s", unit_tmpdir());
        char p[600];
        snprintf(p, sizeof p, "%s/debs", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/debs/busybox-static_1.35_amd64.deb", dir);
        write_file_atomic(p, "x", 1, 0644);
        snprintf(p, sizeof p, "%s/debs/a_1.deb", dir);
        write_file_atomic(p, "x", 1, 0644);
        snprintf(p, sizeof p, "%s/debs/a_2.deb", dir);
        write_file_atomic(p, "x", 1, 0644);
        snprintf(p, sizeof p, "%s/root.tar.zst", dir);
        write_file_atomic(p, "x", 1, 0644);
        snprintf(p, sizeof p, "%s/overlay", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/motd", dir);
        write_file_atomic(p, "hi", 2, 0644);
}

static void test_every_directive(void) {
        setup();
        const char *text =
                "# a comment\n"
                "\n"
                "deb ${DEBS}/busybox-static_*.deb   # trailing comment\n"
                "tar root.tar.zst\n"
                "dir overlay /usr/lib/overlay\n"
                "exclude /share/doc/*\n"
                "include /share/doc/keep*\n"
                "mkdir /usr/lib/x mode=0700 uid=5 gid=6\n"
                "file /usr/share/motd motd mode=0600\n"
                "write /etc/hello \"hello ${NAME}\\n\\t\\\"q\\\" \\$x\" mode=644\n"
                "symlink /bin/sh busybox\n"
                "hardlink /bin/ash /bin/busybox\n"
                "attr /bin/busybox mode=04755 uid=0\n"
                "xattr /bin/ping security.capability 0x0100000200200000\n"
                "rm /usr/share/man\n"
                "write \"/etc/with space\" \"${NAME2}\"\n";
        struct recipe *r = NULL;
        struct recipe_error err = { 0 };
        int rc = parse(text, &r, &err);
        if (rc < 0)
                fprintf(stderr, "line %u: %s\n", err.line, err.msg);
        CHECK_EQ(rc, 0);
        if (!r)
                return;
        CHECK_EQ(r->n_ops, 14);
        CHECK_EQ(r->ops[0].type, RECIPE_DEB);
        CHECK_EQ(r->ops[0].line, 3);
        CHECK(strstr(r->ops[0].src, "/debs/busybox-static_1.35_amd64.deb"));
        CHECK_EQ(r->ops[1].type, RECIPE_TAR);
        CHECK(r->ops[1].src[0] == '/' && strstr(r->ops[1].src, "root.tar.zst"));
        CHECK_EQ(r->ops[2].type, RECIPE_DIR);
        CHECK_STREQ(r->ops[2].dest, "/usr/lib/overlay");
        CHECK_EQ(r->ops[3].type, RECIPE_EXCLUDE);
        CHECK_STREQ(r->ops[3].dest, "/share/doc/*");
        CHECK_EQ(r->ops[4].type, RECIPE_INCLUDE);
        CHECK_EQ(r->ops[5].type, RECIPE_MKDIR);
        CHECK(r->ops[5].has_mode && r->ops[5].mode == 0700 && r->ops[5].uid == 5 && r->ops[5].gid == 6);
        CHECK_EQ(r->ops[6].type, RECIPE_FILE);
        CHECK(strstr(r->ops[6].src, "/motd") && r->ops[6].mode == 0600);
        CHECK_EQ(r->ops[7].type, RECIPE_WRITE);
        CHECK_STREQ((char *)r->ops[7].data, "hello world\n\t\"q\" $x");
        CHECK(r->ops[7].mode == 0644 && !r->ops[7].has_uid);
        CHECK_EQ(r->ops[8].type, RECIPE_SYMLINK);
        CHECK_STREQ(r->ops[8].arg, "busybox");
        CHECK_EQ(r->ops[9].type, RECIPE_HARDLINK);
        CHECK_STREQ(r->ops[9].arg, "/bin/busybox");
        CHECK_EQ(r->ops[10].type, RECIPE_ATTR);
        CHECK(r->ops[10].mode == 04755 && r->ops[10].has_uid && !r->ops[10].has_gid);
        CHECK_EQ(r->ops[11].type, RECIPE_XATTR);
        CHECK_EQ(r->ops[11].data_len, 8);
        CHECK(r->ops[11].data[0] == 1 && r->ops[11].data[3] == 2 && r->ops[11].data[5] == 0x20);
        CHECK_EQ(r->ops[12].type, RECIPE_RM);
        CHECK_STREQ(r->ops[13].dest, "/etc/with space");
        CHECK_STREQ((char *)r->ops[13].data, "two words");
        recipe_free(r);
}

static void expect_error(const char *text, unsigned line, const char *needle) {
        struct recipe *r = NULL;
        struct recipe_error err = { 0 };
        int rc = parse(text, &r, &err);
        CHECK(rc < 0);
        CHECK(r == NULL);
        CHECK_EQ(err.line, line);
        if (!strstr(err.msg, needle)) {
                fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, needle);
                CHECK(0);
        }
}

static void test_errors(void) {
        expect_error("mkdir /a\nfrobnicate x\n", 2, "unknown directive");
        expect_error("\n\nsymlink /a\n", 3, "missing argument");
        expect_error("mkdir /a mode=999\n", 1, "bad mode");
        expect_error("mkdir /a mode=\n", 1, "bad mode");
        expect_error("mkdir /a uid=-1\n", 1, "bad uid");
        expect_error("mkdir /a colour=red\n", 1, "bad key=value");
        expect_error("# ok\nwrite /x \"${NOPE}\"\n", 2, "undefined variable ${NOPE}");
        expect_error("deb ${DEBS}/nothing_*.deb\n", 1, "matches no file");
        expect_error("deb ${DEBS}/a_*.deb\n", 1, "matches 2 files");
        expect_error("deb ${DEBS}/missing.deb\n", 1, "missing.deb");
        expect_error("file /etc/x no-such-src\n", 1, "no-such-src");
        expect_error("tar nope.tar\n", 1, "nope.tar");
        expect_error("write /x \"unterminated\n", 1, "unterminated quote");
        expect_error("write /x \"bad \\q escape\"\n", 1, "unknown escape");
        expect_error("rm /a/../../etc\n", 1, "'..'");
        expect_error("xattr /a system.foo 00\n", 1, "security.");
        expect_error("xattr /a user.foo 0xzz\n", 1, "bad hex");
        expect_error("xattr /a user.foo 0x123\n", 1, "bad hex");
        expect_error("rm /a extra\n", 1, "unexpected argument");
        expect_error("attr /a\n", 1, "nothing to change");
        expect_error("write /x ${\n", 1, "unterminated ${");
}

static void test_empty_and_comments(void) {
        struct recipe *r = NULL;
        CHECK_EQ(parse("# only\n\n   # comments\n\t\n", &r, NULL), 0);
        CHECK(r && r->n_ops == 0);
        recipe_free(r);
        r = NULL;
        /* '#' inside a word or quotes is not a comment */
        CHECK_EQ(parse("write /a#b \"x # y\"", &r, NULL), 0);
        if (r && r->n_ops == 1) {
                CHECK_STREQ(r->ops[0].dest, "/a#b");
                CHECK_STREQ((char *)r->ops[0].data, "x # y");
        } else
                CHECK(0);
        recipe_free(r);
}

static void test_load(void) {
        char p[600];
        snprintf(p, sizeof p, "%s/r.recipe", dir);
        CHECK(write_file_atomic(p, "file /m motd\n", 13, 0644) == 0);
        struct recipe *r = NULL;
        struct recipe_error err;
        CHECK_EQ(recipe_load(p, NULL, 0, &r, &err), 0);
        if (r) {
                CHECK_STREQ(r->path, p);
                CHECK(strstr(r->ops[0].src, "/motd"));
        }
        recipe_free(r);
        CHECK(recipe_load("/nonexistent/r.recipe", NULL, 0, &r, &err) < 0);
        CHECK_EQ(err.line, 0);
}

int main(void) {
        RUN(test_every_directive);
        RUN(test_errors);
        RUN(test_empty_and_comments);
        RUN(test_load);
        return unit_main_end();
}
