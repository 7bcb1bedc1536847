/* tests/unit/test-verity.c — the dm-verity tree builder: known answers, streaming in odd pieces, the compare mode
 * naming the first difference, superblock round trips and every refusal.
 *
 * The known answers come from tests/unit/verity-ref.py, an independent naive Python implementation (whole tree in
 * memory, hashlib), run once and pasted here; that script's output was checked byte for byte against
 * `veritysetup format` 2.6.1 for every case (root hash and whole hash area, with superblock). */
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "unit.h"
#include "fileio.h"
#include "macro.h"
#include "image/verity.h"

struct kat {
        const char *name;
        size_t size;
        uint32_t dbs, hbs;
        int salt_kind; /* 0: seed, 1: bytes 0..6, 2: none, 3: 256 x 0xa5 */
        const char *seed;
        unsigned levels;
        uint64_t hash_blocks, area, area_sb;
        const char *root, *area_sha, *area_sb_sha;
};

/* python3 tests/unit/verity-ref.py */
static const struct kat kats[] = {
        { "one_block", 4096, 4096, 4096, 0, "test", 0, 0, 0, 4096,
          "204db382370e57cc06261329a693c96517b419e4e45c200263e7b7c57aaac841",
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "169d69c0ee7760e3989fd3694b37c514b2ce7f355d8c512bd0bb3bc5ce07ca2f" },
        { "partial_tail", 10000, 4096, 4096, 0, "test", 1, 1, 4096, 8192,
          "ea1a7abd93071ecfc5e1d3e937142f6deb348b9fedf17eb6e19cb67a4a2c6e95",
          "bfc58e87efc627068b11e7a52d0a8add490aa760f2cda71d5557a9fd409e363f",
          "888c3989b1ef2e4520e563ca3bcdcb8450065bd25e2e8edf3e4e763a1a11b08e" },
        { "two_blocks", 8192, 4096, 4096, 0, "test", 1, 1, 4096, 8192,
          "ea1a7abd93071ecfc5e1d3e937142f6deb348b9fedf17eb6e19cb67a4a2c6e95",
          "bfc58e87efc627068b11e7a52d0a8add490aa760f2cda71d5557a9fd409e363f",
          "888c3989b1ef2e4520e563ca3bcdcb8450065bd25e2e8edf3e4e763a1a11b08e" },
        { "four_levels_512", 5000 * 512 + 100, 512, 512, 0, "levels", 4, 336, 172032, 172544,
          "621414905874336929cd3725ab5bc56d645828970fad671d13c6139db15e7ce6",
          "9572a6193bf6bf53973e67f4b72d74be7f166da29f7ac9261a4d4c219faa4eb9",
          "5acc15a4e8f8bc95be3faf52e6ef2f6eee9296176ee1ea5a10791b8723cbd151" },
        { "mixed_4096_512", 300 * 4096, 4096, 512, 1, NULL, 3, 22, 11264, 11776,
          "a7f7e1e3a3fa3e2dad3888c9c30e58581a47c926966af0cb9d2e80ca7526f00a",
          "248553f54ffd90acc34fb5d2cfa54b068f2aae193d42684e6f22c7ec753f15c5",
          "143bdcc9cfbfab8e7a09e3927dd5d9726f389c6e051d91f1a2a1a3f288d8698a" },
        { "mixed_1024_4096_nosalt", 130 * 1024, 1024, 4096, 2, NULL, 2, 3, 12288, 16384,
          "ab7ffb708944bfab87f60cfbf7d9f9f1acecacf1d7108a491d45ef4c75be165b",
          "17fc0c4d3d7f5b3945fac01464312f4399c48d20dfd9cabc896c00d471c7d1c9",
          "2ca1158e9a0fe34b7b4f3f1a6b2642a893947d46dbb60885ba84deda54cb9709" },
        { "big_blocks_65536", 3 * 65536 + 1, 65536, 65536, 3, NULL, 1, 1, 65536, 131072,
          "06227c258b971444edee5e1120c87b94e80c89062f0651e85edc8d37b2e25b14",
          "9d7a8d6994aa30158a781fd61aef46ffaf33838dca845fbfa1fd6396ece76d03",
          "7c0f9c5e7f15426f7eb023a28084653c11fb39dc8db0e5c979946e6950993f7c" },
        { "exact_full_level", 128 * 4096, 4096, 4096, 0, "full", 1, 1, 4096, 8192,
          "ee94c017bc35a18bbaa8b3df266cf96c9f1da58754b26a907879b2c054b4e53e",
          "c399b29d4d0817acd4d0996c2eaca6da7aca18fa711bb1af25df4efb56651876",
          "a278a61afe5ed278bddcb730756155b5f06ff006fbeb8590db67ff986afdc6fb" },
        { "full_level_plus_one", 129 * 4096, 4096, 4096, 0, "full", 2, 3, 12288, 16384,
          "be9fcb19afa5397a41be0c2f5f2780a9f28766912d8f12b7d31bc5a193ba3211",
          "db4298bda3cc5a249a296431f7705f6e980933c60396b7323fceb15d5b1bc78e",
          "3ad59cf5996876c274f1fb1d0463228dcf1a5d36ddb0ddcd1d24ca922dfe3fbe" },
};

static uint8_t *pattern(size_t n) {
        uint8_t *p = malloc(n ? n : 1);
        if (!p)
                abort();
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)((i * 131 + 7) % 251);
        return p;
}

static void kat_params(const struct kat *k, bool sb, struct verity_params *p) {
        verity_params_init(p, k->size / k->dbs);
        p->data_block_size = k->dbs;
        p->hash_block_size = k->hbs;
        p->superblock = sb;
        switch (k->salt_kind) {
        case 0:
                CHECK_EQ(verity_salt_from_seed(k->seed, p->salt), 0);
                p->salt_size = 32;
                break;
        case 1:
                for (int i = 0; i < 7; i++)
                        p->salt[i] = (uint8_t)i;
                p->salt_size = 7;
                break;
        case 2: p->salt_size = 0; break;
        case 3:
                memset(p->salt, 0xa5, 256);
                p->salt_size = 256;
                break;
        }
        CHECK_EQ(verity_uuid_from_salt(p->salt, p->salt_size, p->uuid), 0);
}

static int memfd(void) {
        int fd = memfd_create("test-verity", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        return fd;
}

static void sha256_hex(const uint8_t *d, size_t n, char out[VERITY_HEX_SIZE]) {
        uint8_t md[32];
        unsigned len = 0;
        EVP_Digest(d, n, md, &len, EVP_sha256(), NULL);
        verity_hex(md, 32, out);
}

/* The hash area at off in fd, len bytes, hashed. */
static void area_hex(int fd, uint64_t off, uint64_t len, char out[VERITY_HEX_SIZE]) {
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        CHECK_EQ(pread_full(fd, buf, len, off), 0);
        sha256_hex(buf, len, out);
}

/* Feed data in pieces of the sizes in steps (cycled). */
static int feed(struct verity_tree *t, const uint8_t *d, size_t n, const size_t *steps, size_t n_steps) {
        size_t i = 0, off = 0;
        while (off < n) {
                size_t step = steps[i++ % n_steps], s = MIN(step, n - off);
                int r = verity_tree_update(t, d + off, s);
                if (r < 0)
                        return r;
                off += s;
        }
        return 0;
}

static void test_known_answers(void) {
        static const size_t whole[] = { SIZE_MAX }, odd[] = { 1, 7, 4095, 4097, 511, 65537, 3 };
        for (size_t i = 0; i < ELEMENTSOF(kats); i++) {
                const struct kat *k = &kats[i];
                _cleanup_free_ uint8_t *d = pattern(k->size);
                for (int sb = 0; sb <= 1; sb++)
                        for (int way = 0; way < 3; way++) {
                                struct verity_params p;
                                kat_params(k, sb, &p);
                                struct verity_layout l;
                                CHECK_EQ(verity_layout_compute(&p, &l), 0);
                                CHECK_EQ(l.levels, k->levels);
                                CHECK_EQ(l.hash_blocks, k->hash_blocks);
                                CHECK_EQ(l.area_size, sb ? k->area_sb : k->area);
                                _cleanup_close_ int fd = memfd();
                                uint64_t off = way == 2 ? 3 * (uint64_t)k->hbs : 0;
                                _cleanup_verity_tree_ struct verity_tree *t = NULL;
                                CHECK_EQ(verity_tree_new(&p, way == 1 ? VERITY_ROOT_ONLY : VERITY_WRITE, fd, off, &t), 0);
                                if (!t)
                                        continue;
                                size_t covered = (size_t)(p.data_blocks * p.data_block_size);
                                CHECK_EQ(way == 0 ? feed(t, d, covered, whole, 1) : feed(t, d, covered, odd, ELEMENTSOF(odd)),
                                         0);
                                uint8_t root[32];
                                char hex[VERITY_HEX_SIZE];
                                CHECK_EQ(verity_tree_finish(t, root), 0);
                                if (strcmp(verity_hex(root, 32, hex), k->root) != 0)
                                        fprintf(stderr, "%s sb=%d way=%d: root %s\n", k->name, sb, way, hex);
                                CHECK_STREQ(hex, k->root);
                                if (way == 1)
                                        continue;
                                struct stat st;
                                CHECK_EQ(fstat(fd, &st), 0);
                                /* nothing written past the area (and nothing at all for a lone block without superblock) */
                                CHECK_EQ((uint64_t)st.st_size, l.area_size ? off + l.area_size : 0);
                                area_hex(fd, off, l.area_size, hex);
                                CHECK_STREQ(hex, sb ? k->area_sb_sha : k->area_sha);
                        }
        }
}

static void test_seed_and_uuid(void) {
        uint8_t salt[32], uuid[16];
        char hex[VERITY_HEX_SIZE], u[VERITY_UUID_STRLEN + 1];
        CHECK_EQ(verity_salt_from_seed("test", salt), 0);
        CHECK_STREQ(verity_hex(salt, 32, hex), "2255efdc53b097c967b43fbce5698d76872cf54414a61664c8af7b861b274693");
        CHECK_EQ(verity_uuid_from_salt(salt, 32, uuid), 0);
        CHECK_STREQ(verity_uuid_format(uuid, u), "8181b160-4c5e-4edb-958f-c1694df9b9e9");
        uint8_t back[16];
        CHECK_EQ(verity_uuid_parse("8181B160-4c5e-4edb-958f-c1694df9b9e9", back), 0);
        CHECK(memcmp(back, uuid, 16) == 0);
        CHECK_EQ(verity_uuid_parse("8181b1604c5e-4edb-958f-c1694df9b9e9-", back), -EINVAL);
        CHECK_EQ(verity_uuid_parse("8181b160-4c5e-4edb-958f-c1694df9b9e", back), -EINVAL);
        CHECK_EQ(verity_uuid_parse("8181b160-4c5e-4edb-958f-c1694df9b9eg", back), -EINVAL);
}

static void test_hex(void) {
        uint8_t salt[VERITY_SALT_MAX];
        size_t n = 99;
        CHECK_EQ(verity_salt_from_hex("-", salt, &n), 0);
        CHECK_EQ(n, 0);
        CHECK_EQ(verity_salt_from_hex("00Ff7a", salt, &n), 0);
        CHECK_EQ(n, 3);
        CHECK(salt[0] == 0 && salt[1] == 0xff && salt[2] == 0x7a);
        n = 99;
        CHECK_EQ(verity_salt_from_hex("abc", salt, &n), -EINVAL);
        CHECK_EQ(verity_salt_from_hex("zz", salt, &n), -EINVAL);
        CHECK_EQ(verity_salt_from_hex("0x00", salt, &n), -EINVAL);
        CHECK_EQ(n, 99);
        char big[2 * VERITY_SALT_MAX + 3];
        memset(big, 'a', 2 * VERITY_SALT_MAX);
        big[2 * VERITY_SALT_MAX] = 0;
        CHECK_EQ(verity_salt_from_hex(big, salt, &n), 0);
        CHECK_EQ(n, VERITY_SALT_MAX);
        strcpy(big + 2 * VERITY_SALT_MAX, "aa");
        CHECK_EQ(verity_salt_from_hex(big, salt, &n), -E2BIG);
        big[5] = 'q';
        CHECK_EQ(verity_salt_from_hex(big, salt, &n), -EINVAL);
        uint8_t root[32];
        CHECK_EQ(verity_root_from_hex(kats[0].root, root), 0);
        char hex[VERITY_HEX_SIZE];
        CHECK_STREQ(verity_hex(root, 32, hex), kats[0].root);
        CHECK_EQ(verity_root_from_hex("204db382", root), -EINVAL);
        CHECK_EQ(verity_root_from_hex("204db382370e57cc06261329a693c96517b419e4e45c200263e7b7c57aaac8411", root), -EINVAL);
        CHECK_EQ(verity_root_from_hex("x04db382370e57cc06261329a693c96517b419e4e45c200263e7b7c57aaac841", root), -EINVAL);
}

static void test_params_refused(void) {
        struct verity_params p;
        struct verity_layout l;
        static const uint32_t bad_sizes[] = { 0, 256, 511, 1000, 3000, 4095, 4097, 131072, 65535 };
        for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
                verity_params_init(&p, 10);
                p.data_block_size = bad_sizes[i];
                CHECK_EQ(verity_params_check(&p), -EINVAL);
                verity_params_init(&p, 10);
                p.hash_block_size = bad_sizes[i];
                CHECK_EQ(verity_layout_compute(&p, &l), -EINVAL);
        }
        for (uint32_t s = VERITY_BLOCK_MIN; s <= VERITY_BLOCK_MAX; s *= 2) {
                verity_params_init(&p, 10);
                p.data_block_size = p.hash_block_size = s;
                CHECK_EQ(verity_params_check(&p), 0);
        }
        verity_params_init(&p, 0);
        CHECK_EQ(verity_params_check(&p), -EINVAL);
        verity_params_init(&p, 10);
        p.salt_size = VERITY_SALT_MAX + 1;
        CHECK_EQ(verity_params_check(&p), -EINVAL);
        verity_params_init(&p, UINT64_MAX / 4096 + 1); /* data bytes overflow */
        CHECK_EQ(verity_params_check(&p), -EFBIG);
        verity_params_init(&p, (uint64_t)INT64_MAX / 4096 + 1); /* past off_t */
        CHECK_EQ(verity_params_check(&p), -EFBIG);
        /* the largest allowed: 2^63 - 4096 bytes in 512-byte blocks is 14 levels, and the builder's memory is bounded */
        verity_params_init(&p, (uint64_t)INT64_MAX / 512);
        p.data_block_size = p.hash_block_size = 512;
        CHECK_EQ(verity_layout_compute(&p, &l), 0);
        CHECK_EQ(l.levels, 14);
        _cleanup_verity_tree_ struct verity_tree *t = NULL;
        CHECK_EQ(verity_tree_new(&p, VERITY_ROOT_ONLY, -1, 0, &t), 0);
        /* hash offset not a multiple of the hash block size; no fd */
        verity_params_init(&p, 10);
        struct verity_tree *t2 = NULL;
        CHECK_EQ(verity_tree_new(&p, VERITY_WRITE, 1, 512, &t2), -EINVAL);
        CHECK_EQ(verity_tree_new(&p, VERITY_WRITE, -1, 0, &t2), -EINVAL);
        CHECK_EQ(verity_tree_new(&p, VERITY_WRITE, 1, (uint64_t)INT64_MAX - 4095, &t2), -EFBIG);
        CHECK(t2 == NULL);
}

static void test_stream_bounds(void) {
        struct verity_params p;
        verity_params_init(&p, 3);
        _cleanup_free_ uint8_t *d = pattern(4 * 4096);
        uint8_t root[32] = { 0 }, zero[32] = { 0 };
        _cleanup_verity_tree_ struct verity_tree *t = NULL;
        CHECK_EQ(verity_tree_new(&p, VERITY_ROOT_ONLY, -1, 0, &t), 0);
        CHECK_EQ(verity_tree_update(t, d, 2 * 4096 + 1), 0);
        CHECK_EQ(verity_tree_finish(t, root), -ENODATA); /* short, with a partial block */
        CHECK_EQ(verity_tree_update(t, d, 1), -ENODATA);  /* sticky */
        CHECK(memcmp(root, zero, 32) == 0);
        verity_tree_free(TAKE_PTR(t));
        CHECK_EQ(verity_tree_new(&p, VERITY_ROOT_ONLY, -1, 0, &t), 0);
        CHECK_EQ(verity_tree_update(t, d, 2 * 4096), 0);
        CHECK_EQ(verity_tree_finish(t, root), -ENODATA); /* short by a whole block */
        verity_tree_free(TAKE_PTR(t));
        CHECK_EQ(verity_tree_new(&p, VERITY_ROOT_ONLY, -1, 0, &t), 0);
        CHECK_EQ(verity_tree_update(t, d, 3 * 4096 + 1), -EFBIG);
        CHECK_EQ(verity_tree_finish(t, root), -EFBIG);
        verity_tree_free(TAKE_PTR(t));
        CHECK_EQ(verity_tree_new(&p, VERITY_ROOT_ONLY, -1, 0, &t), 0);
        CHECK_EQ(verity_tree_update(t, d, 3 * 4096), 0);
        CHECK_EQ(verity_tree_update(t, d, 0), 0);
        CHECK_EQ(verity_tree_update(t, d, 1), -EFBIG);
}

/* Build the four-level 512-byte tree, then check it in compare mode, clean and with one byte changed in turn. */
static void test_compare(void) {
        const struct kat *k = &kats[3];
        struct verity_params p;
        kat_params(k, true, &p);
        struct verity_layout l;
        CHECK_EQ(verity_layout_compute(&p, &l), 0);
        size_t size = (size_t)(p.data_blocks * p.data_block_size);
        _cleanup_close_ int dfd = memfd(), hfd = memfd();
        _cleanup_free_ uint8_t *d = pattern(size);
        CHECK_EQ(pwrite_full(dfd, d, size, 0), 0);
        const uint64_t off = 4096;
        uint8_t root[32], root2[32];
        struct verity_mismatch m;
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_WRITE, hfd, off, root, NULL), 0);
        char hex[VERITY_HEX_SIZE];
        CHECK_STREQ(verity_hex(root, 32, hex), k->root);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), 0);
        CHECK(memcmp(root, root2, 32) == 0);

        /* a data byte in block 4321 */
        uint8_t b = d[4321 * 512 + 17] ^ 0x01;
        CHECK_EQ(pwrite_full(dfd, &b, 1, 4321 * 512 + 17), 0);
        memset(&m, 0, sizeof m);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), -EBADMSG);
        CHECK_EQ(m.level, 0);
        CHECK(m.data_known);
        CHECK_EQ(m.data_block, 4321);
        CHECK_EQ(m.hash_block, 4321 / 16);
        CHECK_EQ(m.offset, off + l.level_offset[0] + (4321 / 16) * 512);
        CHECK(!m.padding);
        /* ROOT_ONLY still works and gives another root */
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_ROOT_ONLY, -1, 0, root2, NULL), 0);
        CHECK(memcmp(root, root2, 32) != 0);
        b ^= 0x01;
        CHECK_EQ(pwrite_full(dfd, &b, 1, 4321 * 512 + 17), 0);

        /* a hash in level 2 (block 1, second hash) */
        uint64_t at = off + l.level_offset[2] + 512 + 32 + 5, at_pad;
        CHECK_EQ(pread_full(hfd, &b, 1, at), 0);
        b ^= 0x80;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at), 0);
        memset(&m, 0, sizeof m);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), -EBADMSG);
        CHECK_EQ(m.level, 2);
        CHECK_EQ(m.hash_block, 1);
        CHECK(!m.data_known && !m.padding);
        b ^= 0x80;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at), 0);

        /* the zero padding of the last level-0 block (5000 % 16 = 8 hashes used) */
        at_pad = off + l.level_offset[0] + 312 * 512 + 8 * 32 + 3;
        b = 1;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at_pad), 0);
        memset(&m, 0, sizeof m);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), -EBADMSG);
        CHECK_EQ(m.level, 0);
        CHECK_EQ(m.hash_block, 312);
        CHECK(m.padding && !m.data_known);
        b = 0;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at_pad), 0);

        /* the top block */
        at = off + l.level_offset[3];
        CHECK_EQ(pread_full(hfd, &b, 1, at), 0);
        b ^= 0xff;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at), 0);
        memset(&m, 0, sizeof m);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), -EBADMSG);
        CHECK_EQ(m.level, 3);
        CHECK_EQ(m.hash_block, 0);
        b ^= 0xff;
        CHECK_EQ(pwrite_full(hfd, &b, 1, at), 0);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), 0);

        /* the data ends early; the tree ends early */
        CHECK_EQ(ftruncate(dfd, (off_t)size - 1), 0);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_ROOT_ONLY, -1, 0, root2, NULL), -EIO);
        CHECK_EQ(ftruncate(dfd, (off_t)size), 0);
        CHECK_EQ(pwrite_full(dfd, d + size - 1, 1, size - 1), 0);
        CHECK_EQ(ftruncate(hfd, (off_t)(off + l.area_size - 1)), 0);
        CHECK_EQ(verity_hash_fd(&p, dfd, 0, VERITY_COMPARE, hfd, off, root2, &m), -EIO);

        /* data at an offset in its fd */
        _cleanup_close_ int dfd2 = memfd();
        CHECK_EQ(pwrite_full(dfd2, d, size, 12345), 0);
        CHECK_EQ(verity_hash_fd(&p, dfd2, 12345, VERITY_ROOT_ONLY, -1, 0, root2, NULL), 0);
        CHECK(memcmp(root, root2, 32) == 0);
}

static void test_superblock(void) {
        struct verity_params p, q;
        kat_params(&kats[4], true, &p);
        uint8_t sb[VERITY_SUPERBLOCK_SIZE], sb2[VERITY_SUPERBLOCK_SIZE];
        CHECK_EQ(verity_superblock_build(&p, sb), 0);
        CHECK(memcmp(sb, "verity\0\0\1\0\0\0\1\0\0\0", 16) == 0);
        CHECK_EQ(verity_superblock_parse(sb, sizeof sb, &q), 0);
        CHECK_EQ(q.data_block_size, 4096);
        CHECK_EQ(q.hash_block_size, 512);
        CHECK_EQ(q.data_blocks, 300);
        CHECK_EQ(q.salt_size, 7);
        CHECK(memcmp(q.salt, p.salt, 7) == 0 && memcmp(q.uuid, p.uuid, 16) == 0 && q.superblock);
        CHECK_EQ(verity_superblock_build(&q, sb2), 0);
        CHECK(memcmp(sb, sb2, sizeof sb) == 0);
        CHECK_EQ(verity_superblock_parse(sb, sizeof sb - 1, &q), -EBADMSG);

        struct {
                size_t at;
                uint8_t value;
                int err;
        } bad[] = {
                { 0, 'V', -EBADMSG },        /* signature */
                { 7, 1, -EBADMSG },          /* signature's padding */
                { 8, 2, -EOPNOTSUPP },       /* version */
                { 12, 0, -EOPNOTSUPP },      /* hash type 0 */
                { 32 + 3, '5', -EOPNOTSUPP }, /* "sha526" */
                { 32 + 6, 'x', -EOPNOTSUPP }, /* "sha256x" */
                { 65, 0x0b, -EINVAL },       /* data block size 0x0b00 (2816) */
                { 68, 1, -EINVAL },          /* hash block size 0x201 */
                { 71, 1, -EINVAL },          /* hash block size huge */
                { 80, 0x01, -EBADMSG },      /* salt size 0x101 = 257 */
                { 84, 1, -EBADMSG },         /* pad1 */
                { 88 + 7, 1, -EBADMSG },     /* salt byte past the salt size */
                { 511, 1, -EBADMSG },        /* pad2 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memcpy(sb2, sb, sizeof sb);
                sb2[bad[i].at] = bad[i].value;
                if (bad[i].at == 80)
                        sb2[81] = 0x01;
                memset(&q, 0x5a, sizeof q);
                int r = verity_superblock_parse(sb2, sizeof sb2, &q);
                if (r != bad[i].err)
                        fprintf(stderr, "case %zu (byte %zu): %d\n", i, bad[i].at, r);
                CHECK_EQ(r, bad[i].err);
                CHECK_EQ(q.data_blocks, 0x5a5a5a5a5a5a5a5aULL); /* untouched on failure */
        }
        /* zero data blocks */
        memcpy(sb2, sb, sizeof sb);
        memset(sb2 + 72, 0, 8);
        CHECK_EQ(verity_superblock_parse(sb2, sizeof sb2, &q), -EINVAL);
        /* data blocks past off_t */
        memset(sb2 + 72, 0xff, 8);
        CHECK_EQ(verity_superblock_parse(sb2, sizeof sb2, &q), -EFBIG);
}

int main(void) {
        RUN(test_known_answers);
        RUN(test_seed_and_uuid);
        RUN(test_hex);
        RUN(test_params_refused);
        RUN(test_stream_bounds);
        RUN(test_compare);
        RUN(test_superblock);
        return unit_main_end();
}
