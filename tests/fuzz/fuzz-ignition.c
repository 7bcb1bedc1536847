/* tests/fuzz/fuzz-ignition.c — libFuzzer target for the Ignition config parser (prov_parse) and the staging
 * step against a small fixed root (accounts, owners, paths); nothing is applied. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "provision/ignition.h"

static char root[64];

static void setup(void) {
        snprintf(root, sizeof root, "/tmp/fuzz-ignition.%d", (int)getpid());
        char p[128];
        mkdir(root, 0755);
        snprintf(p, sizeof p, "%s/etc", root);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/etc/passwd", root);
        write_file_atomic(p, "root:x:0:0:root:/root:/bin/sh\n", 30, 0644);
        snprintf(p, sizeof p, "%s/etc/group", root);
        write_file_atomic(p, "root:x:0:\nsudo:x:27:\nwheel:x:10:\n", 33, 0644);
}

static void cleanup(void) {
        char p[128];
        snprintf(p, sizeof p, "%s/etc/passwd", root);
        unlink(p);
        snprintf(p, sizeof p, "%s/etc/group", root);
        unlink(p);
        snprintf(p, sizeof p, "%s/etc", root);
        rmdir(p);
        rmdir(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!*root) {
                setup();
                atexit(cleanup);
        }
        struct prov_plan *p = NULL;
        struct prov_err err;
        memset(&err, 0, sizeof err);
        if (prov_parse((const char *)data, size, &p, &err) >= 0) {
                char sum[200];
                (void)prov_stage(p, root, NULL, &err);
                prov_summary(p, sum, sizeof sum);
                prov_plan_free(p);
        } else if (!err.msg[0] || strchr(err.msg, '\n'))
                abort(); /* every refusal has exactly one line */
        return 0;
}
