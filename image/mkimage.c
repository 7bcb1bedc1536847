/* image/mkimage.c — cairn-mkimage: parse the command line, run the inputs into an ext4 image, report errors. */
#include <getopt.h>
#include <inttypes.h>

#include "ext4w.h"
#include "input.h"
#include "log.h"
#include "outfile.h"
#include "parse.h"
#include "recipe.h"

#define MAX_VARS 256
#define SIZE_MIN (64ULL * EXT4W_BLOCK_SIZE)                 /* 256 KiB */
#define SIZE_MAX_BYTES (((1ULL << 32) - 1) * EXT4W_BLOCK_SIZE) /* 2^32 - 1 blocks: just under 16 TiB */
#define INODES_MAX ((uint64_t)UINT32_MAX - 1)

static void usage(FILE *f) {
        fputs("Usage: cairn-mkimage -o OUT [--size SIZE] [--inodes N] [--seed STR] [--label LABEL] [--epoch SECS] [--no-journal]\n"
              "                     [--root-mode usr|plain] [--var NAME=VALUE ...] [--recipe FILE] [INPUT ...]\n"
              "Write an ext4 image from .debs, tar archives and directories (see docs/image-recipe.md).\n"
              "  -o, --output OUT     image file to write (replaced atomically)\n"
              "  --size SIZE          bytes, with optional K/M/G/T suffix (256K .. 16T); default: fit the content\n"
              "  --inodes N           at least N inodes (default: one per 16 KiB, or what fit mode counted)\n"
              "  --seed STR           filesystem UUID and hash seed derive from it (default: label or \"cairn\")\n"
              "  --label LABEL        volume label (at most 16 bytes)\n"
              "  --epoch SECS         every timestamp (default: $SOURCE_DATE_EPOCH, else 0)\n"
              "  --no-journal         no ext4 journal\n"
              "  --root-mode MODE     usr: build a merged-/usr image; plain (default): paths as they are\n"
              "  --var NAME=VALUE     define ${NAME} for the recipe\n"
              "  --recipe FILE        recipe / overrides manifest\n",
              f);
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        enum { OPT_SIZE = 256, OPT_INODES, OPT_SEED, OPT_LABEL, OPT_EPOCH, OPT_NO_JOURNAL, OPT_ROOT_MODE, OPT_VAR, OPT_RECIPE };
        static const struct option opts[] = {
                { "output", required_argument, NULL, 'o' },     { "size", required_argument, NULL, OPT_SIZE },
                { "seed", required_argument, NULL, OPT_SEED },   { "label", required_argument, NULL, OPT_LABEL },
                { "epoch", required_argument, NULL, OPT_EPOCH }, { "no-journal", no_argument, NULL, OPT_NO_JOURNAL },
                { "root-mode", required_argument, NULL, OPT_ROOT_MODE }, { "var", required_argument, NULL, OPT_VAR },
                { "recipe", required_argument, NULL, OPT_RECIPE }, { "help", no_argument, NULL, 'h' },
                { "inodes", required_argument, NULL, OPT_INODES },
                {},
        };
        const char *out = NULL, *size_arg = NULL, *inodes_arg = NULL, *seed = NULL, *label = NULL, *recipe_path = NULL;
        const char *epoch_arg = getenv("SOURCE_DATE_EPOCH");
        bool journal = true;
        enum root_mode mode = ROOT_MODE_PLAIN;
        char *vars[MAX_VARS];
        size_t n_vars = 0;
        int c;
        while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'o': out = optarg; break;
                case OPT_SIZE: size_arg = optarg; break;
                case OPT_INODES: inodes_arg = optarg; break;
                case OPT_SEED: seed = optarg; break;
                case OPT_LABEL: label = optarg; break;
                case OPT_EPOCH: epoch_arg = optarg; break;
                case OPT_NO_JOURNAL: journal = false; break;
                case OPT_ROOT_MODE:
                        if (root_mode_from_string(optarg, &mode) < 0) {
                                log_msg("--root-mode '%s': expected usr or plain", optarg);
                                return 2;
                        }
                        break;
                case OPT_VAR:
                        if (n_vars == MAX_VARS || !strchr(optarg, '=') || optarg[0] == '=') {
                                log_msg("--var '%s': expected NAME=VALUE (at most %d)", optarg, MAX_VARS);
                                return 2;
                        }
                        vars[n_vars++] = optarg;
                        break;
                case OPT_RECIPE: recipe_path = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!out) {
                log_msg("missing -o OUT");
                usage(stderr);
                return 2;
        }
        struct ext4w_params p = { .label = label, .seed = seed ? seed : label ? label : "cairn", .journal = journal };
        if (size_arg && parse_size_range(size_arg, SIZE_MIN, SIZE_MAX_BYTES, &p.size) < 0) {
                log_msg("--size '%s': expected bytes with an optional K, M, G or T suffix, 256K .. 16T", size_arg);
                return 2;
        }
        uint64_t min_inodes = 0;
        if (inodes_arg && parse_u64_range(inodes_arg, 1, INODES_MAX, &min_inodes) < 0) {
                log_msg("--inodes '%s': expected a number 1 .. %" PRIu64, inodes_arg, INODES_MAX);
                return 2;
        }
        uint64_t epoch;
        if (epoch_arg && *epoch_arg) {
                if (parse_u64_range(epoch_arg, 0, INT32_MAX, &epoch) < 0) {
                        log_msg("epoch '%s' (--epoch or SOURCE_DATE_EPOCH): expected seconds 0..%d", epoch_arg, INT32_MAX);
                        return 2;
                }
                p.epoch = (int64_t)epoch;
        }
        p.min_inodes = min_inodes;
        /* SIGINT/SIGTERM/SIGHUP remove the temp image (gigabytes of apparent size) before the process dies */
        int r = outfile_install_signal_cleanup();
        if (r < 0) {
                log_error_errno(r, "Failed to install signal handlers");
                return 1;
        }

        _cleanup_recipe_ struct recipe *recipe = NULL;
        if (recipe_path) {
                struct recipe_error rerr;
                int r = recipe_load(recipe_path, vars, n_vars, &recipe, &rerr);
                if (r < 0) {
                        if (rerr.line)
                                log_msg("'%s' line %u: %s", recipe_path, rerr.line, rerr.msg);
                        else
                                log_msg("'%s': %s", recipe_path, rerr.msg);
                        return 1;
                }
        }
        char *const *inputs = argv + optind;
        size_t n_inputs = (size_t)(argc - optind);

        struct img_err err = { 0 };
        if (!size_arg) {
                struct ext4w_count count = { 0 };
                r = input_run(recipe, inputs, n_inputs, mode, &ext4w_count_sink, &count, &err);
                if (r < 0) {
                        log_error(r, "%s", err.msg);
                        return 1;
                }
                p.size = ext4w_fit_size(&count, journal, &p.min_inodes);
                p.min_inodes = MAX(p.min_inodes, min_inodes);
                log_debug("fit mode: %" PRIu64 " entries, %" PRIu64 " data blocks -> %" PRIu64 " bytes", count.entries,
                          count.blocks, p.size);
        }
        /* fit mode grows and retries if the estimate was short; an explicit --size is final */
        for (int attempt = 0;; attempt++) {
                struct ext4w *w = NULL;
                err = (struct img_err){ 0 };
                r = ext4w_create(out, &p, &err, &w);
                if (r >= 0) {
                        r = input_run(recipe, inputs, n_inputs, mode, &ext4w_sink, w, &err);
                        if (r < 0)
                                ext4w_abort(w);
                        else
                                r = ext4w_finish(w);
                }
                if (r == -ENOSPC && !size_arg && attempt < 3) {
                        log_debug("fit estimate %" PRIu64 " too small ('%s'), retrying larger", p.size, err.msg);
                        p.size = ALIGN_UP(p.size + p.size / 2, 1 << 20);
                        continue;
                }
                break;
        }
        if (r == -ENOSPC && err.msg[0] == '/' && err.inodes) {
                log_msg("content does not fit in %s%s: out of inodes ('%s' needs one, the image has %" PRIu64
                        "); try --inodes N or a larger --size",
                        size_arg ? "--size " : "the fit size", size_arg ? size_arg : "", err.msg, err.inodes);
                return 1;
        }
        if (r == -ENOSPC && err.msg[0] == '/') {
                log_msg("content does not fit in %s%s ('%s' needs more space); try a larger --size",
                        size_arg ? "--size " : "the fit size", size_arg ? size_arg : "", err.msg);
                return 1;
        }
        if (r < 0) {
                log_msg("%s", err.msg[0] ? err.msg : strerror(-r));
                return 1;
        }
        return 0;
}
