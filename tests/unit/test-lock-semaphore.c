/* tests/unit/test-lock-semaphore.c — locksmith's semaphore value: parse (locksmith's own shapes, every malformed
 * case), canonical format, take/release/set-max, and that outputs stay untouched on error. */
#include <errno.h>
#include <stdint.h>

#include "unit.h"
#include "lock/semaphore.h"

static int parse(const char *s, Semaphore *ret) {
        char err[200] = "";
        int r = semaphore_parse(s, strlen(s), ret, err, sizeof err);
        if (r < 0 && !err[0])
                fprintf(stderr, "no reason given for \"%s\"\n", s), unit_failures++;
        return r;
}

static void test_locksmith_shapes(void) {
        _cleanup_semaphore_ Semaphore s = { 0 };
        /* What locksmith writes for a new key: Go encodes the empty slice as null. */
        CHECK_EQ(parse("{\"semaphore\":1,\"max\":1,\"holders\":null}", &s), 0);
        CHECK_EQ(s.semaphore, 1);
        CHECK_EQ(s.max, 1);
        CHECK_EQ(s.n_holders, 0);
        semaphore_done(&s);
        CHECK_EQ(parse(" {\"holders\":[\"b\",\"a\"],\"max\":3,\"semaphore\":1}\n", &s), 0);
        CHECK_EQ(s.n_holders, 2);
        CHECK_STREQ(s.holders[0], "a"); /* sorted */
        CHECK_STREQ(s.holders[1], "b");
        _cleanup_free_ char *f = NULL;
        CHECK_EQ(semaphore_format(&s, &f), 0);
        CHECK_STREQ(f, "{\"semaphore\":1,\"max\":3,\"holders\":[\"a\",\"b\"]}");
        semaphore_done(&s);
        /* After set-max below the holder count locksmith leaves a negative semaphore: consistent, so valid. */
        CHECK_EQ(parse("{\"semaphore\":-1,\"max\":1,\"holders\":[\"a\",\"b\"]}", &s), 0);
        CHECK_EQ(s.semaphore, -1);
        semaphore_done(&s);
        CHECK_EQ(parse("{\"semaphore\":0,\"max\":0,\"holders\":[]}", &s), 0);
}

static void test_malformed(void) {
        static const char *const bad[] = {
                "",
                "null",
                "[]",
                "1",
                "\"x\"",
                "{",
                "{\"semaphore\":1,\"max\":1,\"holders\":null",
                "{\"semaphore\":1,\"max\":1,\"holders\":null}x",
                "{\"semaphore\":1,\"max\":1,\"holders\":null}{}",
                "{\"semaphore\":1,\"max\":1}",                                   /* holders missing */
                "{\"max\":1,\"holders\":null}",                                  /* semaphore missing */
                "{\"semaphore\":1,\"holders\":null}",                            /* max missing */
                "{\"semaphore\":\"1\",\"max\":1,\"holders\":null}",              /* wrong types */
                "{\"semaphore\":1,\"max\":\"1\",\"holders\":null}",
                "{\"semaphore\":1.0,\"max\":1,\"holders\":null}",
                "{\"semaphore\":1,\"max\":1e0,\"holders\":null}",
                "{\"semaphore\":true,\"max\":1,\"holders\":null}",
                "{\"semaphore\":null,\"max\":1,\"holders\":null}",
                "{\"semaphore\":-2,\"max\":-1,\"holders\":null}",                /* negative max */
                "{\"semaphore\":1000001,\"max\":1000001,\"holders\":null}",      /* max too large */
                "{\"semaphore\":9223372036854775807,\"max\":9223372036854775807,\"holders\":null}",
                "{\"semaphore\":1,\"max\":99999999999999999999999,\"holders\":null}",
                "{\"semaphore\":1,\"max\":1,\"holders\":\"a\"}",                 /* holders not a list */
                "{\"semaphore\":1,\"max\":1,\"holders\":{}}",
                "{\"semaphore\":1,\"max\":1,\"holders\":5}",
                "{\"semaphore\":0,\"max\":1,\"holders\":[1]}",                   /* holder not a string */
                "{\"semaphore\":0,\"max\":1,\"holders\":[null]}",
                "{\"semaphore\":0,\"max\":1,\"holders\":[[\"a\"]]}",
                "{\"semaphore\":0,\"max\":1,\"holders\":[\"\"]}",                /* empty id */
                "{\"semaphore\":0,\"max\":1,\"holders\":[\"a\\nb\"]}",           /* control character */
                "{\"semaphore\":0,\"max\":1,\"holders\":[\"a\\u0000b\"]}",       /* NUL inside */
                "{\"semaphore\":0,\"max\":1,\"holders\":[\"a\\\"b\"]}",          /* quote */
                "{\"semaphore\":-1,\"max\":1,\"holders\":[\"a\",\"a\"]}",        /* duplicate */
                "{\"semaphore\":1,\"max\":1,\"holders\":[\"a\"]}",               /* inconsistent */
                "{\"semaphore\":0,\"max\":1,\"holders\":null}",
                "{\"semaphore\":2,\"max\":1,\"holders\":null}",
                "{\"semaphore\":1,\"max\":1,\"holders\":null,\"ttl\":5}",        /* unknown member */
                "{'semaphore':1,'max':1,'holders':null}",                        /* not strict JSON */
                "{\"semaphore\":01,\"max\":1,\"holders\":null}",
                "{\"semaphore\":1,\"max\":1,\"holders\":[[[[[[[[]]]]]]]]}",      /* nesting */
                NULL,
        };
        for (size_t i = 0; bad[i]; i++) {
                Semaphore s = { .semaphore = 42 };
                int r = parse(bad[i], &s);
                if (r != -EBADMSG) {
                        fprintf(stderr, "accepted or wrong error %d: %s\n", r, bad[i]);
                        unit_failures++;
                }
                CHECK_EQ(s.semaphore, 42); /* untouched */
        }
        /* NUL bytes in the value itself. */
        Semaphore s = { 0 };
        char err[100];
        CHECK_EQ(semaphore_parse("{\"semaphore\":1,\"max\":1,\"holders\":null}\0", 40, &s, err, sizeof err), -EBADMSG);
}

static void test_bounds(void) {
        /* 10 MB (the test in 62-lock-etcd puts one in etcd): refused by size before parsing. */
        size_t n = 10u * 1024 * 1024;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (!big)
                return;
        memset(big, ' ', n);
        memcpy(big, "{\"semaphore\":1,\"max\":1,\"holders\":null}", 38);
        Semaphore s = { 0 };
        char err[100] = "";
        CHECK_EQ(semaphore_parse(big, n, &s, err, sizeof err), -E2BIG);
        CHECK(strstr(err, "bytes") != NULL);
        free(big);

        /* Too many holders. */
        size_t cnt = SEMAPHORE_MAX_HOLDERS + 1, cap = cnt * 12 + 100, o = 0;
        char *many = malloc(cap);
        CHECK(many != NULL);
        if (!many)
                return;
        o += (size_t)snprintf(many + o, cap - o, "{\"semaphore\":0,\"max\":%zu,\"holders\":[", cnt);
        for (size_t i = 0; i < cnt; i++)
                o += (size_t)snprintf(many + o, cap - o, "%s\"h%zu\"", i ? "," : "", i);
        o += (size_t)snprintf(many + o, cap - o, "]}");
        CHECK_EQ(semaphore_parse(many, o, &s, err, sizeof err), -E2BIG);
        free(many);

        char longid[SEMAPHORE_ID_MAX + 2];
        memset(longid, 'x', sizeof longid - 1);
        longid[sizeof longid - 1] = 0;
        CHECK(!semaphore_id_valid(longid));
        longid[SEMAPHORE_ID_MAX] = 0;
        CHECK(semaphore_id_valid(longid));
        CHECK(!semaphore_id_valid(""));
        CHECK(semaphore_id_valid("3d1219c7c4c5404aaa1f6d2a48adfda4"));
}

static void test_mutations(void) {
        _cleanup_semaphore_ Semaphore s = { 0 };
        semaphore_init_default(&s);
        CHECK_EQ(semaphore_take(&s, "m1"), 1);
        CHECK_EQ(s.semaphore, 0);
        CHECK_EQ(semaphore_take(&s, "m1"), 0); /* recursive: nothing changes */
        CHECK_EQ(s.semaphore, 0);
        CHECK_EQ(s.n_holders, 1);
        CHECK_EQ(semaphore_take(&s, "m2"), -EBUSY);
        CHECK_EQ(s.n_holders, 1);
        CHECK_EQ(semaphore_take(&s, "bad\nid"), -EINVAL);
        CHECK_EQ(semaphore_set_max(&s, 3), 0);
        CHECK_EQ(s.semaphore, 2);
        CHECK_EQ(semaphore_take(&s, "m3"), 1);
        CHECK_EQ(semaphore_take(&s, "m2"), 1);
        CHECK_STREQ(s.holders[0], "m1");
        CHECK_STREQ(s.holders[1], "m2");
        CHECK_STREQ(s.holders[2], "m3");
        CHECK(semaphore_holds(&s, "m2"));
        CHECK_EQ(semaphore_set_max(&s, 1), 0); /* below the holders: locksmith's arithmetic */
        CHECK_EQ(s.semaphore, -2);
        CHECK_EQ(semaphore_take(&s, "m4"), -EBUSY);
        CHECK_EQ(semaphore_set_max(&s, -1), -ERANGE);
        CHECK_EQ(semaphore_set_max(&s, SEMAPHORE_MAX_MAX + 1), -ERANGE);
        CHECK_EQ(s.max, 1);
        CHECK_EQ(semaphore_release(&s, "m9"), 0);
        CHECK_EQ(semaphore_release(&s, "m2"), 1);
        CHECK_EQ(s.semaphore, -1);
        CHECK(!semaphore_holds(&s, "m2"));
        /* What we write parses back to the same thing. */
        _cleanup_free_ char *f = NULL;
        CHECK_EQ(semaphore_format(&s, &f), 0);
        CHECK_STREQ(f, "{\"semaphore\":-1,\"max\":1,\"holders\":[\"m1\",\"m3\"]}");
        _cleanup_semaphore_ Semaphore t = { 0 };
        CHECK_EQ(parse(f, &t), 0);
        CHECK_EQ(t.n_holders, 2);
        CHECK_EQ(t.semaphore, -1);
        CHECK_EQ(semaphore_release(&s, "m1"), 1);
        CHECK_EQ(semaphore_release(&s, "m3"), 1);
        _cleanup_free_ char *g = NULL;
        CHECK_EQ(semaphore_format(&s, &g), 0);
        CHECK_STREQ(g, "{\"semaphore\":1,\"max\":1,\"holders\":[]}");
}

int main(void) {
        RUN(test_locksmith_shapes);
        RUN(test_malformed);
        RUN(test_bounds);
        RUN(test_mutations);
        return unit_main_end();
}
