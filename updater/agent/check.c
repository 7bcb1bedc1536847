/* updater/agent/check.c — the update check and events: Omaha requests to the server and what its answer offers. */
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

/* ---- Omaha ---- */

static void fill_request(Agent *a, AgentRequest *rq, bool interactive) {
        *rq = (AgentRequest){ .appid = AGENT_APPID, .version = a->os_version, .track = a->cfg.group,
                              .machineid = a->machine_id, .board = a->board, .bootid = a->boot_id, .oem = a->oem,
                              .interactive = interactive, .delta_okay = !a->o.no_delta && !a->delta_refused };
}

static int post_request(Agent *a, const AgentRequest *rq, OmahaResponse **ret) {
        if (!a->cfg.server[0])
                return agent_fail(a, -EDESTADDRREQ, "no update server configured (SERVER= in /etc/cairn/update.conf)");
        _cleanup_buf_ Buf req;
        buf_init(&req, OMAHA_MAX_BODY);
        int r = agent_omaha_request_xml(rq, &req);
        if (r < 0)
                return agent_fail(a, r, "cannot build the Omaha request: %s", strerror(-r));
        _cleanup_buf_ Buf resp;
        buf_init(&resp, OMAHA_MAX_BODY);
        r = agent_http_post(a->http, a->cfg.server, req.data, req.len, OMAHA_MAX_BODY, &resp);
        if (r < 0) {
                long st = agent_http_status(a->http);
                return agent_failc(a, st > 0 && st != 200 ? AGENT_EC_OMAHA_HTTP_BASE + (int)MIN(st, 999L) : AGENT_EC_OMAHA_REQUEST,
                             r, "update check: %s", agent_http_error(a->http));
        }
        r = omaha_response_parse(resp.data ? resp.data : "", resp.len, ret);
        if (r < 0)
                return agent_failc(a, AGENT_EC_OMAHA_XML_PARSE, r, "update server '%s' sent a malformed Omaha answer: %s",
                             a->cfg.server, r == -EBADMSG ? "not well-formed XML or not an Omaha <response>"
                                                          : omaha_parse_strerror(r));
        return 0;
}

/* Report an event; failures are only remembered, never fatal. */
void agent_send_event(Agent *a, int type, int result, int errorcode, const char *previous) {
        if (agent_cancelled())
                return; /* stopping: no new requests */
        AgentRequest rq;
        fill_request(a, &rq, false);
        rq.event_type = type;
        rq.event_result = result;
        rq.event_errorcode = errorcode;
        rq.previousversion = previous;
        rq.event_xml = a->event_xml;
        char saved[AGENT_ERROR_MAX];
        memcpy(saved, a->err, sizeof saved);
        int saved_code = a->errcode;
        OmahaResponse *resp = NULL;
        if (post_request(a, &rq, &resp) >= 0)
                free(resp);
        memcpy(a->err, saved, sizeof saved);
        a->errcode = saved_code;
}

int agent_check(Agent *a, bool interactive, AgentOffer *ret_offer) {
        a->err[0] = 0;
        AgentStatus before = a->st.status == AGENT_UPDATED_NEED_REBOOT ? AGENT_UPDATED_NEED_REBOOT : AGENT_IDLE;
        agent_set_status(a, AGENT_CHECKING);
        AgentRequest rq;
        fill_request(a, &rq, interactive);
        rq.updatecheck = rq.ping = true;
        _cleanup_free_ OmahaResponse *resp = NULL;
        int r = post_request(a, &rq, &resp);
        AgentOffer offer;
        if (r >= 0) {
                const char *what = NULL;
                r = agent_offer_from_response(resp, &offer, &what);
                if (r < 0)
                        agent_failc(a, AGENT_EC_OMAHA_RESPONSE_INVALID, r, "update server '%s' answered the check with %s",
                              a->cfg.server, what);
        }
        if (r < 0) {
                agent_set_status(a, before);
                return r;
        }
        a->st.last_check = (int64_t)time(NULL);
        a->poll_interval = offer.poll_interval;
        int would = 0;
        if (offer.update && omaha_version_cmp(offer.version, a->os_version) > 0 &&
            strcmp(offer.version, a->st.staged_version) != 0)
                would = 1;
        a->st.status = before;
        if (ret_offer)
                *ret_offer = offer;
        agent_set_status(a, before);
        return would;
}

