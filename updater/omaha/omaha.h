/* updater/omaha/omaha.h — Omaha v3 request parser (expat, bounded) and response writer, shared by cairn-server and the agent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

/* Limits on untrusted requests. Anything beyond them is rejected, never truncated. */
#define OMAHA_MAX_BODY (64u * 1024u)  /* bytes of XML in one request */
#define OMAHA_MAX_DEPTH 8             /* element nesting */
#define OMAHA_MAX_ELEMENTS 256        /* elements in one request */
#define OMAHA_MAX_ATTRS 32            /* attributes on one element */
#define OMAHA_MAX_APPS 8              /* <app> elements in one request */
#define OMAHA_MAX_EVENTS 8            /* <event> elements in one <app> */
#define OMAHA_ATTR_MAX 128            /* bytes of one stored attribute value */

/* Well-known event types and results (update_engine's omaha_request_action.h). */
enum {
        OMAHA_EVENT_UPDATE_COMPLETE = 3,
        OMAHA_EVENT_DOWNLOAD_STARTED = 13,
        OMAHA_EVENT_DOWNLOAD_FINISHED = 14,
        OMAHA_EVENT_INSTALLED = 800,
};
enum {
        OMAHA_RESULT_ERROR = 0,
        OMAHA_RESULT_SUCCESS = 1,
        OMAHA_RESULT_SUCCESS_REBOOT = 2,
        OMAHA_RESULT_DEFERRED = 9,
};

typedef struct OmahaEvent {
        int type;        /* -1 when missing or not a number */
        int result;      /* -1 when missing or not a number */
        int errorcode;   /* 0 when absent; -1 when present but not a number */
        char previousversion[OMAHA_ATTR_MAX + 1];
} OmahaEvent;

/* Cairn's measured-boot extension of <event> (docs/measured-boot.md "On the wire"): a child element
 *   <cairnpcrs kind="predicted|measured" slot="A|B" version="V"><pcr bank="sha256" index="8" value="HEX"/>…
 * that stock Omaha servers skip as an unknown child. At most OMAHA_MAX_PCR_REPORTS per <app> (over all its
 * events), OMAHA_MAX_PCRS <pcr> each. A report that breaks a rule is kept with invalid set (a static reason) and
 * its values dropped: the request itself stays good. */
#define OMAHA_MAX_PCR_REPORTS 2
#define OMAHA_MAX_PCRS 16
typedef struct OmahaPcr {
        char bank[8];                 /* sha1, sha256, sha384, sha512 */
        unsigned index;               /* 0..23 */
        char value[129];              /* lowercase hex of the bank's digest size */
} OmahaPcr;
typedef struct OmahaPcrReport {
        char kind[16];                /* "predicted" or "measured" */
        char slot[2];                 /* "A" or "B" */
        char version[OMAHA_ATTR_MAX + 1];
        int event;                    /* index of the <event> it was in */
        const char *invalid;          /* NULL: good */
        size_t n;
        OmahaPcr pcr[OMAHA_MAX_PCRS];
} OmahaPcrReport;

/* One <app>. A string attribute that was absent is "". */
typedef struct OmahaApp {
        char appid[OMAHA_ATTR_MAX + 1];
        char version[OMAHA_ATTR_MAX + 1];
        char track[OMAHA_ATTR_MAX + 1];
        char machineid[OMAHA_ATTR_MAX + 1];
        char machinealias[OMAHA_ATTR_MAX + 1];
        char board[OMAHA_ATTR_MAX + 1];
        char bootid[OMAHA_ATTR_MAX + 1];
        char oem[OMAHA_ATTR_MAX + 1];
        char alephversion[OMAHA_ATTR_MAX + 1];
        bool ping;
        bool updatecheck;
        bool delta_okay;        /* delta_okay="true": the host can apply a delta payload (update_engine's attribute) */
        size_t n_events;
        OmahaEvent events[OMAHA_MAX_EVENTS];
        size_t n_pcr_reports;
        OmahaPcrReport pcr_reports[OMAHA_MAX_PCR_REPORTS];
        bool pcr_reports_dropped;  /* more than OMAHA_MAX_PCR_REPORTS were sent; the extra ones were ignored */
} OmahaApp;

typedef struct OmahaRequest {
        char os_platform[OMAHA_ATTR_MAX + 1];
        char os_version[OMAHA_ATTR_MAX + 1];
        char os_sp[OMAHA_ATTR_MAX + 1];
        char installsource[OMAHA_ATTR_MAX + 1];
        size_t n_apps;
        OmahaApp apps[OMAHA_MAX_APPS];
} OmahaRequest;

/* Parse an Omaha v3 request. Errors:
 *   -EMSGSIZE         body larger than OMAHA_MAX_BODY
 *   -EBADMSG          not well-formed XML, or root is not <request>, or an element out of place
 *   -EPERM            a DOCTYPE or entity declaration (no DTDs, so no entity expansion at all)
 *   -EPROTONOSUPPORT  <request protocol> is not "3.0"
 *   -ELOOP            nesting deeper than OMAHA_MAX_DEPTH
 *   -E2BIG            too many elements, attributes, apps or events
 *   -ENAMETOOLONG     a stored attribute is longer than OMAHA_ATTR_MAX
 * On success *ret_req is a new request owned by the caller (free()). */
int omaha_request_parse(const char *untrusted, size_t len, OmahaRequest **ret_req) _warn_unused_result_;
/* A short human text for an omaha_request_parse() error. */
const char *omaha_parse_strerror(int r);

/* Check that an app carries what the server needs: appid always; machineid, version (dotted numeric)
 * and board for an updatecheck; machineid and numeric type/result for events; well-formed track.
 * Returns 0, or -EINVAL with *ret_what naming the problem ("missing machineid", "invalid version", …). */
int omaha_app_validate(const OmahaApp *app, const char **ret_what);

/* Dotted numeric versions: 1..8 components of 1..9 decimal digits ("1.2.10"). */
bool omaha_version_valid(const char *v);
/* <0, 0, >0 like strcmp, numerically per component; missing components count as 0 (1.2 == 1.2.0).
 * Both must be valid. */
int omaha_version_cmp(const char *a, const char *b);
/* A name usable as a channel, board or file name part: 1..max of [A-Za-z0-9._-], not starting with '.'. */
bool omaha_name_valid(const char *s, size_t max);
/* A machine id: 1..64 of [A-Za-z0-9{}-]. */
bool omaha_machineid_valid(const char *s);

/* One <app> of a response. */
typedef struct OmahaAppAnswer {
        const char *appid;      /* echoed back */
        const char *status;     /* "ok" or "error-…" */
        bool ping;              /* answer <ping status="ok"/> */
        const char *uc_status;  /* NULL: no <updatecheck>; else "noupdate", "ok" or "error-…" */
        unsigned poll_interval; /* > 0: updatecheck@PollInterval, seconds until the host's next check */
        /* Only for uc_status "ok": */
        const char *codebase;   /* URL the package name is appended to */
        const char *version;
        const char *package_name;
        uint64_t size;
        const char *sha256_b64; /* base64 SHA-256 of the whole payload file */
        const char *sha1_b64;   /* optional: base64 SHA-1 (classic Omaha package@hash; update_engine ignores it) */
        size_t n_events;        /* answer this many <event status="ok"/> */
} OmahaAppAnswer;

/* Append a whole <response protocol="3.0"> document to out. */
int omaha_response_write(Buf *out, const char *server, long daystart_elapsed, const OmahaAppAnswer *apps,
                         size_t n_apps);

/* ---- Response parser (agent side) ---- */

#define OMAHA_MAX_URLS 4              /* <url> elements kept (more are ignored) */
#define OMAHA_URL_MAX 1024            /* bytes of one codebase URL */

/* What the agent needs from a <response>: the first <app> only (update_engine does the same). Strings that were
 * absent are "". Nothing in here is trusted: the payload's own signature decides. */
typedef struct OmahaResponse {
        char app_status[OMAHA_ATTR_MAX + 1];
        bool has_updatecheck;
        char uc_status[OMAHA_ATTR_MAX + 1];   /* "noupdate", "ok", "error-…" */
        unsigned poll_interval;               /* updatecheck@PollInterval seconds, 0 when absent/invalid */
        size_t n_urls;
        char urls[OMAHA_MAX_URLS][OMAHA_URL_MAX + 1];
        char version[OMAHA_ATTR_MAX + 1];     /* manifest@version */
        char package_name[OMAHA_ATTR_MAX + 1];
        uint64_t package_size;                /* 0 when absent or not a number */
        char sha256_b64[OMAHA_ATTR_MAX + 1];  /* postinstall action@sha256 */
        size_t n_events;                      /* <event status="ok"> acknowledgements */
} OmahaResponse;

/* Parse an Omaha v3 <response>. Same limits and errors as omaha_request_parse() (root must be <response
 * protocol="3.0">); a URL longer than OMAHA_URL_MAX is -ENAMETOOLONG; a document without <app> is -EBADMSG. */
int omaha_response_parse(const char *untrusted, size_t len, OmahaResponse **ret_resp) _warn_unused_result_;
