/* common/log.h — one-line error reporting to stderr for the top level of each program. */
#pragma once

#include "macro.h"

/* Program name used as the prefix of every message; set by log_init(). */
extern const char *log_prog;
extern int log_verbose;

void log_init(const char *argv0);
void log_msg(const char *fmt, ...) _printf_(1, 2);
void log_debug(const char *fmt, ...) _printf_(1, 2);
/* Print "prog: <message>: <strerror(-err)>" and return err (negative), for `return log_error_errno(r, ...)`. */
int log_error_errno(int err, const char *fmt, ...) _printf_(2, 3);
/* Print "prog: <message>" and return -EINVAL-style code passed by the caller. */
int log_error(int err, const char *fmt, ...) _printf_(2, 3);
