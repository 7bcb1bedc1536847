/* updater/payload/payload.h — the Cairn release payload: build, parse, verify (format in docs/payload-format.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hex.h"
#include "sign.h"

#define PAYLOAD_MAGIC "CAIRNPL1"        /* 8 bytes at offset 0 */
#define PAYLOAD_FORMAT_VERSION 1
#define PAYLOAD_FORMAT_DELTA 2          /* a delta payload: format (header) and manifest version 2 */
#define PAYLOAD_HEADER_SIZE 32
#define PAYLOAD_MANIFEST_FIXED_SIZE 224 /* manifest bytes before the version string */
#define PAYLOAD_MANIFEST_FIXED_SIZE_DELTA 272 /* v2: + source image size, reserved, source image SHA-256 */
#define PAYLOAD_CHUNK_ENTRY_SIZE 56
#define PAYLOAD_CHUNK_ENTRY_SIZE_DELTA 104 /* v2: + reference offset, length, reserved, reference SHA-256 */
#define PAYLOAD_SIGBLOCK_FIXED_SIZE 8
#define PAYLOAD_SIG_ENTRY_SIZE (CAIRN_KEY_ID_SIZE + CAIRN_SIG_SIZE)

/* Limits, all enforced on read before anything is allocated from them. */
#define PAYLOAD_MANIFEST_MAX (16u << 20)
#define PAYLOAD_SIGNATURES_MAX 8
#define PAYLOAD_SIGBLOCK_MAX (PAYLOAD_SIGBLOCK_FIXED_SIZE + PAYLOAD_SIGNATURES_MAX * PAYLOAD_SIG_ENTRY_SIZE)
#define PAYLOAD_PREFIX_MAX (PAYLOAD_HEADER_SIZE + PAYLOAD_MANIFEST_MAX + PAYLOAD_SIGBLOCK_MAX)
#define PAYLOAD_STRING_MAX 64
#define PAYLOAD_REVOKED_MAX 64
#define PAYLOAD_CHUNKS_MAX (1u << 18)
#define PAYLOAD_CHUNK_SIZE_MIN 4096u
#define PAYLOAD_CHUNK_SIZE_MAX (64u << 20)
#define PAYLOAD_CHUNK_SIZE_ALIGN 4096u
#define PAYLOAD_CHUNK_SIZE_DEFAULT (1u << 20)
/* The largest slot image a payload may declare. Verifying costs a SHA-256 pass over the whole image (about
 * 1.4 GB/s on one core), however small the payload file is (zero chunks store nothing): this caps that. */
#define PAYLOAD_IMAGE_SIZE_MAX (64ULL << 30)
/* A patch chunk's reference (bytes of the source image the decoder uses as its zstd prefix): at most three chunk
 * sizes (the same-offset chunk and a window of up to one chunk on each side) and at most 64 MiB. */
#define PAYLOAD_REF_MAX (64u << 20)
#define PAYLOAD_REF_CHUNKS_MAX 3u

#define SHA256_SIZE 32
#define PAYLOAD_VERITY_SALT_MAX 256 /* dm-verity's (and veritysetup's) largest salt */

typedef enum PayloadMethod {
        PAYLOAD_METHOD_NONE = 0,
        PAYLOAD_METHOD_ZSTD = 1,
        PAYLOAD_METHOD_ZLIB = 2,
        PAYLOAD_METHOD_ZERO = 3, /* all-zero chunk: no stored bytes */
        PAYLOAD_METHOD_COPY = 4,  /* delta only: the reference bytes of the source image, as they are */
        PAYLOAD_METHOD_PATCH = 5, /* delta only: one zstd frame decoded with the reference bytes as its prefix */
        _PAYLOAD_METHOD_MAX,
} PayloadMethod;

const char *payload_method_to_string(PayloadMethod m);
int payload_method_from_string(const char *s); /* "none", "zstd", "zlib" */

typedef struct PayloadChunk {
        uint64_t offset;       /* absolute offset in the payload file */
        uint32_t stored_len;   /* bytes in the file */
        uint32_t raw_len;      /* bytes of slot image it expands to */
        uint8_t method;        /* PayloadMethod */
        uint8_t sha256[SHA256_SIZE];
        /* Delta payloads, COPY and PATCH chunks only (else all zero): the bytes [ref_offset, +ref_len) of the
         * source image this chunk is made from, and their SHA-256. */
        uint64_t ref_offset;
        uint32_t ref_len;
        uint8_t ref_sha256[SHA256_SIZE];
} PayloadChunk;

typedef struct PayloadSignature {
        uint8_t key_id[CAIRN_KEY_ID_SIZE];
        uint8_t sig[CAIRN_SIG_SIZE];
        /* Set by payload_load(): 1 good, 0 trusted key but bad signature, -1 no trusted key with that id,
         * -2 good but the key is revoked; left at -1 by payload_parse_unverified(). */
        int status;
} PayloadSignature;

typedef struct Payload {
        bool verified; /* true only if made by payload_load() against a keyring */
        uint32_t manifest_version;
        char version[PAYLOAD_STRING_MAX + 1];
        char board[PAYLOAD_STRING_MAX + 1];
        uint64_t image_size;
        uint8_t image_sha256[SHA256_SIZE];
        uint32_t chunk_size;
        uint32_t chunk_count;
        uint8_t compression; /* the default method the builder chose */
        uint64_t data_offset;
        uint64_t payload_size;
        bool has_verity_root;
        uint8_t verity_root[SHA256_SIZE];
        /* dm-verity layout (docs/verity.md): format 1, SHA-256, 4 KiB blocks, data = the image's first
         * verity_hash_offset bytes, superblock + tree from there. Only with has_verity_root. */
        bool has_verity_layout;
        uint64_t verity_hash_offset;
        uint16_t verity_salt_size;
        uint8_t verity_salt[PAYLOAD_VERITY_SALT_MAX];
        uint8_t kernel_sha256[SHA256_SIZE]; /* all zero: absent */
        uint8_t initrd_sha256[SHA256_SIZE];
        uint8_t cmdline_sha256[SHA256_SIZE];
        uint32_t n_revoked;
        uint8_t (*revoked)[CAIRN_KEY_ID_SIZE];
        PayloadChunk *chunks;
        uint32_t n_signatures;
        PayloadSignature signatures[PAYLOAD_SIGNATURES_MAX];
        uint32_t manifest_len;
        uint32_t sigblock_len;
        /* Delta payloads (format 2): the source release's image this one is made against. */
        bool is_delta;
        uint64_t source_size;
        uint8_t source_sha256[SHA256_SIZE];
} Payload;

void payload_free(Payload *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Payload *, payload_free);
#define _cleanup_payload_ _cleanup_(payload_freep)

/* Error codes the payload functions return beyond plain I/O errors; payload_strerror() names them.
 *   -EBADMSG        malformed structure (magic, reserved bytes, inconsistent lengths, bad strings)
 *   -EPROTONOSUPPORT unknown format version
 *   -E2BIG          a count or length exceeds its limit
 *   -ERANGE         chunk table points outside the file, overlaps or leaves gaps
 *   -ENODATA        the file is shorter than its header or manifest says (truncated)
 *   -ENOKEY         no signature by a trusted key (unsigned, or only unknown key ids)
 *   -EKEYREJECTED   a signature by a trusted key does not verify
 *   -EKEYREVOKED    the only valid signatures are by revoked keys
 *   -ENOTUNIQ       two signatures carry the same key id
 *   -EILSEQ         chunk data does not decompress or hash to the manifest (or the image SHA-256 differs)
 *   -EFBIG          the image size exceeds PAYLOAD_IMAGE_SIZE_MAX (reader and writer)
 *   -ESTALE         delta: the reference bytes (or the source image) are not the ones the delta was made against */
const char *payload_strerror(int r);

/* Size of header + manifest + signature block, from the first PAYLOAD_HEADER_SIZE bytes. This is all a
 * streaming reader must fetch before payload_load(). */
int payload_prefix_size(const void *untrusted_header, size_t len, size_t *ret_size);

/* Verify the signatures over the manifest against kr and only then parse it. untrusted_prefix holds at
 * least the prefix (header + manifest + signature block; more is ignored). Accepts iff every signature by
 * a trusted key verifies, at least one of them is by a key revoked neither in kr nor in the manifest,
 * and the manifest is well formed. */
int payload_load(const void *untrusted_prefix, size_t len, const CairnKeyring *kr, Payload **ret_payload);
/* Read the prefix from fd (offset 0) and payload_load() it; also checks the file is not truncated
 * (regular files). */
int payload_load_fd(int fd, const CairnKeyring *kr, Payload **ret_payload);
/* Parse without checking any signature (for `inspect` and the fuzzer). The result has verified=false
 * and must not be acted on. */
int payload_parse_unverified(const void *untrusted_prefix, size_t len, Payload **ret_payload);
int payload_parse_unverified_fd(int fd, Payload **ret_payload);
/* Read header + manifest + signature block from fd (offset 0) into a new buffer, bounded by
 * PAYLOAD_PREFIX_MAX; -ENODATA if the file ends first. */
int payload_read_prefix(int fd, uint8_t **ret_buf, size_t *ret_len);
/* For display: set signatures[i].status of a payload from payload_parse_unverified() by checking each
 * signature over the manifest in untrusted_prefix against kr. Does not make p verified. */
int payload_check_signatures(Payload *p, const void *untrusted_prefix, size_t len, const CairnKeyring *kr);

/* Decode chunk idx from its stored bytes into out (exactly chunks[idx].raw_len bytes) and check its
 * SHA-256. Unless 0 is returned, out holds unverified bytes and must not be written anywhere. */
int payload_chunk_decode(const Payload *p, uint32_t idx, const void *untrusted_data, size_t len, void *out,
                         size_t out_len);

/* The same for any chunk of a delta payload: ref holds the bytes [ref_offset, +ref_len) of the source image
 * (untrusted: read from the active slot), checked against ref_sha256 first (-ESTALE if they differ, before
 * anything is decoded), then the chunk is decoded (COPY: the reference itself; PATCH: zstd with the reference as
 * prefix) and its output checked (-EILSEQ). For chunks without a reference, ref is ignored. */
int payload_chunk_decode_ref(const Payload *p, uint32_t idx, const void *untrusted_data, size_t len,
                             const void *untrusted_ref, size_t ref_len, void *out, size_t out_len);

/* A delta's source check on a whole image: source_fd's first source_size bytes hash to source_sha256 (-ESTALE if
 * not, or if it is shorter). 0 for a full payload. */
int payload_source_check(const Payload *p, int source_fd);

/* Bytes of the image that are not in zero chunks: what writing it sparsely stores. */
uint64_t payload_nonzero_bytes(const Payload *p);

/* Read every chunk from payload_fd, decode and check it, check the image SHA-256 and the file size.
 * Cheap checks come first: the file size, and that every zero chunk claims the SHA-256 of zeros, before
 * anything is read or hashed. Zero chunks are not hashed one by one (only as part of the image).
 * If out_fd >= 0, also write the image there (positioned writes at idx * chunk_size); with sparse,
 * zero chunks are skipped (out_fd must then be a fresh file; it is ftruncate()d to the image size).
 * On -EILSEQ, *ret_bad_chunk (if non-NULL) is the failing chunk, or UINT32_MAX for the whole image. */
int payload_verify_data(const Payload *p, int payload_fd, int out_fd, bool sparse, uint32_t *ret_bad_chunk);
/* The same, for a full or a delta payload: a delta's references are read from source_fd (the source image,
 * whose first source_size bytes must hash to source_sha256, else -ESTALE before any chunk is read). A delta
 * without a source (source_fd < 0) gives -EDESTADDRREQ. */
int payload_verify_data_source(const Payload *p, int payload_fd, int source_fd, int out_fd, bool sparse,
                               uint32_t *ret_bad_chunk);

typedef struct PayloadBuildOptions {
        const char *version;
        const char *board;
        uint32_t chunk_size;     /* 0: PAYLOAD_CHUNK_SIZE_DEFAULT */
        unsigned threads;        /* 0: number of online CPUs */
        PayloadMethod compression; /* NONE, ZSTD (default) or ZLIB */
        int level;               /* 0: zstd 3 / zlib 6 */
        EVP_PKEY **keys;         /* signing keys (private), 1..PAYLOAD_SIGNATURES_MAX, distinct */
        size_t n_keys;
        const uint8_t (*revoked)[CAIRN_KEY_ID_SIZE];
        size_t n_revoked;
        const uint8_t *verity_root;    /* optional, SHA256_SIZE bytes */
        uint64_t verity_hash_offset;   /* 0: no layout; else a multiple of 4096 inside the image (needs verity_root) */
        const uint8_t *verity_salt;    /* verity_salt_size bytes (<= PAYLOAD_VERITY_SALT_MAX) */
        size_t verity_salt_size;
        const uint8_t *kernel_sha256;  /* optional */
        const uint8_t *initrd_sha256;  /* optional */
        const uint8_t *cmdline_sha256; /* optional */
        /* Delta payloads: source_fd >= 0 with delta set builds a delta against that image (a regular file or
         * block device). Each chunk becomes ZERO, COPY (its bytes are a whole chunk of the source), PATCH (zstd
         * with the source bytes [k·cs − window, (k+1)·cs + window) as prefix) or full, whichever is smallest. */
        bool delta;
        int source_fd;
        uint32_t window;         /* bytes of source on each side of the same-offset chunk (≤ chunk size, 4K-aligned) */
} PayloadBuildOptions;

/* Write a complete signed payload for the image read from image_fd (a regular file or block device, at most
 * PAYLOAD_IMAGE_SIZE_MAX bytes, else -EFBIG) to
 * out_fd (a fresh, empty regular file, written with positioned writes and fsync()ed). Same inputs give
 * the same bytes, whatever the thread count. ret_size (optional) receives the payload size. */
int payload_create(int image_fd, int out_fd, const PayloadBuildOptions *o, uint64_t *ret_size);

/* Hex helpers for digests. */
