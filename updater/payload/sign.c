/* updater/payload/sign.c — owns Ed25519 key handling (OpenSSL EVP), key ids and the trusted-key ring. */
#include "sign.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "fileio.h"
#include "hash.h"
#include "hex.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);

/* The one place OpenSSL's error queue becomes an errno: drop the queue, return err. */
static int openssl_error(int err) {
        ERR_clear_error();
        return err;
}

static int require_ed25519(EVP_PKEY *pkey) {
        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
                return -EKEYREJECTED;
        return 0;
}

int key_generate(EVP_PKEY **ret_pkey) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        if (!ctx)
                return openssl_error(-ENOMEM);
        EVP_PKEY *pkey = NULL;
        if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0)
                return openssl_error(-EIO);
        *ret_pkey = pkey;
        return 0;
}

int key_id(EVP_PKEY *pkey, uint8_t ret_id[CAIRN_KEY_ID_SIZE]) {
        int r = require_ed25519(pkey);
        if (r < 0)
                return r;
        uint8_t raw[CAIRN_PUBKEY_SIZE];
        size_t len = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) <= 0 || len != sizeof raw)
                return openssl_error(-EKEYREJECTED);
        uint8_t md[SHA256_DIGEST_LENGTH];
        if (!EVP_Digest(raw, sizeof raw, md, NULL, EVP_sha256(), NULL))
                return openssl_error(-EIO);
        memcpy(ret_id, md, CAIRN_KEY_ID_SIZE);
        return 0;
}

char *key_id_to_hex(const uint8_t id[CAIRN_KEY_ID_SIZE], char buf[CAIRN_KEY_ID_HEX_SIZE]) {
        return hex_encode(id, CAIRN_KEY_ID_SIZE, buf);
}

int key_id_from_hex(const char *s, uint8_t ret_id[CAIRN_KEY_ID_SIZE]) {
        uint8_t id[CAIRN_KEY_ID_SIZE];
        int r = hex_decode(s, id, sizeof id);
        if (r < 0)
                return r;
        memcpy(ret_id, id, sizeof id);
        return 0;
}

static int key_save(const char *path, EVP_PKEY *pkey, bool private) {
        int r = require_ed25519(pkey);
        if (r < 0)
                return r;
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        if (!bio)
                return openssl_error(-ENOMEM);
        if ((private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_PUBKEY(bio, pkey)) <= 0)
                return openssl_error(-EIO);
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        if (len <= 0 || !data)
                return openssl_error(-EIO);
        r = write_file_atomic(path, data, (size_t)len, private ? 0600 : 0644);
        if (private)
                explicit_bzero(data, (size_t)len);
        return r;
}

int key_save_private(const char *path, EVP_PKEY *pkey) {
        return key_save(path, pkey, true);
}

int key_save_public(const char *path, EVP_PKEY *pkey) {
        return key_save(path, pkey, false);
}

static int key_parse(const void *pem, size_t len, bool private, EVP_PKEY **ret_pkey) {
        if (len > CAIRN_KEY_FILE_MAX)
                return -EFBIG;
        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return openssl_error(-ENOMEM);
        _cleanup_pkey_ EVP_PKEY *pkey = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                                                : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        if (!pkey)
                return openssl_error(-EBADMSG);
        int r = require_ed25519(pkey);
        if (r < 0)
                return r;
        *ret_pkey = TAKE_PTR(pkey);
        return 0;
}

int key_parse_public(const void *pem, size_t len, EVP_PKEY **ret_pkey) {
        return key_parse(pem, len, false, ret_pkey);
}

/* Read a key file without ever blocking: opened O_NONBLOCK so a FIFO or a device cannot hang open(), and
 * only a regular file of at most CAIRN_KEY_FILE_MAX bytes is read (-EBADFD otherwise, -EFBIG if larger). */
static int key_read(const char *path, char **ret_buf, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > CAIRN_KEY_FILE_MAX)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc(CAIRN_KEY_FILE_MAX + 2);
        if (!buf)
                return -ENOMEM;
        ssize_t n = read_full(fd, buf, CAIRN_KEY_FILE_MAX + 1); /* O_NONBLOCK does not apply to regular files */
        if (n < 0)
                return (int)n;
        if (n > CAIRN_KEY_FILE_MAX) { /* grew since fstat() */
                explicit_bzero(buf, CAIRN_KEY_FILE_MAX + 1);
                return -EFBIG;
        }
        buf[n] = 0;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = (size_t)n;
        return 0;
}

static int key_load(const char *path, bool private, EVP_PKEY **ret_pkey) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = key_read(path, &buf, &len);
        if (r < 0)
                return r;
        r = key_parse(buf, len, private, ret_pkey);
        if (private)
                explicit_bzero(buf, len);
        return r;
}

int key_load_private(const char *path, EVP_PKEY **ret_pkey) {
        return key_load(path, true, ret_pkey);
}

int key_load_public(const char *path, EVP_PKEY **ret_pkey) {
        return key_load(path, false, ret_pkey);
}

int sign_ed25519(EVP_PKEY *pkey, const void *msg, size_t len, uint8_t ret_sig[CAIRN_SIG_SIZE]) {
        int r = require_ed25519(pkey);
        if (r < 0)
                return r;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return openssl_error(-ENOMEM);
        uint8_t sig[CAIRN_SIG_SIZE];
        size_t siglen = sizeof sig;
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) <= 0 ||
            EVP_DigestSign(ctx, sig, &siglen, msg, len) <= 0 || siglen != sizeof sig)
                return openssl_error(-EIO);
        memcpy(ret_sig, sig, sizeof sig);
        return 0;
}

int verify_ed25519(EVP_PKEY *pkey, const void *msg, size_t len, const uint8_t sig[CAIRN_SIG_SIZE]) {
        int r = require_ed25519(pkey);
        if (r < 0)
                return r;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return openssl_error(-ENOMEM);
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) <= 0)
                return openssl_error(-EIO);
        if (EVP_DigestVerify(ctx, sig, CAIRN_SIG_SIZE, msg, len) != 1)
                return openssl_error(-EKEYREJECTED);
        return 0;
}

void keyring_init(CairnKeyring *kr) {
        memset(kr, 0, sizeof *kr);
}

void keyring_done(CairnKeyring *kr) {
        for (size_t i = 0; i < kr->n_keys; i++)
                EVP_PKEY_free(kr->keys[i].pkey);
        keyring_init(kr);
}

const CairnKey *keyring_find(const CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]) {
        for (size_t i = 0; i < kr->n_keys; i++)
                if (memcmp(kr->keys[i].id, id, CAIRN_KEY_ID_SIZE) == 0)
                        return &kr->keys[i];
        return NULL;
}

bool keyring_is_revoked(const CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]) {
        for (size_t i = 0; i < kr->n_revoked; i++)
                if (memcmp(kr->revoked[i], id, CAIRN_KEY_ID_SIZE) == 0)
                        return true;
        return false;
}

int keyring_add(CairnKeyring *kr, EVP_PKEY *pkey) {
        uint8_t id[CAIRN_KEY_ID_SIZE];
        int r = key_id(pkey, id);
        if (r < 0)
                return r;
        if (keyring_find(kr, id)) {
                EVP_PKEY_free(pkey);
                return 0;
        }
        if (kr->n_keys >= CAIRN_KEYRING_MAX)
                return -E2BIG;
        kr->keys[kr->n_keys].pkey = pkey;
        memcpy(kr->keys[kr->n_keys].id, id, sizeof id);
        kr->n_keys++;
        return 0;
}

int keyring_revoke(CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]) {
        if (keyring_is_revoked(kr, id))
                return 0;
        if (kr->n_revoked >= CAIRN_KEYRING_MAX)
                return -E2BIG;
        memcpy(kr->revoked[kr->n_revoked++], id, CAIRN_KEY_ID_SIZE);
        return 0;
}

static int filter_pub(const struct dirent *de) {
        size_t n = strlen(de->d_name);
        return de->d_name[0] != '.' && n > 4 && strcmp(de->d_name + n - 4, ".pub") == 0;
}

int keyring_load_dir(CairnKeyring *kr, const char *dir, char **ret_bad_name) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, filter_pub, alphasort);
        if (n < 0)
                return negative_errno();
        int r = n == 0 ? -ENOKEY : 0;
        for (int i = 0; i < n; i++) {
                if (r >= 0) {
                        char path[4096];
                        EVP_PKEY *pkey = NULL;
                        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) >= sizeof path)
                                r = -ENAMETOOLONG;
                        else
                                r = key_load_public(path, &pkey);
                        if (r >= 0) {
                                r = keyring_add(kr, pkey);
                                if (r < 0)
                                        EVP_PKEY_free(pkey);
                        }
                        if (r < 0 && ret_bad_name)
                                *ret_bad_name = strdup(names[i]->d_name);
                }
                free(names[i]);
        }
        free(names);
        return r;
}
