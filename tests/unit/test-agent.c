/* tests/unit/test-agent.c — the agent's pure parts: config precedence, state file, Omaha request/response, offer checks,
 * jitter/backoff bounds, delta planning against a real payload, and the health gate. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "agent/agent.h"
#include "fileio.h"

static void put(const char *rel, const char *text) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", unit_tmpdir(), rel);
        for (char *s = p + strlen(unit_tmpdir()) + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        mkdir(p, 0755);
                        *s = '/';
                }
        CHECK_EQ(write_file_atomic(p, text, strlen(text), 0755), 0);
}

static void test_config_precedence(void) {
        put("cfg/usr/share/cairn/update.conf", "GROUP=stable\nSERVER=http://usr.example/v1/update/\n"
                                               "DOWNLOAD_RATE_LIMIT=1M\nCHECK_INTERVAL=7200\n");
        put("cfg/oem/update.conf", "# oem\nGROUP=beta\nPROXY=http://proxy:3128\n");
        put("cfg/etc/cairn/update.conf", "  GROUP = \"alpha\"  \nREBOOT_STRATEGY=off\nUNKNOWN_KEY=whatever\n");
        char root[600];
        snprintf(root, sizeof root, "%s/cfg", unit_tmpdir());
        AgentConfig c;
        agent_config_init(&c);
        CHECK_STREQ(c.group, "stable");
        CHECK_EQ(c.reboot_strategy, AGENT_REBOOT_REBOOT);
        CHECK_EQ(agent_config_load(&c, root, NULL), 0);
        CHECK_STREQ(c.group, "alpha");                         /* /etc wins over OEM wins over /usr */
        CHECK_STREQ(c.server, "http://usr.example/v1/update/"); /* only set in /usr */
        CHECK_STREQ(c.proxy, "http://proxy:3128");              /* only set by OEM */
        CHECK_EQ(c.rate_limit, 1 << 20);
        CHECK_EQ(c.check_interval, 7200);
        CHECK_EQ(c.reboot_strategy, AGENT_REBOOT_OFF);

        /* A bad value names its line and leaves the config untouched. */
        put("cfg/etc/cairn/update.conf", "GROUP=ok\nDOWNLOAD_RATE_LIMIT=fast\n");
        AgentConfig d;
        agent_config_init(&d);
        AgentConfigError e = { 0 };
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        CHECK_EQ(e.line, 2);
        CHECK(e.path && strstr(e.path, "/etc/cairn/update.conf"));
        CHECK_STREQ(e.key, "DOWNLOAD_RATE_LIMIT");
        CHECK_STREQ(e.value, "fast");
        CHECK_STREQ(d.group, "stable");
        /* The cluster-lock strategies; fleetlock needs its server. */
        put("cfg/etc/cairn/update.conf", "REBOOT_STRATEGY=etcd-lock\n");
        CHECK_EQ(agent_config_load(&d, root, &e), 0);
        CHECK_EQ(d.reboot_strategy, AGENT_REBOOT_ETCD_LOCK);
        put("cfg/etc/cairn/update.conf", "REBOOT_STRATEGY=fleetlock\n");
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        CHECK_STREQ(e.key, "REBOOT_STRATEGY");
        put("cfg/etc/cairn/update.conf", "REBOOT_STRATEGY=sometimes\n");
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        put("cfg/etc/cairn/update.conf", "SERVER=ftp://x/\n");
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        put("cfg/etc/cairn/update.conf", "GROUP=../etc\n");
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        put("cfg/etc/cairn/update.conf", "no equals sign\n");
        CHECK_EQ(agent_config_load(&d, root, &e), -EINVAL);
        CHECK_EQ(e.line, 1);
        CHECK_STREQ(e.key, "");
        /* Missing files are fine. */
        agent_config_init(&d);
        CHECK_EQ(agent_config_load(&d, "/nonexistent-root", NULL), 0);
        CHECK_STREQ(d.group, "stable");
}

static void test_state_roundtrip(void) {
        AgentState s;
        agent_state_init(&s);
        s.status = AGENT_UPDATED_NEED_REBOOT;
        strcpy(s.current_version, "1.0.0");
        strcpy(s.new_version, "2.0.0");
        s.new_size = 123456789;
        s.chunks_done = 7;
        s.chunks_total = 9;
        s.last_check = 1700000000;
        strcpy(s.last_error, "line one\nline two");
        s.staged_slot = 1;
        strcpy(s.staged_version, "2.0.0");
        strcpy(s.staged_boot_id, "b00t");
        agent_state_add_failed(&s, "1.5.0");
        agent_state_add_failed(&s, "1.6.0");
        agent_state_add_failed(&s, "1.5.0"); /* no duplicate */
        s.resume_slot = 0;
        s.resume_next = 42;
        memset(s.resume_image_sha256, 0xab, SHA256_SIZE);
        char dir[600];
        snprintf(dir, sizeof dir, "%s/state", unit_tmpdir());
        mkdir(dir, 0755);
        CHECK_EQ(agent_state_save(&s, dir), 0);
        AgentState t;
        CHECK_EQ(agent_state_load(&t, dir), 0);
        CHECK_EQ(t.status, AGENT_UPDATED_NEED_REBOOT);
        CHECK_STREQ(t.new_version, "2.0.0");
        CHECK_EQ(t.new_size, 123456789);
        CHECK_EQ(t.chunks_done, 7);
        CHECK_EQ(t.last_check, 1700000000);
        CHECK_STREQ(t.last_error, "line one line two"); /* one line in the file */
        CHECK_EQ(t.staged_slot, 1);
        CHECK_STREQ(t.staged_boot_id, "b00t");
        CHECK_EQ(t.n_failed, 2);
        CHECK(agent_state_is_failed(&t, "1.6.0"));
        CHECK(!agent_state_is_failed(&t, "2.0.0"));
        CHECK_EQ(t.resume_slot, 0);
        CHECK_EQ(t.resume_next, 42);
        CHECK_EQ(t.resume_image_sha256[31], 0xab);
        /* No temp files left behind by the atomic write. */
        char tmpl[700];
        snprintf(tmpl, sizeof tmpl, "%s/state", dir);
        struct stat st;
        CHECK_EQ(stat(tmpl, &st), 0);

        /* Missing file: fresh state. Corrupt: refused. */
        char empty[600];
        snprintf(empty, sizeof empty, "%s/nostate", unit_tmpdir());
        CHECK_EQ(agent_state_load(&t, empty), 0);
        CHECK_EQ(t.status, AGENT_IDLE);
        CHECK_EQ(t.staged_slot, -1);
        /* Not KEY=VALUE: the file is corrupt. */
        CHECK_EQ(agent_state_parse(&t, "garbage\n", 8), -EBADMSG);
        CHECK_EQ(agent_state_parse(&t, "A=\0\n", 4), -EBADMSG);
        /* A bad value resets that field (to its default) with a note naming key and value; never a failure. */
        static const struct {
                const char *text;
                const char *key;
        } resets[] = {
                { "STATE=DANCING\n", "STATE=\"DANCING\"" },
                { "CHUNKS_DONE=-1\n", "CHUNKS_DONE=\"-1\"" },
                { "CHUNKS_DONE=99999999999\n", "CHUNKS_DONE=\"99999999999\"" },
                { "STAGED_SLOT=C\n", "STAGED_SLOT=\"C\"" },
                { "RESUME_SHA256=zz\n", "RESUME_SHA256=\"zz\"" },
                { "FAILED=../x\n", "FAILED=\"../x\"" },
                { "LAST_CHECK=9223372036854775807\n", "LAST_CHECK=\"9223372036854775807\" is out of range" },
                { "LAST_CHECK=253402300800\n", "LAST_CHECK=\"253402300800\"" },
                { "LAST_CHECK=18446744073709551616\n", "LAST_CHECK=" },
                { "LAST_CHECK=+5\n", "LAST_CHECK=\"+5\" is not a number" },
                { "FAILURES=4294967297\n", "FAILURES=" },
                { "NEW_SIZE=9223372036854775808\n", "NEW_SIZE=" },
                { "RESUME_NEXT=262145\n", "RESUME_NEXT=" },
                { "LAST_ERROR=\x1b[31m\n", NULL }, /* a control character in a string is kept out of logs, not reset */
        };
        for (size_t i = 0; i < ELEMENTSOF(resets); i++) {
                memset(&t, 0x55, sizeof t);
                CHECK_EQ(agent_state_parse(&t, resets[i].text, strlen(resets[i].text)), 0);
                if (resets[i].key) {
                        CHECK(strstr(t.load_note, resets[i].key) != NULL);
                        CHECK(strstr(t.load_note, "reset") != NULL);
                } else
                        CHECK_STREQ(t.load_note, "");
                CHECK_EQ(t.last_check, 0);
                CHECK_EQ(t.failures, 0);
                CHECK_EQ(t.chunks_done, 0);
                CHECK_EQ(t.staged_slot, -1);
                CHECK_EQ(t.resume_slot, -1);
                CHECK_EQ(t.n_failed, 0);
                CHECK_EQ(t.status, AGENT_IDLE);
        }
        /* One bad field of the resume record drops the whole record. */
        const char *rs = "RESUME_SLOT=B\nRESUME_VERSION=2.0.0\nRESUME_NEXT=12\nRESUME_PAYLOAD_SIZE=x\n";
        CHECK_EQ(agent_state_parse(&t, rs, strlen(rs)), 0);
        CHECK_EQ(t.resume_slot, -1);
        CHECK_EQ(t.resume_next, 0);
        CHECK_STREQ(t.resume_version, "");
        /* The largest time that is accepted formats (gmtime works), and the status text never crashes. */
        const char *maxt = "LAST_CHECK=253402300799\n";
        CHECK_EQ(agent_state_parse(&t, maxt, strlen(maxt)), 0);
        CHECK_EQ(t.last_check, 253402300799);
        _cleanup_free_ char *mt = NULL;
        CHECK_EQ(agent_status_text(&t, false, false, &mt), 0);
        CHECK(mt && strstr(mt, "last check:       9999-12-31 23:59:59 UTC"));
        t.last_check = INT64_MAX; /* set by hand: still no crash */
        _cleanup_free_ char *bt = NULL;
        CHECK_EQ(agent_status_text(&t, false, false, &bt), 0);
        CHECK(bt && strstr(bt, "last check:       invalid"));

        /* Status text and JSON. */
        _cleanup_free_ char *json = NULL, *text = NULL;
        CHECK_EQ(agent_status_text(&s, true, false, &json), 0);
        CHECK(json && strstr(json, "\"state\":\"UPDATED_NEED_REBOOT\""));
        CHECK(json && strstr(json, "\"last_error\":\"line one\\nline two\""));
        CHECK(json && strstr(json, "\"failed_versions\":[\"1.5.0\",\"1.6.0\"]"));
        CHECK(json && strstr(json, "\"staged_slot\":\"B\""));
        CHECK_EQ(agent_status_text(&s, false, true, &text), 0);
        CHECK(text && strstr(text, "new version:      2.0.0"));
        CHECK(text && strstr(text, "77.8%"));
}

#define APPID_Q "\"{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}\""
static const char ok_resp[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response protocol=\"3.0\" server=\"cairn\">"
        "<daystart elapsed_seconds=\"0\"></daystart><app appid=" APPID_Q " status=\"ok\"><ping status=\"ok\"></ping>"
        "<updatecheck status=\"ok\" PollInterval=\"1800\"><urls><url codebase=\"http://127.0.0.1:8470/payloads/2.0.0\"></url>"
        "<url codebase=\"http://mirror/\"></url></urls>"
        "<manifest version=\"2.0.0\"><packages><package name=\"cairn-2.0.0-amd64.cairn\" size=\"13634554\" "
        "required=\"true\"></package><package name=\"second\" size=\"1\"></package></packages><actions><action "
        "event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\" DisablePayloadBackoff=\"true\">"
        "</action></actions></manifest></updatecheck><event status=\"ok\"></event></app></response>\n";

static int rparse(const char *s, OmahaResponse **ret) {
        return omaha_response_parse(s, strlen(s), ret);
}

static void test_response_parse(void) {
        OmahaResponse *r = NULL;
        CHECK_EQ(rparse(ok_resp, &r), 0);
        if (!r)
                return;
        CHECK_STREQ(r->app_status, "ok");
        CHECK_STREQ(r->uc_status, "ok");
        CHECK_EQ(r->poll_interval, 1800);
        CHECK_EQ(r->n_urls, 2);
        CHECK_STREQ(r->urls[0], "http://127.0.0.1:8470/payloads/2.0.0");
        CHECK_STREQ(r->version, "2.0.0");
        CHECK_STREQ(r->package_name, "cairn-2.0.0-amd64.cairn"); /* the first package only */
        CHECK_EQ(r->package_size, 13634554);
        CHECK_EQ(r->n_events, 1);
        AgentOffer o;
        const char *what = NULL;
        CHECK_EQ(agent_offer_from_response(r, &o, &what), 0);
        CHECK(o.update);
        CHECK_STREQ(agent_offer_url(&o), "http://127.0.0.1:8470/payloads/2.0.0/cairn-2.0.0-amd64.cairn"); /* '/' added */
        CHECK_EQ(o.n_urls, 2); /* every <url>, in order: the next one is used when one fails */
        CHECK_STREQ(o.urls[1], "http://mirror/cairn-2.0.0-amd64.cairn");
        free(r);

        /* noupdate */
        const char *noup = "<response protocol=\"3.0\"><app appid=\"x\" status=\"ok\"><updatecheck status=\"noupdate\"/>"
                           "</app></response>";
        r = NULL;
        CHECK_EQ(rparse(noup, &r), 0);
        if (r) {
                CHECK_EQ(agent_offer_from_response(r, &o, &what), 0);
                CHECK(!o.update);
                free(r);
        }

        /* Error statuses and missing pieces are refused with a reason. */
        const char *bad_offers[] = {
                "<response protocol=\"3.0\"><app status=\"ok\"><updatecheck status=\"error-unknownChannel\"/></app></response>",
                "<response protocol=\"3.0\"><app status=\"ok\"></app></response>",
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><manifest version=\"2.0.0\"><packages><package "
                "name=\"p\" size=\"5\"/></packages><actions><action event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\"/>"
                "</actions></manifest></updatecheck></app></response>", /* no url */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"file:///etc/\"/></urls>"
                "<manifest version=\"2.0.0\"><packages><package name=\"p\" size=\"5\"/></packages><actions><action "
                "event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\"/></actions></manifest>"
                "</updatecheck></app></response>", /* not http */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://x/\"/></urls>"
                "<manifest version=\"2.0.0\"><packages><package name=\"../../etc/passwd\" size=\"5\"/></packages><actions>"
                "<action event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\"/></actions></manifest>"
                "</updatecheck></app></response>", /* bad name */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://x/\"/></urls>"
                "<manifest version=\"2.0.0\"><packages><package name=\"p\" size=\"0\"/></packages><actions>"
                "<action event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\"/></actions></manifest>"
                "</updatecheck></app></response>", /* size 0 */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://x/\"/></urls>"
                "<manifest version=\"two\"><packages><package name=\"p\" size=\"5\"/></packages><actions>"
                "<action event=\"postinstall\" sha256=\"LsTC8rJl4SlXR0qcS0KkvayvtP5hkApowcq7ntB1l2o=\"/></actions></manifest>"
                "</updatecheck></app></response>", /* bad version */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://x/\"/></urls>"
                "<manifest version=\"2.0.0\"><packages><package name=\"p\" size=\"99999999999999999999\"/></packages>"
                "</manifest></updatecheck></app></response>", /* size beyond 2^64 */
                "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://x/&#10;FORGED\"/>"
                "<url codebase=\"http://x/ y\"/></urls>"
                "<manifest version=\"2.0.0\"><packages><package name=\"p\" size=\"5\"/></packages></manifest>"
                "</updatecheck></app></response>", /* no codebase without control characters or spaces */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_offers); i++) {
                r = NULL;
                CHECK_EQ(rparse(bad_offers[i], &r), 0);
                if (!r)
                        continue;
                what = NULL;
                CHECK_EQ(agent_offer_from_response(r, &o, &what), -EPROTO);
                CHECK(what != NULL);
                free(r);
        }

        /* The app's status is the reason, escaped; so is an updatecheck error status. */
        const char *unknown_app = "<response protocol=\"3.0\"><app appid=\"x\" status=\"error-unknownApplication\">"
                                  "</app></response>";
        r = NULL;
        CHECK_EQ(rparse(unknown_app, &r), 0);
        if (r) {
                what = NULL;
                CHECK_EQ(agent_offer_from_response(r, &o, &what), -EPROTO);
                CHECK(what && strstr(what, "app status \"error-unknownApplication\""));
                free(r);
        }
        const char *forged = "<response protocol=\"3.0\"><app status=\"ok\"><updatecheck status=\"error-x&#10;FORGED\"/>"
                             "</app></response>";
        r = NULL;
        CHECK_EQ(rparse(forged, &r), 0);
        if (r) {
                what = NULL;
                CHECK_EQ(agent_offer_from_response(r, &o, &what), -EPROTO);
                CHECK(what && strstr(what, "error-x\\x0aFORGED") && !strchr(what, '\n'));
                free(r);
        }
        /* No sha256 (or a malformed one) is fine: it is not used; a bad first URL is skipped for the next. */
        const char *nosha = "<response protocol=\"3.0\"><app status=\"ok\"><updatecheck status=\"ok\"><urls>"
                            "<url codebase=\"http://x/&#13;\"/><url codebase=\"https://good/\"/></urls>"
                            "<manifest version=\"2.0.0\"><packages><package name=\"p\" size=\"5\"/></packages><actions>"
                            "<action event=\"postinstall\" sha256=\"c2hvcnQ=\"/></actions></manifest></updatecheck></app>"
                            "</response>";
        r = NULL;
        CHECK_EQ(rparse(nosha, &r), 0);
        if (r) {
                CHECK_EQ(agent_offer_from_response(r, &o, &what), 0);
                CHECK_EQ(o.n_urls, 1);
                CHECK_STREQ(agent_offer_url(&o), "https://good/p");
                free(r);
        }
        /* PollInterval beyond a week, or not a number, is ignored. */
        const char *poll = "<response protocol=\"3.0\"><app><updatecheck status=\"noupdate\" PollInterval=\"4294967297\"/>"
                           "</app></response>";
        r = NULL;
        CHECK_EQ(rparse(poll, &r), 0);
        if (r) {
                CHECK_EQ(r->poll_interval, 0);
                free(r);
        }

        /* Malformed documents. */
        r = NULL;
        CHECK_EQ(rparse("<response protocol=\"3.0\"><app>", &r), -EBADMSG);
        CHECK_EQ(rparse("<request protocol=\"3.0\"><app/></request>", &r), -EBADMSG);
        CHECK_EQ(rparse("<response protocol=\"2.0\"><app/></response>", &r), -EPROTONOSUPPORT);
        CHECK_EQ(rparse("<response protocol=\"3.0\"></response>", &r), -EBADMSG);
        CHECK_EQ(rparse("", &r), -EBADMSG);
        CHECK_EQ(rparse("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\">]><response protocol=\"3.0\"><app "
                        "status=\"&a;\"/></response>", &r), -EPERM);
        char deep[512] = "<response protocol=\"3.0\"><app>";
        for (int i = 0; i < 10; i++)
                strcat(deep, "<x>");
        CHECK_EQ(rparse(deep, &r), -ELOOP);
        CHECK(r == NULL);

        /* Oversized: whole body, and one URL. */
        size_t big = OMAHA_MAX_BODY + 10;
        char *b = malloc(big + 1);
        memset(b, ' ', big);
        b[big] = 0;
        CHECK_EQ(omaha_response_parse(b, big, &r), -EMSGSIZE);
        free(b);
        char longurl[3000] = "<response protocol=\"3.0\"><app><updatecheck status=\"ok\"><urls><url codebase=\"http://";
        for (int i = 0; i < 1100; i++)
                strcat(longurl, "a");
        strcat(longurl, "/\"/></urls></updatecheck></app></response>");
        CHECK_EQ(rparse(longurl, &r), -ENAMETOOLONG);
        CHECK(r == NULL);
}

static void test_request_xml(void) {
        /* What the agent sends must be what the server's parser accepts, with the event and the escaping right. */
        AgentRequest rq = { .appid = AGENT_APPID, .version = "1.0.0", .track = "alpha", .machineid = "abc123",
                            .board = "amd64", .bootid = "{b<o>t}", .oem = "qemu&co", .updatecheck = true, .ping = true,
                            .event_type = 3, .event_result = 0, .event_errorcode = 44, .previousversion = "2.0.0" };
        _cleanup_buf_ Buf b;
        buf_init(&b, OMAHA_MAX_BODY);
        CHECK_EQ(agent_omaha_request_xml(&rq, &b), 0);
        OmahaRequest *req = NULL;
        CHECK_EQ(omaha_request_parse(b.data, b.len, &req), 0);
        if (!req)
                return;
        CHECK_STREQ(req->installsource, "scheduler");
        CHECK_EQ(req->n_apps, 1);
        const OmahaApp *a = &req->apps[0];
        CHECK_STREQ(a->appid, AGENT_APPID);
        CHECK_STREQ(a->track, "alpha");
        CHECK_STREQ(a->bootid, "{b<o>t}");
        CHECK_STREQ(a->oem, "qemu&co");
        CHECK(a->updatecheck && a->ping);
        CHECK_EQ(a->n_events, 1);
        CHECK_EQ(a->events[0].type, 3);
        CHECK_EQ(a->events[0].result, 0);
        CHECK_EQ(a->events[0].errorcode, 44);
        CHECK_STREQ(a->events[0].previousversion, "2.0.0");
        const char *what = NULL;
        CHECK_EQ(omaha_app_validate(a, &what), 0);
        free(req);
}

static void test_jitter_backoff(void) {
        uint32_t rs[] = { 0, 1, 12345, 0x7fffffff, 0xffffffff, 987654321 };
        for (size_t i = 0; i < ELEMENTSOF(rs); i++) {
                unsigned j = agent_jitter(3600, 10, rs[i]);
                CHECK(j >= 3240 && j <= 3960);
                CHECK_EQ(agent_jitter(0, 50, rs[i]), 0);
                for (unsigned f = 1; f <= 40; f++) {
                        unsigned d = agent_backoff(f, 60, 14400, rs[i]);
                        unsigned full = 60;
                        for (unsigned k = 1; k < f && full < 14400; k++)
                                full *= 2;
                        if (full > 14400)
                                full = 14400;
                        CHECK(d >= full / 2 && d <= full);
                        CHECK(d <= 14400);
                }
        }
        /* It really grows and really spreads. */
        CHECK(agent_backoff(1, 60, 14400, 0xffffffff) <= 60);
        CHECK(agent_backoff(5, 60, 14400, 0) >= 480);
        CHECK(agent_jitter(3600, 10, 0) != agent_jitter(3600, 10, 720));
}

/* A real signed payload of a small image: chunks 0..7 of 4 KiB; 2 is all zero; 5 equals 1. */
static Payload *make_payload(uint8_t *img, size_t size) {
        for (size_t i = 0; i < size; i++)
                img[i] = (uint8_t)(i * 2654435761u >> 13);
        memset(img + 2 * 4096, 0, 4096);
        memcpy(img + 5 * 4096, img + 1 * 4096, 4096);
        char ip[600], pp[600];
        snprintf(ip, sizeof ip, "%s/img", unit_tmpdir());
        snprintf(pp, sizeof pp, "%s/payload", unit_tmpdir());
        CHECK_EQ(write_file_atomic(ip, img, size, 0644), 0);
        unlink(pp);
        _cleanup_close_ int ifd = open(ip, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int ofd = open(pp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        EVP_PKEY *k = NULL;
        CHECK_EQ(key_generate(&k), 0);
        PayloadBuildOptions bo = { .version = "2.0.0", .board = "amd64", .chunk_size = 4096, .threads = 1,
                                   .compression = PAYLOAD_METHOD_ZSTD, .keys = &k, .n_keys = 1 };
        CHECK_EQ(payload_create(ifd, ofd, &bo, NULL), 0);
        CairnKeyring kr;
        keyring_init(&kr);
        EVP_PKEY_up_ref(k);
        CHECK_EQ(keyring_add(&kr, k), 0);
        Payload *p = NULL;
        CHECK_EQ(payload_load_fd(ofd, &kr, &p), 0);
        keyring_done(&kr);
        EVP_PKEY_free(k);
        return p;
}

static void test_delta_plan(void) {
        static uint8_t img[8 * 4096];
        Payload *p = make_payload(img, sizeof img);
        if (!p)
                return;
        CHECK_EQ(p->chunk_count, 8);
        /* Active slot: chunks 0, 1 and 6 of the new image at other places, plus junk. */
        static uint8_t active[10 * 4096];
        memset(active, 0x5a, sizeof active);
        memcpy(active + 3 * 4096, img + 0 * 4096, 4096);
        memcpy(active + 7 * 4096, img + 1 * 4096, 4096);
        memcpy(active + 9 * 4096, img + 6 * 4096, 4096);
        char ap[600];
        snprintf(ap, sizeof ap, "%s/active", unit_tmpdir());
        CHECK_EQ(write_file_atomic(ap, active, sizeof active, 0644), 0);
        _cleanup_close_ int fd = open(ap, O_RDONLY | O_CLOEXEC);
        AgentIndex idx = { 0 };
        CHECK_EQ(agent_index_build(fd, 4096, sizeof active - 4096, 4096, &idx), 0); /* from block 1 of the file */
        CHECK_EQ(idx.n, 9);
        uint8_t actions[8];
        uint32_t src[8];
        int64_t n = agent_plan(p, &idx, 0, actions, src);
        CHECK_EQ(actions[0], AGENT_CHUNK_COPY);
        CHECK_EQ(src[0], 2); /* block 3 of the file = block 2 of the indexed range */
        CHECK_EQ(actions[1], AGENT_CHUNK_COPY);
        CHECK_EQ(src[1], 6);
        CHECK_EQ(actions[2], AGENT_CHUNK_ZERO);
        CHECK_EQ(actions[3], AGENT_CHUNK_DOWNLOAD);
        CHECK_EQ(actions[4], AGENT_CHUNK_DOWNLOAD);
        CHECK_EQ(actions[5], AGENT_CHUNK_COPY); /* same bytes as chunk 1 */
        CHECK_EQ(src[5], 6);
        CHECK_EQ(actions[6], AGENT_CHUNK_COPY);
        CHECK_EQ(src[6], 8);
        CHECK_EQ(actions[7], AGENT_CHUNK_DOWNLOAD);
        CHECK_EQ(n, 3);
        /* Resume: chunks below the start are done. */
        n = agent_plan(p, &idx, 4, actions, src);
        CHECK_EQ(actions[0], AGENT_CHUNK_DONE);
        CHECK_EQ(actions[3], AGENT_CHUNK_DONE);
        CHECK_EQ(actions[4], AGENT_CHUNK_DOWNLOAD);
        CHECK_EQ(n, 2);
        /* No delta source: everything that is not zero is downloaded. */
        n = agent_plan(p, NULL, 0, actions, src);
        CHECK_EQ(n, 7);
        uint8_t h[SHA256_SIZE];
        CHECK_EQ(agent_hash_range(fd, 3 * 4096, 4096, h), 0);
        CHECK(memcmp(h, p->chunks[0].sha256, SHA256_SIZE) == 0);
        CHECK_EQ(agent_hash_range(fd, sizeof active - 100, 4096, h), -EIO); /* past the end */
        agent_index_free(&idx);
        payload_free(p);
}

static void test_health(void) {
        char d1[600], d2[600];
        snprintf(d1, sizeof d1, "%s/h/etc", unit_tmpdir());
        snprintf(d2, sizeof d2, "%s/h/usr", unit_tmpdir());
        put("h/etc/10-ok", "#!/bin/sh\nexit 0\n");
        put("h/usr/20-ok", "#!/bin/sh\nexit 0\n");
        put("h/usr/README", "#!/bin/sh\nexit 1\n");
        char readme[700];
        snprintf(readme, sizeof readme, "%s/README", d2);
        chmod(readme, 0644); /* not executable: not a check */
        const char *dirs[2] = { d1, d2 };
        const char *failed = NULL;
        CHECK_EQ(agent_health_run(dirs, 2, 5, &failed), 0);
        put("h/usr/30-bad", "#!/bin/sh\nexit 3\n");
        CHECK_EQ(agent_health_run(dirs, 2, 5, &failed), -ECHILD);
        CHECK(failed && strstr(failed, "30-bad"));
        /* The same name in the first dir masks the second. */
        put("h/etc/30-bad", "#!/bin/sh\nexit 0\n");
        CHECK_EQ(agent_health_run(dirs, 2, 5, &failed), 0);
        put("h/etc/40-slow", "#!/bin/sh\nsleep 30\n");
        CHECK_EQ(agent_health_run(dirs, 2, 1, &failed), -ETIMEDOUT);
        CHECK(failed && strstr(failed, "40-slow"));
        const char *none[1] = { "/nonexistent" };
        CHECK_EQ(agent_health_run(none, 1, 1, &failed), 0);
        CHECK_EQ(agent_run_command("true"), 0);
        CHECK_EQ(agent_run_command("exit 4"), -ECHILD);
}

/* Every number in update.conf is strict and bounded; a bad one names the key and the value. */
static void test_config_ranges(void) {
        static const struct {
                const char *line;
                int r;
        } cases[] = {
                { "DOWNLOAD_RATE_LIMIT=17179869184G", -ERANGE }, /* 2^64: used to wrap to 0 = unlimited */
                { "DOWNLOAD_RATE_LIMIT=2T", -ERANGE },
                { "DOWNLOAD_RATE_LIMIT=-1", -EINVAL },
                { "DOWNLOAD_RATE_LIMIT=1 M", -EINVAL },
                { "CHECK_INTERVAL=4294967297", -ERANGE },        /* used to be cut to 9 digits or wrap */
                { "CHECK_INTERVAL=0", -ERANGE },
                { "CHECK_INTERVAL=8d", -ERANGE },
                { "CHECK_INTERVAL=0x10", -EINVAL },
                { "HEALTH_TIMEOUT=+5", -EINVAL },
                { "HTTP_STALL_TIMEOUT=99999999999999999999", -ERANGE },
                { "HTTP_LOW_SPEED_LIMIT=0", -ERANGE },
                { "HTTP_TRANSFER_TIMEOUT=0", -ERANGE },
                { "HTTP_TRANSFER_TIMEOUT=abc", -EINVAL },
                { "SERVER=http://x/\x1b[2J", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AgentConfig c;
                agent_config_init(&c);
                AgentConfigError e = { .path = "update.conf" };
                char text[128];
                snprintf(text, sizeof text, "GROUP=beta\n%s\n", cases[i].line);
                CHECK_EQ(agent_config_parse(&c, text, strlen(text), &e), cases[i].r);
                CHECK_EQ(e.line, 2);
                CHECK(strncmp(cases[i].line, e.key, strlen(e.key)) == 0 && e.key[0]);
                CHECK_STREQ(c.group, "stable"); /* nothing applied */
                char msg[512];
                agent_config_error_format(&e, cases[i].r, msg, sizeof msg);
                CHECK(strstr(msg, "config \"update.conf\" line 2: ") == msg);
                CHECK(strstr(msg, e.key) && strstr(msg, "=\""));
                CHECK(!strchr(msg, '\x1b'));
        }
        AgentConfig c;
        agent_config_init(&c);
        CHECK_EQ(c.low_speed_limit, 1024);
        CHECK_EQ(c.http_timeout, 60);
        CHECK_EQ(c.transfer_timeout, 1800);
        const char *good = "DOWNLOAD_RATE_LIMIT=1T\nCHECK_INTERVAL=2h\nHTTP_LOW_SPEED_LIMIT=10K\nHTTP_STALL_TIMEOUT=1m\n"
                           "HTTP_TRANSFER_TIMEOUT=7d\nBACKOFF_MAX=7d\n";
        CHECK_EQ(agent_config_parse(&c, good, strlen(good), NULL), 0);
        CHECK_EQ(c.rate_limit, 1ULL << 40);
        CHECK_EQ(c.check_interval, 7200);
        CHECK_EQ(c.low_speed_limit, 10240);
        CHECK_EQ(c.http_timeout, 60);
        CHECK_EQ(c.transfer_timeout, 7 * 86400);
        CHECK_EQ(c.backoff_max, 7 * 86400);
}

/* A child starts with no blocked signal and every disposition at its default, whatever the daemon set. */
static void test_child_signals(void) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &old);
        void (*pipe_was)(int) = signal(SIGPIPE, SIG_IGN);
        void (*xfsz_was)(int) = signal(SIGXFSZ, SIG_IGN);
        pid_t pid = fork();
        if (pid == 0) {
                agent_child_reset_signals();
                sigset_t now;
                sigprocmask(SIG_SETMASK, NULL, &now);
                struct sigaction sp, sx;
                sigaction(SIGPIPE, NULL, &sp);
                sigaction(SIGXFSZ, NULL, &sx);
                _exit(sigismember(&now, SIGTERM) || sigismember(&now, SIGINT) || sp.sa_handler != SIG_DFL ||
                      sx.sa_handler != SIG_DFL);
        }
        int st = -1;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        signal(SIGPIPE, pipe_was);
        signal(SIGXFSZ, xfsz_was);
        sigprocmask(SIG_SETMASK, &old, NULL);
}

/* A pending SIGTERM (blocked, as in the daemon) is a stop request every long loop sees. Runs last: a stop request
 * is for good. */
static void test_cancel(void) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, &old);
        agent_cancel_watch(&set);
        CHECK(!agent_cancelled());
        char d[600];
        snprintf(d, sizeof d, "%s/hc", unit_tmpdir());
        put("hc/10-slow", "#!/bin/sh\nsleep 30\n");
        const char *dirs[1] = { d };
        const char *failed = NULL;
        kill(getpid(), SIGTERM); /* stays pending */
        CHECK(agent_cancelled());
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_EQ(agent_health_run(dirs, 1, 60, &failed), -ECANCELED); /* killed, not waited for */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK(t1.tv_sec - t0.tv_sec < 10);
        /* The slot hash (read-back) stops too. */
        int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        uint8_t h[SHA256_SIZE];
        CHECK_EQ(agent_hash_range(fd, 0, 1 << 20, h), -ECANCELED);
        close(fd);
        /* Take the signal so it does not end the test binary when unblocked. */
        struct timespec zero = { 0, 0 };
        CHECK_EQ(sigtimedwait(&set, NULL, &zero), SIGTERM);
        sigprocmask(SIG_SETMASK, &old, NULL);
        CHECK(agent_cancelled()); /* remembered */
}

int main(void) {
        RUN(test_config_precedence);
        RUN(test_state_roundtrip);
        RUN(test_response_parse);
        RUN(test_request_xml);
        RUN(test_jitter_backoff);
        RUN(test_delta_plan);
        RUN(test_health);
        RUN(test_config_ranges);
        RUN(test_child_signals);
        RUN(test_cancel); /* last */
        return unit_main_end();
}
