/* updater/server/range.h — the Range header of an HTTP request for one file (RFC 9110 section 14). */
#pragma once

#include <stdint.h>

/* Parse a single "bytes=" range (A-B, A-, or the suffix -N) of untrusted header text against a file of size
 * bytes. 1: satisfiable, *ret_start and *ret_len set (len ≥ 1, start + len ≤ size); 0: ignore the header and serve
 * the whole file (several ranges, another unit, bad syntax, numbers that overflow, B < A); -ERANGE: not
 * satisfiable (416). */
int http_range_parse(const char *untrusted, uint64_t size, uint64_t *ret_start, uint64_t *ret_len);
