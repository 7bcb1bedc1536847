/* tests/unit/test-parse.c — the strict number grammar (digits only, ranges, overflow, suffixes), log_safe, and the
 * KEY=VALUE grammar of common/kvfile. */
#include <errno.h>
#include <stdint.h>

#include <string.h>

#include "kvfile.h"
#include "parse.h"
#include "unit.h"

static void test_u64(void) {
        uint64_t v = 7;
        CHECK_EQ(parse_u64_range("0", 0, 10, &v), 0);
        CHECK_EQ(v, 0);
        CHECK_EQ(parse_u64_range("18446744073709551615", 0, UINT64_MAX, &v), 0);
        CHECK(v == UINT64_MAX);
        CHECK_EQ(parse_u64_range("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        CHECK_EQ(parse_u64_range("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
        CHECK_EQ(parse_u64_range("11", 0, 10, &v), -ERANGE);
        CHECK_EQ(parse_u64_range("4", 5, 10, &v), -ERANGE);
        static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "4abc", "0x10", "1.5", "1e3", "abc", NULL };
        for (size_t i = 0; bad[i]; i++)
                CHECK_EQ(parse_u64_range(bad[i], 0, UINT64_MAX, &v), -EINVAL);
        CHECK_EQ(parse_u64_range(NULL, 0, 1, &v), -EINVAL);
        v = 7;
        CHECK_EQ(parse_u64_range("zz", 0, 1, &v), -EINVAL);
        CHECK_EQ(v, 7); /* untouched on error */
}

static void test_unsigned(void) {
        unsigned u;
        CHECK_EQ(parse_unsigned_range("4", 1, 1024, &u), 0);
        CHECK_EQ(u, 4);
        CHECK_EQ(parse_unsigned_range("4294967297", 1, 1024, &u), -ERANGE); /* wrapped to 1 before */
        CHECK_EQ(parse_unsigned_range("4294967295", 0, UINT32_MAX, &u), 0);
        CHECK(u == UINT32_MAX);
        CHECK_EQ(parse_unsigned_range("0", 1, 1024, &u), -ERANGE);
}

static void test_size(void) {
        uint64_t v;
        CHECK_EQ(parse_size_range("512K", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 512 * 1024);
        CHECK_EQ(parse_size_range("10m", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 10 * 1048576);
        CHECK_EQ(parse_size_range("1G", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 1073741824);
        CHECK_EQ(parse_size_range("123", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 123);
        CHECK_EQ(parse_size_range("17179869184G", 0, UINT64_MAX, &v), -ERANGE); /* wrapped to 0 before */
        CHECK_EQ(parse_size_range("16777215T", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(parse_size_range("16777216T", 0, UINT64_MAX, &v), -ERANGE);
        CHECK_EQ(parse_size_range("1P", 0, UINT64_MAX, &v), -EINVAL);
        CHECK_EQ(parse_size_range("1KB", 0, UINT64_MAX, &v), -EINVAL);
        CHECK_EQ(parse_size_range("K", 0, UINT64_MAX, &v), -EINVAL);
        CHECK_EQ(parse_size_range("2M", 0, 1048576, &v), -ERANGE);
}

static void test_seconds(void) {
        uint64_t v;
        CHECK_EQ(parse_seconds_range("90", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 90);
        CHECK_EQ(parse_seconds_range("2m", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 120);
        CHECK_EQ(parse_seconds_range("1h", 0, UINT64_MAX, &v), 0);
        CHECK_EQ(v, 3600);
        CHECK_EQ(parse_seconds_range("1d", 0, 3600, &v), -ERANGE);
        CHECK_EQ(parse_seconds_range("1w", 0, UINT64_MAX, &v), -EINVAL);
}

static void test_log_safe(void) {
        char b[64];
        CHECK_STREQ(log_safe(b, sizeof b, "plain text: ok"), "plain text: ok");
        CHECK_STREQ(log_safe(b, sizeof b, "a\nupdated to 9.9.9"), "a\\x0aupdated to 9.9.9");
        CHECK_STREQ(log_safe(b, sizeof b, "\r\t\x1b[2J\x7f"), "\\x0d\\x09\\x1b[2J\\x7f");
        CHECK_STREQ(log_safe(b, sizeof b, "back\\slash"), "back\\\\slash");
        CHECK_STREQ(log_safe(b, sizeof b, "caf\xc3\xa9"), "caf\xc3\xa9");
        CHECK_STREQ(log_safe(b, sizeof b, NULL), "(null)");
        CHECK_STREQ(log_safe_n(b, sizeof b, "a\0b", 3), "a\\x00b");
        char small[8];
        CHECK_STREQ(log_safe(small, sizeof small, "0123456789"), "0123...");
        CHECK_STREQ(log_safe(small, sizeof small, "\n\n\n"), "\\x0a...");
        CHECK_STREQ(log_safe(small, sizeof small, "0123456"), "0123456");
        char tiny[3];
        CHECK_STREQ(log_safe(tiny, sizeof tiny, "abcdef"), "ab");
        char one[1];
        CHECK_STREQ(log_safe(one, sizeof one, "abc"), "");
}

typedef struct Seen {
        char text[512];
        int fail_on; /* 1-based pair number that the callback refuses; 0: none */
        int n;
} Seen;

static int seen_kv(const char *k, const char *v, unsigned line, void *ud, const char **ret_why) {
        Seen *s = ud;
        s->n++;
        if (s->n == s->fail_on) {
                *ret_why = "is refused";
                return -ERANGE;
        }
        size_t l = strlen(s->text);
        snprintf(s->text + l, sizeof s->text - l, "[%s|%s]", k, v);
        return 0;
}

static void test_kvfile(void) {
        Seen s = { 0 };
        const char *t = "# comment\n  \n\tA=1\n B = two words \r\nC=\"quoted\"\nD='single'\nE=\"half\nF=\nG=a=b\n  # x=y\nH=\"\"";
        CHECK_EQ(kvfile_parse(t, strlen(t), seen_kv, &s, NULL), 0);
        CHECK_STREQ(s.text, "[A|1][B|two words][C|quoted][D|single][E|\"half][F|][G|a=b][H|]");

        static const struct { const char *text; unsigned line; } bad[] = {
                { "A=1\nnot a pair\n", 2 }, { "=1\n", 1 }, { "A B=1\n", 1 }, { "A-B=1\n", 1 },
                { "K\xc3\xa9=1\n", 1 }, { "A=1\nB=2\nC\n", 3 },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Seen z = { 0 };
                KvfileError e;
                CHECK_EQ(kvfile_parse(bad[i].text, strlen(bad[i].text), seen_kv, &z, &e), -EINVAL);
                CHECK_EQ(e.line, bad[i].line);
                CHECK(e.why != NULL);
        }
        /* A NUL inside a line, a line too long, a key too long. */
        KvfileError e;
        Seen z = { 0 };
        CHECK_EQ(kvfile_parse("A=1\nB=\0x\n", 9, seen_kv, &z, &e), -EINVAL);
        CHECK_EQ(e.line, 2);
        static char big[KVFILE_LINE_MAX + 8];
        memset(big, 'x', sizeof big - 1);
        big[0] = 'K', big[1] = '=';
        CHECK_EQ(kvfile_parse(big, strlen(big), seen_kv, &z, &e), -EINVAL);
        char key[80];
        memset(key, 'K', 65);
        strcpy(key + 65, "=1");
        CHECK_EQ(kvfile_parse(key, strlen(key), seen_kv, &z, &e), -EINVAL);
        key[1] = '=';
        key[2] = 0;
        CHECK_EQ(kvfile_parse(key, strlen(key), seen_kv, &z, &e), 0);
        /* The callback's error stops the parse and is returned with its line and reason. */
        Seen f = { .fail_on = 2 };
        CHECK_EQ(kvfile_parse("A=1\n\nB=2\nC=3\n", 13, seen_kv, &f, &e), -ERANGE);
        CHECK_EQ(e.line, 3);
        CHECK_STREQ(e.why, "is refused");
        CHECK_STREQ(f.text, "[A|1]");

        char buf[8];
        const char *os = "ID=cairn\nVERSION_ID=\"1.2.3\"\nNAME=x\nNAME=y\n";
        CHECK_EQ(kvfile_get(os, strlen(os), "VERSION_ID", buf, sizeof buf), 0);
        CHECK_STREQ(buf, "1.2.3");
        CHECK_EQ(kvfile_get(os, strlen(os), "NAME", buf, sizeof buf), 0);
        CHECK_STREQ(buf, "y");
        CHECK_EQ(kvfile_get(os, strlen(os), "MISSING", buf, sizeof buf), -ENOENT);
        CHECK_EQ(kvfile_get(os, strlen(os), "VERSION_ID", buf, 5), -ENAMETOOLONG);
}

int main(void) {
        RUN(test_u64);
        RUN(test_unsigned);
        RUN(test_size);
        RUN(test_seconds);
        RUN(test_log_safe);
        RUN(test_kvfile);
        return unit_main_end();
}
