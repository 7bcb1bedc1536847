/* updater/agent/omaha-client.c — the agent's Omaha requests (update_engine's shape) and the checks that turn an answer into an offer. */
#include "agent.h"

#include "parse.h"

int agent_omaha_request_xml(const AgentRequest *r, Buf *out) {
        buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request protocol=\"3.0\""
                       " version=\"cairn-updated-1\" updaterversion=\"cairn-updated-1\"");
        buf_put_attr(out, "installsource", r->interactive ? "ondemandupdate" : "scheduler");
        buf_puts(out, " ismachine=\"1\">\n<os version=\"Cairn\" platform=\"Cairn\"");
        buf_printf(out, " sp=\"");
        buf_put_xml(out, r->version);
        buf_puts(out, "_x86_64\"></os>\n<app");
        buf_put_attr(out, "appid", r->appid);
        buf_put_attr(out, "version", r->version);
        buf_put_attr(out, "track", r->track);
        buf_put_attr(out, "bootid", r->bootid);
        buf_put_attr(out, "oem", r->oem);
        buf_put_attr(out, "machineid", r->machineid);
        buf_put_attr(out, "machinealias", "");
        buf_put_attr(out, "lang", "en-US");
        buf_put_attr(out, "board", r->board);
        buf_put_attr(out, "hardware_class", "");
        buf_put_attr(out, "delta_okay", r->delta_okay ? "true" : "false");
        buf_puts(out, ">");
        if (r->ping)
                buf_puts(out, "<ping active=\"1\"></ping>");
        if (r->updatecheck)
                buf_puts(out, "<updatecheck></updatecheck>");
        if (r->event_type > 0) {
                buf_printf(out, "<event eventtype=\"%d\" eventresult=\"%d\"", r->event_type, r->event_result);
                if (r->event_errorcode)
                        buf_printf(out, " errorcode=\"%d\"", r->event_errorcode);
                if (r->previousversion)
                        buf_put_attr(out, "previousversion", r->previousversion);
                buf_puts(out, ">");
                if (r->event_xml)
                        buf_puts(out, r->event_xml);
                buf_puts(out, "</event>");
        }
        buf_puts(out, "</app>\n</request>\n");
        return out->err;
}

static bool http_url(const char *u) {
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                return false;
        for (; *u; u++)
                if ((unsigned char)*u <= 0x20 || *u == 0x7f)
                        return false; /* no spaces or control characters: they would reach curl and the log */
        return true;
}

int agent_offer_from_response(const OmahaResponse *resp, AgentOffer *ret, const char **ret_what) {
        static _Thread_local char why[AGENT_ERROR_MAX];
        char esc[OMAHA_ATTR_MAX * 4 + 4];
        const char *what = NULL;
        AgentOffer o = { 0 };
        /* The app's own status first: "error-unknownApplication" and the like say why there is no updatecheck. */
        if (resp->app_status[0] && strcmp(resp->app_status, "ok") != 0) {
                snprintf(why, sizeof why, "app status \"%s\"", log_safe(esc, sizeof esc, resp->app_status));
                what = why;
        } else if (!resp->has_updatecheck)
                what = "no <updatecheck> in the answer";
        else if (strcmp(resp->uc_status, "noupdate") == 0) {
                o.poll_interval = resp->poll_interval;
                *ret = o;
                return 0;
        } else if (strcmp(resp->uc_status, "ok") != 0) {
                if (resp->uc_status[0]) {
                        snprintf(why, sizeof why, "updatecheck status \"%s\"",
                                 log_safe(esc, sizeof esc, resp->uc_status));
                        what = why;
                } else
                        what = "updatecheck without status";
        } else if (resp->n_urls == 0)
                what = "no <url codebase> in the answer";
        else if (!omaha_name_valid(resp->package_name, OMAHA_ATTR_MAX))
                what = "missing or invalid package name";
        else if (resp->package_size == 0)
                what = "missing or zero package size";
        else if (!omaha_version_valid(resp->version) || strlen(resp->version) > AGENT_VERSION_MAX)
                what = "missing or invalid manifest version";
        if (!what) {
                for (size_t i = 0; i < resp->n_urls && i < OMAHA_MAX_URLS; i++) {
                        const char *cb = resp->urls[i];
                        if (!http_url(cb))
                                continue; /* another <url> may still do */
                        size_t cl = strlen(cb);
                        snprintf(o.urls[o.n_urls], sizeof o.urls[o.n_urls], "%s%s%s", cb,
                                 cl && cb[cl - 1] == '/' ? "" : "/", resp->package_name);
                        o.n_urls++;
                }
                if (o.n_urls == 0)
                        what = "no codebase is an http(s) URL without spaces or control characters";
        }
        if (what) {
                if (ret_what)
                        *ret_what = what;
                return -EPROTO;
        }
        o.update = true;
        strcpy(o.version, resp->version);
        o.size = resp->package_size;
        o.poll_interval = resp->poll_interval;
        *ret = o;
        return 0;
}
