/* tests/fuzz/fuzz-recipe.c — libFuzzer target for the image recipe parser (recipe_parse). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "image/recipe.h"

/* A small host tree so that recipes naming these relative paths take the success path:
 *   debs/busybox_1.35_amd64.deb  root.tar.zst  overlay/  motd */
static char base[64];

static void cleanup_base(void) {
        static const char *const files[] = { "debs/busybox_1.35_amd64.deb", "root.tar.zst", "motd" };
        static const char *const dirs[] = { "debs", "overlay" };
        char p[128];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", base, files[i]);
                unlink(p);
        }
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", base, dirs[i]);
                rmdir(p);
        }
        rmdir(base);
}

static void setup_base(void) {
        char p[128];
        snprintf(base, sizeof base, "/tmp/fuzz-recipe.XXXXXX");
        if (!mkdtemp(base))
                abort();
        snprintf(p, sizeof p, "%s/debs", base);
        if (mkdir(p, 0755) < 0)
                abort();
        snprintf(p, sizeof p, "%s/overlay", base);
        if (mkdir(p, 0755) < 0)
                abort();
        static const char *const files[] = { "debs/busybox_1.35_amd64.deb", "root.tar.zst", "motd" };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", base, files[i]);
                if (write_file_atomic(p, "x", 1, 0644) < 0)
                        abort();
        }
        atexit(cleanup_base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *vars[] = { "DEBS=debs", "ARCH=amd64", "NAME=two words", "EMPTY=" };
        if (!base[0])
                setup_base();

        /* deb arguments are glob()bed on the real file system; an input with many wildcards over absolute
         * paths ("/x/x/x/x" with every x a star) would make a run slow without exercising anything new in the
         * parser. No variable value holds a wildcard, so counting them in the input is enough. */
        unsigned wild = 0;
        for (size_t i = 0; i < size; i++)
                wild += data[i] == '*' || data[i] == '?' || data[i] == '[';
        if (wild > 2)
                return 0;

        struct recipe *sentinel = (struct recipe *)(uintptr_t)0x1;
        struct recipe *r = sentinel;
        struct recipe_error err;
        memset(&err, 0xa5, sizeof err);
        int rc = recipe_parse((const char *)data, size, base, vars, sizeof vars / sizeof vars[0], &r, &err);
        if (rc < 0) {
                if (r != sentinel)
                        abort(); /* ret must stay untouched on failure */
                if (rc == -EINVAL && (!memchr(err.msg, 0, sizeof err.msg) || !err.msg[0]))
                        abort(); /* every parse error names its reason */
                return 0;
        }
        if (!r || r == sentinel)
                abort();
        unsigned lines = 1;
        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
        for (size_t i = 0; i < r->n_ops; i++) {
                const struct recipe_op *op = &r->ops[i];
                if (op->line == 0 || op->line > lines || (i > 0 && op->line <= r->ops[i - 1].line))
                        abort();
                if (strcmp(recipe_op_type_to_string(op->type), "?") == 0)
                        abort();
                switch (op->type) {
                case RECIPE_DEB:
                        if (!op->src)
                                abort();
                        break;
                case RECIPE_TAR:
                case RECIPE_DIR:
                case RECIPE_FILE:
                        if (!op->src || !op->dest)
                                abort();
                        break;
                case RECIPE_WRITE:
                        if (!op->dest || !op->data || op->data_len > RECIPE_MAX_VALUE)
                                abort();
                        break;
                case RECIPE_SYMLINK:
                case RECIPE_HARDLINK:
                        if (!op->dest || !op->arg || !op->arg[0])
                                abort();
                        break;
                case RECIPE_XATTR:
                        if (!op->dest || !op->arg || !op->data || op->data_len == 0 || op->data_len > RECIPE_MAX_VALUE)
                                abort();
                        break;
                case RECIPE_ATTR:
                        if (!op->dest || !(op->has_mode || op->has_uid || op->has_gid))
                                abort();
                        break;
                default:
                        if (!op->dest || !op->dest[0])
                                abort();
                        break;
                }
                if ((op->has_mode && op->mode > 07777) || (op->has_uid && op->uid == UINT32_MAX) ||
                    (op->has_gid && op->gid == UINT32_MAX))
                        abort();
                /* No ".." component may reach an image path. */
                if (op->type != RECIPE_EXCLUDE && op->type != RECIPE_INCLUDE && op->dest) {
                        const char *d = op->dest;
                        for (const char *s = d; (s = strstr(s, "..")); s++)
                                if ((s == d || s[-1] == '/') && (s[2] == 0 || s[2] == '/'))
                                        abort();
                }
        }
        recipe_free(r);
        return 0;
}
