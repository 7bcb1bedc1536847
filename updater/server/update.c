/* updater/server/update.c — decides each Omaha app's answer (channel, rollout, pause, per-period limit) and records it. */
#include <ctype.h>
#include <stdarg.h>

#include "server.h"

/* Compare app ids case-insensitively, ignoring surrounding braces. */
static bool appid_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la >= 2 && a[0] == '{' && a[la - 1] == '}')
                a++, la -= 2;
        if (lb >= 2 && b[0] == '{' && b[lb - 1] == '}')
                b++, lb -= 2;
        return la == lb && strncasecmp(a, b, la) == 0;
}

static void add_note(char *note, size_t size, const char *fmt, ...) _printf_(3, 4);
static void add_note(char *note, size_t size, const char *fmt, ...) {
        size_t used = strnlen(note, size);
        if (used + 3 >= size)
                return;
        if (used)
                used += (size_t)snprintf(note + used, size - used, "; ");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(note + used, size - used, fmt, ap);
        va_end(ap);
}

typedef struct AppWork {
        OmahaAppAnswer ans;
        Channel ch;
        PayloadInfo pl;
        bool delta;        /* pl is the delta from the host's version */
        char codebase[600];
} AppWork;

int server_answer_omaha(Server *s, const OmahaRequest *req, const char *peer_ip, int64_t now, Buf *out,
                        char *note, size_t note_size) {
        AppWork w[OMAHA_MAX_APPS];
        OmahaAppAnswer answers[OMAHA_MAX_APPS];

        for (size_t i = 0; i < req->n_apps; i++) {
                const OmahaApp *app = &req->apps[i];
                AppWork *x = &w[i];
                memset(x, 0, sizeof *x);
                x->ans = (OmahaAppAnswer){ .appid = app->appid, .status = "ok", .ping = app->ping,
                                           .n_events = app->n_events };
                const char *what = NULL;
                if (omaha_app_validate(app, &what) < 0) {
                        x->ans.status = "error-invalidRequest";
                        x->ans.uc_status = app->updatecheck ? x->ans.status : NULL;
                        x->ans.ping = false;
                        x->ans.n_events = 0;
                        add_note(note, note_size, "app %zu: %s", i, what);
                        continue;
                }
                if (!appid_equal(app->appid, s->appid)) {
                        x->ans.status = "error-unknownApplication";
                        x->ans.uc_status = app->updatecheck ? x->ans.status : NULL;
                        x->ans.ping = false;
                        x->ans.n_events = 0;
                        add_note(note, note_size, "app %zu: unknown appid", i);
                        continue;
                }

                const char *channel = app->track[0] ? app->track : "stable";
                const char *answer = NULL;     /* recorded in the DB */
                bool want_grant = false;
                if (app->updatecheck) {
                        int r = channel_load_cached(s->channels, s->reldir_fd, channel, &x->ch);
                        if (r >= 0)
                                x->ans.poll_interval = x->ch.poll_interval; /* on every answer of the channel */
                        if (r == -ENOENT) {
                                x->ans.uc_status = "error-unknownChannel";
                                add_note(note, note_size, "channel '%s' does not exist", channel);
                        } else if (r < 0) {
                                x->ans.uc_status = "error-internal";
                                add_note(note, note_size, "channel file '%s/channels/%s' unreadable: %s", s->reldir,
                                         channel, reldir_strerror(r));
                        } else if (!x->ch.version[0]) {
                                x->ans.uc_status = "error-noPackage";
                                add_note(note, note_size, "channel '%s' has no release", channel);
                        } else if (omaha_version_cmp(app->version, x->ch.version) >= 0) {
                                x->ans.uc_status = "noupdate";
                        } else if (x->ch.paused) {
                                x->ans.uc_status = "noupdate";
                                answer = "paused";
                        } else if (!rollout_selected(&x->ch, app->machineid)) {
                                x->ans.uc_status = "noupdate";
                                answer = "rollout";
                        } else if ((r = payload_lookup(s->cache, s->reldir_fd, x->ch.version, app->board, &x->pl)) < 0) {
                                x->ans.uc_status = "error-payloadUnavailable";
                                add_note(note, note_size, "payload '%s/payloads/%s/cairn-%s-%s.cairn': %s", s->reldir,
                                         x->ch.version, x->ch.version, app->board, reldir_strerror(r));
                        } else {
                                x->ans.uc_status = "ok";
                                want_grant = true;
                                /* A host that can apply one gets the delta from its own version when there is one. */
                                PayloadInfo d;
                                if (app->delta_okay &&
                                    payload_lookup_delta(s->cache, s->reldir_fd, x->ch.version, app->version, app->board,
                                                         &d) >= 0) {
                                        x->pl = d;
                                        x->delta = true;
                                        answer = "delta";
                                }
                        }
                        if (!answer)
                                answer = x->ans.uc_status;
                }

                DbVisit v = {
                        .machine_id = app->machineid, .alias = app->machinealias, .appid = app->appid,
                        .version = app->version, .channel = channel, .board = app->board, .ip = peer_ip,
                        .now = now, .updatecheck = app->updatecheck, .answer = answer,
                        .grant_version = want_grant ? x->ch.version : NULL,
                        .period_start = want_grant ? channel_period_start(&x->ch, now) : 0,
                        .max_per_period = x->ch.max_per_period,
                        .events = app->events, .n_events = app->n_events,
                };
                bool granted = false;
                int r = server_db_visit(s->db, &v, &granted);
                if (r < 0) {
                        add_note(note, note_size, "database: %s", strerror(-r));
                        return r;
                }
                for (size_t i = 0; i < app->n_pcr_reports; i++) { /* measured boot (docs/server.md) */
                        const OmahaPcrReport *pr = &app->pcr_reports[i];
                        int pe = server_db_pcr_report(s->db, app->machineid, pr, now);
                        if (pe < 0)
                                add_note(note, note_size, "PCR report ignored: %s",
                                         pr->invalid ? pr->invalid : pe == -EINVAL ? "no <pcr>" : strerror(-pe));
                }
                if (want_grant && !granted)
                        x->ans.uc_status = "noupdate"; /* max per period reached: try again later */
                if (want_grant && granted) {
                        snprintf(x->codebase, sizeof x->codebase, "%s%s/%s", s->base_url, x->ch.version,
                                 x->delta ? "deltas/" : "");
                        x->ans.codebase = x->codebase;
                        x->ans.version = x->ch.version;
                        x->ans.package_name = x->pl.name;
                        x->ans.size = x->pl.size;
                        x->ans.sha256_b64 = x->pl.sha256_b64;
                        x->ans.sha1_b64 = x->pl.sha1_b64;
                }
        }
        for (size_t i = 0; i < req->n_apps; i++)
                answers[i] = w[i].ans;
        return omaha_response_write(out, SERVER_NAME, (long)(now % 86400), answers, req->n_apps);
}

int server_channels_json(Server *s, int64_t now, Buf *out) {
        char **names = NULL;
        int r = channel_list(s->reldir_fd, &names);
        if (r == -ENOENT) {
                buf_puts(out, "[]\n");
                return out->err;
        }
        if (r < 0)
                return r;
        buf_puts(out, "[");
        for (size_t i = 0; names[i]; i++) {
                Channel ch;
                buf_puts(out, i ? ",\n{" : "\n{");
                buf_puts(out, "\"name\":");
                buf_put_json(out, names[i]);
                r = channel_load(s->reldir_fd, names[i], &ch);
                if (r < 0) {
                        buf_puts(out, ",\"error\":");
                        buf_put_json(out, reldir_strerror(r));
                        buf_puts(out, "}");
                        continue;
                }
                buf_puts(out, ",\"version\":");
                if (ch.version[0])
                        buf_put_json(out, ch.version);
                else
                        buf_puts(out, "null");
                int64_t ps = channel_period_start(&ch, now);
                buf_printf(out, ",\"rollout\":%u,\"paused\":%s,\"max_per_period\":%u,\"period\":%u,\"period_start\":%lld",
                            ch.rollout, ch.paused ? "true" : "false", ch.max_per_period, ch.period, (long long)ps);
                if (ch.version[0]) {
                        DbChannelStats st;
                        r = server_db_channel_stats(s->db, ch.name, ch.version, ps, &st);
                        if (r < 0) {
                                strv_free(names);
                                return r;
                        }
                        buf_printf(out,
                                    ",\"granted_this_period\":%lld,\"granted_total\":%lld,\"instances\":%lld,"
                                    "\"instances_on_version\":%lld",
                                    (long long)st.granted_period, (long long)st.granted_total,
                                    (long long)st.instances, (long long)st.on_version);
                }
                buf_puts(out, "}");
        }
        strv_free(names);
        buf_puts(out, "\n]\n");
        return out->err;
}
