/* updater/omaha/omaha.c — Omaha v3 request parsing with expat (no DTDs, bounded everything) and the response writer. */
#include "omaha.h"

#include <expat.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "parse.h"

/* What both parsers share: the parser and the first reason to stop. Must be the first member of their states,
 * so the hardening handlers below serve both. */
typedef struct XmlCore {
        XML_Parser parser;
        int error; /* our own reason to stop, as -errno */
} XmlCore;

static void xml_stop(XmlCore *x, int error) {
        if (!x->error)
                x->error = error;
        XML_StopParser(x->parser, XML_FALSE);
}

/* No DTDs and no entities, ever: they are refused where they start. */
static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset) {
        xml_stop(ud, -EPERM);
}

static void on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int value_len,
                      const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
                      const XML_Char *notation) {
        xml_stop(ud, -EPERM);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(XML_Parser, XML_ParserFree);

/* Parse untrusted[0..len) with expat set up the one hardened way; x is the state's XmlCore (its first member).
 * Returns the handlers' error, -EBADMSG for malformed XML, else 0. */
static int xml_parse(const char *untrusted, size_t len, XmlCore *x, XML_StartElementHandler start,
                     XML_EndElementHandler end) {
        if (len > OMAHA_MAX_BODY || len > INT_MAX)
                return -EMSGSIZE;
        _cleanup_(XML_ParserFreep) XML_Parser p = XML_ParserCreate(NULL);
        if (!p)
                return -ENOMEM;
        x->parser = p;
        XML_SetUserData(p, x);
        XML_SetElementHandler(p, start, end);
        XML_SetStartDoctypeDeclHandler(p, on_doctype);
        XML_SetEntityDeclHandler(p, on_entity);
        XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
        enum XML_Status st = XML_Parse(p, untrusted, (int)len, XML_TRUE);
        x->parser = NULL;
        if (x->error)
                return x->error;
        return st == XML_STATUS_OK ? 0 : -EBADMSG;
}

typedef struct ParseState {
        XmlCore x;
        OmahaRequest *req;
        OmahaApp *app;     /* the <app> being parsed, or NULL */
        bool in_event;     /* inside an <event> of app */
        OmahaPcrReport *pcrs; /* the <cairnpcrs> being parsed, or NULL */
        int depth;
        int elements;
} ParseState;

static void stop(ParseState *s, int error) {
        xml_stop(&s->x, error);
}

static int copy_attr(char *dst, const char *src) {
        size_t n = strlen(src);
        if (n > OMAHA_ATTR_MAX)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}

/* Parse a decimal int in [INT_MIN/2, INT_MAX]; -1 when absent-or-garbage is asked for by the caller. */
static int parse_int(const char *s, int *ret) {
        if (!s || !*s)
                return -EINVAL;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < INT_MIN || v > INT_MAX)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

/* ---- <cairnpcrs> (measured boot; omaha.h) ---- */

static size_t pcr_bank_size(const char *b) {
        return strcmp(b, "sha1") == 0     ? 20
               : strcmp(b, "sha256") == 0 ? 32
               : strcmp(b, "sha384") == 0 ? 48
               : strcmp(b, "sha512") == 0 ? 64
                                          : 0;
}

static void pcr_invalid(OmahaPcrReport *p, const char *why) {
        if (!p->invalid)
                p->invalid = why;
        p->n = 0;
}

static void pcr_report_start(ParseState *s, const XML_Char **attrs) {
        OmahaApp *app = s->app;
        if (app->n_pcr_reports >= OMAHA_MAX_PCR_REPORTS) {
                app->pcr_reports_dropped = true;
                return;
        }
        OmahaPcrReport *p = &app->pcr_reports[app->n_pcr_reports++];
        *p = (OmahaPcrReport){ .event = (int)app->n_events - 1 };
        s->pcrs = p;
        bool has_kind = false, has_slot = false, has_version = false;
        for (const XML_Char **a = attrs; a[0]; a += 2) {
                if (strcmp(a[0], "kind") == 0) {
                        has_kind = true;
                        if (strcmp(a[1], "predicted") != 0 && strcmp(a[1], "measured") != 0)
                                pcr_invalid(p, "kind is not \"predicted\" or \"measured\"");
                        else
                                strcpy(p->kind, a[1]);
                } else if (strcmp(a[0], "slot") == 0) {
                        has_slot = true;
                        if (strcmp(a[1], "A") != 0 && strcmp(a[1], "B") != 0)
                                pcr_invalid(p, "slot is not A or B");
                        else
                                strcpy(p->slot, a[1]);
                } else if (strcmp(a[0], "version") == 0) {
                        has_version = true;
                        if (strlen(a[1]) > OMAHA_ATTR_MAX || !omaha_version_valid(a[1]))
                                pcr_invalid(p, "version is not a dotted version");
                        else
                                strcpy(p->version, a[1]);
                }
        }
        if (!has_kind || !has_slot || !has_version)
                pcr_invalid(p, "lacks kind, slot or version");
}

static void pcr_add(OmahaPcrReport *p, const XML_Char **attrs) {
        if (p->invalid)
                return;
        const char *bank = NULL, *index = NULL, *value = NULL;
        for (const XML_Char **a = attrs; a[0]; a += 2) {
                if (strcmp(a[0], "bank") == 0)
                        bank = a[1];
                else if (strcmp(a[0], "index") == 0)
                        index = a[1];
                else if (strcmp(a[0], "value") == 0)
                        value = a[1];
        }
        if (!bank || !index || !value)
                return pcr_invalid(p, "a <pcr> lacks bank, index or value");
        size_t size = pcr_bank_size(bank);
        if (!size)
                return pcr_invalid(p, "a <pcr> names an unknown bank");
        int idx;
        if (parse_int(index, &idx) < 0 || idx < 0 || idx > 23 || (index[0] == '0' && index[1]) || index[0] == '+' ||
            index[0] == '-')
                return pcr_invalid(p, "a <pcr> index is not 0..23");
        if (strlen(value) != 2 * size || strspn(value, "0123456789abcdef") != 2 * size)
                return pcr_invalid(p, "a <pcr> value is not lowercase hex of the bank's digest size");
        for (size_t i = 0; i < p->n; i++)
                if (p->pcr[i].index == (unsigned)idx && strcmp(p->pcr[i].bank, bank) == 0)
                        return pcr_invalid(p, "a <pcr> is given twice");
        if (p->n >= OMAHA_MAX_PCRS)
                return pcr_invalid(p, "more than 16 <pcr>");
        OmahaPcr *c = &p->pcr[p->n++];
        strcpy(c->bank, bank);
        c->index = (unsigned)idx;
        memcpy(c->value, value, 2 * size + 1);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
        ParseState *s = ud;
        if (s->x.error)
                return;
        if (++s->depth > OMAHA_MAX_DEPTH)
                return stop(s, -ELOOP);
        if (++s->elements > OMAHA_MAX_ELEMENTS)
                return stop(s, -E2BIG);
        size_t n_attrs = 0;
        for (const XML_Char **a = attrs; a[0]; a += 2)
                n_attrs++;
        if (n_attrs > OMAHA_MAX_ATTRS)
                return stop(s, -E2BIG);

        int r = 0;
        if (s->depth == 1) {
                if (strcmp(name, "request") != 0)
                        return stop(s, -EBADMSG);
                const char *protocol = NULL;
                for (const XML_Char **a = attrs; a[0]; a += 2) {
                        if (strcmp(a[0], "protocol") == 0)
                                protocol = a[1];
                        else if (strcmp(a[0], "installsource") == 0)
                                r = r ?: copy_attr(s->req->installsource, a[1]);
                }
                if (!protocol || strcmp(protocol, "3.0") != 0)
                        return stop(s, -EPROTONOSUPPORT);
        } else if (s->depth == 2 && strcmp(name, "os") == 0) {
                for (const XML_Char **a = attrs; a[0]; a += 2) {
                        if (strcmp(a[0], "platform") == 0)
                                r = r ?: copy_attr(s->req->os_platform, a[1]);
                        else if (strcmp(a[0], "version") == 0)
                                r = r ?: copy_attr(s->req->os_version, a[1]);
                        else if (strcmp(a[0], "sp") == 0)
                                r = r ?: copy_attr(s->req->os_sp, a[1]);
                }
        } else if (s->depth == 2 && strcmp(name, "app") == 0) {
                if (s->req->n_apps >= OMAHA_MAX_APPS)
                        return stop(s, -E2BIG);
                OmahaApp *app = &s->req->apps[s->req->n_apps++];
                s->app = app;
                static const struct {
                        const char *name;
                        size_t off;
                } fields[] = {
                        { "appid", offsetof(OmahaApp, appid) },
                        { "version", offsetof(OmahaApp, version) },
                        { "track", offsetof(OmahaApp, track) },
                        { "machineid", offsetof(OmahaApp, machineid) },
                        { "machinealias", offsetof(OmahaApp, machinealias) },
                        { "board", offsetof(OmahaApp, board) },
                        { "bootid", offsetof(OmahaApp, bootid) },
                        { "oem", offsetof(OmahaApp, oem) },
                        { "alephversion", offsetof(OmahaApp, alephversion) },
                };
                for (const XML_Char **a = attrs; a[0]; a += 2) {
                        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                                if (strcmp(a[0], fields[i].name) == 0)
                                        r = r ?: copy_attr((char *)app + fields[i].off, a[1]);
                        if (strcmp(a[0], "delta_okay") == 0)
                                app->delta_okay = strcmp(a[1], "true") == 0;
                }
        } else if (s->depth == 3 && s->app) {
                if (strcmp(name, "ping") == 0)
                        s->app->ping = true;
                else if (strcmp(name, "updatecheck") == 0)
                        s->app->updatecheck = true;
                else if (strcmp(name, "event") == 0) {
                        if (s->app->n_events >= OMAHA_MAX_EVENTS)
                                return stop(s, -E2BIG);
                        OmahaEvent *ev = &s->app->events[s->app->n_events++];
                        s->in_event = true;
                        ev->type = ev->result = -1;
                        ev->errorcode = 0;
                        for (const XML_Char **a = attrs; a[0]; a += 2) {
                                if (strcmp(a[0], "eventtype") == 0) {
                                        if (parse_int(a[1], &ev->type) < 0 || ev->type < 0)
                                                ev->type = -1;
                                } else if (strcmp(a[0], "eventresult") == 0) {
                                        if (parse_int(a[1], &ev->result) < 0 || ev->result < 0)
                                                ev->result = -1;
                                } else if (strcmp(a[0], "errorcode") == 0) {
                                        if (parse_int(a[1], &ev->errorcode) < 0 || ev->errorcode < 0)
                                                ev->errorcode = -1;
                                } else if (strcmp(a[0], "previousversion") == 0)
                                        r = r ?: copy_attr(ev->previousversion, a[1]);
                        }
                }
                /* Other children of <app> (e.g. <data>) are ignored. */
        } else if (s->depth == 4 && s->app && s->in_event && strcmp(name, "cairnpcrs") == 0) {
                pcr_report_start(s, attrs);
        } else if (s->depth == 5 && s->pcrs && strcmp(name, "pcr") == 0) {
                pcr_add(s->pcrs, attrs);
        } else if (s->depth == 2 || (s->depth >= 3 && !s->app)) {
                /* Unknown elements under <request> and their subtrees are ignored. */
        }
        if (r < 0)
                stop(s, r);
}

static void on_end(void *ud, const XML_Char *name) {
        ParseState *s = ud;
        if (s->depth == 2)
                s->app = NULL;
        if (s->depth == 3)
                s->in_event = false;
        if (s->depth == 4)
                s->pcrs = NULL;
        s->depth--;
}

int omaha_request_parse(const char *untrusted, size_t len, OmahaRequest **ret_req) {
        if (len > OMAHA_MAX_BODY)
                return -EMSGSIZE;
        _cleanup_free_ OmahaRequest *req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        ParseState s = { .req = req };
        int r = xml_parse(untrusted, len, &s.x, on_start, on_end);
        if (r < 0)
                return r;
        if (s.elements == 0)
                return -EBADMSG;
        *ret_req = TAKE_PTR(req);
        return 0;
}

const char *omaha_parse_strerror(int r) {
        switch (r) {
        case -EMSGSIZE:
                return "request body too large";
        case -EBADMSG:
                return "malformed XML or not an Omaha <request>";
        case -EPERM:
                return "DOCTYPE and entity declarations are not allowed";
        case -EPROTONOSUPPORT:
                return "not an Omaha protocol 3.0 request";
        case -ELOOP:
                return "elements nested too deeply";
        case -E2BIG:
                return "too many elements, attributes, apps or events";
        case -ENAMETOOLONG:
                return "attribute value too long";
        case -ENOMEM:
                return "out of memory";
        default:
                return "invalid request";
        }
}

int omaha_app_validate(const OmahaApp *app, const char **ret_what) {
        const char *what = NULL;
        if (!app->appid[0])
                what = "missing appid";
        else if ((app->updatecheck || app->n_events > 0 || app->ping) && !app->machineid[0])
                what = "missing machineid";
        else if (app->machineid[0] && !omaha_machineid_valid(app->machineid))
                what = "invalid machineid";
        else if (app->updatecheck && !app->version[0])
                what = "missing version";
        else if (app->version[0] && !omaha_version_valid(app->version))
                what = "invalid version";
        else if (app->updatecheck && !app->board[0])
                what = "missing board";
        else if (app->board[0] && !omaha_name_valid(app->board, 64))
                what = "invalid board";
        else if (app->track[0] && !omaha_name_valid(app->track, 64))
                what = "invalid track";
        for (size_t i = 0; !what && i < app->n_events; i++) {
                const OmahaEvent *ev = &app->events[i];
                if (ev->type < 0)
                        what = "missing or invalid eventtype";
                else if (ev->result < 0)
                        what = "missing or invalid eventresult";
                else if (ev->errorcode < 0)
                        what = "invalid errorcode";
        }
        if (what) {
                if (ret_what)
                        *ret_what = what;
                return -EINVAL;
        }
        return 0;
}

/* ---- output buffer ---- */

/* ---- response writer ---- */

int omaha_response_write(Buf *out, const char *server, long daystart_elapsed, const OmahaAppAnswer *apps,
                         size_t n_apps) {
        buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response protocol=\"3.0\"");
        buf_put_attr(out, "server", server);
        buf_printf(out, "><daystart elapsed_seconds=\"%ld\"></daystart>", daystart_elapsed);
        for (size_t i = 0; i < n_apps; i++) {
                const OmahaAppAnswer *a = &apps[i];
                buf_puts(out, "<app");
                buf_put_attr(out, "appid", a->appid);
                buf_put_attr(out, "status", a->status);
                buf_puts(out, ">");
                if (a->ping)
                        buf_puts(out, "<ping status=\"ok\"></ping>");
                if (a->uc_status) {
                        buf_puts(out, "<updatecheck");
                        buf_put_attr(out, "status", a->uc_status);
                        if (a->poll_interval)
                                buf_printf(out, " PollInterval=\"%u\"", a->poll_interval);
                        buf_puts(out, ">");
                        if (strcmp(a->uc_status, "ok") == 0) {
                                buf_puts(out, "<urls><url");
                                buf_put_attr(out, "codebase", a->codebase);
                                buf_puts(out, "></url></urls><manifest");
                                buf_put_attr(out, "version", a->version);
                                buf_puts(out, "><packages><package");
                                buf_put_attr(out, "name", a->package_name);
                                buf_printf(out, " size=\"%" PRIu64 "\"", a->size);
                                if (a->sha1_b64)
                                        buf_put_attr(out, "hash", a->sha1_b64);
                                buf_puts(out, " required=\"true\"></package></packages><actions><action event=\"postinstall\"");
                                buf_put_attr(out, "sha256", a->sha256_b64);
                                buf_puts(out, " DisablePayloadBackoff=\"true\"></action></actions></manifest>");
                        }
                        buf_puts(out, "</updatecheck>");
                }
                for (size_t e = 0; e < a->n_events; e++)
                        buf_puts(out, "<event status=\"ok\"></event>");
                buf_puts(out, "</app>");
        }
        buf_puts(out, "</response>\n");
        return out->err;
}

/* ---- response parser (agent side) ---- */

typedef struct RespState {
        XmlCore x;
        OmahaResponse *resp;
        int depth;
        int elements;
        int apps;        /* <app> elements seen; only the first is read */
        bool in_app, in_uc, in_manifest;
        bool got_package;
} RespState;

static void rstop(RespState *s, int error) {
        xml_stop(&s->x, error);
}

static const char *find_attr(const XML_Char **attrs, const char *name) {
        for (const XML_Char **a = attrs; a[0]; a += 2)
                if (strcmp(a[0], name) == 0)
                        return a[1];
        return NULL;
}

static int copy_opt(char *dst, const char *src, size_t max) {
        if (!src)
                return 0;
        size_t n = strlen(src);
        if (n > max)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}


static void on_rstart(void *ud, const XML_Char *name, const XML_Char **attrs) {
        RespState *s = ud;
        if (s->x.error)
                return;
        if (++s->depth > OMAHA_MAX_DEPTH)
                return rstop(s, -ELOOP);
        if (++s->elements > OMAHA_MAX_ELEMENTS)
                return rstop(s, -E2BIG);
        size_t n_attrs = 0;
        for (const XML_Char **a = attrs; a[0]; a += 2)
                n_attrs++;
        if (n_attrs > OMAHA_MAX_ATTRS)
                return rstop(s, -E2BIG);

        OmahaResponse *r = s->resp;
        int e = 0;
        if (s->depth == 1) {
                if (strcmp(name, "response") != 0)
                        return rstop(s, -EBADMSG);
                const char *protocol = find_attr(attrs, "protocol");
                if (!protocol || strcmp(protocol, "3.0") != 0)
                        return rstop(s, -EPROTONOSUPPORT);
        } else if (s->depth == 2 && strcmp(name, "app") == 0) {
                if (++s->apps > OMAHA_MAX_APPS)
                        return rstop(s, -E2BIG);
                s->in_app = s->apps == 1;
                if (s->in_app)
                        e = copy_opt(r->app_status, find_attr(attrs, "status"), OMAHA_ATTR_MAX);
        } else if (!s->in_app) {
                /* outside the first <app>: ignored */
        } else if (s->depth == 3 && strcmp(name, "updatecheck") == 0) {
                s->in_uc = true;
                r->has_updatecheck = true;
                e = copy_opt(r->uc_status, find_attr(attrs, "status"), OMAHA_ATTR_MAX);
                unsigned v; /* absent, not a number or out of range: no PollInterval */
                if (parse_unsigned_range(find_attr(attrs, "PollInterval"), 0, 7 * 24 * 3600, &v) >= 0)
                        r->poll_interval = v;
        } else if (s->depth == 3 && strcmp(name, "event") == 0) {
                r->n_events++;
        } else if (s->in_uc && s->depth == 5 && strcmp(name, "url") == 0) {
                const char *cb = find_attr(attrs, "codebase");
                if (cb && r->n_urls < OMAHA_MAX_URLS) {
                        e = copy_opt(r->urls[r->n_urls], cb, OMAHA_URL_MAX);
                        if (e >= 0)
                                r->n_urls++;
                }
        } else if (s->in_uc && s->depth == 4 && strcmp(name, "manifest") == 0) {
                s->in_manifest = true;
                e = copy_opt(r->version, find_attr(attrs, "version"), OMAHA_ATTR_MAX);
        } else if (s->in_manifest && s->depth == 6 && strcmp(name, "package") == 0) {
                if (!s->got_package) { /* only the first package is used */
                        s->got_package = true;
                        e = copy_opt(r->package_name, find_attr(attrs, "name"), OMAHA_ATTR_MAX);
                        uint64_t v; /* 0 (refused by the agent) when absent, not a number or beyond 2^63-1 */
                        if (parse_u64_range(find_attr(attrs, "size"), 1, INT64_MAX, &v) >= 0)
                                r->package_size = v;
                }
        } else if (s->in_manifest && s->depth == 6 && strcmp(name, "action") == 0) {
                const char *ev = find_attr(attrs, "event");
                if (ev && strcmp(ev, "postinstall") == 0)
                        e = copy_opt(r->sha256_b64, find_attr(attrs, "sha256"), OMAHA_ATTR_MAX);
        }
        if (e < 0)
                rstop(s, e);
}

static void on_rend(void *ud, const XML_Char *name) {
        RespState *s = ud;
        if (s->depth == 2)
                s->in_app = false;
        else if (s->depth == 3)
                s->in_uc = false;
        else if (s->depth == 4)
                s->in_manifest = false;
        s->depth--;
}

int omaha_response_parse(const char *untrusted, size_t len, OmahaResponse **ret_resp) {
        if (len > OMAHA_MAX_BODY)
                return -EMSGSIZE;
        _cleanup_free_ OmahaResponse *resp = calloc(1, sizeof *resp);
        if (!resp)
                return -ENOMEM;
        RespState s = { .resp = resp };
        int r = xml_parse(untrusted, len, &s.x, on_rstart, on_rend);
        if (r < 0)
                return r;
        if (s.apps == 0)
                return -EBADMSG;
        *ret_resp = TAKE_PTR(resp);
        return 0;
}
