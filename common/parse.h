/* common/parse.h — strict parsing of numbers from command lines, config and state files and the network, and
 * making outside text safe to log. One grammar everywhere:
 *   - decimal digits only (no sign, no spaces, no "0x", no trailing garbage); at least one digit;
 *   - the value must lie in [min, max], else -ERANGE (overflow of uint64_t is -ERANGE too);
 *   - anything else is -EINVAL.
 * Sizes take an optional suffix K, M, G, T (powers of 1024, case-insensitive); the scaled value must still fit
 * in [min, max]. Durations take s, m, h, d (seconds; no suffix = seconds). */
#pragma once

#include <stddef.h>
#include <stdint.h>

int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_unsigned_range(const char *s, unsigned min, unsigned max, unsigned *ret);
int parse_size_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_seconds_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Copy src into dst (size bytes, always NUL-terminated) with every byte that could forge or garble a log line
 * escaped: control characters (including CR, LF, TAB, ESC, DEL) become \xHH, a backslash becomes \\.
 * Printable ASCII and UTF-8 bytes >= 0x80 pass. Truncates (ending in "...") rather than overflowing.
 * Returns dst, so it can be used inline: log_msg("server said %s", log_safe(buf, sizeof buf, text)). */
char *log_safe(char *dst, size_t size, const char *src);
/* The same for a buffer of known length (may hold NUL bytes, shown as \x00). */
char *log_safe_n(char *dst, size_t size, const char *src, size_t len);
