/* bootcfg/state.c — the A/B slot state machine: the loader's pick and the verbs' transitions, without I/O. */
#include <errno.h>
#include <string.h>

#include "bootcfg.h"

static bool slot_ok(int slot) {
        return slot == BOOTCFG_SLOT_A || slot == BOOTCFG_SLOT_B;
}

char bootcfg_slot_name(int slot) {
        return slot == BOOTCFG_SLOT_A ? 'A' : slot == BOOTCFG_SLOT_B ? 'B' : '?';
}

int bootcfg_slot_parse(const char *s) {
        if (!s || !s[0] || s[1])
                return -EINVAL;
        if (s[0] == 'A' || s[0] == 'a')
                return BOOTCFG_SLOT_A;
        if (s[0] == 'B' || s[0] == 'b')
                return BOOTCFG_SLOT_B;
        return -EINVAL;
}

static bool state_valid(const struct bootcfg_state *s) {
        for (int i = 0; i < BOOTCFG_SLOTS; i++)
                if (s->slot[i].priority > BOOTCFG_MAX_PRIORITY || s->slot[i].tries > BOOTCFG_MAX_TRIES)
                        return false;
        return true;
}

int bootcfg_pick(const struct bootcfg_state *s, struct bootcfg_state *ret_after) {
        if (!state_valid(s))
                return -EINVAL;
        /* Order as grub.cfg: A first unless B's priority is strictly higher. */
        int order[2] = { BOOTCFG_SLOT_A, BOOTCFG_SLOT_B };
        if (s->slot[BOOTCFG_SLOT_B].priority > s->slot[BOOTCFG_SLOT_A].priority) {
                order[0] = BOOTCFG_SLOT_B;
                order[1] = BOOTCFG_SLOT_A;
        }
        for (int i = 0; i < 2; i++) {
                const struct bootcfg_slot_state *x = &s->slot[order[i]];
                if (x->priority == 0)
                        continue;
                if (!x->successful && x->tries == 0)
                        continue;
                if (ret_after) {
                        *ret_after = *s;
                        if (!x->successful)
                                ret_after->slot[order[i]].tries--;
                }
                return order[i];
        }
        return -ENOENT;
}

bool bootcfg_slot_is_good(const struct bootcfg_state *s, int slot) {
        return slot_ok(slot) && s->slot[slot].priority > 0 && s->slot[slot].successful;
}

/* Give slot a priority above the other's; lower the other only when slot would pass the maximum. */
static void raise_above(struct bootcfg_state *s, int slot) {
        struct bootcfg_slot_state *me = &s->slot[slot], *other = &s->slot[1 - slot];
        if (other->priority >= BOOTCFG_MAX_PRIORITY) {
                other->priority = BOOTCFG_MAX_PRIORITY - 1;
                me->priority = BOOTCFG_MAX_PRIORITY;
        } else if (me->priority <= other->priority)
                me->priority = other->priority + 1;
}

int bootcfg_state_set_next(struct bootcfg_state *s, int slot) {
        if (!slot_ok(slot) || !state_valid(s))
                return -EINVAL;
        raise_above(s, slot);
        s->slot[slot].tries = 1;
        s->slot[slot].successful = false;
        return 0;
}

int bootcfg_state_mark_good(struct bootcfg_state *s, int slot) {
        if (!slot_ok(slot) || !state_valid(s))
                return -EINVAL;
        s->slot[slot].successful = true;
        s->slot[slot].tries = 0;
        return 0;
}

int bootcfg_state_mark_bad(struct bootcfg_state *s, int slot, bool force) {
        if (!slot_ok(slot) || !state_valid(s))
                return -EINVAL;
        if (!force && bootcfg_slot_is_good(s, slot) && !bootcfg_slot_is_good(s, 1 - slot))
                return -EBUSY;
        s->slot[slot] = (struct bootcfg_slot_state){ 0 };
        return 0;
}

int bootcfg_state_rollback(struct bootcfg_state *s, int booted) {
        if (!slot_ok(booted) || !state_valid(s))
                return -EINVAL;
        int other = 1 - booted;
        if (!bootcfg_slot_is_good(s, other))
                return -ESRCH;
        raise_above(s, other);
        return 0;
}
