/* tests/fuzz/fuzz-semaphore.c — libFuzzer target for locksmith's semaphore value (updater/lock/semaphore.c).
 * Checks the contract: an accepted value keeps semaphore == max - holders, holders sorted and unique; its
 * canonical form parses back to the same semaphore; take/release/set-max keep the invariant. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lock/semaphore.h"

static void check(const Semaphore *s) {
        if (s->semaphore != s->max - (int64_t)s->n_holders || s->max < 0 || s->max > SEMAPHORE_MAX_MAX)
                abort();
        for (size_t i = 0; i < s->n_holders; i++) {
                if (!semaphore_id_valid(s->holders[i]))
                        abort();
                if (i > 0 && strcmp(s->holders[i - 1], s->holders[i]) >= 0)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Semaphore s = { .semaphore = 7 };
        char err[200];
        int r = semaphore_parse((const char *)data, size, &s, err, sizeof err);
        if (r < 0) {
                if (r != -EBADMSG && r != -E2BIG && r != -ENOMEM)
                        abort();
                if (s.semaphore != 7 || s.holders)
                        abort(); /* untouched on error */
                return 0;
        }
        check(&s);
        char *f = NULL;
        if (semaphore_format(&s, &f) < 0)
                abort();
        Semaphore t = { 0 };
        if (semaphore_parse(f, strlen(f), &t, err, sizeof err) < 0)
                abort();
        if (t.semaphore != s.semaphore || t.max != s.max || t.n_holders != s.n_holders)
                abort();
        for (size_t i = 0; i < s.n_holders; i++)
                if (strcmp(s.holders[i], t.holders[i]) != 0)
                        abort();
        free(f);
        /* Mutations keep the invariant. */
        int64_t avail = t.semaphore;
        r = semaphore_take(&t, "fuzz-holder");
        if ((r == -EBUSY) != (avail <= 0 && !semaphore_holds(&s, "fuzz-holder")))
                abort();
        check(&t);
        if (semaphore_release(&t, "fuzz-holder") < 0 || semaphore_holds(&t, "fuzz-holder"))
                abort();
        check(&t);
        if (semaphore_set_max(&t, (int64_t)(size % 5)) < 0)
                abort();
        check(&t);
        semaphore_done(&t);
        semaphore_done(&s);
        return 0;
}
