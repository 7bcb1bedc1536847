/* tests/fuzz/fuzz-grubenv.c — libFuzzer target for the GRUB environment block validator, reader and editor. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootcfg/grubenv.h"

static bool state_eq(const struct bootcfg_state *a, const struct bootcfg_state *b) {
        for (int i = 0; i < BOOTCFG_SLOTS; i++)
                if (a->slot[i].priority != b->slot[i].priority || a->slot[i].tries != b->slot[i].tries ||
                    a->slot[i].successful != b->slot[i].successful)
                        return false;
        return true;
}

static bool in_range(const struct bootcfg_state *s) {
        for (int i = 0; i < BOOTCFG_SLOTS; i++)
                if (s->slot[i].priority > BOOTCFG_MAX_PRIORITY || s->slot[i].tries > BOOTCFG_MAX_TRIES)
                        return false;
        return true;
}

/* state_set must give a valid block that reads back as s, keeps the variables in the first sector, and is a
 * fixed point of a second state_set with the same s. */
static void check_set(const uint8_t *blk, size_t len, const struct bootcfg_state *s) {
        uint8_t out[GRUBENV_SIZE], again[GRUBENV_SIZE];
        memset(out, 0xa5, sizeof out);
        int r = grubenv_state_set(blk, len, s, out);
        if (r == -EFBIG)
                return; /* the variables would not end within the first sector */
        if (r < 0)
                abort(); /* a valid block and an in-range state */
        char why[128];
        size_t end = 0;
        struct bootcfg_state got;
        if (grubenv_validate(out, sizeof out, &end, why, sizeof why) < 0 || end > GRUBENV_SECTOR)
                abort();
        if (grubenv_state_get(out, sizeof out, &got, why, sizeof why) < 0 || !state_eq(&got, s))
                abort();
        if (grubenv_state_set(out, sizeof out, s, again) < 0 || memcmp(out, again, sizeof out) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char why[128];
        size_t end = (size_t)-1;
        why[0] = 0;
        int v = grubenv_validate(data, size, &end, why, sizeof why);
        if (v < 0) {
                if (v != -EBADMSG || !why[0] || !memchr(why, 0, sizeof why) || end != (size_t)-1)
                        abort(); /* a reason, and no ret_ written on failure */
        } else if (size != GRUBENV_SIZE || end > size || memchr(data, 0, end))
                abort(); /* the header promises no NUL in any line (GRUB would cut the value there) */

        struct bootcfg_state s, sentinel;
        memset(&sentinel, 0, sizeof sentinel);
        sentinel.slot[0].priority = 99;
        s = sentinel;
        int g = grubenv_state_get(data, size, &s, why, sizeof why);
        if ((g < 0) != (v < 0))
                abort(); /* the reader accepts exactly what the validator accepts */
        if (g < 0) {
                if (memcmp(&s, &sentinel, sizeof s) != 0)
                        abort();
                return 0;
        }
        if (!in_range(&s))
                abort();

        /* Edits: the same state (a rewrite), the loader's next-boot state, and an out-of-range one. */
        check_set(data, size, &s);
        struct bootcfg_state n = s;
        if (bootcfg_state_set_next(&n, BOOTCFG_SLOT_B) >= 0)
                check_set(data, size, &n);
        n = s;
        if (bootcfg_state_mark_good(&n, BOOTCFG_SLOT_A) >= 0)
                check_set(data, size, &n);
        struct bootcfg_state bad = s;
        bad.slot[1].tries = 16;
        uint8_t out[GRUBENV_SIZE];
        if (grubenv_state_set(data, size, &bad, out) != -EINVAL)
                abort();
        return 0;
}
