/* updater/agent/revoked.c — the revoked-key store: key ids revoked by releases this host accepted (STATE_DIR/revoked-keys). */
#include "agent-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "gpt.h"
#include "kvfile.h"

/* Key ids revoked by releases this host accepted, one hex id per line in STATE_DIR/revoked-keys. A release ships
 * its own trusted keys, so a revocation takes full effect once it boots; this list makes it hold from the moment
 * the release is accepted, so a payload signed only by the revoked key cannot replace a staged update. */
#define REVOKED_FILE_MAX 1024 /* ids kept; only ids of keys in the trusted directory matter when loading */

static int revoked_path(const Agent *a, char *buf, size_t size) {
        return agent_strf(buf, size, "%s/revoked-keys", a->state_dir);
}

/* Read the list into *ret_ids (room for REVOKED_FILE_MAX ids, caller frees); returns the count or < 0 with
 * a->err set. */
static int revoked_read(Agent *a, uint8_t (**ret_ids)[CAIRN_KEY_ID_SIZE]) {
        const size_t max = REVOKED_FILE_MAX;
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = calloc(max, CAIRN_KEY_ID_SIZE);
        if (!ids)
                return agent_fail(a, -ENOMEM, "out of memory");
        char path[PATH_MAX];
        if (revoked_path(a, path, sizeof path) < 0)
                return agent_fail(a, -ENAMETOOLONG, "state directory path too long");
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, (CAIRN_KEY_ID_HEX_SIZE + 1) * (size_t)REVOKED_FILE_MAX, &buf, &len);
        if (r == -ENOENT) {
                *ret_ids = TAKE_PTR(ids);
                return 0;
        }
        if (r < 0)
                return agent_fail(a, r, "cannot read the revoked key list \"%s\": %s", path, strerror(-r));
        size_t n = 0, line = 0;
        for (char *l = buf, *end; *l; l = end) {
                end = l + strcspn(l, "\n");
                if (*end)
                        *end++ = 0;
                line++;
                if (!*l)
                        continue; /* blank lines are allowed */
                if (n >= max)
                        return agent_fail(a, -E2BIG, "revoked key list \"%s\" has more than %zu ids", path, max);
                if (key_id_from_hex(l, ids[n]) < 0)
                        return agent_fail(a, -EBADMSG, "revoked key list \"%s\" line %zu is not a 16-digit key id", path,
                                    line);
                n++;
        }
        *ret_ids = TAKE_PTR(ids);
        return (int)n;
}

/* Revoke, in kr, every trusted key that an accepted release revoked. */
int agent_revoked_apply(Agent *a, CairnKeyring *kr) {
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = NULL;
        int n = revoked_read(a, &ids);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                if (keyring_find(kr, ids[i])) {
                        int r = keyring_revoke(kr, ids[i]);
                        if (r < 0)
                                return agent_fail(a, r, "too many revoked keys");
                }
        return 0;
}

/* Add the ids a verified, accepted release revokes to the list (atomically; nothing to do if none is new). */
int agent_revoked_record(Agent *a, const Payload *p) {
        if (p->n_revoked == 0)
                return 0;
        _cleanup_free_ uint8_t(*ids)[CAIRN_KEY_ID_SIZE] = NULL;
        int n = revoked_read(a, &ids);
        if (n < 0)
                return n;
        size_t count = (size_t)n, before = count;
        for (uint32_t i = 0; i < p->n_revoked; i++) {
                bool known = false;
                for (size_t k = 0; k < count && !known; k++)
                        known = memcmp(ids[k], p->revoked[i], CAIRN_KEY_ID_SIZE) == 0;
                if (known)
                        continue;
                if (count == REVOKED_FILE_MAX) { /* keep the newest: drop the oldest id */
                        memmove(ids[0], ids[1], (REVOKED_FILE_MAX - 1) * CAIRN_KEY_ID_SIZE);
                        count--;
                }
                memcpy(ids[count++], p->revoked[i], CAIRN_KEY_ID_SIZE);
        }
        if (count == before)
                return 0;
        _cleanup_free_ char *text = malloc(count * CAIRN_KEY_ID_HEX_SIZE + 1);
        if (!text)
                return agent_fail(a, -ENOMEM, "out of memory");
        size_t len = 0;
        for (size_t k = 0; k < count; k++) {
                char hex[CAIRN_KEY_ID_HEX_SIZE];
                len += (size_t)sprintf(text + len, "%s\n", key_id_to_hex(ids[k], hex));
        }
        char path[PATH_MAX];
        if (revoked_path(a, path, sizeof path) < 0)
                return agent_fail(a, -ENAMETOOLONG, "state directory path too long");
        int r = mkdir_parents(a->state_dir, true);
        if (r >= 0)
                r = write_file_atomic(path, text, len, 0644);
        if (r < 0)
                return agent_fail(a, r, "cannot write the revoked key list \"%s\": %s", path, strerror(-r));
        return 0;
}

/* GET [off, off+len) of the payload into m, from the offer's URLs in turn (the one that works stays in use). */
