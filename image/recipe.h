/* image/recipe.h — the image recipe / overrides manifest: a line-based list of inputs and directives. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECIPE_MAX_SIZE (1024 * 1024)
#define RECIPE_MAX_VALUE (64 * 1024) /* write content and xattr values */

enum recipe_op_type {
        RECIPE_DEB,
        RECIPE_TAR,
        RECIPE_DIR,
        RECIPE_EXCLUDE,
        RECIPE_INCLUDE,
        RECIPE_MKDIR,
        RECIPE_FILE,
        RECIPE_WRITE,
        RECIPE_SYMLINK,
        RECIPE_HARDLINK,
        RECIPE_ATTR,
        RECIPE_XATTR,
        RECIPE_RM,
};

struct recipe_op {
        enum recipe_op_type type;
        unsigned line;
        char *src;  /* deb/tar/dir/file: resolved host path */
        char *dest; /* image path (dir: input-view DEST), or the glob of exclude/include */
        char *arg;  /* symlink target, hardlink existing path, xattr name */
        uint8_t *data; /* write content, xattr value */
        size_t data_len;
        uint32_t mode, uid, gid;
        bool has_mode, has_uid, has_gid;
};

struct recipe {
        char *path; /* the file it came from (for messages); NULL when parsed from memory */
        struct recipe_op *ops;
        size_t n_ops;
};

struct recipe_error {
        unsigned line; /* 0: not tied to a line (e.g. the file cannot be read) */
        char msg[512];
};

/* Parse recipe text. base_dir resolves relative host paths; vars are "NAME=VALUE" strings.
 * Host paths (deb globs, tar, dir, file SRC) are checked to exist. On failure returns -EINVAL
 * (or -errno) and fills *err; on success *ret owns the parsed recipe. */
int recipe_parse(const char *text, size_t len, const char *base_dir, char *const *vars, size_t n_vars,
                 struct recipe **ret, struct recipe_error *err);
/* Read and parse a recipe file (at most RECIPE_MAX_SIZE bytes); relative paths resolve against its directory. */
int recipe_load(const char *path, char *const *vars, size_t n_vars, struct recipe **ret, struct recipe_error *err);
void recipe_free(struct recipe *r);
const char *recipe_op_type_to_string(enum recipe_op_type t);

static inline void recipe_freep(struct recipe **r) {
        if (*r)
                recipe_free(*r);
}
#define _cleanup_recipe_ __attribute__((cleanup(recipe_freep)))
