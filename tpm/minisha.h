/* tpm/minisha.h — one-shot SHA-1, SHA-256, SHA-384 and SHA-512 without OpenSSL, for the static initramfs helper
 * (cairn-tpm-initrd), which hashes a few short strings per boot. Checked against OpenSSL in test-tpm-predict. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Hash len bytes at p with the TPM algorithm alg (TPM_ALG_SHA1/256/384/512) into out; returns the digest size, or
 * 0 for an algorithm this file does not implement. */
unsigned minisha(uint16_t alg, const void *p, size_t len, uint8_t out[64]);
