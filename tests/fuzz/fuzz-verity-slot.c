/* tests/fuzz/fuzz-verity-slot.c — libFuzzer target for verity_slot_read() (what cairn-dmverity and
 * `cairn-bootcfg status` read from a /usr slot: the ext4 superblock, the verity superblock where the file system
 * ends, the root-hash block after the tree). The input is the three pieces back to back, [ext4 superblock: 1024]
 * [verity superblock: 512][root-hash block: 1024]; the harness puts each where the previous ones say it lies in a
 * sparse 1 GiB slot (a memfd), so the reader's own offset arithmetic is what gets exercised. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "image/verity-slot.h"

#define SLOT_SIZE (UINT64_C(1) << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t piece[2560] = { 0 };
        memcpy(piece, data, size < sizeof piece ? size : sizeof piece);
        int fd = memfd_create("slot", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)SLOT_SIZE) < 0)
                abort();
        if (pwrite_full(fd, piece, 1024, 1024) < 0)
                abort();
        uint64_t fs;
        if (verity_ext4_size(fd, 0, &fs) == 0 && fs % 4096 == 0 && fs + 4096 <= SLOT_SIZE) {
                if (pwrite_full(fd, piece + 1024, 512, fs) < 0)
                        abort();
                struct verity_params p;
                struct verity_layout l;
                if (verity_superblock_parse(piece + 1024, 512, &p) == 0 && verity_layout_compute(&p, &l) == 0) {
                        uint64_t at = (fs + l.area_size + 4095) / 4096 * 4096;
                        if (at + 1024 <= SLOT_SIZE && pwrite_full(fd, piece + 1536, 1024, at) < 0)
                                abort();
                }
        }
        struct verity_slot s;
        int r = verity_slot_read(fd, 0, SLOT_SIZE, &s);
        if (r == 0) {
                /* what was accepted is self-consistent */
                if (s.hash_offset % 4096 || s.params.data_blocks * 4096 != s.hash_offset ||
                    s.block_offset < s.hash_offset + s.layout.area_size || s.block_offset + 1024 > SLOT_SIZE)
                        abort();
                size_t n = strlen(s.root_hex);
                if (n != 0 && n != 2 * VERITY_DIGEST_SIZE)
                        abort();
                for (const char *c = s.version; *c; c++)
                        if (*c <= ' ' || *c > '~')
                                abort();
        } else if (r != -EBADMSG && r != -ENODATA && r != -ERANGE && r != -EIO)
                abort();
        close(fd);
        return 0;
}
