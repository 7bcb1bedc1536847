/* tests/fuzz/fuzz-verity-sb.c — libFuzzer target for verity_superblock_parse() (what `cairn-veritytree verify` reads
 * from disk), the hex and UUID parsers, and, for small accepted superblocks, a build + compare round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "image/verity.h"

static int hash_fd = -1;

static void text_parsers(const uint8_t *data, size_t size) {
        char s[2 * VERITY_SALT_MAX + 8];
        size_t n = MIN(size, sizeof s - 1);
        memcpy(s, data, n);
        s[n] = 0;
        uint8_t salt[VERITY_SALT_MAX], uuid[VERITY_UUID_SIZE], root[VERITY_DIGEST_SIZE];
        size_t salt_size = SIZE_MAX;
        int r = verity_salt_from_hex(s, salt, &salt_size);
        if ((r == 0) != (salt_size != SIZE_MAX) || (r == 0 && salt_size > VERITY_SALT_MAX))
                abort();
        if (r < 0 && r != -EINVAL && r != -E2BIG)
                abort();
        char back[VERITY_UUID_STRLEN + 1];
        if (verity_uuid_parse(s, uuid) == 0 && strcasecmp(verity_uuid_format(uuid, back), s) != 0)
                abort();
        char hex[VERITY_HEX_SIZE];
        if (verity_root_from_hex(s, root) == 0 && strcasecmp(verity_hex(root, sizeof root, hex), s) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (hash_fd < 0 && (hash_fd = memfd_create("fuzz-verity-hash", MFD_CLOEXEC)) < 0)
                abort();
        text_parsers(data, size);
        struct verity_params p;
        memset(&p, 0x5a, sizeof p);
        int r = verity_superblock_parse(data, size, &p);
        if (r < 0) {
                if (r != -EBADMSG && r != -EOPNOTSUPP && r != -EINVAL && r != -EFBIG)
                        abort();
                if (p.data_blocks != 0x5a5a5a5a5a5a5a5aULL) /* nothing written on failure */
                        abort();
                return 0;
        }
        /* Only the canonical form is accepted, so it builds back to the same bytes. */
        uint8_t sb[VERITY_SUPERBLOCK_SIZE];
        if (!p.superblock || verity_superblock_build(&p, sb) < 0 || memcmp(sb, data, sizeof sb) != 0)
                abort();
        struct verity_layout l;
        if (verity_layout_compute(&p, &l) < 0 || l.levels > 14 || l.area_size < l.tree_offset)
                abort();
        /* Small trees: data = the input after the superblock, repeated; build, then compare must pass. */
        uint64_t bytes = p.data_blocks * p.data_block_size;
        if (bytes > (256u << 10))
                return 0;
        uint8_t *d = malloc(bytes);
        if (!d)
                abort();
        for (uint64_t i = 0; i < bytes; i++)
                d[i] = size > sizeof sb ? data[sizeof sb + i % (size - sizeof sb)] : (uint8_t)i;
        uint8_t root[VERITY_DIGEST_SIZE], root2[VERITY_DIGEST_SIZE];
        struct verity_tree *t = NULL;
        if (ftruncate(hash_fd, 0) < 0 || verity_tree_new(&p, VERITY_WRITE, hash_fd, 0, &t) < 0 ||
            verity_tree_update(t, d, (size_t)bytes) < 0 || verity_tree_finish(t, root) < 0)
                abort();
        verity_tree_free(t);
        t = NULL;
        if (verity_tree_new(&p, VERITY_COMPARE, hash_fd, 0, &t) < 0 || verity_tree_update(t, d, (size_t)bytes) < 0 ||
            verity_tree_finish(t, root2) < 0 || memcmp(root, root2, sizeof root) != 0)
                abort();
        verity_tree_free(t);
        uint8_t back[VERITY_SUPERBLOCK_SIZE];
        if (pread_full(hash_fd, back, sizeof back, 0) < 0 || memcmp(back, data, sizeof back) != 0)
                abort();
        free(d);
        return 0;
}
