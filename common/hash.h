/* common/hash.h — SHA-256 through OpenSSL's EVP, in the two shapes Cairn needs: a buffer, and a byte range of a
 * file or block device (streamed, bounded memory, optionally cancellable). Link with -lcrypto and add
 * $(HASH_SRCS) to a program's sources (common/rules.mk). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "macro.h"

#define HASH_SHA256_SIZE 32

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
#define _cleanup_md_ctx_ _cleanup_(EVP_MD_CTX_freep)

/* SHA-256 of data[0..len); -EIO if OpenSSL fails. */
int sha256_buf(const void *data, size_t len, uint8_t out[HASH_SHA256_SIZE]) _warn_unused_result_;

/* SHA-256 of size bytes of fd from off (pread; the file offset is not moved). A short file is -EIO.
 * cancelled (may be NULL) is polled between 1 MiB reads: true → -ECANCELED. */
int sha256_fd_range(int fd, uint64_t off, uint64_t size, bool (*cancelled)(void), uint8_t out[HASH_SHA256_SIZE])
        _warn_unused_result_;
