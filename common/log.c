/* common/log.c — stderr logging with the program name as prefix. */
#include "log.h"

#include <stdarg.h>

const char *log_prog = "cairn";
int log_verbose = 0;

void log_init(const char *argv0) {
        const char *s = strrchr(argv0, '/');
        log_prog = s ? s + 1 : argv0;
        const char *v = getenv("CAIRN_DEBUG");
        if (v && *v && strcmp(v, "0") != 0)
                log_verbose = 1;
}

static void vlog(const char *fmt, va_list ap, int err) {
        char buf[2048];
        vsnprintf(buf, sizeof buf, fmt, ap);
        if (err)
                fprintf(stderr, "%s: %s: %s\n", log_prog, buf, strerror(err < 0 ? -err : err));
        else
                fprintf(stderr, "%s: %s\n", log_prog, buf);
}

void log_msg(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap, 0);
        va_end(ap);
}

void log_debug(const char *fmt, ...) {
        if (!log_verbose)
                return;
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap, 0);
        va_end(ap);
}

int log_error_errno(int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap, err);
        va_end(ap);
        return err < 0 ? err : -err;
}

int log_error(int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap, 0);
        va_end(ap);
        return err < 0 ? err : -err;
}
