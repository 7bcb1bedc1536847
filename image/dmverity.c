/* image/dmverity.c — cairn-dmverity: activate a /usr slot as a read-only dm-verity device through the kernel's
 * device-mapper ioctls (the initramfs's `veritysetup open`), and show a verity device's table and status. Static.
 *
 * The slot layout it accepts is the one scripts/verity-seal.sh writes (docs/verity.md): an ext4 file system at byte
 * 0, its hash area (verity superblock + tree, format 1, SHA-256, 4 KiB blocks) right at the end of the file system.
 * Everything read from the slot is untrusted until the tree's top block hashes to the root hash we were given: the
 * ext4 superblock only says where to look, and the verity superblock is accepted only in its canonical form and
 * only if it covers exactly the file system. Before the device is created every hash block of every level is
 * checked against the level above and the top against the root; the data blocks are then checked by the kernel as
 * they are read (a mismatch is an I/O error: see "Corruption policy" in docs/verity.md). */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "verity-slot.h"
#include "verity.h"

#define DM_CONTROL "/dev/mapper/control"
#define PARENT_LEVEL_MAX (64u << 20) /* bytes of one tree level held in memory to check the level below */
#define DM_BUF_SIZE 16384

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);


static void usage(FILE *f) {
        fputs("Usage: cairn-dmverity open DEVICE ROOTHEX NAME   check the tree of a sealed /usr slot, create /dev/mapper/NAME\n"
              "                                                  (read-only) and print the root hash the kernel activated\n"
              "       cairn-dmverity table NAME                  the device's table, as `dmsetup table` prints it\n"
              "       cairn-dmverity status NAME                 its status: V (verified so far) or C (corruption seen)\n"
              "Exit status: 0 ok, 1 error, 2 usage, 3 the slot's tree does not match the root hash.\n",
              f);
}

/* The size of the ext4 file system at the start of fd: where its hash area begins. */
static int ext4_size(int fd, const char *dev, uint64_t *ret) {
        int r = verity_ext4_size(fd, 0, ret);
        if (r == -EBADMSG)
                return log_error(r, "'%s' does not start with a valid ext4 file system", dev);
        if (r < 0)
                return log_error_errno(r, "Failed to read the file system superblock of '%s'", dev);
        return 0;
}

static int hash_block(EVP_MD_CTX *ctx, const struct verity_params *p, const uint8_t *block, size_t len,
                      uint8_t out[VERITY_DIGEST_SIZE]) {
        if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, p->salt, p->salt_size) ||
            !EVP_DigestUpdate(ctx, block, len) || !EVP_DigestFinal_ex(ctx, out, NULL))
                return -EIO;
        return 0;
}

/* Check every hash block against the level above it and the top block against root: -EBADMSG (logged) at the first
 * difference. The data blocks are left to the kernel. */
static int check_tree(int fd, const char *dev, const struct verity_params *p, const struct verity_layout *l,
                      uint64_t hash_offset, const uint8_t root[VERITY_DIGEST_SIZE]) {
        const size_t bs = p->hash_block_size;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_free_ uint8_t *block = malloc(bs);
        if (!ctx || !block)
                return log_error(-ENOMEM, "Out of memory");
        uint8_t h[VERITY_DIGEST_SIZE];
        if (l->levels == 0) /* a single data block: the root is its hash, which the kernel checks */
                return 0;
        _cleanup_free_ uint8_t *parent = NULL;
        for (int lv = (int)l->levels - 1; lv >= 0; lv--) {
                uint64_t n = l->level_blocks[lv], off = hash_offset + l->level_offset[lv];
                /* the hashes this level's blocks must have: the root, or the level above (already checked) */
                for (uint64_t b = 0; b < n; b++) {
                        int r = pread_full(fd, block, bs, off + b * bs);
                        if (r < 0)
                                return log_error_errno(r, "Failed to read hash block %" PRIu64 " of level %d of '%s'", b, lv,
                                                       dev);
                        if (hash_block(ctx, p, block, bs, h) < 0)
                                return log_error(-EIO, "SHA-256 failed");
                        const uint8_t *want = parent ? parent + b * VERITY_DIGEST_SIZE : root;
                        if (memcmp(h, want, VERITY_DIGEST_SIZE) != 0)
                                return log_error(-EBADMSG,
                                                 "'%s': hash block %" PRIu64 " of level %d (byte %" PRIu64
                                                 ") does not match %s: the slot's hash tree is not the one of root hash given",
                                                 dev, b, lv, off + b * bs, parent ? "the level above" : "the root hash");
                }
                if (lv == 0)
                        break;
                /* keep this level's hashes for the level below: its blocks, re-read whole (bounded) */
                uint64_t bytes = n * bs;
                if (bytes > PARENT_LEVEL_MAX)
                        return log_error(-E2BIG, "'%s': level %d of the tree is %" PRIu64 " bytes, more than this tool holds",
                                         dev, lv, bytes);
                free(parent);
                parent = malloc(bytes);
                if (!parent)
                        return log_error(-ENOMEM, "Out of memory");
                int r = pread_full(fd, parent, bytes, off);
                if (r < 0)
                        return log_error_errno(r, "Failed to read level %d of the tree of '%s'", lv, dev);
                /* hashes past the last block of the level below must be zero (as veritysetup writes them) */
                uint64_t below = l->level_blocks[lv - 1];
                for (uint64_t i = below * VERITY_DIGEST_SIZE; i < bytes; i++)
                        if (parent[i] != 0)
                                return log_error(-EBADMSG, "'%s': level %d of the tree is not zero after its last hash", dev, lv);
        }
        return 0;
}

static void dm_init(struct dm_ioctl *io, size_t size, const char *name) {
        memset(io, 0, size);
        io->version[0] = DM_VERSION_MAJOR;
        io->version[1] = 0;
        io->version[2] = 0;
        io->data_size = (uint32_t)size;
        io->data_start = sizeof *io;
        snprintf(io->name, sizeof io->name, "%s", name);
}

static int dm_ioctl(int ctl, unsigned long cmd, struct dm_ioctl *io) {
        return ioctl(ctl, cmd, io) < 0 ? negative_errno() : 0;
}

static void dm_remove(int ctl, const char *name) {
        struct dm_ioctl io;
        dm_init(&io, sizeof io, name);
        (void)dm_ioctl(ctl, DM_DEV_REMOVE, &io);
}

/* The table (DM_STATUS_TABLE_FLAG) or status line of device name into out. */
static int dm_table(int ctl, const char *name, bool table, char *out, size_t outsz) {
        _cleanup_free_ uint8_t *buf = calloc(1, DM_BUF_SIZE);
        if (!buf)
                return -ENOMEM;
        struct dm_ioctl *io = (struct dm_ioctl *)buf;
        dm_init(io, DM_BUF_SIZE, name);
        io->flags = table ? DM_STATUS_TABLE_FLAG : 0;
        int r = dm_ioctl(ctl, DM_TABLE_STATUS, io);
        if (r < 0)
                return r;
        if (io->flags & DM_BUFFER_FULL_FLAG)
                return -E2BIG;
        if (io->target_count != 1)
                return -ENOENT;
        if (io->data_start + sizeof(struct dm_target_spec) > DM_BUF_SIZE)
                return -EBADMSG;
        struct dm_target_spec *spec = (struct dm_target_spec *)(buf + io->data_start);
        const char *params = (const char *)(spec + 1);
        size_t room = DM_BUF_SIZE - io->data_start - sizeof *spec;
        if (strnlen(params, room) == room)
                return -EBADMSG;
        snprintf(out, outsz, "%" PRIu64 " %" PRIu64 " %.*s %s", (uint64_t)spec->sector_start, (uint64_t)spec->length,
                 (int)sizeof spec->target_type, spec->target_type, params);
        return 0;
}

static int cmd_open(const char *dev, const char *root_hex, const char *name) {
        uint8_t root[VERITY_DIGEST_SIZE];
        if (verity_root_from_hex(root_hex, root) < 0) {
                log_msg("root hash '%.80s' is not %d hex digits", root_hex, 2 * VERITY_DIGEST_SIZE);
                return 2;
        }
        if (!*name || strlen(name) >= DM_NAME_LEN || strchr(name, '/')) {
                log_msg("device name '%.80s' must be 1..%d characters without '/'", name, DM_NAME_LEN - 1);
                return 2;
        }
        _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s'", dev);
                return 1;
        }
        struct stat st;
        uint64_t dev_size;
        if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode) || ioctl(fd, BLKGETSIZE64, &dev_size) < 0) {
                log_msg("'%s' is not a block device", dev);
                return 1;
        }
        uint64_t fs_size = 0;
        if (ext4_size(fd, dev, &fs_size) < 0)
                return 3;
        if (fs_size % VERITY_BLOCK_DEFAULT || fs_size + VERITY_SUPERBLOCK_SIZE > dev_size) {
                log_msg("'%s': the hash area would start at byte %" PRIu64 " (the end of the file system), which is %s", dev,
                        fs_size, fs_size % VERITY_BLOCK_DEFAULT ? "not a multiple of 4096" : "past the end of the slot");
                return 3;
        }
        uint8_t sb[VERITY_SUPERBLOCK_SIZE];
        int r = pread_full(fd, sb, sizeof sb, fs_size);
        if (r < 0) {
                log_error_errno(r, "Failed to read the verity superblock of '%s' at byte %" PRIu64, dev, fs_size);
                return 1;
        }
        struct verity_params p;
        if (verity_superblock_parse(sb, sizeof sb, &p) < 0) {
                log_msg("'%s': no valid dm-verity superblock at byte %" PRIu64 " (the end of the file system): the slot "
                        "was written without its hash tree",
                        dev, fs_size);
                return 3;
        }
        if (p.data_block_size != VERITY_BLOCK_DEFAULT || p.hash_block_size != VERITY_BLOCK_DEFAULT ||
            p.data_blocks * p.data_block_size != fs_size) {
                log_msg("'%s': the verity superblock describes %" PRIu64 " blocks of %" PRIu32 "/%" PRIu32
                        " bytes, not the file system's %" PRIu64 " bytes in 4096-byte blocks",
                        dev, p.data_blocks, p.data_block_size, p.hash_block_size, fs_size);
                return 3;
        }
        struct verity_layout l;
        if (verity_layout_compute(&p, &l) < 0 || fs_size + l.area_size > dev_size) {
                log_msg("'%s': the hash tree (%" PRIu64 " bytes from byte %" PRIu64 ") runs past the end of the slot (%" PRIu64
                        " bytes)",
                        dev, l.area_size, fs_size, dev_size);
                return 3;
        }
        if (check_tree(fd, dev, &p, &l, fs_size, root) < 0)
                return 3;

        _cleanup_close_ int ctl = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
        if (ctl < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s' (is dm_mod loaded?)", DM_CONTROL);
                return 1;
        }
        /* The table: <version> <data dev> <hash dev> <data bs> <hash bs> <data blocks> <hash start block> <alg>
         * <root> <salt>. No optional arguments: a corrupted block gives EIO (docs/verity.md). */
        char salt[2 * VERITY_SALT_MAX + 1], rh[VERITY_HEX_SIZE], params[1024];
        verity_hex(p.salt, p.salt_size, salt);
        verity_hex(root, VERITY_DIGEST_SIZE, rh);
        uint64_t hash_start = (fs_size + l.tree_offset) / p.hash_block_size;
        snprintf(params, sizeof params, "1 %u:%u %u:%u %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu64 " sha256 %s %s",
                 major(st.st_rdev), minor(st.st_rdev), major(st.st_rdev), minor(st.st_rdev), p.data_block_size,
                 p.hash_block_size, p.data_blocks, hash_start, rh, p.salt_size ? salt : "-");

        struct dm_ioctl io;
        dm_init(&io, sizeof io, name);
        snprintf(io.uuid, sizeof io.uuid, "CAIRN-VERITY-%s", name);
        r = dm_ioctl(ctl, DM_DEV_CREATE, &io);
        if (r < 0) {
                log_error_errno(r, "Failed to create the device-mapper device '%s'", name);
                return 1;
        }
        dev_t dmdev = (dev_t)io.dev;

        _cleanup_free_ uint8_t *buf = calloc(1, DM_BUF_SIZE);
        if (!buf) {
                dm_remove(ctl, name);
                log_msg("Out of memory");
                return 1;
        }
        struct dm_ioctl *tio = (struct dm_ioctl *)buf;
        dm_init(tio, DM_BUF_SIZE, name);
        tio->flags = DM_READONLY_FLAG;
        tio->target_count = 1;
        struct dm_target_spec *spec = (struct dm_target_spec *)(buf + sizeof *tio);
        spec->sector_start = 0;
        spec->length = p.data_blocks * (p.data_block_size / 512);
        snprintf(spec->target_type, sizeof spec->target_type, "verity");
        snprintf((char *)(spec + 1), DM_BUF_SIZE - sizeof *tio - sizeof *spec, "%s", params);
        r = dm_ioctl(ctl, DM_TABLE_LOAD, tio);
        if (r < 0) {
                dm_remove(ctl, name);
                log_error_errno(r, "The kernel refused the verity table for '%s' (is dm_verity loaded?)", dev);
                return 1;
        }
        dm_init(&io, sizeof io, name);
        r = dm_ioctl(ctl, DM_DEV_SUSPEND, &io); /* without DM_SUSPEND_FLAG: resume, making the table live */
        if (r < 0) {
                dm_remove(ctl, name);
                log_error_errno(r, "Failed to activate '%s'", name);
                return 1;
        }
        /* /dev/dm-N comes from devtmpfs; the /dev/mapper name is udev's job elsewhere, ours here. */
        char node[sizeof DM_CONTROL + DM_NAME_LEN];
        snprintf(node, sizeof node, "/dev/mapper/%s", name);
        (void)unlink(node);
        if (mknod(node, S_IFBLK | 0600, dmdev) < 0) {
                r = negative_errno();
                dm_remove(ctl, name);
                log_error_errno(r, "Failed to create '%s'", node);
                return 1;
        }
        /* What the kernel holds now, not what we meant to give it: the root hash field of the live table. */
        char line[2048], active[VERITY_HEX_SIZE] = "";
        r = dm_table(ctl, name, true, line, sizeof line);
        if (r >= 0) {
                const char *f = line;
                /* Skip the 11 fields before the root: start length verity 1 dev dev bs bs blocks start alg. */
                for (int i = 0; i < 11 && f; i++)
                        f = (f = strchr(f, ' ')) ? f + 1 : NULL;
                if (f && strlen(f) >= 2 * VERITY_DIGEST_SIZE)
                        snprintf(active, sizeof active, "%.*s", 2 * VERITY_DIGEST_SIZE, f);
        }
        if (strlen(active) != 2 * VERITY_DIGEST_SIZE) {
                log_msg("'%s' is active but its table cannot be read back (%s)", name, r < 0 ? strerror(-r) : line);
                return 1;
        }
        if (strncasecmp(active, root_hex, 2 * VERITY_DIGEST_SIZE) != 0) {
                dm_remove(ctl, name);
                log_msg("'%s' was activated with root hash %s, not the %s asked for; removed", name, active, root_hex);
                return 1;
        }
        printf("%s\n", active);
        return 0;
}

static int cmd_show(const char *name, bool table) {
        _cleanup_close_ int ctl = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
        if (ctl < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s'", DM_CONTROL);
                return 1;
        }
        char line[2048];
        int r = dm_table(ctl, name, table, line, sizeof line);
        if (r < 0) {
                log_error_errno(r, "Failed to read the %s of device-mapper device '%.80s'", table ? "table" : "status", name);
                return 1;
        }
        printf("%s\n", line);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc == 5 && strcmp(argv[1], "open") == 0)
                return cmd_open(argv[2], argv[3], argv[4]);
        if (argc == 3 && strcmp(argv[1], "table") == 0)
                return cmd_show(argv[2], true);
        if (argc == 3 && strcmp(argv[1], "status") == 0)
                return cmd_show(argv[2], false);
        log_msg("expected: open DEVICE ROOTHEX NAME, table NAME or status NAME");
        usage(stderr);
        return 2;
}
