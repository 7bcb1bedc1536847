/* tests/fuzz/fuzz-gpt.c — libFuzzer target for gpt_read() (both copies, degraded mode) over a memfd disk image, and
 * gpt_check_layout() on what it reads. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "gpt.h"

static int in_fd = -1, out_fd = -1;

static bool tables_same(const struct gpt_table *a, const struct gpt_table *b) {
        return a->disk_sectors == b->disk_sectors && gpt_guid_equal(&a->disk_guid, &b->disk_guid) &&
               a->first_usable_lba == b->first_usable_lba && a->last_usable_lba == b->last_usable_lba &&
               a->backup_lba == b->backup_lba && a->num_entries == b->num_entries && a->entry_size == b->entry_size &&
               memcmp(a->entries, b->entries, (size_t)a->num_entries * a->entry_size) == 0;
}

static bool error_ok(int r) {
        return r == -ENODATA || r == -EBADMSG;
}

/* What callers do with a table they read: walk the entries, names and labels. */
static void walk_entries(const struct gpt_table *t) {
        char name[GPT_NAME_MAX_UTF8], small[4], guid[GPT_GUID_STRLEN + 1];
        for (unsigned i = 0; i < t->num_entries; i++) {
                const uint8_t *e = gpt_entry(t, i);
                if (!e)
                        abort();
                if (!gpt_entry_is_used(e))
                        continue;
                if (gpt_entry_first_lba(e) < t->first_usable_lba || gpt_entry_last_lba(e) > t->last_usable_lba ||
                    gpt_entry_first_lba(e) > gpt_entry_last_lba(e))
                        abort(); /* gpt_read() promises every used entry inside the usable range */
                int r = gpt_entry_get_name(e, name, sizeof name);
                if (r < 0 && r != -EILSEQ)
                        abort();
                if (r >= 0 && strlen(name) >= sizeof name)
                        abort();
                r = gpt_entry_get_name(e, small, sizeof small);
                if (r < 0 && r != -EILSEQ && r != -ENOBUFS)
                        abort();
                struct gpt_guid g;
                gpt_entry_get_type(e, &g);
                if (strlen(gpt_guid_format(&g, guid)) != GPT_GUID_STRLEN)
                        abort();
        }
        if (gpt_entry(t, t->num_entries))
                abort();
        int r = gpt_find_by_label(t, "USR-A");
        if (r < -ENOTUNIQ || (r >= 0 && (unsigned)r >= t->num_entries))
                abort();
        /* What a writer checks: a pass means no two used entries share a sector; a refusal is one line. */
        int a = r, b = gpt_find_by_label(t, "USR-B");
        char why[320];
        for (int k = 0; k < 2; k++) {
                why[0] = 0;
                r = gpt_check_layout(t, k ? b : -1, k ? a : -1, k ? 4096 : 0, why, sizeof why);
                if (r < 0 && (!why[0] || strchr(why, '\n') ||
                              (r != -EBADMSG && r != -EBUSY && r != -EFBIG && r != -ENOENT && r != -EINVAL)))
                        abort();
                if (r < 0 || k)
                        break;
                for (unsigned i = 0; i < t->num_entries; i++)
                        for (unsigned j = i + 1; j < t->num_entries; j++) {
                                const uint8_t *x = gpt_entry(t, i), *y = gpt_entry(t, j);
                                if (gpt_entry_is_used(x) && gpt_entry_is_used(y) &&
                                    gpt_entry_first_lba(x) <= gpt_entry_last_lba(y) &&
                                    gpt_entry_first_lba(y) <= gpt_entry_last_lba(x))
                                        abort();
                        }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (in_fd < 0) {
                in_fd = memfd_create("fuzz-gpt-in", MFD_CLOEXEC);
                out_fd = memfd_create("fuzz-gpt-out", MFD_CLOEXEC);
                if (in_fd < 0 || out_fd < 0)
                        abort();
        }
        if (size > (1u << 20))
                return 0;
        if (ftruncate(in_fd, 0) < 0 || (size > 0 && pwrite_full(in_fd, data, size, 0) < 0))
                abort();

        /* Strict: only two valid, identical copies. */
        struct gpt_table *t = NULL;
        struct gpt_status st;
        int strict = gpt_read(in_fd, 0, 0, &t, &st);
        if (strict < 0) {
                if (!error_ok(strict) || t)
                        abort();
        } else {
                if (strict != (GPT_COPY_PRIMARY | GPT_COPY_BACKUP) || st.copies_differ || !t)
                        abort();
                gpt_free(t);
                t = NULL;
        }
        char line[512];
        gpt_status_describe(&st, line, sizeof line);

        /* Degraded: any valid copy. */
        int r = gpt_read(in_fd, 0, GPT_READ_DEGRADED, &t, &st);
        gpt_status_describe(&st, line, sizeof line);
        if (r < 0) {
                if (!error_ok(r) || t || strict >= 0 || st.valid)
                        abort();
                return 0;
        }
        if (r == 0 || (unsigned)r != st.valid || !t)
                abort();
        walk_entries(t);

        /* Rewriting what was read (a repair) must give two valid identical copies of the same table. */
        if (ftruncate(out_fd, 0) < 0 || ftruncate(out_fd, (off_t)(t->disk_sectors * GPT_SECTOR_SIZE)) < 0)
                abort();
        if (gpt_repair(out_fd, t, NULL) < 0)
                abort();
        struct gpt_table *back = NULL;
        r = gpt_read(out_fd, 0, 0, &back, NULL);
        if (r != (GPT_COPY_PRIMARY | GPT_COPY_BACKUP) || !tables_same(t, back))
                abort();
        gpt_free(back);
        gpt_free(t);
        return 0;
}
