#!/usr/bin/env python3
# tests/unit/verity-ref.py — an independent, deliberately naive dm-verity (format 1, SHA-256) reference, written
# from the kernel's documentation (Documentation/admin-guide/device-mapper/verity.rst) and not from our C code.
# It holds the whole tree in memory. Its output is pasted as the known answers in tests/unit/test-verity.c;
# run it again with `python3 tests/unit/verity-ref.py` to reproduce them.
import hashlib
import struct


def pattern(n):
    """The test data: byte i is (i * 131 + 7) % 251 (the same formula as fill_pattern() in test-verity.c)."""
    return bytes((i * 131 + 7) % 251 for i in range(n))


def salt_from_seed(seed):
    return hashlib.sha256(b"cairn-verity-salt:" + seed.encode()).digest()


def uuid_from_salt(salt):
    u = bytearray(hashlib.sha256(b"cairn-verity-uuid:" + salt).digest()[:16])
    u[6] = (u[6] & 0x0F) | 0x40
    u[8] = (u[8] & 0x3F) | 0x80
    return bytes(u)


def tree(data, dbs, hbs, salt, superblock):
    n = len(data) // dbs                      # a trailing partial block is not covered (veritysetup's rule)
    h = lambda b: hashlib.sha256(salt + b).digest()
    digests = [h(data[i * dbs:(i + 1) * dbs]) for i in range(n)]
    levels = []                               # levels[0]: the hash blocks over the data blocks
    while len(digests) > 1:
        per = hbs // 32
        blocks = [b"".join(digests[i:i + per]).ljust(hbs, b"\0") for i in range(0, len(digests), per)]
        levels.append(blocks)
        digests = [h(b) for b in blocks]
    root = digests[0]
    area = b"".join(b"".join(lv) for lv in reversed(levels))  # the top level first, the data's hashes last
    if superblock:
        sb = struct.pack("<8sII16s32sIIQH6s256s168s", b"verity", 1, 1, uuid_from_salt(salt), b"sha256", dbs, hbs, n,
                         len(salt), b"", salt, b"")
        area = sb.ljust(hbs, b"\0") + area
    return root, area, len(levels), sum(len(lv) for lv in levels)


CASES = [  # name, data bytes, data block size, hash block size, salt
    ("one_block", 4096, 4096, 4096, salt_from_seed("test")),
    ("partial_tail", 10000, 4096, 4096, salt_from_seed("test")),
    ("two_blocks", 8192, 4096, 4096, salt_from_seed("test")),
    ("four_levels_512", 5000 * 512 + 100, 512, 512, salt_from_seed("levels")),
    ("mixed_4096_512", 300 * 4096, 4096, 512, bytes(range(7))),
    ("mixed_1024_4096_nosalt", 130 * 1024, 1024, 4096, b""),
    ("big_blocks_65536", 3 * 65536 + 1, 65536, 65536, bytes(256 * [0xA5])),
    ("exact_full_level", 128 * 4096, 4096, 4096, salt_from_seed("full")),
    ("full_level_plus_one", 129 * 4096, 4096, 4096, salt_from_seed("full")),
]

if __name__ == "__main__":
    print("salt_from_seed(\"test\") =", salt_from_seed("test").hex())
    print("uuid_from_salt(that)   =", uuid_from_salt(salt_from_seed("test")).hex())
    for name, size, dbs, hbs, salt in CASES:
        d = pattern(size)
        root, area, nlev, nblk = tree(d, dbs, hbs, salt, False)
        root2, area_sb, _, _ = tree(d, dbs, hbs, salt, True)
        assert root == root2
        print(f"{name}: levels={nlev} hash_blocks={nblk} area={len(area)} area_sb={len(area_sb)}")
        print(f"  root    {root.hex()}")
        print(f"  area    {hashlib.sha256(area).hexdigest()}")
        print(f"  area_sb {hashlib.sha256(area_sb).hexdigest()}")
