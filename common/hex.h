/* common/hex.h — lowercase hex encoding and strict decoding (the one implementation; see docs/architecture.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Writes 2*len lowercase hex digits and a NUL to buf (2*len+1 bytes); returns buf. */
char *hex_encode(const uint8_t *data, size_t len, char *buf);
/* Decodes exactly 2*len hex digits (either case) from s, which must end there; -EINVAL otherwise (out is
 * then unspecified). */
int hex_decode(const char *s, uint8_t *out, size_t len) _warn_unused_result_;
/* Decodes the first 2*len characters of s (no terminator required); -EINVAL on a non-hex digit. */
int hex_decode_n(const char *s, uint8_t *out, size_t len) _warn_unused_result_;
/* The value of one hex digit, or -1. */
int hex_digit(char c);
