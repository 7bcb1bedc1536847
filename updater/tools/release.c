/* updater/tools/release.c — cairn-release: create, verify, inspect and extract signed release payloads. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "tpm/bootdigest.h"
#include "fileio.h"
#include "log.h"
#include "outfile.h"
#include "parse.h"
#include "payload/payload.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairn-release create --image IMG --version V --board B --key K.key [--key K2.key]...\n"
                "                            [--chunk-size N[K|M]] [--threads N] [--compression zstd|zlib|none]\n"
                "                            [--level N] [--revoke KEYID]... [--verity-root-hash HEX\n"
                "                            [--verity-hash-offset BYTES --verity-salt HEX|-]]\n"
                "                            [--kernel-sha256 HEX] [--initrd-sha256 HEX] [--cmdline-sha256 HEX]\n"
                "                            -o OUT.cairn\n"
                "       cairn-release delta --from OLD.cairn|OLD.img --to NEW.cairn|NEW.img --key K.key [--key K2.key]...\n"
                "                           [--keys DIR] [--window N[K|M]] [--level N] [--threads N]\n"
                "                           [--version V --board B --chunk-size N (when --to is an image)] -o OUT.cairn\n"
                "       cairn-release verify --keys DIR [--source OLD.img|OLD.cairn] PAYLOAD\n"
                "       cairn-release inspect [--json] [--keys DIR] PAYLOAD\n"
                "       cairn-release extract --keys DIR [--source OLD.img|OLD.cairn] PAYLOAD -o IMG\n");
}

enum {
        OPT_IMAGE = 256, OPT_VERSION, OPT_BOARD, OPT_KEY, OPT_KEYS, OPT_CHUNK, OPT_THREADS, OPT_COMP, OPT_LEVEL,
        OPT_REVOKE, OPT_VERITY, OPT_VERITY_OFFSET, OPT_VERITY_SALT, OPT_KERNEL, OPT_INITRD, OPT_CMDLINE, OPT_JSON,
        OPT_FROM, OPT_TO, OPT_WINDOW, OPT_SOURCE,
};

static const struct option options[] = {
        {"image", required_argument, NULL, OPT_IMAGE},
        {"version", required_argument, NULL, OPT_VERSION},
        {"board", required_argument, NULL, OPT_BOARD},
        {"key", required_argument, NULL, OPT_KEY},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"compression", required_argument, NULL, OPT_COMP},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"revoke", required_argument, NULL, OPT_REVOKE},
        {"verity-root-hash", required_argument, NULL, OPT_VERITY},
        {"verity-hash-offset", required_argument, NULL, OPT_VERITY_OFFSET},
        {"verity-salt", required_argument, NULL, OPT_VERITY_SALT},
        {"kernel-sha256", required_argument, NULL, OPT_KERNEL},
        {"initrd-sha256", required_argument, NULL, OPT_INITRD},
        {"cmdline-sha256", required_argument, NULL, OPT_CMDLINE},
        {"json", no_argument, NULL, OPT_JSON},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {},
};

typedef struct Args {
        const char *image, *version, *board, *keys_dir, *output, *payload, *from, *to, *source;
        uint64_t window;
        bool has_window;
        const char *key_paths[PAYLOAD_SIGNATURES_MAX + 1];
        size_t n_key_paths;
        uint8_t revoked[PAYLOAD_REVOKED_MAX][CAIRN_KEY_ID_SIZE];
        size_t n_revoked;
        uint8_t verity[SHA256_SIZE], kernel[SHA256_SIZE], initrd[SHA256_SIZE], cmdline[SHA256_SIZE];
        bool has_verity, has_kernel, has_initrd, has_cmdline, json, has_verity_salt;
        uint64_t verity_offset;
        uint8_t verity_salt[PAYLOAD_VERITY_SALT_MAX];
        size_t verity_salt_size;
        uint64_t chunk_size;
        unsigned threads;
        int compression, level;
} Args;

static int parse_digest(const char *opt, const char *s, uint8_t out[SHA256_SIZE], bool *has) {
        if (hex_decode(s, out, SHA256_SIZE) < 0)
                return log_error(-EINVAL, "--%s needs 64 hex digits, got \"%s\"", opt, s);
        *has = true;
        return 0;
}

/* Parse the options of a verb; returns 0, or 2 for a usage error (already reported). */
static int parse_args(int argc, char **argv, Args *a) {
        int c;
        a->compression = PAYLOAD_METHOD_ZSTD;
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_IMAGE: a->image = optarg; break;
                case OPT_VERSION: a->version = optarg; break;
                case OPT_BOARD: a->board = optarg; break;
                case OPT_KEYS: a->keys_dir = optarg; break;
                case OPT_JSON: a->json = true; break;
                case OPT_FROM: a->from = optarg; break;
                case OPT_TO: a->to = optarg; break;
                case OPT_SOURCE: a->source = optarg; break;
                case OPT_WINDOW:
                        if (parse_size_range(optarg, 0, PAYLOAD_CHUNK_SIZE_MAX, &a->window) < 0 ||
                            a->window % PAYLOAD_CHUNK_SIZE_ALIGN) {
                                log_error(-EINVAL, "--window \"%s\": must be a multiple of 4K, at most the chunk size",
                                          optarg);
                                return 2;
                        }
                        a->has_window = true;
                        break;
                case 'o': a->output = optarg; break;
                case OPT_KEY:
                        if (a->n_key_paths >= PAYLOAD_SIGNATURES_MAX) {
                                log_error(-E2BIG, "at most %d --key options", PAYLOAD_SIGNATURES_MAX);
                                return 2;
                        }
                        a->key_paths[a->n_key_paths++] = optarg;
                        break;
                case OPT_CHUNK:
                        if (parse_size_range(optarg, PAYLOAD_CHUNK_SIZE_MIN, PAYLOAD_CHUNK_SIZE_MAX, &a->chunk_size) < 0 ||
                            a->chunk_size % PAYLOAD_CHUNK_SIZE_ALIGN) {
                                log_error(-EINVAL, "--chunk-size \"%s\": must be a multiple of 4K between 4K and 64M",
                                          optarg);
                                return 2;
                        }
                        break;
                case OPT_THREADS:
                        if (parse_unsigned_range(optarg, 1, 64, &a->threads) < 0) {
                                log_error(-EINVAL, "--threads \"%s\": must be 1..64", optarg);
                                return 2;
                        }
                        break;
                case OPT_LEVEL: {
                        unsigned v;
                        if (parse_unsigned_range(optarg, 1, 19, &v) < 0) {
                                log_error(-EINVAL, "--level \"%s\": must be 1..19", optarg);
                                return 2;
                        }
                        a->level = (int)v;
                        break;
                }
                case OPT_COMP:
                        a->compression = payload_method_from_string(optarg);
                        if (a->compression < 0) {
                                log_error(-EINVAL, "--compression \"%s\": must be zstd, zlib or none", optarg);
                                return 2;
                        }
                        break;
                case OPT_REVOKE:
                        if (a->n_revoked >= PAYLOAD_REVOKED_MAX) {
                                log_error(-E2BIG, "at most %d --revoke options", PAYLOAD_REVOKED_MAX);
                                return 2;
                        }
                        if (key_id_from_hex(optarg, a->revoked[a->n_revoked]) < 0) {
                                log_error(-EINVAL, "--revoke \"%s\": a key id is 16 hex digits", optarg);
                                return 2;
                        }
                        a->n_revoked++;
                        break;
                case OPT_VERITY:
                        if (parse_digest("verity-root-hash", optarg, a->verity, &a->has_verity) < 0)
                                return 2;
                        break;
                case OPT_VERITY_OFFSET:
                        if (parse_u64_range(optarg, 4096, PAYLOAD_IMAGE_SIZE_MAX, &a->verity_offset) < 0 ||
                            a->verity_offset % 4096) {
                                log_error(-EINVAL, "--verity-hash-offset \"%s\": a multiple of 4096 inside the image", optarg);
                                return 2;
                        }
                        break;
                case OPT_VERITY_SALT: {
                        size_t n = strlen(optarg);
                        if (strcmp(optarg, "-") == 0)
                                n = 0;
                        else if (n % 2 || n / 2 > PAYLOAD_VERITY_SALT_MAX || hex_decode(optarg, a->verity_salt, n / 2) < 0) {
                                log_error(-EINVAL, "--verity-salt: expected up to %d bytes in hex (\"-\": none)",
                                          PAYLOAD_VERITY_SALT_MAX);
                                return 2;
                        }
                        a->verity_salt_size = n / 2;
                        a->has_verity_salt = true;
                        break;
                }
                case OPT_KERNEL:
                        if (parse_digest("kernel-sha256", optarg, a->kernel, &a->has_kernel) < 0)
                                return 2;
                        break;
                case OPT_INITRD:
                        if (parse_digest("initrd-sha256", optarg, a->initrd, &a->has_initrd) < 0)
                                return 2;
                        break;
                case OPT_CMDLINE:
                        if (parse_digest("cmdline-sha256", optarg, a->cmdline, &a->has_cmdline) < 0)
                                return 2;
                        break;
                case 'h': usage(stdout); exit(0);
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc)
                a->payload = argv[optind++];
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        return 0;
}

static int load_keyring(const char *dir, CairnKeyring *kr) {
        _cleanup_free_ char *bad = NULL;
        int r = keyring_load_dir(kr, dir, &bad);
        if (r == -ENOKEY)
                return log_error(r, "no trusted keys (*.pub) in \"%s\"", dir);
        if (r == -EBADMSG && bad)
                return log_error(r, "trusted key \"%s/%s\" is not a PEM public key", dir, bad);
        if (r == -EKEYREJECTED && bad)
                return log_error(r, "trusted key \"%s/%s\" is not an Ed25519 key", dir, bad);
        if (r == -EBADFD && bad)
                return log_error(r, "trusted key \"%s/%s\" is not a regular file", dir, bad);
        if (r < 0 && bad)
                return log_error_errno(r, "Failed to load trusted key \"%s/%s\"", dir, bad);
        if (r < 0)
                return log_error_errno(r, "Failed to read key directory \"%s\"", dir);
        return 0;
}

/* Open an input (payload or image) without blocking: a FIFO or a device with no data must not hang open().
 * Only a regular file or a block device (both have a size and allow positioned reads) is accepted. */
static int open_input(const char *what, const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s \"%s\"", what, path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat %s \"%s\"", what, path);
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return log_error(-EBADFD, "%s \"%s\" is not a regular file or block device", what, path);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return log_error_errno(negative_errno(), "Failed to set up %s \"%s\"", what, path);
        return TAKE_FD(fd);
}

/* An output (-o) is written to a temp file beside it and renamed into place, so it must not be something a
 * rename would silently replace instead of writing into: a symlink (-o /dev/stdout), a device, a FIFO. */
static int check_output(const char *path) {
        const char *what = NULL;
        int r = outfile_check_target(path, &what);
        if (r == -EEXIST)
                return log_error(r, "output \"%s\" is %s: refusing to replace it (give the path of a regular file or a new one)",
                                 path, what);
        if (r < 0)
                return log_error_errno(r, "Failed to check output \"%s\"", path);
        return 0;
}

static int make_temp(const char *output, char **ret_tmp, int *ret_slot) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmpXXXXXX", output) < 0)
                return log_error_errno(-ENOMEM, "Failed to allocate");
        int fd = outfile_mkostemp(tmp, O_CLOEXEC, ret_slot);
        if (fd < 0)
                return log_error_errno(fd, "Failed to create a temporary file next to \"%s\"", output);
        *ret_tmp = TAKE_PTR(tmp);
        return fd;
}

/* The end of every -o output: when r >= 0 the temp file becomes output (mode 0644, fsynced with its directory),
 * otherwise it is removed; either way its signal-cleanup slot is freed. Returns r, or the error of this step. */
static int finish_output(int r, int fd, const char *tmp, const char *output, int slot) {
        if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
                r = log_error_errno(negative_errno(), "Failed to write \"%s\"", tmp);
        if (r >= 0 && rename(tmp, output) < 0)
                r = log_error_errno(negative_errno(), "Failed to rename \"%s\" to \"%s\"", tmp, output);
        if (r >= 0)
                (void)fsync_parent_dir(output);
        else if (tmp)
                unlink(tmp);
        outfile_forget(slot);
        return r;
}

static int open_image_or_payload(const char *what, const char *path, const CairnKeyring *kr, bool have_keys,
                                 Payload **ret_p);

static int report_payload_error(int r, const char *path, uint32_t bad_chunk) {
        if (r == -ESTALE && bad_chunk == UINT32_MAX)
                return log_error(r, "\"%s\": the source is not the image this delta was made from", path);
        if (r == -ESTALE)
                return log_error(r, "\"%s\": chunk %u: the source's reference bytes differ from the delta's source", path,
                                 bad_chunk);
        if (r == -EILSEQ && bad_chunk == UINT32_MAX)
                return log_error(r, "\"%s\": the image's SHA-256 does not match the signed manifest", path);
        if (r == -EILSEQ)
                return log_error(r, "\"%s\": chunk %u does not match the signed manifest (corrupt or tampered data)",
                                 path, bad_chunk);
        if (r == -EFBIG)
                return log_error(r, "\"%s\": declared image size exceeds the format's maximum of %llu bytes (64 GiB)",
                                 path, (unsigned long long)PAYLOAD_IMAGE_SIZE_MAX);
        return log_error(r, "\"%s\": %s", path, payload_strerror(r));
}

static int verb_create(Args *a) {
        if (!a->image || !a->version || !a->board || !a->output || a->n_key_paths == 0 || a->payload) {
                usage(stderr);
                return 2;
        }
        if ((a->verity_offset || a->has_verity_salt) && !(a->verity_offset && a->has_verity_salt && a->has_verity)) {
                log_error(-EINVAL, "--verity-hash-offset and --verity-salt go together, with --verity-root-hash");
                return 2;
        }
        EVP_PKEY *keys[PAYLOAD_SIGNATURES_MAX] = {};
        int r = 0;
        size_t n = 0;
        for (; n < a->n_key_paths; n++) {
                r = key_load_private(a->key_paths[n], &keys[n]);
                if (r == -EBADMSG)
                        log_error(r, "signing key \"%s\" is not a PEM private key", a->key_paths[n]);
                else if (r == -EKEYREJECTED)
                        log_error(r, "signing key \"%s\" is not an Ed25519 key", a->key_paths[n]);
                else if (r == -EBADFD)
                        log_error(r, "signing key \"%s\" is not a regular file", a->key_paths[n]);
                else if (r < 0)
                        log_error_errno(r, "Failed to load signing key \"%s\"", a->key_paths[n]);
                if (r < 0)
                        break;
        }
        _cleanup_close_ int img = r < 0 ? -1 : open_input("image", a->image);
        if (r >= 0 && img < 0)
                r = img;
        if (r >= 0)
                r = check_output(a->output);

        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        int slot = -1;
        if (r >= 0) {
                out = make_temp(a->output, &tmp, &slot);
                if (out < 0)
                        r = out;
        }
        /* Boot digests for PCR prediction (tpm/bootdigest.h), read from the image itself unless given. */
        if (r >= 0 && !(a->has_kernel && a->has_initrd && a->has_cmdline)) {
                uint8_t k[SHA256_SIZE], i[SHA256_SIZE], c[SHA256_SIZE];
                char why[200];
                r = usr_boot_digests(a->image, 0, k, i, c, why, sizeof why);
                /* No ext4, or no kernel/initrd (a test image, not bootable): the digests stay absent (zero). */
                bool absent = r == -ENOENT || r == -EMEDIUMTYPE;
                if (!absent && r < 0)
                        log_error(r, "image \"%s\": %s (or pass --kernel-sha256, --initrd-sha256 and --cmdline-sha256)",
                                  a->image, why);
                if (absent)
                        r = 0;
                else if (r >= 0) {
                        if (!a->has_kernel)
                                memcpy(a->kernel, k, SHA256_SIZE), a->has_kernel = true;
                        if (!a->has_initrd)
                                memcpy(a->initrd, i, SHA256_SIZE), a->has_initrd = true;
                        if (!a->has_cmdline)
                                memcpy(a->cmdline, c, SHA256_SIZE), a->has_cmdline = true;
                }
        }
        uint64_t size = 0;
        if (r >= 0) {
                PayloadBuildOptions o = {
                        .version = a->version,
                        .board = a->board,
                        .chunk_size = (uint32_t)a->chunk_size,
                        .threads = a->threads,
                        .compression = a->compression,
                        .level = a->level,
                        .keys = keys,
                        .n_keys = a->n_key_paths,
                        .revoked = (const uint8_t(*)[CAIRN_KEY_ID_SIZE])a->revoked,
                        .n_revoked = a->n_revoked,
                        .verity_root = a->has_verity ? a->verity : NULL,
                        .verity_hash_offset = a->verity_offset,
                        .verity_salt = a->verity_salt,
                        .verity_salt_size = a->verity_salt_size,
                        .kernel_sha256 = a->has_kernel ? a->kernel : NULL,
                        .initrd_sha256 = a->has_initrd ? a->initrd : NULL,
                        .cmdline_sha256 = a->has_cmdline ? a->cmdline : NULL,
                };
                r = payload_create(img, out, &o, &size);
                if (r == -ENOTUNIQ)
                        log_error(r, "the same signing key was given twice");
                else if (r == -EINVAL)
                        log_error(r, "invalid --version \"%s\" or --board \"%s\": 1-64 printable characters, no spaces",
                                  a->version, a->board);
                else if (r == -ERANGE)
                        log_error(r, "--verity-hash-offset %llu lies past the end of image \"%s\"",
                                  (unsigned long long)a->verity_offset, a->image);
                else if (r == -ENODATA)
                        log_error(r, "image \"%s\" is empty or shrank while being read", a->image);
                else if (r == -EFBIG)
                        log_error(r, "image \"%s\" is larger than the format's maximum of %llu bytes (64 GiB)",
                                  a->image, (unsigned long long)PAYLOAD_IMAGE_SIZE_MAX);
                else if (r == -E2BIG)
                        log_error(r, "image \"%s\" needs more than %u chunks; use a larger --chunk-size", a->image,
                                  PAYLOAD_CHUNKS_MAX);
                else if (r < 0)
                        log_error_errno(r, "Failed to create payload \"%s\" from \"%s\"", a->output, a->image);
        }
        r = finish_output(r, out, tmp, a->output, slot);
        for (size_t i = 0; i < n; i++)
                EVP_PKEY_free(keys[i]);
        if (r < 0)
                return 1;
        printf("%s: %llu bytes\n", a->output, (unsigned long long)size);
        return 0;
}

static int open_payload(const char *path) {
        return open_input("payload", path);
}

/* Before anything is hashed: will the image fit the target's filesystem? A sparse extract stores only the
 * non-zero chunks; the file's size must also be settable (the filesystem's maximum file size). */
static int check_target_space(const Payload *p, int out, const char *output) {
        struct statvfs vfs;
        if (fstatvfs(out, &vfs) < 0)
                return log_error_errno(negative_errno(), "Failed to check free space for \"%s\"", output);
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize, need = payload_nonzero_bytes(p);
        if (need > avail)
                return log_error(-ENOSPC, "output \"%s\": the image needs %" PRIu64 " bytes of data, its filesystem has %" PRIu64
                                 " free", output, need, avail);
        if (ftruncate(out, (off_t)p->image_size) < 0)
                return log_error_errno(negative_errno(), "output \"%s\": cannot hold an image of %" PRIu64 " bytes",
                                       output, p->image_size);
        return 0;
}

/* verify and extract: signatures first, then every chunk, then the image digest. */
static int verb_verify_extract(Args *a, bool extract) {
        if (!a->keys_dir || !a->payload || (extract && !a->output) || (!extract && a->output)) {
                usage(stderr);
                return 2;
        }
        CairnKeyring kr;
        keyring_init(&kr);
        int r = load_keyring(a->keys_dir, &kr);
        if (r >= 0 && extract)
                r = check_output(a->output);
        _cleanup_close_ int fd = r < 0 ? -1 : open_payload(a->payload);
        _cleanup_payload_ Payload *p = NULL;
        if (fd >= 0) {
                r = payload_load_fd(fd, &kr, &p);
                if (r < 0)
                        report_payload_error(r, a->payload, 0);
        } else
                r = -EBADF;
        keyring_done(&kr);
        if (r < 0)
                return 1;

        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        int slot = -1;
        if (extract) {
                out = make_temp(a->output, &tmp, &slot);
                if (out < 0)
                        return 1;
                r = check_target_space(p, out, a->output);
        }
        uint32_t bad = 0;
        _cleanup_close_ int src = -1;
        if (r >= 0 && a->source) {
                CairnKeyring skr;
                keyring_init(&skr);
                r = load_keyring(a->keys_dir, &skr);
                if (r >= 0)
                        src = open_image_or_payload("--source", a->source, &skr, true, NULL);
                keyring_done(&skr);
                if (r >= 0 && src < 0)
                        r = src;
        } else if (r >= 0 && p->is_delta)
                r = log_error(-EDESTADDRREQ, "\"%s\" is a delta payload: give its source with --source OLD.img|OLD.cairn",
                              a->payload);
        if (r >= 0) {
                r = payload_verify_data_source(p, fd, src, out, true, &bad);
                if (r < 0)
                        report_payload_error(r, a->payload, bad);
        }
        if (extract)
                r = finish_output(r, out, tmp, a->output, slot);
        if (r < 0)
                return 1;
        char hex[2 * SHA256_SIZE + 1];
        printf("%s: good: version %s, board %s, image %llu bytes, sha256 %s\n", a->payload, p->version, p->board,
               (unsigned long long)p->image_size, hex_encode(p->image_sha256, SHA256_SIZE, hex));
        return 0;
}

static void json_string(const char *s) {
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        putchar('\\');
                putchar(*s);
        }
        putchar('"');
}

static const char *sig_status(int status, bool checked) {
        if (!checked)
                return "not checked";
        switch (status) {
        case 1: return "good";
        case 0: return "BAD";
        case -2: return "revoked";
        default: return "unknown key";
        }
}

static int verb_inspect(Args *a) {
        if (!a->payload || a->output) {
                usage(stderr);
                return 2;
        }
        CairnKeyring kr;
        keyring_init(&kr);
        if (a->keys_dir && load_keyring(a->keys_dir, &kr) < 0)
                return 1;
        _cleanup_close_ int fd = open_payload(a->payload);
        if (fd < 0) {
                keyring_done(&kr);
                return 1;
        }
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        _cleanup_payload_ Payload *p = NULL;
        int r = payload_read_prefix(fd, &buf, &len);
        if (r >= 0)
                r = payload_parse_unverified(buf, len, &p);
        if (r < 0) {
                report_payload_error(r, a->payload, 0);
                keyring_done(&kr);
                return 1;
        }
        int verdict = 0;
        if (a->keys_dir) {
                _cleanup_payload_ Payload *v = NULL;
                verdict = payload_load(buf, len, &kr, &v);
                r = payload_check_signatures(p, buf, len, &kr);
                if (r < 0)
                        verdict = r;
        }
        keyring_done(&kr);

        char h1[65], h2[65], h3[65], h4[65], h5[65], kid[CAIRN_KEY_ID_HEX_SIZE], salt[2 * PAYLOAD_VERITY_SALT_MAX + 1];
        bool checked = a->keys_dir != NULL;
        if (a->json) {
                printf("{\"format_version\":%u,\"version\":", p->manifest_version);
                json_string(p->version);
                printf(",\"board\":");
                json_string(p->board);
                printf(",\"image_size\":%llu,\"image_sha256\":\"%s\",\"payload_size\":%llu,\"chunk_size\":%u,"
                       "\"chunk_count\":%u,\"compression\":\"%s\",\"verity_root_hash\":%s%s%s,\"verity_hash_offset\":%llu,"
                       "\"verity_salt\":%s%s%s,"
                       "\"kernel_sha256\":\"%s\",\"initrd_sha256\":\"%s\",\"cmdline_sha256\":\"%s\",\"revoked_keys\":[",
                       (unsigned long long)p->image_size, hex_encode(p->image_sha256, 32, h1),
                       (unsigned long long)p->payload_size, p->chunk_size, p->chunk_count,
                       payload_method_to_string(p->compression), p->has_verity_root ? "\"" : "",
                       p->has_verity_root ? hex_encode(p->verity_root, 32, h2) : "null", p->has_verity_root ? "\"" : "",
                       (unsigned long long)p->verity_hash_offset, p->has_verity_layout ? "\"" : "",
                       p->has_verity_layout ? hex_encode(p->verity_salt, p->verity_salt_size, salt) : "null",
                       p->has_verity_layout ? "\"" : "",
                       hex_encode(p->kernel_sha256, 32, h3), hex_encode(p->initrd_sha256, 32, h4),
                       hex_encode(p->cmdline_sha256, 32, h5));
                for (uint32_t i = 0; i < p->n_revoked; i++)
                        printf("%s\"%s\"", i ? "," : "", key_id_to_hex(p->revoked[i], kid));
                printf("],\"signatures\":[");
                for (uint32_t i = 0; i < p->n_signatures; i++)
                        printf("%s{\"key_id\":\"%s\",\"status\":\"%s\"}", i ? "," : "",
                               key_id_to_hex(p->signatures[i].key_id, kid), sig_status(p->signatures[i].status, checked));
                uint64_t zero = 0;
                for (uint32_t i = 0; i < p->chunk_count; i++)
                        zero += p->chunks[i].method == PAYLOAD_METHOD_ZERO;
                printf("],\"zero_chunks\":%llu,", (unsigned long long)zero);
                if (p->is_delta) {
                        uint64_t copy = 0, patch = 0;
                        for (uint32_t i = 0; i < p->chunk_count; i++) {
                                copy += p->chunks[i].method == PAYLOAD_METHOD_COPY;
                                patch += p->chunks[i].method == PAYLOAD_METHOD_PATCH;
                        }
                        printf("\"delta\":{\"source_size\":%llu,\"source_sha256\":\"%s\",\"copy_chunks\":%llu,"
                               "\"patch_chunks\":%llu},", (unsigned long long)p->source_size,
                               hex_encode(p->source_sha256, 32, h2), (unsigned long long)copy, (unsigned long long)patch);
                } else
                        printf("\"delta\":null,");
                printf("\"verified\":%s}\n",
                       !checked ? "null" : verdict >= 0 ? "true" : "false");
        } else {
                uint64_t per[_PAYLOAD_METHOD_MAX] = {};
                for (uint32_t i = 0; i < p->chunk_count; i++)
                        per[p->chunks[i].method]++;
                printf("Payload:        %s\n", a->payload);
                printf("Format version: %u\n", p->manifest_version);
                printf("OS version:     %s\n", p->version);
                printf("Board:          %s\n", p->board);
                printf("Image size:     %llu\n", (unsigned long long)p->image_size);
                printf("Image SHA-256:  %s\n", hex_encode(p->image_sha256, 32, h1));
                printf("Payload size:   %llu\n", (unsigned long long)p->payload_size);
                printf("Chunk size:     %u\n", p->chunk_size);
                printf("Chunk count:    %u (zstd %llu, zlib %llu, none %llu, zero %llu", p->chunk_count,
                       (unsigned long long)per[PAYLOAD_METHOD_ZSTD], (unsigned long long)per[PAYLOAD_METHOD_ZLIB],
                       (unsigned long long)per[PAYLOAD_METHOD_NONE], (unsigned long long)per[PAYLOAD_METHOD_ZERO]);
                if (p->is_delta)
                        printf(", copy %llu, patch %llu", (unsigned long long)per[PAYLOAD_METHOD_COPY],
                               (unsigned long long)per[PAYLOAD_METHOD_PATCH]);
                printf(")\n");
                if (p->is_delta)
                        printf("Delta from:     image of %llu bytes, SHA-256 %s\n", (unsigned long long)p->source_size,
                               hex_encode(p->source_sha256, 32, h2));
                printf("Compression:    %s\n", payload_method_to_string(p->compression));
                printf("Verity root:    %s\n", p->has_verity_root ? hex_encode(p->verity_root, 32, h2) : "-");
                if (p->has_verity_layout)
                        printf("Verity layout:  hash offset %llu, salt %s\n", (unsigned long long)p->verity_hash_offset,
                               p->verity_salt_size ? hex_encode(p->verity_salt, p->verity_salt_size, salt) : "-");
                printf("Kernel SHA-256: %s\n", hex_encode(p->kernel_sha256, 32, h3));
                printf("Initrd SHA-256: %s\n", hex_encode(p->initrd_sha256, 32, h4));
                printf("Cmdline SHA-256:%s\n", hex_encode(p->cmdline_sha256, 32, h5));
                for (uint32_t i = 0; i < p->n_revoked; i++)
                        printf("Revokes key:    %s\n", key_id_to_hex(p->revoked[i], kid));
                for (uint32_t i = 0; i < p->n_signatures; i++)
                        printf("Signature:      %s %s\n", key_id_to_hex(p->signatures[i].key_id, kid),
                               sig_status(p->signatures[i].status, checked));
                printf("Verified:       %s\n", !checked ? "no (pass --keys DIR to check signatures)"
                                               : verdict >= 0 ? "signatures good (chunks not checked; use verify)"
                                                              : payload_strerror(verdict));
        }
        if (checked && verdict < 0) {
                report_payload_error(verdict, a->payload, 0);
                return 1;
        }
        return 0;
}


/* ---- delta ---- */

/* The window of source bytes on each side of a changed chunk that its patch may refer to, when --window is not
 * given (docs/payload-format.md, "Delta payloads", has the measurement behind it). */
#define DELTA_WINDOW_DEFAULT 0u

static bool is_payload_file(int fd) {
        char magic[8];
        return pread(fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic && memcmp(magic, PAYLOAD_MAGIC, 8) == 0;
}

/* An image to read from: IMG itself, or a full payload verified against the keyring and extracted into an
 * unnamed temporary file (sparse). With ret_p, the payload's manifest (NULL for an image). */
static int open_image_or_payload(const char *what, const char *path, const CairnKeyring *kr, bool have_keys,
                                 Payload **ret_p) {
        _cleanup_close_ int fd = open_input(what, path);
        if (fd < 0)
                return fd;
        if (!is_payload_file(fd)) {
                if (ret_p)
                        *ret_p = NULL;
                return TAKE_FD(fd);
        }
        if (!have_keys)
                return log_error(-ENOKEY, "%s \"%s\" is a payload: pass --keys DIR to verify it", what, path);
        _cleanup_payload_ Payload *p = NULL;
        int r = payload_load_fd(fd, kr, &p);
        if (r < 0)
                return report_payload_error(r, path, 0);
        if (p->is_delta)
                return log_error(-EINVAL, "%s \"%s\" is a delta payload: give a full payload or an image", what, path);
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
                dir = "/var/tmp";
        _cleanup_close_ int tmp = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (tmp < 0)
                return log_error_errno(negative_errno(), "Failed to create a temporary image in \"%s\" (TMPDIR)", dir);
        uint32_t bad = 0;
        r = payload_verify_data(p, fd, tmp, true, &bad);
        if (r < 0)
                return report_payload_error(r, path, bad);
        if (ret_p)
                *ret_p = TAKE_PTR(p);
        return TAKE_FD(tmp);
}

static int load_signing_keys(const Args *a, EVP_PKEY **keys, size_t *ret_n) {
        int r = 0;
        size_t n = 0;
        for (; n < a->n_key_paths && r >= 0; n++) {
                r = key_load_private(a->key_paths[n], &keys[n]);
                if (r == -EBADMSG)
                        log_error(r, "signing key \"%s\" is not a PEM private key", a->key_paths[n]);
                else if (r == -EKEYREJECTED)
                        log_error(r, "signing key \"%s\" is not an Ed25519 key", a->key_paths[n]);
                else if (r == -EBADFD)
                        log_error(r, "signing key \"%s\" is not a regular file", a->key_paths[n]);
                else if (r < 0)
                        log_error_errno(r, "Failed to load signing key \"%s\"", a->key_paths[n]);
        }
        *ret_n = r < 0 ? n - 1 : n;
        return r;
}

static int verb_delta(Args *a) {
        if (!a->from || !a->to || !a->output || a->n_key_paths == 0 || a->payload || a->image) {
                usage(stderr);
                return 2;
        }
        CairnKeyring kr;
        keyring_init(&kr);
        int r = a->keys_dir ? load_keyring(a->keys_dir, &kr) : 0;
        EVP_PKEY *keys[PAYLOAD_SIGNATURES_MAX] = {};
        size_t n_keys = 0;
        if (r >= 0)
                r = load_signing_keys(a, keys, &n_keys);
        if (r >= 0)
                r = check_output(a->output);
        _cleanup_payload_ Payload *to_p = NULL;
        _cleanup_close_ int src = r < 0 ? -1 : open_image_or_payload("--from", a->from, &kr, a->keys_dir, NULL);
        _cleanup_close_ int img = r < 0 || src < 0 ? -1 : open_image_or_payload("--to", a->to, &kr, a->keys_dir, &to_p);
        keyring_done(&kr);
        if (r >= 0 && (src < 0 || img < 0))
                r = -EINVAL;

        /* What the new release is: its own manifest when --to is a payload, else the options. */
        PayloadBuildOptions o = {
                .version = a->version, .board = a->board, .chunk_size = (uint32_t)a->chunk_size,
                .threads = a->threads, .compression = PAYLOAD_METHOD_ZSTD, .level = a->level,
                .keys = keys, .n_keys = n_keys,
                .revoked = (const uint8_t(*)[CAIRN_KEY_ID_SIZE])a->revoked, .n_revoked = a->n_revoked,
                .verity_root = a->has_verity ? a->verity : NULL,
                .kernel_sha256 = a->has_kernel ? a->kernel : NULL,
                .initrd_sha256 = a->has_initrd ? a->initrd : NULL,
                .cmdline_sha256 = a->has_cmdline ? a->cmdline : NULL,
                .delta = true, .source_fd = src,
                .window = a->has_window ? (uint32_t)a->window : DELTA_WINDOW_DEFAULT,
        };
        if (r >= 0 && to_p) {
                if (a->version || a->board || a->chunk_size || a->has_verity || a->has_kernel || a->has_initrd ||
                    a->has_cmdline || a->n_revoked) {
                        r = log_error(-EINVAL, "--to \"%s\" is a payload: its manifest gives the version, board, chunk "
                                      "size, digests and revocations (drop those options)", a->to);
                } else {
                        o.version = to_p->version;
                        o.board = to_p->board;
                        o.chunk_size = to_p->chunk_size;
                        o.verity_root = to_p->has_verity_root ? to_p->verity_root : NULL;
                        static const uint8_t none[SHA256_SIZE];
                        o.kernel_sha256 = memcmp(to_p->kernel_sha256, none, SHA256_SIZE) ? to_p->kernel_sha256 : NULL;
                        o.initrd_sha256 = memcmp(to_p->initrd_sha256, none, SHA256_SIZE) ? to_p->initrd_sha256 : NULL;
                        o.cmdline_sha256 = memcmp(to_p->cmdline_sha256, none, SHA256_SIZE) ? to_p->cmdline_sha256 : NULL;
                        o.revoked = (const uint8_t(*)[CAIRN_KEY_ID_SIZE])to_p->revoked;
                        o.n_revoked = to_p->n_revoked;
                }
        } else if (r >= 0 && (!a->version || !a->board))
                r = log_error(-EINVAL, "--to \"%s\" is an image: give --version and --board", a->to);
        uint32_t cs = o.chunk_size ? o.chunk_size : PAYLOAD_CHUNK_SIZE_DEFAULT;
        if (r >= 0 && o.window > cs)
                r = log_error(-EINVAL, "--window %u is larger than the chunk size %u", o.window, cs);

        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        int slot = -1;
        if (r >= 0) {
                out = make_temp(a->output, &tmp, &slot);
                if (out < 0)
                        r = out;
        }
        uint64_t size = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (r >= 0) {
                r = payload_create(img, out, &o, &size);
                if (r == -EINVAL)
                        log_error(r, "invalid --version \"%s\" or --board \"%s\": 1-64 printable characters, no spaces",
                                  o.version, o.board);
                else if (r == -ENODATA)
                        log_error(r, "an image is empty or shrank while being read");
                else if (r == -EFBIG)
                        log_error(r, "an image is larger than the format's maximum of %llu bytes (64 GiB)",
                                  (unsigned long long)PAYLOAD_IMAGE_SIZE_MAX);
                else if (r == -E2BIG)
                        log_error(r, "an image needs more than %u chunks; use a larger --chunk-size", PAYLOAD_CHUNKS_MAX);
                else if (r == -ENOTUNIQ)
                        log_error(r, "the same signing key was given twice");
                else if (r < 0)
                        log_error_errno(r, "Failed to create delta \"%s\"", a->output);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        r = finish_output(r, out, tmp, a->output, slot);
        for (size_t i = 0; i < n_keys; i++)
                EVP_PKEY_free(keys[i]);
        if (r < 0)
                return 1;
        printf("%s: %llu bytes (delta, %.1f s)\n", a->output, (unsigned long long)size,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *verb = argv[1];
        if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
                usage(stdout);
                return 0;
        }
        Args a = {};
        int r = parse_args(argc - 1, argv + 1, &a);
        if (r != 0)
                return r;
        /* SIGINT/SIGTERM/SIGHUP remove a half-written OUT.tmpXXXXXX before the process dies */
        r = outfile_install_signal_cleanup();
        if (r < 0) {
                log_error_errno(r, "Failed to install signal handlers");
                return 1;
        }
        if (strcmp(verb, "create") == 0)
                return verb_create(&a);
        if (strcmp(verb, "verify") == 0)
                return verb_verify_extract(&a, false);
        if (strcmp(verb, "extract") == 0)
                return verb_verify_extract(&a, true);
        if (strcmp(verb, "inspect") == 0)
                return verb_inspect(&a);
        if (strcmp(verb, "delta") == 0)
                return verb_delta(&a);
        log_error(-EINVAL, "unknown command \"%s\"", verb);
        usage(stderr);
        return 2;
}
