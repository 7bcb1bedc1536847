/* bootcfg/main.c — cairn-bootcfg: the command line over the bootcfg library (argument parsing, output, exit codes). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootcfg.h"
#include "log.h"
#include "parse.h"
#include "image/verity-slot.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairn-bootcfg [OPTIONS] VERB [ARGS]\n"
                "verbs:\n"
                "  status [--json]             both slots, the booted slot and the slot that boots next\n"
                "  set-next SLOT               SLOT boots next once (priority above the other, tries=1, successful=0)\n"
                "  mark-good [SLOT]            successful=1, tries=0 (default: the booted slot)\n"
                "  mark-bad SLOT               priority=0, tries=0, successful=0\n"
                "  rollback                    make the other (good) slot boot next\n"
                "  verify SLOT SHA256 [--size BYTES]  hash the slot and record it as verified on a match\n"
                "  unverify SLOT               remove the slot's verification record\n"
                "  repair                      rewrite a damaged env copy / GPT copy from the good one\n"
                "options:\n"
                "  --disk PATH                 disk image or block device (default: the disk with PARTLABEL=USR-A)\n"
                "  --backend grubenv|gpt       where the state lives (default grubenv)\n"
                "  --cmdline FILE              kernel command line to take cairn.slot= from (env CAIRN_CMDLINE)\n"
                "  --booted A|B                the booted slot (overrides the command line)\n"
                "  --state-dir DIR             verification records (default " BOOTCFG_DEFAULT_STATE_DIR ")\n"
                "  --force                     skip the guard rails\n"
                "SLOT is A or B. Exit status: 0 ok, 1 error or refused, 2 usage.\n");
}

static void json_str(const char *s) {
        putchar('"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

/* The version and dm-verity root hash a sealed slot carries in its root-hash block (docs/verity.md); "" each
 * when the slot is not sealed or the block does not say. For display only: nothing here is verified. */
static void slot_seal(struct bootcfg *b, int slot, struct verity_slot *ret) {
        uint64_t off, size;
        if (bootcfg_slot_extent(b, slot, &off, &size) < 0 || verity_slot_read(bootcfg_disk_fd(b), off, size, ret) < 0)
                ret->root_hex[0] = ret->version[0] = 0;
}

static void print_slot_json(struct bootcfg *b, const struct bootcfg_state *s, int i) {
        int verified = bootcfg_is_verified(b, i);
        struct verity_slot vs;
        slot_seal(b, i, &vs);
        printf("\"%c\":{\"priority\":%u,\"tries\":%u,\"successful\":%s,\"partuuid\":", bootcfg_slot_name(i),
               s->slot[i].priority, s->slot[i].tries, s->slot[i].successful ? "true" : "false");
        json_str(bootcfg_slot_partuuid(b, i));
        printf(",\"verified\":%s,\"version\":", verified > 0 ? "true" : "false");
        if (vs.version[0])
                json_str(vs.version);
        else
                printf("null");
        printf(",\"verity_root\":");
        if (vs.root_hex[0])
                json_str(vs.root_hex);
        else
                printf("null");
        putchar('}');
}

static int print_status(struct bootcfg *b, bool json) {
        struct bootcfg_state s;
        int r = bootcfg_read(b, &s);
        if (r < 0)
                return log_error(r, "%s", bootcfg_error(b));
        int booted = bootcfg_booted(b);
        int next = bootcfg_pick(&s, NULL);
        if (json) {
                printf("{\"backend\":\"%s\",\"disk\":", bootcfg_backend_name(bootcfg_backend(b)));
                json_str(bootcfg_disk_path(b));
                printf(",\"booted\":");
                if (booted >= 0)
                        printf("\"%c\"", bootcfg_slot_name(booted));
                else
                        printf("null");
                printf(",\"next\":");
                if (next >= 0)
                        printf("\"%c\"", bootcfg_slot_name(next));
                else
                        printf("null");
                printf(",\"slots\":{");
                print_slot_json(b, &s, BOOTCFG_SLOT_A);
                putchar(',');
                print_slot_json(b, &s, BOOTCFG_SLOT_B);
                printf("}}\n");
                return 0;
        }
        printf("backend: %s on %s\n", bootcfg_backend_name(bootcfg_backend(b)), bootcfg_disk_path(b));
        printf("slot  priority  tries  successful  verified  partuuid                              version     root hash\n");
        for (int i = 0; i < BOOTCFG_SLOTS; i++) {
                struct verity_slot vs;
                slot_seal(b, i, &vs);
                printf("%c     %-8u  %-5u  %-10s  %-8s  %-36s  %-10s  %s\n", bootcfg_slot_name(i), s.slot[i].priority,
                       s.slot[i].tries, s.slot[i].successful ? "yes" : "no",
                       bootcfg_is_verified(b, i) > 0 ? "yes" : "no", bootcfg_slot_partuuid(b, i),
                       vs.version[0] ? vs.version : "-", vs.root_hex[0] ? vs.root_hex : "-");
        }
        printf("booted: %s\n", booted >= 0 ? (booted ? "B" : "A") : "unknown");
        printf("next:   %s\n", next >= 0 ? (next ? "B" : "A") : "none (no bootable slot!)");
        return 0;
}

static int parse_slot_arg(const char *s, int *ret) {
        int slot = bootcfg_slot_parse(s);
        if (slot < 0)
                return log_error(-EINVAL, "\"%s\" is not a slot (A or B)", s);
        *ret = slot;
        return 0;
}

static void print_state(const struct bootcfg_state *s) {
        for (int i = 0; i < BOOTCFG_SLOTS; i++)
                printf("%c: priority=%u tries=%u successful=%u\n", bootcfg_slot_name(i), s->slot[i].priority,
                       s->slot[i].tries, s->slot[i].successful);
}

typedef struct Args {
        struct bootcfg_options o;
        bool json;
        unsigned flags; /* BOOTCFG_FORCE */
        uint64_t size;  /* verify --size */
        int slot;       /* the verb's slot argument, or -1 */
        char **args;    /* the verb's arguments */
} Args;

static int verb_status(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return print_status(b, a->json);
}
static int verb_set_next(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return bootcfg_set_next(b, a->slot, a->flags, s);
}
static int verb_mark_good(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return bootcfg_mark_good(b, a->slot, s);
}
static int verb_mark_bad(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return bootcfg_mark_bad(b, a->slot, a->flags, s);
}
static int verb_rollback(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return bootcfg_rollback(b, s);
}
static int verb_verify(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        int r = bootcfg_verify(b, a->slot, a->args[1], a->size);
        if (r >= 0)
                printf("slot %c verified\n", bootcfg_slot_name(a->slot));
        return r;
}
static int verb_unverify(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        return bootcfg_unverify(b, a->slot);
}
static int verb_repair(struct bootcfg *b, const Args *a, struct bootcfg_state *s) {
        int r = bootcfg_repair(b);
        if (r >= 0)
                printf("%s\n", r > 0 ? "repaired" : "nothing to repair");
        return r;
}

/* Every verb's first argument, if it has one, is a slot. */
static const struct Verb {
        const char *name;
        int min, max;     /* arguments */
        bool writes;      /* opens the disk for writing */
        bool lock;        /* takes the disk and state-dir locks (verify/unverify change what set-next trusts) */
        bool prints_state;
        int (*run)(struct bootcfg *b, const Args *a, struct bootcfg_state *s);
} verbs[] = {
        { "status", 0, 0, false, false, false, verb_status },
        { "set-next", 1, 1, true, true, true, verb_set_next },
        { "mark-good", 0, 1, true, true, true, verb_mark_good },
        { "mark-bad", 1, 1, true, true, true, verb_mark_bad },
        { "rollback", 0, 0, true, true, true, verb_rollback },
        { "verify", 2, 2, false, true, false, verb_verify },
        { "unverify", 1, 1, false, true, false, verb_unverify },
        { "repair", 0, 0, true, true, false, verb_repair },
};

/* Options into *a; returns the index of the verb in argv, 0 after --help, or -1 (usage error, said). */
static int parse_options(int argc, char **argv, Args *a) {
        enum { OPT_DISK = 0x100, OPT_BACKEND, OPT_CMDLINE, OPT_BOOTED, OPT_STATE_DIR, OPT_FORCE, OPT_JSON, OPT_SIZE };
        static const struct option opts[] = {
                { "disk", required_argument, NULL, OPT_DISK },
                { "backend", required_argument, NULL, OPT_BACKEND },
                { "cmdline", required_argument, NULL, OPT_CMDLINE },
                { "booted", required_argument, NULL, OPT_BOOTED },
                { "state-dir", required_argument, NULL, OPT_STATE_DIR },
                { "force", no_argument, NULL, OPT_FORCE },
                { "json", no_argument, NULL, OPT_JSON },
                { "size", required_argument, NULL, OPT_SIZE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_DISK:
                        a->o.disk = optarg;
                        break;
                case OPT_BACKEND:
                        if (bootcfg_backend_parse(optarg, &a->o.backend) < 0)
                                return log_error(-EINVAL, "unknown backend \"%s\" (grubenv or gpt)", optarg), -1;
                        break;
                case OPT_CMDLINE:
                        a->o.cmdline = optarg;
                        break;
                case OPT_BOOTED:
                        if (parse_slot_arg(optarg, &a->o.booted) < 0)
                                return -1;
                        break;
                case OPT_STATE_DIR:
                        a->o.state_dir = optarg;
                        break;
                case OPT_FORCE:
                        a->flags |= BOOTCFG_FORCE;
                        break;
                case OPT_JSON:
                        a->json = true;
                        break;
                case OPT_SIZE:
                        if (parse_u64_range(optarg, 1, UINT64_MAX, &a->size) < 0)
                                return log_error(-EINVAL, "--size \"%s\" is not a positive number of bytes", optarg), -1;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return -1;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return -1;
        }
        return optind;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        Args a = { .o = { .backend = BOOTCFG_BACKEND_GRUBENV, .booted = -1 }, .slot = -1 };
        int vi = parse_options(argc, argv, &a);
        if (vi <= 0)
                return vi == 0 ? 0 : 2;
        const char *name = argv[vi];
        a.args = argv + vi + 1;
        int nargs = argc - vi - 1;
        const struct Verb *v = NULL;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        v = &verbs[i];
        if (!v)
                return log_error(-EINVAL, "unknown verb \"%s\" (see --help)", name), 2;
        if (nargs < v->min || nargs > v->max)
                return log_error(-EINVAL, "wrong number of arguments for \"%s\" (see --help)", name), 2;
        if (nargs >= 1 && parse_slot_arg(a.args[0], &a.slot) < 0)
                return 2;
        a.o.writable = v->writes;
        a.o.lock = v->lock;

        char err[512];
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = bootcfg_open(&a.o, &b, err, sizeof err);
        if (r < 0)
                return log_error(r, "%s", err[0] ? err : strerror(-r)), 1;
        struct bootcfg_state s;
        r = v->run(b, &a, &s);
        if (r < 0) {
                if (v->run == verb_status)
                        return 1; /* said */
                const char *e = bootcfg_error(b);
                log_error(r, "%s: %s", name, e[0] ? e : strerror(-r));
                return 1;
        }
        if (v->prints_state)
                print_state(&s);
        return 0;
}
