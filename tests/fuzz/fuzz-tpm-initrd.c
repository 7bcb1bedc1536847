/* tests/fuzz/fuzz-tpm-initrd.c — libFuzzer target for what cairn-tpm-initrd and predict parse from outside: the
 * TPM's GetCapability(PCRS) response, os-release text (VERSION_ID) and the cairn.usrhash= value. The first byte
 * picks the parser; the rest is its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpm/slotid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 65536)
                return 0;
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        switch (data[0] % 3) {
        case 0: {
                uint16_t algs[8];
                size_t k = 99;
                if (slotid_parse_pcr_capability(p, n, algs, &k) == 0 && k > 8)
                        abort();
                break;
        }
        case 1: {
                char v[SLOTID_VERSION_MAX];
                if (slotid_version((const char *)p, n, v, sizeof v) == 0) {
                        size_t l = strlen(v);
                        if (l == 0 || l >= SLOTID_VERSION_MAX)
                                abort();
                        for (size_t i = 0; i < l; i++)
                                if (v[i] <= ' ' || v[i] > '~')
                                        abort();
                }
                break;
        }
        default: {
                char s[200], out[SLOTID_TEXT_MAX];
                if (n >= sizeof s)
                        return 0;
                memcpy(s, p, n);
                s[n] = 0;
                if (slotid_text(s, NULL, NULL, out, sizeof out) == 0 &&
                    (strncmp(out, "usrhash=", 8) != 0 || strlen(out) != 8 + strlen(s)))
                        abort();
                break;
        }
        }
        return 0;
}
