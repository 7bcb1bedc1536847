/* common/outfile.h — output files that appear atomically: a temp file beside the target that is removed
 * on failure and on SIGINT/SIGTERM/SIGHUP, and a check that the target is something we may replace. */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* At most this many temp files are registered at once (per process). */
#define OUTFILE_SLOTS 8

/* Install, once, in main(): on SIGINT, SIGTERM or SIGHUP every registered temp file is unlinked and the signal
 * is re-raised with its default action, so the process still dies by it (exit status 128+N in a shell).
 * A signal that was ignored when the program started (nohup, a background job of a script) stays ignored.
 * SIGKILL cannot be caught: a temp file left by it is named OUT.tmpXXXXXX and may be removed by hand. */
int outfile_install_signal_cleanup(void) _warn_unused_result_;

/* mkostemp(template, flags) with those signals blocked, registering the new path before they are unblocked,
 * so no signal can leave it behind. Returns the fd (>= 0) and *ret_slot for outfile_forget(), or -errno
 * (-ENAMETOOLONG if the path does not fit PATH_MAX, -EMFILE if all slots are taken). */
int outfile_mkostemp(char *template, int flags, int *ret_slot) _warn_unused_result_;

/* Stop removing the temp file of slot on a signal (after it was renamed into place or unlinked).
 * Negative slots are ignored. */
void outfile_forget(int slot);

/* May path be replaced by rename()? 0 if it does not exist or is a regular file. If it is anything else (a
 * symbolic link — even to a regular file —, a directory, a device, a FIFO, a socket) returns -EEXIST and
 * *ret_what names it ("a symbolic link", ...). Other lstat() failures are returned as -errno. */
int outfile_check_target(const char *path, const char **ret_what) _warn_unused_result_;
