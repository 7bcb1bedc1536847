/* tests/fuzz/fuzz-omaha-response.c — libFuzzer target for the agent's Omaha response parser and offer validation. */
#include <stdint.h>
#include <stdlib.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OmahaResponse *resp = NULL;
        if (omaha_response_parse((const char *)data, size, &resp) < 0) {
                if (resp)
                        abort(); /* ret_ must stay untouched on failure */
                return 0;
        }
        if (resp->n_urls > OMAHA_MAX_URLS)
                abort();
        for (size_t i = 0; i < resp->n_urls; i++)
                if (strlen(resp->urls[i]) > OMAHA_URL_MAX)
                        abort();
        AgentOffer o;
        const char *what = NULL;
        int r = agent_offer_from_response(resp, &o, &what);
        if (r < 0 && !what)
                abort();
        if (r >= 0 && o.update && (!omaha_version_valid(o.version) || o.size == 0 || o.n_urls == 0 ||
                                   o.n_urls > OMAHA_MAX_URLS || strlen(agent_offer_url(&o)) == 0))
                abort();
        /* Nothing handed on may hold a control character (it would reach curl and the log). */
        for (size_t i = 0; r >= 0 && o.update && i < o.n_urls; i++)
                for (const char *p = o.urls[i]; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                abort();
        if (r < 0)
                for (const char *p = what; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                abort();
        free(resp);
        return 0;
}
