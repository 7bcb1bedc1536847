/* bootcfg/bootcfg-internal.h — the handle and the backend interface shared by bootcfg.c, grubenv.c, gptattr.c. */
#pragma once

#include <stdarg.h>

#include "bootcfg.h"
#include "gpt.h"
#include "macro.h"

#define BOOTCFG_ESP_LABEL "EFI-SYSTEM"

struct bootcfg_part {
        int index;              /* GPT entry index (0-based) */
        uint64_t offset, size;  /* bytes */
        struct gpt_guid uuid;
        char uuid_str[GPT_GUID_STRLEN + 1];
};

struct bootcfg {
        int fd;
        char *disk;
        char *state_dir;
        enum bootcfg_backend_id backend_id;
        const struct bootcfg_backend *backend;
        struct bootcfg_part esp, usr[BOOTCFG_SLOTS];
        int booted;             /* slot or -ENODATA */
        int running;            /* GPT entry index of the running /usr (cairn.usr=PARTUUID=), else -ENODATA */
        struct bootcfg_io io;
        char error[320];
};

struct bootcfg_backend {
        const char *name;
        /* strict: corrupt primary = -EBADMSG */
        int (*read)(struct bootcfg *b, struct bootcfg_state *ret);
        int (*read_as_loader)(struct bootcfg *b, struct bootcfg_state *ret);
        int (*write)(struct bootcfg *b, const struct bootcfg_state *s);
        int (*repair)(struct bootcfg *b);
};

extern const struct bootcfg_backend bootcfg_backend_grubenv;
extern const struct bootcfg_backend bootcfg_backend_gpt;

/* Record an error detail for bootcfg_error(); returns err. */
int bootcfg_fail(struct bootcfg *b, int err, const char *fmt, ...) _printf_(3, 4);

/* Write/sync through b->io. */
int bootcfg_io_write(struct bootcfg *b, const void *buf, size_t len, uint64_t offset);
int bootcfg_io_sync(struct bootcfg *b);
