/* updater/agent/manifest.c — fetching the offered payload's signed prefix (header, manifest, signatures) and verifying it with the trusted keys minus the revoked ones. */
#include "agent-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "gpt.h"
#include "kvfile.h"

/* ---- fetching the manifest ---- */

typedef struct MemSink {
        uint8_t *buf;
        size_t len, cap;
} MemSink;

static int mem_sink(void *ud, const uint8_t *data, size_t n) {
        MemSink *m = ud;
        if (n > m->cap - m->len)
                return -EMSGSIZE;
        memcpy(m->buf + m->len, data, n);
        m->len += n;
        return 0;
}

static int get_any(Agent *a, AgentOffer *offer, uint64_t off, uint64_t len, MemSink *m, uint64_t *counter) {
        size_t keep = m->len;
        int r = -EINVAL;
        for (; offer->url_index < offer->n_urls; offer->url_index++) {
                m->len = keep;
                r = agent_http_get_range(a->http, agent_offer_url(offer), off, len, mem_sink, m, counter);
                if (r >= 0 || r == -ECANCELED || offer->url_index + 1 == offer->n_urls)
                        break;
        }
        return r;
}

int agent_fetch_manifest(Agent *a, AgentOffer *offer, uint64_t *counter, Payload **ret) {
        uint8_t header[PAYLOAD_HEADER_SIZE];
        MemSink m = { .buf = header, .cap = sizeof header };
        if (offer->size < PAYLOAD_HEADER_SIZE)
                return agent_failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG, "payload '%s' is only %" PRIu64 " bytes",
                             agent_offer_url(offer), offer->size);
        int r = get_any(a, offer, 0, sizeof header, &m, counter);
        if (r < 0)
                return agent_failc(a, AGENT_EC_DOWNLOAD_TRANSFER, r, "fetching the payload header%s: %s",
                             offer->n_urls > 1 ? " (every <url> failed)" : "", agent_http_error(a->http));
        size_t prefix;
        r = payload_prefix_size(header, sizeof header, &prefix);
        if (r < 0)
                return agent_failc(a, AGENT_EC_PAYLOAD_VERIFICATION, r, "payload '%s': %s", agent_offer_url(offer),
                             payload_strerror(r));
        if (prefix > offer->size)
                return agent_failc(a, AGENT_EC_PAYLOAD_SIZE_MISMATCH, -EBADMSG,
                             "payload '%s': manifest larger than the announced size", agent_offer_url(offer));
        _cleanup_free_ uint8_t *untrusted_prefix = malloc(prefix);
        if (!untrusted_prefix)
                return agent_fail(a, -ENOMEM, "out of memory for a %zu-byte manifest", prefix);
        memcpy(untrusted_prefix, header, sizeof header);
        m = (MemSink){ .buf = untrusted_prefix, .len = sizeof header, .cap = prefix };
        r = get_any(a, offer, sizeof header, prefix - sizeof header, &m, counter);
        if (r < 0)
                return agent_failc(a, AGENT_EC_DOWNLOAD_TRANSFER, r, "fetching the payload manifest: %s",
                             agent_http_error(a->http));

        CairnKeyring kr;
        keyring_init(&kr);
        _cleanup_free_ char *bad = NULL;
        r = keyring_load_dir(&kr, a->keys_dir, &bad);
        if (r < 0) {
                keyring_done(&kr);
                if (bad)
                        return agent_fail(a, r, "trusted key \"%s/%s\" does not load: %s", a->keys_dir, bad, strerror(-r));
                return agent_fail(a, r, "no trusted keys in \"%s\": %s", a->keys_dir, strerror(-r));
        }
        r = agent_revoked_apply(a, &kr);
        if (r < 0) {
                keyring_done(&kr);
                return r;
        }
        r = payload_load(untrusted_prefix, prefix, &kr, ret);
        keyring_done(&kr);
        if (r < 0)
                return agent_failc(a, AGENT_EC_PAYLOAD_VERIFICATION, r, "payload '%s' refused: %s", agent_offer_url(offer),
                             payload_strerror(r));
        return 0;
}

