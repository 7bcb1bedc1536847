/* bootcfg/main.c — cairn-bootcfg: the command line over the bootcfg library (argument parsing, output, exit codes). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootcfg.h"
#include "log.h"
#include "verity-slot.h"

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

int main(int argc, char **argv) {
        log_init(argv[0]);
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
        struct bootcfg_options o = { .backend = BOOTCFG_BACKEND_GRUBENV, .booted = -1 };
        bool force = false, json = false;
        uint64_t size = 0;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_DISK:
                        o.disk = optarg;
                        break;
                case OPT_BACKEND:
                        if (bootcfg_backend_parse(optarg, &o.backend) < 0) {
                                log_error(-EINVAL, "unknown backend \"%s\" (grubenv or gpt)", optarg);
                                return 2;
                        }
                        break;
                case OPT_CMDLINE:
                        o.cmdline = optarg;
                        break;
                case OPT_BOOTED:
                        if (parse_slot_arg(optarg, &o.booted) < 0)
                                return 2;
                        break;
                case OPT_STATE_DIR:
                        o.state_dir = optarg;
                        break;
                case OPT_FORCE:
                        force = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_SIZE: {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end || v == 0 || optarg[0] == '-') {
                                log_error(-EINVAL, "--size \"%s\" is not a positive number of bytes", optarg);
                                return 2;
                        }
                        size = v;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *verb = argv[optind];
        char **args = argv + optind + 1;
        int nargs = argc - optind - 1;
        struct {
                const char *name;
                int min, max;
                bool writes;
        } verbs[] = {
                { "status", 0, 0, false }, { "set-next", 1, 1, true }, { "mark-good", 0, 1, true },
                { "mark-bad", 1, 1, true }, { "rollback", 0, 0, true }, { "verify", 2, 2, false },
                { "unverify", 1, 1, false }, { "repair", 0, 0, true },
        };
        int v = -1;
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                if (strcmp(verbs[i].name, verb) == 0)
                        v = (int)i;
        if (v < 0) {
                log_error(-EINVAL, "unknown verb \"%s\" (see --help)", verb);
                return 2;
        }
        if (nargs < verbs[v].min || nargs > verbs[v].max) {
                log_error(-EINVAL, "wrong number of arguments for \"%s\" (see --help)", verb);
                return 2;
        }
        int slot = -1;
        if (nargs >= 1 && parse_slot_arg(args[0], &slot) < 0) /* every verb's first argument is a slot */
                return 2;
        o.writable = verbs[v].writes;
        o.lock = strcmp(verb, "status") != 0; /* verify/unverify change what set-next trusts about a slot */

        char err[512];
        _cleanup_bootcfg_ struct bootcfg *b = NULL;
        int r = bootcfg_open(&o, &b, err, sizeof err);
        if (r < 0) {
                log_error(r, "%s", err[0] ? err : strerror(-r));
                return 1;
        }
        struct bootcfg_state s;
        unsigned flags = force ? BOOTCFG_FORCE : 0;
        if (strcmp(verb, "status") == 0)
                return print_status(b, json) < 0 ? 1 : 0;
        if (strcmp(verb, "set-next") == 0)
                r = bootcfg_set_next(b, slot, flags, &s);
        else if (strcmp(verb, "mark-good") == 0)
                r = bootcfg_mark_good(b, slot, &s);
        else if (strcmp(verb, "mark-bad") == 0)
                r = bootcfg_mark_bad(b, slot, flags, &s);
        else if (strcmp(verb, "rollback") == 0)
                r = bootcfg_rollback(b, &s);
        else if (strcmp(verb, "verify") == 0) {
                r = bootcfg_verify(b, slot, args[1], size);
                if (r >= 0)
                        printf("slot %c verified\n", bootcfg_slot_name(slot));
        } else if (strcmp(verb, "unverify") == 0)
                r = bootcfg_unverify(b, slot);
        else {
                r = bootcfg_repair(b);
                if (r >= 0)
                        printf("%s\n", r > 0 ? "repaired" : "nothing to repair");
        }
        if (r < 0) {
                const char *e = bootcfg_error(b);
                log_error(r, "%s: %s", verb, e[0] ? e : strerror(-r));
                return 1;
        }
        if (strcmp(verb, "set-next") == 0 || strcmp(verb, "mark-good") == 0 || strcmp(verb, "mark-bad") == 0 ||
            strcmp(verb, "rollback") == 0)
                print_state(&s);
        return 0;
}
