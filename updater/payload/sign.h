/* updater/payload/sign.h — Ed25519 keys through OpenSSL EVP: generate, load/save PEM, key ids, sign/verify, trusted-key rings. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "macro.h"

#define CAIRN_KEY_ID_SIZE 8      /* first 8 bytes of SHA-256(raw 32-byte Ed25519 public key) */
#define CAIRN_KEY_ID_HEX_SIZE 17 /* 16 hex digits + NUL */
#define CAIRN_SIG_SIZE 64        /* Ed25519 signature */
#define CAIRN_PUBKEY_SIZE 32     /* raw Ed25519 public key */
#define CAIRN_KEYRING_MAX 64     /* at most this many trusted keys in one directory */
#define CAIRN_KEY_FILE_MAX 16384 /* a PEM key file larger than this is rejected before parsing */

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
#define _cleanup_pkey_ _cleanup_(EVP_PKEY_freep)

typedef struct CairnKey {
        EVP_PKEY *pkey; /* public (or private) Ed25519 key, owned */
        uint8_t id[CAIRN_KEY_ID_SIZE];
} CairnKey;

typedef struct CairnKeyring {
        size_t n_keys;
        CairnKey keys[CAIRN_KEYRING_MAX];
        size_t n_revoked;
        uint8_t revoked[CAIRN_KEYRING_MAX][CAIRN_KEY_ID_SIZE];
} CairnKeyring;

/* Generate a fresh Ed25519 key pair. */
int key_generate(EVP_PKEY **ret_pkey);
/* The key id of any Ed25519 key (private or public). */
int key_id(EVP_PKEY *pkey, uint8_t ret_id[CAIRN_KEY_ID_SIZE]);
/* Lower-case hex form of a key id into buf (CAIRN_KEY_ID_HEX_SIZE bytes); returns buf. */
char *key_id_to_hex(const uint8_t id[CAIRN_KEY_ID_SIZE], char buf[CAIRN_KEY_ID_HEX_SIZE]);
/* Parse exactly 16 hex digits into a key id; -EINVAL otherwise. */
int key_id_from_hex(const char *s, uint8_t ret_id[CAIRN_KEY_ID_SIZE]);

/* Write the private key (PKCS#8 PEM, mode 0600) / public key (SubjectPublicKeyInfo PEM, 0644) atomically. */
int key_save_private(const char *path, EVP_PKEY *pkey);
int key_save_public(const char *path, EVP_PKEY *pkey);
/* Load a PEM key of at most CAIRN_KEY_FILE_MAX bytes (-EFBIG if larger); -EKEYREJECTED if it is not an
 * Ed25519 key, -EBADMSG if it does not parse, -EBADFD if it is not a regular file (a FIFO or device is
 * refused at once, never waited on). */
int key_load_private(const char *path, EVP_PKEY **ret_pkey);
int key_load_public(const char *path, EVP_PKEY **ret_pkey);
/* Same as key_load_public, from a PEM buffer. */
int key_parse_public(const void *pem, size_t len, EVP_PKEY **ret_pkey);

/* Ed25519 (pure, no pre-hash: EVP_DigestSign with a NULL md). Verify returns 0 if good, -EKEYREJECTED if not. */
int sign_ed25519(EVP_PKEY *pkey, const void *msg, size_t len, uint8_t ret_sig[CAIRN_SIG_SIZE]);
int verify_ed25519(EVP_PKEY *pkey, const void *msg, size_t len, const uint8_t sig[CAIRN_SIG_SIZE]);

/* Keyrings: keys are added by value (the ring takes ownership of pkey on success).
 * Adding a key whose id is already present succeeds and frees nothing but the duplicate. */
void keyring_init(CairnKeyring *kr);
void keyring_done(CairnKeyring *kr);
int keyring_add(CairnKeyring *kr, EVP_PKEY *pkey);
int keyring_revoke(CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]);
const CairnKey *keyring_find(const CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]);
bool keyring_is_revoked(const CairnKeyring *kr, const uint8_t id[CAIRN_KEY_ID_SIZE]);
/* Load every "*.pub" file of dir (sorted by name); -ENOKEY if there is none. On a key that fails to
 * load, returns its error and, if ret_bad_name is non-NULL, a copy of the offending file name. */
int keyring_load_dir(CairnKeyring *kr, const char *dir, char **ret_bad_name);
