/* image/verity-slot.c — the dm-verity layout of a sealed /usr slot, read from the slot itself (see verity-slot.h). */
#include "verity-slot.h"

#include <ctype.h>
#include <string.h>

#include "fileio.h"

#define EXT4_SB_OFFSET 1024
#define EXT4_MAGIC 0xEF53
#define EXT4_FEATURE_INCOMPAT_64BIT 0x80

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int verity_ext4_size(int fd, uint64_t off, uint64_t *ret) {
        uint8_t sb[1024];
        int r = pread_full(fd, sb, sizeof sb, off + EXT4_SB_OFFSET);
        if (r < 0)
                return r;
        if (le16(sb + 0x38) != EXT4_MAGIC)
                return -EBADMSG;
        uint32_t log_bs = le32(sb + 0x18);
        uint64_t blocks = le32(sb + 0x4);
        if (le32(sb + 0x60) & EXT4_FEATURE_INCOMPAT_64BIT)
                blocks |= (uint64_t)le32(sb + 0x150) << 32;
        if (log_bs > 6 || blocks == 0 || blocks > (UINT64_C(1) << 40))
                return -EBADMSG;
        *ret = blocks << (10 + log_bs);
        return 0;
}

/* The value of "key=" in a GRUB environment block (lines of key=value, '#' comments), copied if it fits. */
static void env_value(const char *blk, size_t len, const char *key, char *out, size_t outsz) {
        size_t kl = strlen(key);
        out[0] = 0;
        for (size_t i = 0; i < len;) {
                const char *line = blk + i, *nl = memchr(line, '\n', len - i);
                size_t ll = nl ? (size_t)(nl - line) : len - i;
                if (ll > kl && memcmp(line, key, kl) == 0 && line[kl] == '=' && ll - kl - 1 < outsz) {
                        memcpy(out, line + kl + 1, ll - kl - 1);
                        out[ll - kl - 1] = 0;
                        return;
                }
                i += ll + 1;
        }
}

int verity_slot_read(int fd, uint64_t off, uint64_t size, struct verity_slot *ret) {
        struct verity_slot s = { 0 };
        int r = verity_ext4_size(fd, off, &s.hash_offset);
        if (r < 0)
                return r;
        if (s.hash_offset % VERITY_BLOCK_DEFAULT || s.hash_offset + VERITY_SUPERBLOCK_SIZE > size)
                return -ERANGE;
        uint8_t sb[VERITY_SUPERBLOCK_SIZE];
        r = pread_full(fd, sb, sizeof sb, off + s.hash_offset);
        if (r < 0)
                return r;
        if (verity_superblock_parse(sb, sizeof sb, &s.params) < 0)
                return -ENODATA;
        if (s.params.data_block_size != VERITY_BLOCK_DEFAULT || s.params.hash_block_size != VERITY_BLOCK_DEFAULT ||
            s.params.data_blocks * VERITY_BLOCK_DEFAULT != s.hash_offset)
                return -ERANGE;
        if (verity_layout_compute(&s.params, &s.layout) < 0)
                return -ERANGE;
        uint64_t end = s.hash_offset + s.layout.area_size;
        s.block_offset = (end + VERITY_BLOCK_DEFAULT - 1) / VERITY_BLOCK_DEFAULT * VERITY_BLOCK_DEFAULT;
        if (s.block_offset + VERITY_SLOT_BLOCK_SIZE > size)
                return -ERANGE;
        char blk[VERITY_SLOT_BLOCK_SIZE];
        r = pread_full(fd, blk, sizeof blk, off + s.block_offset);
        if (r < 0)
                return r;
        static const char sig[] = "# GRUB Environment Block\n";
        if (memcmp(blk, sig, sizeof sig - 1) == 0) {
                uint8_t root[VERITY_DIGEST_SIZE];
                env_value(blk, sizeof blk, "usrhash", s.root_hex, sizeof s.root_hex);
                if (verity_root_from_hex(s.root_hex, root) < 0)
                        s.root_hex[0] = 0;
                env_value(blk, sizeof blk, "version", s.version, sizeof s.version);
                for (char *c = s.version; *c; c++)
                        if (!isgraph((unsigned char)*c))
                                *c = '?';
        }
        *ret = s;
        return 0;
}
