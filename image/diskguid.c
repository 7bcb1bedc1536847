/* image/diskguid.c — derives reproducible GPT GUIDs from a seed string and a purpose string. */
#include "diskguid.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

int disk_guid_derive(const char *seed, const char *purpose, struct gpt_guid *ret) {
        static const char domain[] = "cairn-guid"; /* hashed with its NUL */
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (!seed || !purpose)
                return -EINVAL;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
                 EVP_DigestUpdate(ctx, domain, sizeof domain) &&
                 EVP_DigestUpdate(ctx, seed, strlen(seed) + 1) &&
                 EVP_DigestUpdate(ctx, purpose, strlen(purpose)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
        EVP_MD_CTX_free(ctx);
        if (!ok || mdlen < 16)
                return -EIO;
        md[6] = (uint8_t)((md[6] & 0x0f) | 0x40); /* version 4 */
        md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* variant RFC 4122 */
        gpt_guid_from_rfc(md, ret);
        return 0;
}
