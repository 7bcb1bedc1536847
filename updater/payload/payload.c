/* updater/payload/payload.c — owns the release payload format: building, parsing, signature checks, chunk decoding. */
#include "payload.h"
#include "payload-internal.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "fileio.h"
#include "hex.h"

static const char *const method_names[_PAYLOAD_METHOD_MAX] = {
        [PAYLOAD_METHOD_NONE] = "none",
        [PAYLOAD_METHOD_ZSTD] = "zstd",
        [PAYLOAD_METHOD_ZLIB] = "zlib",
        [PAYLOAD_METHOD_ZERO] = "zero",
        [PAYLOAD_METHOD_COPY] = "copy",
        [PAYLOAD_METHOD_PATCH] = "patch",
};

const char *payload_method_to_string(PayloadMethod m) {
        return (unsigned)m < _PAYLOAD_METHOD_MAX ? method_names[m] : "unknown";
}

int payload_method_from_string(const char *s) {
        for (int i = 0; i < _PAYLOAD_METHOD_MAX; i++)
                if (i <= PAYLOAD_METHOD_ZLIB && strcmp(s, method_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *payload_strerror(int r) {
        switch (-r) {
        case EBADMSG: return "malformed payload";
        case EPROTONOSUPPORT: return "unsupported payload format version";
        case E2BIG: return "a count or length exceeds the format's limit";
        case ERANGE: return "chunk table points outside the file or overlaps";
        case ENODATA: return "payload is truncated";
        case ENOKEY: return "not signed by any trusted key";
        case EKEYREJECTED: return "signature does not verify (tampered manifest or signature, or wrong key)";
        case EKEYREVOKED: return "signed only by revoked keys";
        case ENOTUNIQ: return "duplicate signatures (same key id twice)";
        case EILSEQ: return "data does not match the signed manifest (corrupt chunk or image)";
        case EFBIG: return "declared image size exceeds the format's maximum (64 GiB)";
        case ESTALE: return "the source slot is not the release this delta was made from (reference bytes differ)";
        case EDESTADDRREQ: return "a delta payload needs its source image";
        default: return strerror(r < 0 ? -r : r);
        }
}

void payload_free(Payload *p) {
        if (!p)
                return;
        free(p->revoked);
        free(p->chunks);
        free(p);
}

/* ---- reader ---- */

typedef struct Prefix {
        const uint8_t *manifest;
        uint32_t manifest_len;
        uint32_t sigblock_len;
        uint32_t format;
        uint32_t n_sigs;
        PayloadSignature sigs[PAYLOAD_SIGNATURES_MAX];
} Prefix;

static int header_parse(const uint8_t *h, size_t len, uint32_t *ret_mlen, uint32_t *ret_slen, uint32_t *ret_format) {
        if (len < PAYLOAD_HEADER_SIZE)
                return -ENODATA;
        if (memcmp(h, PAYLOAD_MAGIC, 8) != 0)
                return -EBADMSG;
        uint32_t format = get_le32(h + 8);
        if (format != PAYLOAD_FORMAT_VERSION && format != PAYLOAD_FORMAT_DELTA)
                return -EPROTONOSUPPORT;
        if (get_le32(h + 12) != PAYLOAD_HEADER_SIZE || !all_zero(h + 24, 8))
                return -EBADMSG;
        uint32_t mlen = get_le32(h + 16), slen = get_le32(h + 20);
        if (mlen > PAYLOAD_MANIFEST_MAX || slen > PAYLOAD_SIGBLOCK_MAX)
                return -E2BIG;
        if (mlen < PAYLOAD_MANIFEST_FIXED_SIZE || slen < PAYLOAD_SIGBLOCK_FIXED_SIZE)
                return -EBADMSG;
        *ret_mlen = mlen;
        *ret_slen = slen;
        if (ret_format)
                *ret_format = format;
        return 0;
}

int payload_prefix_size(const void *untrusted_header, size_t len, size_t *ret_size) {
        uint32_t mlen, slen;
        int r = header_parse(untrusted_header, len, &mlen, &slen, NULL);
        if (r < 0)
                return r;
        *ret_size = (size_t)PAYLOAD_HEADER_SIZE + mlen + slen;
        return 0;
}

/* Split the prefix into manifest bytes and signature entries. Nothing from the manifest is read here. */
static int prefix_parse(const uint8_t *buf, size_t len, Prefix *ret) {
        Prefix p = {};
        int r = header_parse(buf, len, &p.manifest_len, &p.sigblock_len, &p.format);
        if (r < 0)
                return r;
        if (len < (size_t)PAYLOAD_HEADER_SIZE + p.manifest_len + p.sigblock_len)
                return -ENODATA;
        p.manifest = buf + PAYLOAD_HEADER_SIZE;
        const uint8_t *sb = p.manifest + p.manifest_len;
        if (memcmp(sb, SIGBLOCK_MAGIC, 4) != 0)
                return -EBADMSG;
        uint32_t n = get_le32(sb + 4);
        if (n > PAYLOAD_SIGNATURES_MAX)
                return -E2BIG;
        if (p.sigblock_len != PAYLOAD_SIGBLOCK_FIXED_SIZE + n * PAYLOAD_SIG_ENTRY_SIZE)
                return -EBADMSG;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *e = sb + PAYLOAD_SIGBLOCK_FIXED_SIZE + i * PAYLOAD_SIG_ENTRY_SIZE;
                for (uint32_t j = 0; j < i; j++)
                        if (memcmp(p.sigs[j].key_id, e, CAIRN_KEY_ID_SIZE) == 0)
                                return -ENOTUNIQ;
                memcpy(p.sigs[i].key_id, e, CAIRN_KEY_ID_SIZE);
                memcpy(p.sigs[i].sig, e + CAIRN_KEY_ID_SIZE, CAIRN_SIG_SIZE);
                p.sigs[i].status = -1;
        }
        p.n_sigs = n;
        *ret = p;
        return 0;
}

/* The reference fields of a delta chunk entry (offsets 56..104): only COPY and PATCH have one; COPY's is exactly
 * the chunk's bytes (same length, same SHA-256); a PATCH reference is 1 … ref_len_max(cs) bytes. Every reference
 * is 4 KiB-aligned and lies inside the source image. */
static int ref_parse(const uint8_t *e, PayloadChunk *c, uint32_t cs, uint64_t source_size) {
        c->ref_offset = get_le64(e + 56);
        c->ref_len = get_le32(e + 64);
        memcpy(c->ref_sha256, e + 72, SHA256_SIZE);
        if (!all_zero(e + 68, 4))
                return -EBADMSG;
        if (c->method != PAYLOAD_METHOD_COPY && c->method != PAYLOAD_METHOD_PATCH)
                return all_zero(e + 56, PAYLOAD_CHUNK_ENTRY_SIZE_DELTA - 56) ? 0 : -EBADMSG;
        if (c->ref_len == 0 || c->ref_len > ref_len_max(cs) || c->ref_offset % PAYLOAD_CHUNK_SIZE_ALIGN ||
            c->ref_offset > source_size || c->ref_len > source_size - c->ref_offset)
                return -EBADMSG;
        if (c->method == PAYLOAD_METHOD_COPY &&
            (c->ref_len != c->raw_len || memcmp(c->ref_sha256, c->sha256, SHA256_SIZE) != 0))
                return -EBADMSG;
        return 0;
}

/* Parse manifest bytes (verified by the caller, or explicitly unverified) into a Payload. */
static int manifest_parse(const uint8_t *m, uint32_t mlen, uint32_t slen, uint32_t format, Payload **ret_payload) {
        if (mlen < PAYLOAD_MANIFEST_FIXED_SIZE || memcmp(m, MANIFEST_MAGIC, 4) != 0)
                return -EBADMSG;
        uint32_t mv = get_le32(m + 4);
        if (mv != PAYLOAD_FORMAT_VERSION && mv != PAYLOAD_FORMAT_DELTA)
                return -EPROTONOSUPPORT;
        if (mv != format)
                return -EBADMSG; /* the header and the signed manifest disagree about what this is */
        bool delta = mv == PAYLOAD_FORMAT_DELTA;
        size_t fixed = manifest_fixed_size(delta), esize = chunk_entry_size(delta);
        if (mlen < fixed)
                return -EBADMSG;
        uint64_t source_size = 0;
        if (delta) {
                source_size = get_le64(m + 224);
                if (source_size > PAYLOAD_IMAGE_SIZE_MAX)
                        return -EFBIG;
                if (source_size == 0 || !all_zero(m + 232, 8))
                        return -EBADMSG;
        }

        uint64_t image_size = get_le64(m + 8);
        uint32_t cs = get_le32(m + 48), count = get_le32(m + 52);
        uint64_t data_offset = get_le64(m + 56), payload_size = get_le64(m + 64);
        uint8_t compression = m[72], flags = m[73], vlen = m[74], blen = m[75];
        uint16_t nrev = get_le16(m + 76);

        if (count > PAYLOAD_CHUNKS_MAX || nrev > PAYLOAD_REVOKED_MAX || vlen > PAYLOAD_STRING_MAX ||
            blen > PAYLOAD_STRING_MAX)
                return -E2BIG;
        if (image_size > PAYLOAD_IMAGE_SIZE_MAX)
                return -EFBIG;
        if (!chunk_size_valid(cs) || count == 0 || image_size == 0 ||
            (image_size + cs - 1) / cs != count)
                return -EBADMSG;
        if (compression > PAYLOAD_METHOD_ZLIB)
                return -EBADMSG;
        if ((flags & ~(MANIFEST_FLAG_VERITY | MANIFEST_FLAG_VERITY_LAYOUT)) || !all_zero(m + 216, 8))
                return -EBADMSG;
        if (!(flags & MANIFEST_FLAG_VERITY) && !all_zero(m + 80, SHA256_SIZE))
                return -EBADMSG;
        /* The verity layout (docs/payload-format.md): only with a root hash; the hash area starts at a 4 KiB block
         * boundary inside the image, after at least one data block. */
        uint16_t salt_len = get_le16(m + 78);
        uint64_t hash_offset = get_le64(m + 208);
        if (flags & MANIFEST_FLAG_VERITY_LAYOUT) {
                if (!(flags & MANIFEST_FLAG_VERITY) || salt_len > PAYLOAD_VERITY_SALT_MAX)
                        return -EBADMSG;
                if (hash_offset < VERITY_BLOCK || hash_offset % VERITY_BLOCK || hash_offset >= image_size)
                        return -ERANGE;
        } else if (salt_len != 0 || hash_offset != 0)
                return -EBADMSG;
        if (manifest_size_v(delta, vlen, blen, nrev, salt_len, count) != mlen)
                return -EBADMSG;
        if (data_offset != (uint64_t)PAYLOAD_HEADER_SIZE + mlen + slen)
                return -EBADMSG;

        const uint8_t *v = m + fixed, *b = v + vlen, *rev = b + blen;
        const uint8_t *salt = rev + (size_t)nrev * CAIRN_KEY_ID_SIZE;
        size_t table_off = ALIGN_UP(fixed + vlen + blen + (size_t)nrev * CAIRN_KEY_ID_SIZE + salt_len, 8);
        if (!valid_string(v, vlen) || !valid_string(b, blen))
                return -EBADMSG;
        if (!all_zero(salt + salt_len, m + table_off - (salt + salt_len)))
                return -EBADMSG;

        _cleanup_payload_ Payload *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->chunks = calloc(count, sizeof *p->chunks);
        if (!p->chunks)
                return -ENOMEM;
        if (nrev > 0) {
                p->revoked = calloc(nrev, CAIRN_KEY_ID_SIZE);
                if (!p->revoked)
                        return -ENOMEM;
                memcpy(p->revoked, rev, (size_t)nrev * CAIRN_KEY_ID_SIZE);
        }

        uint64_t at = data_offset;
        int r;
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *e = m + table_off + (size_t)i * esize;
                PayloadChunk *c = &p->chunks[i];
                c->offset = get_le64(e);
                c->stored_len = get_le32(e + 8);
                c->raw_len = get_le32(e + 12);
                c->method = e[16];
                memcpy(c->sha256, e + 24, SHA256_SIZE);
                uint64_t want_raw = i + 1 < count ? cs : image_size - (uint64_t)(count - 1) * cs;
                if (c->raw_len != want_raw || c->method >= _PAYLOAD_METHOD_MAX || !all_zero(e + 17, 7))
                        return -EBADMSG;
                bool ok;
                switch (c->method) {
                case PAYLOAD_METHOD_NONE: ok = c->stored_len == c->raw_len; break;
                case PAYLOAD_METHOD_ZERO:
                case PAYLOAD_METHOD_COPY: ok = c->stored_len == 0; break;
                default: ok = c->stored_len >= 1 && c->stored_len <= c->raw_len; break;
                }
                if (!ok)
                        return -EBADMSG;
                r = delta ? ref_parse(e, c, cs, source_size) : (c->method <= PAYLOAD_METHOD_ZERO ? 0 : -EBADMSG);
                if (r < 0)
                        return r;
                /* Chunks are stored in order, back to back: anything else points outside or overlaps. */
                if (c->offset != at || c->offset + c->stored_len > payload_size)
                        return -ERANGE;
                at += c->stored_len;
        }
        if (at != payload_size)
                return -ERANGE;

        p->manifest_version = get_le32(m + 4);
        memcpy(p->version, v, vlen);
        memcpy(p->board, b, blen);
        p->image_size = image_size;
        memcpy(p->image_sha256, m + 16, SHA256_SIZE);
        p->chunk_size = cs;
        p->chunk_count = count;
        p->compression = compression;
        p->data_offset = data_offset;
        p->payload_size = payload_size;
        p->has_verity_root = flags & MANIFEST_FLAG_VERITY;
        memcpy(p->verity_root, m + 80, SHA256_SIZE);
        p->has_verity_layout = flags & MANIFEST_FLAG_VERITY_LAYOUT;
        p->verity_hash_offset = hash_offset;
        p->verity_salt_size = salt_len;
        memcpy(p->verity_salt, salt, salt_len);
        memcpy(p->kernel_sha256, m + 112, SHA256_SIZE);
        memcpy(p->initrd_sha256, m + 144, SHA256_SIZE);
        memcpy(p->cmdline_sha256, m + 176, SHA256_SIZE);
        p->n_revoked = nrev;
        p->manifest_len = mlen;
        p->sigblock_len = slen;
        p->is_delta = delta;
        p->source_size = source_size;
        if (delta)
                memcpy(p->source_sha256, m + 240, SHA256_SIZE);
        *ret_payload = TAKE_PTR(p);
        return 0;
}

static bool payload_revokes(const Payload *p, const uint8_t id[CAIRN_KEY_ID_SIZE]) {
        for (uint32_t i = 0; i < p->n_revoked; i++)
                if (memcmp(p->revoked[i], id, CAIRN_KEY_ID_SIZE) == 0)
                        return true;
        return false;
}

/* Check each signature against the trusted key with its id (key id first, then the crypto).
 * Sets statuses; returns the number of good ones, or -EKEYREJECTED if a trusted key's signature fails. */
static int signatures_check(PayloadSignature *sigs, uint32_t n, const uint8_t *manifest, uint32_t mlen,
                            const CairnKeyring *kr) {
        int good = 0, bad = 0;
        for (uint32_t i = 0; i < n; i++) {
                const CairnKey *k = keyring_find(kr, sigs[i].key_id);
                if (!k) {
                        sigs[i].status = -1;
                        continue;
                }
                int r = verify_ed25519(k->pkey, manifest, mlen, sigs[i].sig);
                if (r == -EKEYREJECTED) {
                        sigs[i].status = 0;
                        bad++;
                } else if (r < 0)
                        return r;
                else {
                        sigs[i].status = 1;
                        good++;
                }
        }
        return bad ? -EKEYREJECTED : good;
}

int payload_load(const void *untrusted_prefix, size_t len, const CairnKeyring *kr, Payload **ret_payload) {
        Prefix pf;
        int r = prefix_parse(untrusted_prefix, len, &pf);
        if (r < 0)
                return r;
        r = signatures_check(pf.sigs, pf.n_sigs, pf.manifest, pf.manifest_len, kr);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOKEY;

        /* The manifest bytes are now signed by a trusted key; parse them. */
        const uint8_t *manifest = pf.manifest;
        _cleanup_payload_ Payload *p = NULL;
        r = manifest_parse(manifest, pf.manifest_len, pf.sigblock_len, pf.format, &p);
        if (r < 0)
                return r;
        int usable = 0;
        for (uint32_t i = 0; i < pf.n_sigs; i++) {
                if (pf.sigs[i].status != 1)
                        continue;
                if (keyring_is_revoked(kr, pf.sigs[i].key_id) || payload_revokes(p, pf.sigs[i].key_id))
                        pf.sigs[i].status = -2;
                else
                        usable++;
        }
        if (usable == 0)
                return -EKEYREVOKED;
        memcpy(p->signatures, pf.sigs, sizeof pf.sigs);
        p->n_signatures = pf.n_sigs;
        p->verified = true;
        *ret_payload = TAKE_PTR(p);
        return 0;
}

int payload_parse_unverified(const void *untrusted_prefix, size_t len, Payload **ret_payload) {
        Prefix pf;
        int r = prefix_parse(untrusted_prefix, len, &pf);
        if (r < 0)
                return r;
        _cleanup_payload_ Payload *p = NULL;
        r = manifest_parse(pf.manifest, pf.manifest_len, pf.sigblock_len, pf.format, &p);
        if (r < 0)
                return r;
        memcpy(p->signatures, pf.sigs, sizeof pf.sigs);
        p->n_signatures = pf.n_sigs;
        p->verified = false;
        *ret_payload = TAKE_PTR(p);
        return 0;
}

int payload_check_signatures(Payload *p, const void *untrusted_prefix, size_t len, const CairnKeyring *kr) {
        Prefix pf;
        int r = prefix_parse(untrusted_prefix, len, &pf);
        if (r < 0)
                return r;
        if (pf.n_sigs != p->n_signatures)
                return -EINVAL;
        r = signatures_check(pf.sigs, pf.n_sigs, pf.manifest, pf.manifest_len, kr);
        if (r < 0 && r != -EKEYREJECTED)
                return r;
        for (uint32_t i = 0; i < pf.n_sigs; i++) {
                if (pf.sigs[i].status == 1 &&
                    (keyring_is_revoked(kr, pf.sigs[i].key_id) || payload_revokes(p, pf.sigs[i].key_id)))
                        pf.sigs[i].status = -2;
                p->signatures[i].status = pf.sigs[i].status;
        }
        return 0;
}

int payload_read_prefix(int fd, uint8_t **ret_buf, size_t *ret_len) {
        uint8_t h[PAYLOAD_HEADER_SIZE];
        ssize_t n = pread(fd, h, sizeof h, 0);
        if (n < 0)
                return negative_errno();
        size_t size;
        int r = payload_prefix_size(h, (size_t)n, &size);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        r = pread_full(fd, buf, size, 0);
        if (r == -EIO)
                return -ENODATA; /* pread_full's end-of-file */
        if (r < 0)
                return r;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = size;
        return 0;
}

static int check_file_size(int fd, const Payload *p) {
        uint64_t size;
        bool regular;
        int r = fd_size(fd, &size, &regular);
        if (r < 0)
                return r;
        if (size < p->payload_size)
                return -ENODATA;
        if (regular && size > p->payload_size)
                return -EBADMSG; /* trailing bytes no signature covers */
        return 0;
}

int payload_load_fd(int fd, const CairnKeyring *kr, Payload **ret_payload) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r = payload_read_prefix(fd, &buf, &len);
        if (r < 0)
                return r;
        _cleanup_payload_ Payload *p = NULL;
        r = payload_load(buf, len, kr, &p);
        if (r < 0)
                return r;
        r = check_file_size(fd, p);
        if (r < 0)
                return r;
        *ret_payload = TAKE_PTR(p);
        return 0;
}

int payload_parse_unverified_fd(int fd, Payload **ret_payload) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r = payload_read_prefix(fd, &buf, &len);
        if (r < 0)
                return r;
        return payload_parse_unverified(buf, len, ret_payload);
}

/* ---- chunks ---- */

int payload_chunk_decode(const Payload *p, uint32_t idx, const void *untrusted_data, size_t len, void *out,
                         size_t out_len) {
        if (idx >= p->chunk_count)
                return -EINVAL;
        const PayloadChunk *c = &p->chunks[idx];
        if (len != c->stored_len || out_len != c->raw_len)
                return -EINVAL;
        switch (c->method) {
        case PAYLOAD_METHOD_NONE:
                memcpy(out, untrusted_data, len);
                break;
        case PAYLOAD_METHOD_ZERO:
                memset(out, 0, out_len);
                break;
        case PAYLOAD_METHOD_ZSTD: {
                size_t n = ZSTD_decompress(out, out_len, untrusted_data, len);
                if (ZSTD_isError(n) || n != out_len)
                        return -EILSEQ;
                break;
        }
        case PAYLOAD_METHOD_COPY:
        case PAYLOAD_METHOD_PATCH:
                return -EDESTADDRREQ; /* needs its reference: payload_chunk_decode_ref() */
        case PAYLOAD_METHOD_ZLIB: {
                uLongf dlen = out_len;
                uLong slen = len;
                if (uncompress2(out, &dlen, untrusted_data, &slen) != Z_OK || dlen != out_len || slen != len)
                        return -EILSEQ;
                break;
        }
        default:
                return -EBADMSG;
        }
        uint8_t md[SHA256_SIZE];
        int r = sha256(out, out_len, md);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(md, c->sha256, SHA256_SIZE) != 0)
                return -EILSEQ;
        return 0;
}

uint64_t payload_nonzero_bytes(const Payload *p) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < p->chunk_count; i++)
                if (p->chunks[i].method != PAYLOAD_METHOD_ZERO)
                        n += p->chunks[i].raw_len;
        return n;
}

/* Every zero chunk must claim the SHA-256 of raw_len zero bytes: checked with one hash per distinct length
 * (the full chunk size and a short last chunk) before any chunk is read. raw must hold chunk_size zeros. */
static int zero_chunks_check(const Payload *p, const uint8_t *zeros, uint32_t *ret_bad_chunk) {
        uint8_t full[SHA256_SIZE], last[SHA256_SIZE];
        bool have_full = false, have_last = false;
        for (uint32_t i = 0; i < p->chunk_count; i++) {
                const PayloadChunk *c = &p->chunks[i];
                if (c->method != PAYLOAD_METHOD_ZERO)
                        continue;
                bool is_full = c->raw_len == p->chunk_size;
                uint8_t *want = is_full ? full : last;
                bool *have = is_full ? &have_full : &have_last;
                if (!*have) {
                        int r = sha256(zeros, c->raw_len, want);
                        if (r < 0)
                                return r;
                        *have = true;
                }
                if (CRYPTO_memcmp(want, c->sha256, SHA256_SIZE) != 0) {
                        if (ret_bad_chunk)
                                *ret_bad_chunk = i;
                        return -EILSEQ;
                }
        }
        return 0;
}

int payload_verify_data(const Payload *p, int payload_fd, int out_fd, bool sparse, uint32_t *ret_bad_chunk) {
        return payload_verify_data_source(p, payload_fd, -1, out_fd, sparse, ret_bad_chunk);
}

int payload_verify_data_source(const Payload *p, int payload_fd, int source_fd, int out_fd, bool sparse,
                               uint32_t *ret_bad_chunk) {
        if (p->is_delta && source_fd < 0)
                return -EDESTADDRREQ;
        int r = check_file_size(payload_fd, p);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *stored = malloc(p->chunk_size), *raw = calloc(1, p->chunk_size);
        _cleanup_free_ uint8_t *ref = p->is_delta ? malloc(ref_len_max(p->chunk_size)) : NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!stored || !raw || !ctx || (p->is_delta && !ref))
                return -ENOMEM;
        r = zero_chunks_check(p, raw, ret_bad_chunk);
        if (r < 0)
                return r;
        if (p->is_delta) {
                r = payload_source_check(p, source_fd);
                if (r == -ESTALE && ret_bad_chunk)
                        *ret_bad_chunk = UINT32_MAX;
                if (r < 0)
                        return r;
        }
        if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -EIO;
        if (out_fd >= 0 && sparse && ftruncate(out_fd, (off_t)p->image_size) < 0)
                return negative_errno();
        for (uint32_t i = 0; i < p->chunk_count; i++) {
                const PayloadChunk *c = &p->chunks[i];
                if (c->method == PAYLOAD_METHOD_ZERO) {
                        memset(raw, 0, c->raw_len); /* its hash was checked by zero_chunks_check() */
                } else {
                        r = c->stored_len ? pread_full(payload_fd, stored, c->stored_len, c->offset) : 0;
                        if (r == -EIO)
                                return -ENODATA;
                        if (r < 0)
                                return r;
                        if (c->ref_len) {
                                r = pread_full(source_fd, ref, c->ref_len, c->ref_offset);
                                if (r == -EIO)
                                        return -ESTALE; /* the source is shorter than the delta's source */
                                if (r < 0)
                                        return r;
                        }
                        r = payload_chunk_decode_ref(p, i, stored, c->stored_len, ref, c->ref_len, raw, c->raw_len);
                        if (r == -ESTALE && ret_bad_chunk)
                                *ret_bad_chunk = i;
                        if (r == -EILSEQ && ret_bad_chunk)
                                *ret_bad_chunk = i;
                        if (r < 0)
                                return r;
                }
                if (!EVP_DigestUpdate(ctx, raw, c->raw_len))
                        return -EIO;
                if (out_fd >= 0 && !(sparse && c->method == PAYLOAD_METHOD_ZERO)) {
                        r = pwrite_full(out_fd, raw, c->raw_len, (uint64_t)i * p->chunk_size);
                        if (r < 0)
                                return r;
                }
        }
        uint8_t md[SHA256_SIZE];
        if (!EVP_DigestFinal_ex(ctx, md, NULL))
                return -EIO;
        if (CRYPTO_memcmp(md, p->image_sha256, SHA256_SIZE) != 0) {
                if (ret_bad_chunk)
                        *ret_bad_chunk = UINT32_MAX;
                return -EILSEQ;
        }
        return 0;
}
