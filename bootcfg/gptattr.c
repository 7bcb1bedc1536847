/* bootcfg/gptattr.c — the gpt backend: slot state in the GPT attribute bits of USR-A/USR-B (cgpt/gptprio layout). */
#include <errno.h>
#include <string.h>

#include "bootcfg-internal.h"

static const char *const slot_labels[BOOTCFG_SLOTS] = { "USR-A", "USR-B" };

static int table_read(struct bootcfg *b, unsigned flags, struct gpt_table **ret, unsigned *ret_valid) {
        struct gpt_status st;
        struct gpt_table *t = NULL;
        int r = gpt_read(b->fd, 0, flags, &t, &st);
        if (r < 0) {
                char desc[200];
                gpt_status_describe(&st, desc, sizeof desc);
                if (r == -ENODATA)
                        return bootcfg_fail(b, r, "no GPT on \"%s\"", b->disk);
                if (r == -EBADMSG)
                        return bootcfg_fail(b, r, "GPT of \"%s\" is damaged (%s); not rewriting it (see 'repair')",
                                            b->disk, desc);
                return bootcfg_fail(b, r, "cannot read the GPT of \"%s\"", b->disk);
        }
        *ret = t;
        if (ret_valid)
                *ret_valid = (unsigned)r;
        return 0;
}

static int state_from_table(struct bootcfg *b, const struct gpt_table *t, struct bootcfg_state *ret) {
        struct bootcfg_state s;
        for (int i = 0; i < BOOTCFG_SLOTS; i++) {
                int idx = gpt_find_by_label(t, slot_labels[i]);
                if (idx < 0)
                        return bootcfg_fail(b, idx, "no single partition labelled \"%s\" on \"%s\"", slot_labels[i],
                                            b->disk);
                uint64_t a = gpt_entry_attrs(gpt_entry(t, (unsigned)idx));
                s.slot[i].priority = gpt_attr_get_prio(a);
                s.slot[i].tries = gpt_attr_get_tries(a);
                s.slot[i].successful = gpt_attr_get_successful(a);
        }
        *ret = s;
        return 0;
}

static int gp_read(struct bootcfg *b, struct bootcfg_state *ret) {
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = table_read(b, 0, &t, NULL);
        if (r < 0)
                return r;
        return state_from_table(b, t, ret);
}

static int gp_read_as_loader(struct bootcfg *b, struct bootcfg_state *ret) {
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = table_read(b, GPT_READ_DEGRADED, &t, NULL);
        if (r < 0)
                return r;
        return state_from_table(b, t, ret);
}

static int gpt_io_write(void *userdata, int fd, const void *buf, size_t len, uint64_t offset) {
        return bootcfg_io_write(userdata, buf, len, offset);
}
static int gpt_io_sync(void *userdata, int fd) {
        return bootcfg_io_sync(userdata);
}

static int table_write(struct bootcfg *b, const struct gpt_table *t) {
        const struct gpt_io io = { .write = gpt_io_write, .sync = gpt_io_sync, .userdata = b };
        int r = gpt_write(b->fd, t, &io);
        if (r < 0)
                return bootcfg_fail(b, r, "cannot write the GPT of \"%s\"", b->disk);
        return 0;
}

static int gp_write(struct bootcfg *b, const struct bootcfg_state *s) {
        _cleanup_gpt_ struct gpt_table *t = NULL;
        int r = table_read(b, 0, &t, NULL);
        if (r < 0)
                return r;
        for (int i = 0; i < BOOTCFG_SLOTS; i++) {
                int idx = gpt_find_by_label(t, slot_labels[i]);
                if (idx < 0)
                        return bootcfg_fail(b, idx, "no single partition labelled \"%s\" on \"%s\"", slot_labels[i],
                                            b->disk);
                uint8_t *e = gpt_entry(t, (unsigned)idx);
                uint64_t a = gpt_entry_attrs(e);
                a = gpt_attr_set_prio(a, s->slot[i].priority);
                a = gpt_attr_set_tries(a, s->slot[i].tries);
                a = gpt_attr_set_successful(a, s->slot[i].successful);
                gpt_entry_set_attrs(e, a);
        }
        return table_write(b, t);
}

static int gp_repair(struct bootcfg *b) {
        _cleanup_gpt_ struct gpt_table *t = NULL;
        unsigned valid;
        int r = table_read(b, GPT_READ_DEGRADED, &t, &valid);
        if (r < 0)
                return r;
        /* Both valid and identical: nothing to do (gpt_read without DEGRADED would have succeeded). */
        _cleanup_gpt_ struct gpt_table *strict = NULL;
        struct gpt_status st;
        if (gpt_read(b->fd, 0, 0, &strict, &st) >= 0)
                return 0;
        r = table_write(b, t);
        return r < 0 ? r : 1;
}

const struct bootcfg_backend bootcfg_backend_gpt = {
        .name = "gpt",
        .read = gp_read,
        .read_as_loader = gp_read_as_loader,
        .write = gp_write,
        .repair = gp_repair,
};
