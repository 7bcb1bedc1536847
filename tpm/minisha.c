/* tpm/minisha.c — compact one-shot SHA-1 and SHA-2 (FIPS 180-4) for the initramfs helper; no dependencies. */
#include "minisha.h"

#include <string.h>

#define ALG_SHA1 0x0004
#define ALG_SHA256 0x000B
#define ALG_SHA384 0x000C
#define ALG_SHA512 0x000D

static inline uint32_t rol32(uint32_t x, unsigned n) {
        return (x << n) | (x >> (32 - n));
}
static inline uint32_t ror32(uint32_t x, unsigned n) {
        return (x >> n) | (x << (32 - n));
}
static inline uint64_t ror64(uint64_t x, unsigned n) {
        return (x >> n) | (x << (64 - n));
}
static uint32_t be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) {
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void sha1_block(uint32_t h[5], const uint8_t *b) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
                w[i] = be32(b + 4 * i);
        for (int i = 16; i < 80; i++)
                w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
                uint32_t f, k;
                if (i < 20)
                        f = (bb & c) | (~bb & d), k = 0x5A827999;
                else if (i < 40)
                        f = bb ^ c ^ d, k = 0x6ED9EBA1;
                else if (i < 60)
                        f = (bb & c) | (bb & d) | (c & d), k = 0x8F1BBCDC;
                else
                        f = bb ^ c ^ d, k = 0xCA62C1D6;
                uint32_t t = rol32(a, 5) + f + e + k + w[i];
                e = d, d = c, c = rol32(bb, 30), bb = a, a = t;
        }
        h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
}

static const uint32_t K256[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t h[8], const uint8_t *b) {
        uint32_t w[64], v[8];
        for (int i = 0; i < 16; i++)
                w[i] = be32(b + 4 * i);
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        memcpy(v, h, sizeof v);
        for (int i = 0; i < 64; i++) {
                uint32_t S1 = ror32(v[4], 6) ^ ror32(v[4], 11) ^ ror32(v[4], 25);
                uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
                uint32_t t1 = v[7] + S1 + ch + K256[i] + w[i];
                uint32_t S0 = ror32(v[0], 2) ^ ror32(v[0], 13) ^ ror32(v[0], 22);
                uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                uint32_t t2 = S0 + maj;
                memmove(v + 1, v, 7 * sizeof *v);
                v[4] += t1;
                v[0] = t1 + t2;
        }
        for (int i = 0; i < 8; i++)
                h[i] += v[i];
}

static const uint64_t K512[80] = {
        0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538,
        0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe,
        0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2, 0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235,
        0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
        0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5, 0x983e5152ee66dfab,
        0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
        0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed,
        0x53380d139d95b3df, 0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
        0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218,
        0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8, 0x19a4c116b8d2d0c8, 0x1e376c085141ab53,
        0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373,
        0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
        0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c,
        0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6,
        0x113f9804bef90dae, 0x1b710b35131c471b, 0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc,
        0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
};

static void sha512_block(uint64_t h[8], const uint8_t *b) {
        uint64_t w[80], v[8];
        for (int i = 0; i < 16; i++)
                w[i] = be64(b + 8 * i);
        for (int i = 16; i < 80; i++) {
                uint64_t s0 = ror64(w[i - 15], 1) ^ ror64(w[i - 15], 8) ^ (w[i - 15] >> 7);
                uint64_t s1 = ror64(w[i - 2], 19) ^ ror64(w[i - 2], 61) ^ (w[i - 2] >> 6);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        memcpy(v, h, sizeof v);
        for (int i = 0; i < 80; i++) {
                uint64_t S1 = ror64(v[4], 14) ^ ror64(v[4], 18) ^ ror64(v[4], 41);
                uint64_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
                uint64_t t1 = v[7] + S1 + ch + K512[i] + w[i];
                uint64_t S0 = ror64(v[0], 28) ^ ror64(v[0], 34) ^ ror64(v[0], 39);
                uint64_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                memmove(v + 1, v, 7 * sizeof *v);
                v[4] += t1;
                v[0] = t1 + S0 + maj;
        }
        for (int i = 0; i < 8; i++)
                h[i] += v[i];
}

/* Merkle–Damgård padding over whole blocks: bs = 64 or 128, the length field 8 or 16 bytes big-endian. */
static void md_run(const uint8_t *p, size_t len, size_t bs, void (*block)(void *st, const uint8_t *b), void *st) {
        size_t full = len / bs * bs;
        for (size_t off = 0; off < full; off += bs)
                block(st, p + off);
        uint8_t tail[256] = { 0 };
        size_t rest = len - full, lenfield = bs / 8;
        memcpy(tail, p + full, rest);
        tail[rest] = 0x80;
        size_t total = rest + 1 + lenfield <= bs ? bs : 2 * bs;
        uint64_t bits = (uint64_t)len * 8;
        for (int i = 0; i < 8; i++)
                tail[total - 1 - i] = (uint8_t)(bits >> (8 * i));
        block(st, tail);
        if (total > bs)
                block(st, tail + bs);
}

static void b_sha1(void *st, const uint8_t *b) {
        sha1_block(st, b);
}
static void b_sha256(void *st, const uint8_t *b) {
        sha256_block(st, b);
}
static void b_sha512(void *st, const uint8_t *b) {
        sha512_block(st, b);
}

unsigned minisha(uint16_t alg, const void *data, size_t len, uint8_t out[64]) {
        const uint8_t *p = data ? data : (const uint8_t *)"";
        if (alg == ALG_SHA1) {
                uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
                md_run(p, len, 64, b_sha1, h);
                for (int i = 0; i < 20; i++)
                        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
                return 20;
        }
        if (alg == ALG_SHA256) {
                uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
                md_run(p, len, 64, b_sha256, h);
                for (int i = 0; i < 32; i++)
                        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
                return 32;
        }
        if (alg == ALG_SHA384 || alg == ALG_SHA512) {
                static const uint64_t iv384[8] = { 0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17,
                                                   0x152fecd8f70e5939, 0x67332667ffc00b31, 0x8eb44a8768581511,
                                                   0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4 };
                static const uint64_t iv512[8] = { 0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b,
                                                   0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f,
                                                   0x1f83d9abfb41bd6b, 0x5be0cd19137e2179 };
                uint64_t h[8];
                memcpy(h, alg == ALG_SHA384 ? iv384 : iv512, sizeof h);
                md_run(p, len, 128, b_sha512, h);
                unsigned n = alg == ALG_SHA384 ? 48 : 64;
                for (unsigned i = 0; i < n; i++)
                        out[i] = (uint8_t)(h[i / 8] >> (56 - 8 * (i % 8)));
                return n;
        }
        return 0;
}
