/* tests/lib/unit.h — a tiny assertion harness for tests/unit: each test binary prints one line per case and exits non-zero on failure. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int unit_failures;
extern const char *unit_case;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,    \
                                unit_case ? unit_case : "?", #cond);                             \
                        unit_failures++;                                                         \
                }                                                                                \
        } while (0)
#define CHECK_EQ(a, b)                                                                                   \
        do {                                                                                             \
                long long _a = (long long)(a), _b = (long long)(b);                                      \
                if (_a != _b) {                                                                          \
                        fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                                unit_case ? unit_case : "?", #a, #b, _a, _b);                            \
                        unit_failures++;                                                                 \
                }                                                                                        \
        } while (0)
#define CHECK_STREQ(a, b)                                                                                \
        do {                                                                                             \
                const char *_a = (a), *_b = (b);                                                         \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                                 \
                        fprintf(stderr, "%s:%d: %s: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                                unit_case ? unit_case : "?", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
                        unit_failures++;                                                                 \
                }                                                                                        \
        } while (0)

/* Run one case: prints "ok - name" or "not ok - name". */
#define RUN(fn)                                                                 \
        do {                                                                    \
                int _before = unit_failures;                                    \
                unit_case = #fn;                                                \
                fn();                                                           \
                printf("%s - %s\n", unit_failures == _before ? "ok" : "not ok", #fn); \
        } while (0)

/* A scratch directory for the test, removed at exit unless KEEP_TMP is set. */
const char *unit_tmpdir(void);
int unit_main_end(void);
