/* tpm/slotid.c — the PCR 11 slot identity and version texts (see slotid.h); no OpenSSL (static helper). */
#include "slotid.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fileio.h"

static bool is_guid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

int slotid_text(const char *usrhash, const char *partuuid, const uint8_t fsuuid[16], char *buf, size_t size) {
        char lower[160];
        int n;
        if (usrhash && *usrhash) {
                size_t len = strlen(usrhash);
                if (len < 32 || len > 128 || len % 2)
                        return -EINVAL;
                for (size_t i = 0; i < len; i++) {
                        if (!isxdigit((unsigned char)usrhash[i]))
                                return -EINVAL;
                        lower[i] = (char)tolower((unsigned char)usrhash[i]);
                }
                lower[len] = 0;
                n = snprintf(buf, size, "usrhash=%s", lower);
        } else {
                if (!partuuid || !is_guid(partuuid) || !fsuuid)
                        return -EINVAL;
                for (int i = 0; i < 36; i++)
                        lower[i] = (char)tolower((unsigned char)partuuid[i]);
                lower[36] = 0;
                const uint8_t *u = fsuuid;
                n = snprintf(buf, size,
                             "partuuid=%s fsuuid=%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                             lower, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                             u[13], u[14], u[15]);
        }
        return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

int slotid_version(const char *s, size_t len, char *buf, size_t size) {
        const char *end = s + len, *found = NULL;
        size_t flen = 0;
        for (const char *p = s; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                if ((size_t)(le - p) >= 11 && memcmp(p, "VERSION_ID=", 11) == 0) {
                        found = p + 11; /* the last assignment wins, as in a shell */
                        flen = (size_t)(le - found);
                }
                p = nl ? nl + 1 : end;
        }
        if (!found)
                return -ENOENT;
        if (flen >= 2 && (found[0] == '"' || found[0] == '\'') && found[flen - 1] == found[0])
                found++, flen -= 2;
        if (flen == 0 || flen >= SLOTID_VERSION_MAX || flen >= size)
                return -EINVAL;
        for (size_t i = 0; i < flen; i++)
                if (found[i] <= ' ' || found[i] > '~' || found[i] == '"' || found[i] == '\'' || found[i] == '\\')
                        return -EINVAL;
        memcpy(buf, found, flen);
        buf[flen] = 0;
        return 0;
}

int slotid_ext4_uuid(int fd, uint64_t offset, uint8_t ret[16]) {
        uint8_t magic[2];
        int r = pread_full(fd, magic, 2, offset + EXT4_MAGIC_OFFSET);
        if (r < 0)
                return r;
        if (magic[0] != 0x53 || magic[1] != 0xEF)
                return -EMEDIUMTYPE;
        return pread_full(fd, ret, 16, offset + EXT4_UUID_OFFSET);
}

static uint32_t be32_at(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int slotid_parse_pcr_capability(const uint8_t *resp, size_t len, uint16_t *algs, size_t *ret_n) {
        /* tag u16 | size u32 | rc u32 | moreData u8 | capability u32 | TPML_PCR_SELECTION {count u32,
         * count x {hash u16, sizeofSelect u8, pcrSelect[sizeofSelect]}} */
        if (len < 10 || be32_at(resp + 2) != len || be32_at(resp + 6) != 0)
                return -EBADMSG;
        size_t o = 11;
        if (len < o + 8 || be32_at(resp + o) != 5)
                return -EBADMSG;
        uint32_t count = be32_at(resp + o + 4);
        o += 8;
        size_t n = 0;
        for (uint32_t i = 0; i < count; i++) {
                if (len - o < 3)
                        return -EBADMSG;
                uint16_t alg = (uint16_t)(resp[o] << 8 | resp[o + 1]);
                uint8_t sz = resp[o + 2];
                o += 3;
                if (len - o < sz)
                        return -EBADMSG;
                bool any = false;
                for (unsigned j = 0; j < sz; j++)
                        any |= resp[o + j] != 0;
                o += sz;
                if (!any)
                        continue;
                if (n == 8)
                        return -E2BIG;
                algs[n++] = alg;
        }
        if (o != len)
                return -EBADMSG;
        *ret_n = n;
        return 0;
}
