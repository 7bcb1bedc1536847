/* tests/fuzz/fuzz-fleetlock.c — libFuzzer target for the FleetLock request body (updater/server/fleetlock-proto.c).
 * The contract: an accepted body yields an id that is a valid holder id and valid UTF-8 and a group of the
 * protocol's grammar; a refused one leaves the output untouched and says why; the error body built from any
 * text is valid, NUL-free JSON text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/fleetlock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FleetLockParams p;
        memset(&p, 0x5a, sizeof p);
        char err[300] = "";
        int r = fleetlock_parse_params((const char *)data, size, &p, err, sizeof err);
        if (r < 0) {
                if ((r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM) || !err[0])
                        abort();
                for (size_t i = 0; i < sizeof p; i++)
                        if (((unsigned char *)&p)[i] != 0x5a)
                                abort();
                Buf b;
                buf_init(&b, 8192);
                if (fleetlock_error_json(&b, "invalid_client_identity", err) < 0 || !b.data ||
                    strlen(b.data) != b.len || !fleetlock_utf8_valid(b.data))
                        abort();
                buf_free(&b);
                return 0;
        }
        if (!semaphore_id_valid(p.id) || !fleetlock_utf8_valid(p.id) || !fleetlock_group_valid(p.group))
                abort();
        return 0;
}
