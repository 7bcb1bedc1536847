/* tests/fuzz/fuzz-omaha.c — libFuzzer target for the Omaha request parser, validator and response writer. */
#include <stdint.h>
#include <stdlib.h>

#include "omaha/omaha.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OmahaRequest *req = NULL;
        if (omaha_request_parse((const char *)data, size, &req) < 0) {
                if (req)
                        abort(); /* ret_ must stay untouched on failure */
                return 0;
        }
        OmahaAppAnswer ans[OMAHA_MAX_APPS];
        for (size_t i = 0; i < req->n_apps; i++) {
                const OmahaApp *a = &req->apps[i];
                const char *what = NULL;
                int r = omaha_app_validate(a, &what);
                if (r < 0 && !what)
                        abort();
                if (a->version[0] && omaha_version_valid(a->version) && omaha_version_cmp(a->version, a->version) != 0)
                        abort();
                ans[i] = (OmahaAppAnswer){ .appid = a->appid, .status = r < 0 ? "error-invalidRequest" : "ok",
                                           .ping = a->ping, .uc_status = a->updatecheck ? "ok" : NULL,
                                           .codebase = a->track, .version = a->version, .package_name = a->board,
                                           .size = a->n_events, .sha256_b64 = a->machineid,
                                           .n_events = a->n_events };
        }
        Buf out;
        buf_init(&out, 1 << 20);
        if (omaha_response_write(&out, "fuzz", 0, ans, req->n_apps) < 0)
                abort();
        /* JSON escaping of any attribute text must stay in bounds. */
        Buf j;
        buf_init(&j, 1 << 16);
        for (size_t i = 0; i < req->n_apps; i++)
                buf_put_json(&j, req->apps[i].machinealias);
        buf_free(&j);
        buf_free(&out);
        free(req);
        return 0;
}
