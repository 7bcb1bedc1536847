/* image/veritytree.c — cairn-veritytree: build (format) or check (verify) a dm-verity hash tree for a file or device. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "parse.h"
#include "verity.h"

static void usage(FILE *f) {
        fputs("Usage: cairn-veritytree format DATA HASH [OPTIONS]\n"
              "       cairn-veritytree verify DATA HASH ROOTHEX [OPTIONS]\n"
              "       cairn-veritytree layout --data-blocks N [--block-size ...] [--no-superblock] [--json]\n"
              "Build or check a dm-verity hash tree (format 1, SHA-256), as veritysetup does (see docs/verity.md).\n"
              "  --data-blocks N        hash the first N data blocks (default: the whole blocks of DATA)\n"
              "  --hash-offset BYTES    where the hash area starts in HASH (a multiple of the hash block size;\n"
              "                         HASH may be DATA itself if the area lies past the data); default 0\n"
              "  --salt HEX             salt, up to 256 bytes (\"-\": none); default: 32 random bytes (format)\n"
              "  --salt-seed STR        salt = SHA-256(\"cairn-verity-salt:\" STR), for reproducible builds\n"
              "  --uuid UUID            superblock UUID (default: derived from the salt)\n"
              "  --block-size N         data and hash block size, a power of two 512..65536 (default 4096)\n"
              "  --data-block-size N    the data block size alone\n"
              "  --hash-block-size N    the hash block size alone\n"
              "  --no-superblock        no superblock: verify then needs the salt and sizes on the command line\n"
              "  --json                 format, layout: print the result as one JSON object\n"
              "  (layout prints the sizes of the hash area for N data blocks; it reads and writes nothing)\n"
              "Exit status: 0 done/verified, 1 error, 2 usage, 3 verification failed.\n",
              f);
}

struct args {
        const char *data_blocks, *hash_offset, *salt, *salt_seed, *uuid, *data_bs, *hash_bs;
        bool no_superblock, json;
};

static int get_size(int fd, const char *path, uint64_t *ret) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s'", path);
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t)st.st_size;
                return 0;
        }
        if (S_ISBLK(st.st_mode)) {
                uint64_t n;
                if (ioctl(fd, BLKGETSIZE64, &n) < 0)
                        return log_error_errno(negative_errno(), "Failed to get the size of '%s'", path);
                *ret = n;
                return 0;
        }
        return log_error(-EINVAL, "'%s' is neither a regular file nor a block device", path);
}

static int parse_block_size(const char *opt, const char *s, uint32_t *ret) {
        unsigned v;
        if (parse_unsigned_range(s, VERITY_BLOCK_MIN, VERITY_BLOCK_MAX, &v) < 0 || (v & (v - 1)))
                return log_error(-EINVAL, "%s '%s': expected a power of two %d..%d", opt, s, VERITY_BLOCK_MIN,
                                 VERITY_BLOCK_MAX);
        *ret = v;
        return 0;
}

static int parse_salt(const struct args *a, struct verity_params *p) {
        if (a->salt) {
                int r = verity_salt_from_hex(a->salt, p->salt, &p->salt_size);
                if (r == -E2BIG)
                        return log_error(r, "--salt: longer than %d bytes", VERITY_SALT_MAX);
                if (r < 0)
                        return log_error(r, "--salt '%s': expected an even number of hex digits (or \"-\")", a->salt);
        } else if (a->salt_seed) {
                int r = verity_salt_from_seed(a->salt_seed, p->salt);
                if (r < 0)
                        return log_error_errno(r, "Failed to derive the salt");
                p->salt_size = VERITY_DIGEST_SIZE;
        }
        return 0;
}

/* The parameters both commands share, from the options (salt and data blocks may still be open; the caller checks
 * the hash offset against the hash block size, which a superblock may set). */
static int params_from_args(const struct args *a, struct verity_params *p, uint64_t *ret_hash_offset) {
        verity_params_init(p, 0);
        p->superblock = !a->no_superblock;
        if (a->data_bs && parse_block_size("--data-block-size/--block-size", a->data_bs, &p->data_block_size) < 0)
                return -EINVAL;
        if (a->hash_bs && parse_block_size("--hash-block-size/--block-size", a->hash_bs, &p->hash_block_size) < 0)
                return -EINVAL;
        if (a->data_blocks && parse_u64_range(a->data_blocks, 1, INT64_MAX / VERITY_BLOCK_MIN, &p->data_blocks) < 0)
                return log_error(-EINVAL, "--data-blocks '%s': expected a number 1..%" PRIu64, a->data_blocks,
                                 (uint64_t)INT64_MAX / VERITY_BLOCK_MIN);
        uint64_t off = 0;
        if (a->hash_offset && parse_size_range(a->hash_offset, 0, INT64_MAX, &off) < 0)
                return log_error(-EINVAL, "--hash-offset '%s': expected bytes (optional K/M/G/T suffix)", a->hash_offset);
        if (a->uuid && verity_uuid_parse(a->uuid, p->uuid) < 0)
                return log_error(-EINVAL, "--uuid '%s': expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", a->uuid);
        int r = parse_salt(a, p);
        if (r < 0)
                return r;
        *ret_hash_offset = off;
        return 0;
}

static int check_hash_offset(uint64_t off, uint32_t hash_block_size) {
        if (off % hash_block_size)
                return log_error(-EINVAL, "--hash-offset %" PRIu64 ": not a multiple of the hash block size %" PRIu32,
                                 off, hash_block_size);
        return 0;
}

/* data_blocks from the size of DATA when not given; refuse a DATA too short for them (what: where the count came
 * from, for the message). */
static int fit_data(struct verity_params *p, const char *path, uint64_t size, const char *what) {
        if (p->data_blocks == 0) {
                p->data_blocks = size / p->data_block_size;
                if (p->data_blocks == 0)
                        return log_error(-EINVAL, "'%s' (%" PRIu64 " bytes) is shorter than one data block (%" PRIu32 ")",
                                         path, size, p->data_block_size);
        } else if (size / p->data_block_size < p->data_blocks)
                return log_error(-EINVAL, "'%s' holds %" PRIu64 " bytes, %s %" PRIu64 " needs %" PRIu64, path, size, what,
                                 p->data_blocks, p->data_blocks * p->data_block_size);
        return 0;
}

/* When DATA and HASH are one file, the hash area must start past the data. */
static int check_overlap(int data_fd, int hash_fd, const struct verity_params *p, uint64_t hash_offset,
                         const char *hash_path) {
        struct stat a, b;
        if (fstat(data_fd, &a) < 0 || fstat(hash_fd, &b) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s'", hash_path);
        bool same = S_ISBLK(a.st_mode) ? a.st_rdev == b.st_rdev : a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        uint64_t data_bytes = p->data_blocks * p->data_block_size;
        if (same && hash_offset < data_bytes)
                return log_error(-EINVAL,
                                 "--hash-offset %" PRIu64 " lies inside the data (%" PRIu64 " bytes) of '%s'; "
                                 "use an offset of at least %" PRIu64,
                                 hash_offset, data_bytes, hash_path, data_bytes);
        return 0;
}

static void print_result(const struct verity_params *p, const struct verity_layout *l, uint64_t hash_offset,
                         const uint8_t root[VERITY_DIGEST_SIZE], bool json) {
        char salt[2 * VERITY_SALT_MAX + 1], rh[VERITY_HEX_SIZE], uuid[VERITY_UUID_STRLEN + 1];
        verity_hex(p->salt, p->salt_size, salt);
        verity_hex(root, VERITY_DIGEST_SIZE, rh);
        verity_uuid_format(p->uuid, uuid);
        if (json) {
                printf("{\"hash_type\":1,\"hash_algorithm\":\"sha256\",\"root_hash\":\"%s\",\"salt\":\"%s\","
                       "\"superblock\":%s,\"uuid\":%s%s%s,\"data_blocks\":%" PRIu64 ",\"data_block_size\":%" PRIu32
                       ",\"hash_block_size\":%" PRIu32 ",\"hash_blocks\":%" PRIu64 ",\"levels\":%u,"
                       "\"hash_offset\":%" PRIu64 ",\"tree_offset\":%" PRIu64 ",\"hash_area_size\":%" PRIu64 "}\n",
                       rh, salt, p->superblock ? "true" : "false", p->superblock ? "\"" : "",
                       p->superblock ? uuid : "null", p->superblock ? "\"" : "", p->data_blocks, p->data_block_size,
                       p->hash_block_size, l->hash_blocks, l->levels, hash_offset, hash_offset + l->tree_offset,
                       l->area_size);
                return;
        }
        if (p->superblock)
                printf("UUID:            \t%s\n", uuid);
        printf("Hash type:       \t1\n"
               "Data blocks:     \t%" PRIu64 "\n"
               "Data block size: \t%" PRIu32 "\n"
               "Hash blocks:     \t%" PRIu64 "\n"
               "Hash block size: \t%" PRIu32 "\n"
               "Hash algorithm:  \tsha256\n"
               "Salt:            \t%s\n"
               "Root hash:       \t%s\n"
               "Hash offset:     \t%" PRIu64 " [bytes]\n"
               "Tree offset:     \t%" PRIu64 " [bytes]\n"
               "Hash area size:  \t%" PRIu64 " [bytes]\n",
               p->data_blocks, p->data_block_size, l->hash_blocks, p->hash_block_size, p->salt_size ? salt : "-", rh,
               hash_offset, hash_offset + l->tree_offset, l->area_size);
}

static int cmd_format(const struct args *a, const char *data_path, const char *hash_path) {
        struct verity_params p;
        uint64_t hash_offset, size;
        if (params_from_args(a, &p, &hash_offset) < 0 || check_hash_offset(hash_offset, p.hash_block_size) < 0)
                return 2;
        if (!a->salt && !a->salt_seed) {
                if (getrandom(p.salt, VERITY_DIGEST_SIZE, 0) != VERITY_DIGEST_SIZE) {
                        log_error_errno(negative_errno(), "Failed to get random bytes for the salt");
                        return 1;
                }
                p.salt_size = VERITY_DIGEST_SIZE;
        }
        if (!a->uuid && verity_uuid_from_salt(p.salt, p.salt_size, p.uuid) < 0) {
                log_msg("Failed to derive the UUID");
                return 1;
        }
        _cleanup_close_ int dfd = open(data_path, O_RDONLY | O_CLOEXEC);
        if (dfd < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s'", data_path);
                return 1;
        }
        if (get_size(dfd, data_path, &size) < 0)
                return 1;
        if (fit_data(&p, data_path, size, "--data-blocks") < 0)
                return a->data_blocks ? 2 : 1;
        struct verity_layout l;
        int r = verity_layout_compute(&p, &l);
        if (r < 0 || hash_offset > INT64_MAX - l.area_size) {
                log_msg("%" PRIu64 " data blocks: the tree would not fit in a file", p.data_blocks);
                return 2;
        }
        _cleanup_close_ int hfd = open(hash_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (hfd < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s' for writing", hash_path);
                return 1;
        }
        if (check_overlap(dfd, hfd, &p, hash_offset, hash_path) < 0)
                return 2;
        struct stat st;
        uint64_t hash_size;
        if (fstat(hfd, &st) < 0 || (S_ISBLK(st.st_mode) && get_size(hfd, hash_path, &hash_size) < 0)) {
                log_error_errno(negative_errno(), "Failed to stat '%s'", hash_path);
                return 1;
        }
        if (S_ISBLK(st.st_mode) && hash_size < hash_offset + l.area_size) {
                log_msg("'%s' holds %" PRIu64 " bytes, the hash area needs bytes %" PRIu64 "..%" PRIu64, hash_path,
                        hash_size, hash_offset, hash_offset + l.area_size - 1);
                return 2;
        }
        uint8_t root[VERITY_DIGEST_SIZE];
        r = verity_hash_fd(&p, dfd, 0, VERITY_WRITE, hfd, hash_offset, root, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to build the hash tree of '%s' into '%s'", data_path, hash_path);
                return 1;
        }
        if (fsync(hfd) < 0) {
                log_error_errno(negative_errno(), "Failed to fsync '%s'", hash_path);
                return 1;
        }
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0 && p.data_block_size > (uint64_t)page)
                log_msg("warning: the kernel cannot activate a verity device whose data block size (%" PRIu32
                        ") exceeds the page size (%ld)",
                        p.data_block_size, page);
        print_result(&p, &l, hash_offset, root, a->json);
        return 0;
}

/* Options given beside a superblock must agree with it. */
static int check_against_superblock(const struct args *a, const struct verity_params *given,
                                    const struct verity_params *sb, const char *hash_path) {
        if (a->data_bs && given->data_block_size != sb->data_block_size)
                return log_error(-EINVAL, "the superblock in '%s' says data block size %" PRIu32 ", not %" PRIu32,
                                 hash_path, sb->data_block_size, given->data_block_size);
        if (a->hash_bs && given->hash_block_size != sb->hash_block_size)
                return log_error(-EINVAL, "the superblock in '%s' says hash block size %" PRIu32 ", not %" PRIu32,
                                 hash_path, sb->hash_block_size, given->hash_block_size);
        if (a->data_blocks && given->data_blocks != sb->data_blocks)
                return log_error(-EINVAL, "the superblock in '%s' says %" PRIu64 " data blocks, not %" PRIu64, hash_path,
                                 sb->data_blocks, given->data_blocks);
        if ((a->salt || a->salt_seed) &&
            (given->salt_size != sb->salt_size || memcmp(given->salt, sb->salt, sb->salt_size) != 0))
                return log_error(-EINVAL, "the superblock in '%s' has another salt", hash_path);
        if (a->uuid && memcmp(given->uuid, sb->uuid, VERITY_UUID_SIZE) != 0)
                return log_error(-EINVAL, "the superblock in '%s' has another UUID", hash_path);
        return 0;
}

static void report_mismatch(const struct verity_mismatch *m, const struct verity_params *p, const char *data_path,
                            const char *hash_path) {
        if (m->data_known)
                log_msg("verification failed: data block %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
                        " of '%s') does not match its hash in level 0 (hash block %" PRIu64 " at byte %" PRIu64
                        " of '%s')",
                        m->data_block, m->data_block * p->data_block_size,
                        (m->data_block + 1) * p->data_block_size - 1, data_path, m->hash_block, m->offset, hash_path);
        else if (m->padding)
                log_msg("verification failed: hash block %" PRIu64 " of level %d (byte %" PRIu64
                        " of '%s') is not zero after its last hash",
                        m->hash_block, m->level, m->offset, hash_path);
        else
                log_msg("verification failed: hash block %" PRIu64 " of level %d (byte %" PRIu64
                        " of '%s') does not hold the hashes of the level below",
                        m->hash_block, m->level, m->offset, hash_path);
}

static int cmd_verify(const struct args *a, const char *data_path, const char *hash_path, const char *root_hex) {
        struct verity_params given, p;
        uint64_t hash_offset, data_size, hash_size;
        uint8_t want[VERITY_DIGEST_SIZE];
        if (a->json) {
                log_msg("--json: only for format");
                return 2;
        }
        if (verity_root_from_hex(root_hex, want) < 0) {
                log_msg("root hash '%s': expected %d hex digits", root_hex, 2 * VERITY_DIGEST_SIZE);
                return 2;
        }
        if (params_from_args(a, &given, &hash_offset) < 0)
                return 2;
        if (a->no_superblock && !a->salt && !a->salt_seed) {
                log_msg("--no-superblock: give the salt with --salt HEX (\"-\" for none) or --salt-seed STR");
                return 2;
        }
        _cleanup_close_ int dfd = open(data_path, O_RDONLY | O_CLOEXEC);
        if (dfd < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s'", data_path);
                return 1;
        }
        _cleanup_close_ int hfd = open(hash_path, O_RDONLY | O_CLOEXEC);
        if (hfd < 0) {
                log_error_errno(negative_errno(), "Failed to open '%s'", hash_path);
                return 1;
        }
        if (get_size(dfd, data_path, &data_size) < 0 || get_size(hfd, hash_path, &hash_size) < 0)
                return 1;
        if (a->no_superblock) {
                if (check_hash_offset(hash_offset, given.hash_block_size) < 0)
                        return 2;
                p = given;
        } else {
                uint8_t untrusted_sb[VERITY_SUPERBLOCK_SIZE];
                if (hash_offset > hash_size || hash_size - hash_offset < sizeof untrusted_sb) {
                        log_msg("'%s' ends before a superblock at byte %" PRIu64, hash_path, hash_offset);
                        return 3;
                }
                int r = pread_full(hfd, untrusted_sb, sizeof untrusted_sb, hash_offset);
                if (r < 0) {
                        log_error_errno(r, "Failed to read the superblock of '%s'", hash_path);
                        return 1;
                }
                r = verity_superblock_parse(untrusted_sb, sizeof untrusted_sb, &p);
                if (r < 0) {
                        log_msg("'%s' at byte %" PRIu64 ": %s", hash_path, hash_offset,
                                r == -EOPNOTSUPP ? "not a format 1 SHA-256 verity superblock"
                                                 : "no valid verity superblock");
                        return 3;
                }
                if (check_against_superblock(a, &given, &p, hash_path) < 0)
                        return 2;
                if (check_hash_offset(hash_offset, p.hash_block_size) < 0)
                        return 2;
        }
        if (fit_data(&p, data_path, data_size, a->no_superblock ? "--data-blocks" : "the superblock's data blocks") < 0)
                return a->no_superblock && a->data_blocks ? 2 : 3;
        struct verity_layout l;
        if (verity_layout_compute(&p, &l) < 0 || hash_offset > INT64_MAX - l.area_size) {
                log_msg("%" PRIu64 " data blocks: the tree would not fit in a file", p.data_blocks);
                return 2;
        }
        if (check_overlap(dfd, hfd, &p, hash_offset, hash_path) < 0)
                return 2;
        if (hash_size < hash_offset + l.area_size) {
                log_msg("verification failed: '%s' ends at byte %" PRIu64 ", the hash area needs bytes %" PRIu64 "..%" PRIu64,
                        hash_path, hash_size, hash_offset, hash_offset + l.area_size - 1);
                return 3;
        }
        uint8_t root[VERITY_DIGEST_SIZE];
        struct verity_mismatch m = { 0 };
        int r = verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, hash_offset, root, &m);
        if (r == -EBADMSG) {
                report_mismatch(&m, &p, data_path, hash_path);
                return 3;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to verify '%s' against '%s'", data_path, hash_path);
                return 1;
        }
        char rh[VERITY_HEX_SIZE];
        if (memcmp(root, want, sizeof root) != 0) {
                if (l.levels == 0)
                        log_msg("verification failed: data block 0 of '%s' does not match the root hash", data_path);
                else
                        log_msg("verification failed: the tree in '%s' matches the data, but its root hash is %s",
                                hash_path, verity_hex(root, sizeof root, rh));
                return 3;
        }
        printf("verified: %" PRIu64 " data blocks of '%s', root hash %s\n", p.data_blocks, data_path,
               verity_hex(root, sizeof root, rh));
        return 0;
}

/* The sizes of the hash area for --data-blocks N: what an image build needs to place the tree before it exists. */
static int cmd_layout(const struct args *a) {
        struct verity_params p;
        uint64_t hash_offset;
        if (params_from_args(a, &p, &hash_offset) < 0 || check_hash_offset(hash_offset, p.hash_block_size) < 0)
                return 2;
        if (!a->data_blocks) {
                log_msg("layout: --data-blocks N is needed");
                return 2;
        }
        struct verity_layout l;
        if (verity_layout_compute(&p, &l) < 0 || hash_offset > INT64_MAX - l.area_size) {
                log_msg("%" PRIu64 " data blocks: the tree would not fit in a file", p.data_blocks);
                return 2;
        }
        if (a->json)
                printf("{\"data_blocks\":%" PRIu64 ",\"data_block_size\":%" PRIu32 ",\"hash_block_size\":%" PRIu32
                       ",\"hash_blocks\":%" PRIu64 ",\"levels\":%u,\"superblock\":%s,\"hash_offset\":%" PRIu64
                       ",\"tree_offset\":%" PRIu64 ",\"hash_area_size\":%" PRIu64 "}\n",
                       p.data_blocks, p.data_block_size, p.hash_block_size, l.hash_blocks, l.levels,
                       p.superblock ? "true" : "false", hash_offset, hash_offset + l.tree_offset, l.area_size);
        else
                printf("Data blocks:     \t%" PRIu64 "\n"
                       "Hash blocks:     \t%" PRIu64 "\n"
                       "Levels:          \t%u\n"
                       "Hash offset:     \t%" PRIu64 " [bytes]\n"
                       "Tree offset:     \t%" PRIu64 " [bytes]\n"
                       "Hash area size:  \t%" PRIu64 " [bytes]\n",
                       p.data_blocks, l.hash_blocks, l.levels, hash_offset, hash_offset + l.tree_offset, l.area_size);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        enum { OPT_DATA_BLOCKS = 256, OPT_HASH_OFFSET, OPT_SALT, OPT_SALT_SEED, OPT_UUID, OPT_BLOCK_SIZE,
               OPT_DATA_BS, OPT_HASH_BS, OPT_NO_SB, OPT_JSON };
        static const struct option opts[] = {
                { "data-blocks", required_argument, NULL, OPT_DATA_BLOCKS },
                { "hash-offset", required_argument, NULL, OPT_HASH_OFFSET },
                { "salt", required_argument, NULL, OPT_SALT },
                { "salt-seed", required_argument, NULL, OPT_SALT_SEED },
                { "uuid", required_argument, NULL, OPT_UUID },
                { "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
                { "data-block-size", required_argument, NULL, OPT_DATA_BS },
                { "hash-block-size", required_argument, NULL, OPT_HASH_BS },
                { "no-superblock", no_argument, NULL, OPT_NO_SB },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct args a = { 0 };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case OPT_DATA_BLOCKS: a.data_blocks = optarg; break;
                case OPT_HASH_OFFSET: a.hash_offset = optarg; break;
                case OPT_SALT: a.salt = optarg; break;
                case OPT_SALT_SEED: a.salt_seed = optarg; break;
                case OPT_UUID: a.uuid = optarg; break;
                case OPT_BLOCK_SIZE: a.data_bs = a.hash_bs = optarg; break;
                case OPT_DATA_BS: a.data_bs = optarg; break;
                case OPT_HASH_BS: a.hash_bs = optarg; break;
                case OPT_NO_SB: a.no_superblock = true; break;
                case OPT_JSON: a.json = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (a.salt && a.salt_seed) {
                log_msg("--salt and --salt-seed: give one");
                return 2;
        }
        char **pos = argv + optind;
        int n = argc - optind;
        if (n >= 1 && strcmp(pos[0], "format") == 0 && n == 3)
                return cmd_format(&a, pos[1], pos[2]);
        if (n >= 1 && strcmp(pos[0], "verify") == 0 && n == 4)
                return cmd_verify(&a, pos[1], pos[2], pos[3]);
        if (n == 1 && strcmp(pos[0], "layout") == 0)
                return cmd_layout(&a);
        if (n >= 1 && strcmp(pos[0], "layout") == 0)
                log_msg("layout: expects no file arguments");
        else if (n >= 1 && (strcmp(pos[0], "format") == 0 || strcmp(pos[0], "verify") == 0))
                log_msg("%s: expected %s", pos[0], strcmp(pos[0], "format") == 0 ? "DATA HASH" : "DATA HASH ROOTHEX");
        else
                log_msg("expected a command: format, verify or layout");
        usage(stderr);
        return 2;
}
