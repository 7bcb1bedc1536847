/* updater/agent-omaha.c — the agent's Omaha requests (update_engine's shape) and the checks that turn an answer into an offer. */
#include "agent.h"

#include <openssl/evp.h>

static void attr(OmahaBuf *b, const char *name, const char *value) {
        obuf_printf(b, " %s=\"", name);
        obuf_put_xml(b, value ? value : "");
        obuf_put(b, "\"", 1);
}

int agent_omaha_request_xml(const AgentRequest *r, OmahaBuf *out) {
        obuf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request protocol=\"3.0\""
                       " version=\"cairn-updated-1\" updaterversion=\"cairn-updated-1\"");
        attr(out, "installsource", r->interactive ? "ondemandupdate" : "scheduler");
        obuf_puts(out, " ismachine=\"1\">\n<os version=\"Cairn\" platform=\"Cairn\"");
        obuf_printf(out, " sp=\"");
        obuf_put_xml(out, r->version);
        obuf_puts(out, "_x86_64\"></os>\n<app");
        attr(out, "appid", r->appid);
        attr(out, "version", r->version);
        attr(out, "track", r->track);
        attr(out, "bootid", r->bootid);
        attr(out, "oem", r->oem);
        attr(out, "machineid", r->machineid);
        attr(out, "machinealias", "");
        attr(out, "lang", "en-US");
        attr(out, "board", r->board);
        attr(out, "hardware_class", "");
        attr(out, "delta_okay", "false");
        obuf_puts(out, ">");
        if (r->ping)
                obuf_puts(out, "<ping active=\"1\"></ping>");
        if (r->updatecheck)
                obuf_puts(out, "<updatecheck></updatecheck>");
        if (r->event_type > 0) {
                obuf_printf(out, "<event eventtype=\"%d\" eventresult=\"%d\"", r->event_type, r->event_result);
                if (r->event_errorcode)
                        obuf_printf(out, " errorcode=\"%d\"", r->event_errorcode);
                if (r->previousversion)
                        attr(out, "previousversion", r->previousversion);
                obuf_puts(out, "></event>");
        }
        obuf_puts(out, "</app>\n</request>\n");
        return out->err;
}

static int b64_sha256(const char *s, uint8_t out[SHA256_SIZE]) {
        size_t n = strlen(s);
        if (n != 44 || s[43] != '=' || s[42] == '=')
                return -EINVAL;
        unsigned char buf[33];
        int len = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
        if (len != 33) /* 44 chars decode to 33 bytes, the last one padding */
                return -EINVAL;
        memcpy(out, buf, SHA256_SIZE);
        return 0;
}

int agent_offer_from_response(const OmahaResponse *resp, AgentOffer *ret, const char **ret_what) {
        const char *what = NULL;
        AgentOffer o = { 0 };
        if (!resp->has_updatecheck)
                what = "no <updatecheck> in the answer";
        else if (strcmp(resp->uc_status, "noupdate") == 0) {
                o.poll_interval = resp->poll_interval;
                *ret = o;
                return 0;
        } else if (strcmp(resp->uc_status, "ok") != 0)
                what = resp->uc_status[0] ? resp->uc_status : "updatecheck without status";
        else if (resp->n_urls == 0)
                what = "no <url codebase> in the answer";
        else if (strncmp(resp->urls[0], "http://", 7) != 0 && strncmp(resp->urls[0], "https://", 8) != 0)
                what = "codebase is not an http(s) URL";
        else if (!omaha_name_valid(resp->package_name, OMAHA_ATTR_MAX))
                what = "missing or invalid package name";
        else if (resp->package_size == 0)
                what = "missing or zero package size";
        else if (!omaha_version_valid(resp->version) || strlen(resp->version) > AGENT_VERSION_MAX)
                what = "missing or invalid manifest version";
        else if (b64_sha256(resp->sha256_b64, o.sha256) < 0)
                what = "missing or invalid postinstall sha256";
        if (what) {
                if (ret_what)
                        *ret_what = what;
                return -EPROTO;
        }
        o.update = true;
        strcpy(o.version, resp->version);
        size_t cl = strlen(resp->urls[0]);
        snprintf(o.url, sizeof o.url, "%s%s%s", resp->urls[0], cl && resp->urls[0][cl - 1] == '/' ? "" : "/",
                 resp->package_name);
        o.size = resp->package_size;
        o.poll_interval = resp->poll_interval;
        *ret = o;
        return 0;
}
