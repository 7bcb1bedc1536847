/* common/hash.c — SHA-256 of a buffer and of a file range (see hash.h). */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "fileio.h"

int sha256_buf(const void *data, size_t len, uint8_t out[HASH_SHA256_SIZE]) {
        return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) ? 0 : -EIO;
}

int sha256_fd_range(int fd, uint64_t off, uint64_t size, bool (*cancelled)(void), uint8_t out[HASH_SHA256_SIZE]) {
        const size_t bs = 1u << 20;
        _cleanup_free_ uint8_t *buf = malloc(bs);
        _cleanup_md_ctx_ EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!buf || !ctx)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -EIO;
        (void)posix_fadvise(fd, (off_t)off, (off_t)size, POSIX_FADV_SEQUENTIAL);
        for (uint64_t done = 0; done < size;) {
                if (cancelled && cancelled())
                        return -ECANCELED;
                size_t n = (size_t)MIN((uint64_t)bs, size - done);
                int r = pread_full(fd, buf, n, off + done);
                if (r < 0)
                        return r;
                if (!EVP_DigestUpdate(ctx, buf, n))
                        return -EIO;
                done += n;
        }
        return EVP_DigestFinal_ex(ctx, out, NULL) ? 0 : -EIO;
}
