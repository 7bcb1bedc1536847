/* bootcfg/envblock.c — one variable of a GRUB environment block, read as GRUB's load_env reads it. Apart from
 * grubenv.c (which also writes blocks and knows the FAT file they live in) so that readers of a lone block, such
 * as cairn-release and cairn-tpm reading a slot's dm-verity blocks, link nothing else. */
#include "grubenv.h"

#include <errno.h>
#include <string.h>

int grubenv_get(const void *block, size_t len, const char *key, char *buf, size_t size) {
        static const char sig[] = "# GRUB Environment Block\n";
        const char *blk = block;
        if (len < sizeof sig - 1 || memcmp(blk, sig, sizeof sig - 1) != 0)
                return -EBADMSG;
        size_t kl = strlen(key);
        for (const char *p = blk, *end = blk + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        break;
                if ((size_t)(nl - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
                        size_t vl = (size_t)(nl - p) - kl - 1;
                        if (vl >= size)
                                return -E2BIG;
                        memcpy(buf, p + kl + 1, vl);
                        buf[vl] = 0;
                        return 0;
                }
                p = nl + 1;
        }
        return -ENOENT;
}
