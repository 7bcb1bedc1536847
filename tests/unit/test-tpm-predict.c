/* tests/unit/test-tpm-predict.c — the pieces of PCR prediction that need no disk: the initramfs's own SHA-1/SHA-2
 * against OpenSSL, the PCR 11 slot identity and version texts, and predict_boot()'s refusals of bad inputs. (The
 * whole prediction against a real boot: tests/integration/63-tpm-boot.sh; on disk images: 64-tpm-predict.sh.) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "unit.h"
#include "tpm/alg.h"
#include "tpm/minisha.h"
#include "tpm/predict.h"
#include "tpm/slotid.h"

static void test_minisha_vs_openssl(void) {
        static const uint16_t algs[4] = { TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512 };
        uint8_t data[1000];
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t)((x = x * 1103515245 + 12345) >> 16);
        /* every length around the 64- and 128-byte block and padding boundaries, and some longer */
        for (size_t len = 0; len <= sizeof data; len += len < 300 ? 1 : 97) {
                struct tpm_digests ref;
                struct tpm_error e = { 0 };
                CHECK_EQ(tpm_hash_data(algs, 4, data, len, &ref, &e), 0);
                for (int a = 0; a < 4; a++) {
                        uint8_t out[64];
                        CHECK_EQ(minisha(algs[a], data, len, out), ref.d[a].size);
                        if (memcmp(out, ref.d[a].bytes, ref.d[a].size) != 0) {
                                fprintf(stderr, "minisha alg 0x%04x len %zu differs\n", algs[a], len);
                                CHECK(0);
                        }
                }
        }
        uint8_t out[64];
        CHECK_EQ(minisha(TPM_ALG_SM3_256, "x", 1, out), 0);
        CHECK_EQ(minisha(0x1234, "x", 1, out), 0);
        /* FIPS 180 "abc" */
        CHECK_EQ(minisha(TPM_ALG_SHA256, "abc", 3, out), 32);
        CHECK_EQ(out[0], 0xba);
        CHECK_EQ(out[31], 0xad);
}

static void test_slotid_text(void) {
        char buf[SLOTID_TEXT_MAX];
        const char *h = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        CHECK_EQ(slotid_text(h, NULL, NULL, buf, sizeof buf), 0);
        CHECK_STREQ(buf, "usrhash=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        CHECK_EQ(slotid_text("abc", NULL, NULL, buf, sizeof buf), -EINVAL);      /* too short */
        CHECK_EQ(slotid_text("0123456789abcdef0123456789abcdefg", NULL, NULL, buf, sizeof buf), -EINVAL);
        CHECK_EQ(slotid_text("0123456789abcdef0123456789abcdef0", NULL, NULL, buf, sizeof buf), -EINVAL); /* odd */
        const uint8_t fsu[16] = { 0x67, 0x18, 0xc7, 0x56, 0x7b, 0x5d, 0x4c, 0xd4, 0xa6, 0xba, 0xab, 0x50, 0xc0, 0xbc, 0xf0, 0x79 };
        CHECK_EQ(slotid_text("", "7539BF47-D2DC-4A68-B7BB-34C05144FF2C", fsu, buf, sizeof buf), 0);
        CHECK_STREQ(buf, "partuuid=7539bf47-d2dc-4a68-b7bb-34c05144ff2c fsuuid=6718c756-7b5d-4cd4-a6ba-ab50c0bcf079");
        CHECK_EQ(slotid_text(NULL, "7539bf47d2dc-4a68-b7bb-34c05144ff2c0", fsu, buf, sizeof buf), -EINVAL);
        CHECK_EQ(slotid_text(NULL, "7539bf47-d2dc-4a68-b7bb-34c05144ff2c", NULL, buf, sizeof buf), -EINVAL);
        CHECK_EQ(slotid_text(h, NULL, NULL, buf, 10), -ENOBUFS);
}

static void test_slotid_version(void) {
        char v[SLOTID_VERSION_MAX];
        const char *o = "NAME=\"Cairn\"\nVERSION_ID=0.1.0\nVERSION=\"0.1.0\"\n";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), 0);
        CHECK_STREQ(v, "0.1.0");
        o = "VERSION_ID=\"1.2\"\nVERSION_ID='1.3'";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), 0);
        CHECK_STREQ(v, "1.3");
        o = "NAME=x\nVERSION=1\n";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), -ENOENT);
        o = "VERSION_ID=\n";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), -EINVAL);
        o = "VERSION_ID=1 2\n";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), -EINVAL);
        o = "VERSION_ID=1\x1b[2J\n";
        CHECK_EQ(slotid_version(o, strlen(o), v, sizeof v), -EINVAL);
}

static void test_predict_bad_inputs(void) {
        static const uint16_t banks[2] = { TPM_ALG_SHA1, TPM_ALG_SHA256 };
        struct prediction *p = NULL;
        struct tpm_error e = { 0 };
        struct predict_options o = { .disk = "/nonexistent/disk.img", .slot = -1, .algs = banks, .n_algs = 2 };
        CHECK_EQ(predict_boot(&o, &p, &e), -ENOENT);
        CHECK_EQ(e.kind, TPM_ERR_IO);
        CHECK(p == NULL);
        /* a file of zeros: no GPT */
        char path[512];
        snprintf(path, sizeof path, "%s/zero.img", unit_tmpdir());
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK_EQ(ftruncate(fd, 4 << 20), 0);
        close(fd);
        o.disk = path;
        e = (struct tpm_error){ 0 };
        CHECK(predict_boot(&o, &p, &e) < 0);
        CHECK(strstr(e.msg, "no usable GPT") != NULL);
        CHECK(p == NULL);
        /* bad options */
        o.slot = 2;
        CHECK_EQ(predict_boot(&o, &p, &e), -EINVAL);
        o.slot = -1;
        o.n_algs = 0;
        CHECK_EQ(predict_boot(&o, &p, &e), -EINVAL);
        static const uint16_t bad[1] = { 0x7777 };
        o.algs = bad;
        o.n_algs = 1;
        CHECK_EQ(predict_boot(&o, &p, &e), -EOPNOTSUPP);
        CHECK_EQ(predict_boot(NULL, &p, &e), -EINVAL);
}

int main(void) {
        RUN(test_minisha_vs_openssl);
        RUN(test_slotid_text);
        RUN(test_slotid_version);
        RUN(test_predict_bad_inputs);
        return unit_main_end();
}
