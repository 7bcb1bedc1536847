/* tests/unit/test-omaha.c — Omaha request parser, response writer, version compare, channel files and rollout buckets. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "omaha/omaha.h"
#include "server/channels.h"
#include "server/range.h"

#define APPID "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

/* The shape update_engine sends (flatcar.md §1.1). */
static const char flatcar_req[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<request protocol=\"3.0\" version=\"update_engine-0.4.10\" updaterversion=\"update_engine-0.4.10\"\n"
        "         installsource=\"scheduler\" ismachine=\"1\">\n"
        "    <os version=\"Chateau\" platform=\"CoreOS\" sp=\"3510.2.0_x86_64\"></os>\n"
        "    <app appid=\"" APPID "\" version=\"3510.2.0\"\n"
        "         track=\"stable\" bootid=\"{0f5b3c1e-aaaa-bbbb-cccc-123456789abc}\" oem=\"qemu\" oemversion=\"1\"\n"
        "         alephversion=\"3227.2.0\" machineid=\"8f14e45fceea167a5a36dedd4bea2543\"\n"
        "         machinealias=\"node-1\" lang=\"en-US\" board=\"amd64-usr\"\n"
        "         hardware_class=\"\" delta_okay=\"false\" >\n"
        "        <ping active=\"1\"></ping>\n"
        "        <updatecheck></updatecheck>\n"
        "        <event eventtype=\"3\" eventresult=\"2\" previousversion=\"0.0.0.0\"></event>\n"
        "    </app>\n"
        "</request>\n";

static int parse(const char *s, OmahaRequest **ret) {
        return omaha_request_parse(s, strlen(s), ret);
}

static void test_flatcar_request(void) {
        OmahaRequest *req = NULL;
        CHECK_EQ(parse(flatcar_req, &req), 0);
        if (!req)
                return;
        CHECK_STREQ(req->os_platform, "CoreOS");
        CHECK_STREQ(req->installsource, "scheduler");
        CHECK_EQ(req->n_apps, 1);
        const OmahaApp *a = &req->apps[0];
        CHECK_STREQ(a->appid, APPID);
        CHECK_STREQ(a->version, "3510.2.0");
        CHECK_STREQ(a->track, "stable");
        CHECK_STREQ(a->machineid, "8f14e45fceea167a5a36dedd4bea2543");
        CHECK_STREQ(a->machinealias, "node-1");
        CHECK_STREQ(a->board, "amd64-usr");
        CHECK_STREQ(a->alephversion, "3227.2.0");
        CHECK(a->ping);
        CHECK(a->updatecheck);
        CHECK_EQ(a->n_events, 1);
        CHECK_EQ(a->events[0].type, 3);
        CHECK_EQ(a->events[0].result, 2);
        CHECK_EQ(a->events[0].errorcode, 0);
        CHECK_STREQ(a->events[0].previousversion, "0.0.0.0");
        const char *what = NULL;
        CHECK_EQ(omaha_app_validate(a, &what), 0);
        free(req);
}

static void test_events(void) {
        OmahaRequest *req = NULL;
        CHECK_EQ(parse("<request protocol='3.0'><app appid='x' machineid='m1' version='1.0.0'>"
                       "<event eventtype='13' eventresult='1'/><event eventtype='3' eventresult='0' errorcode='44'/>"
                       "<event eventtype='800' eventresult='1'/></app></request>",
                       &req),
                 0);
        if (!req)
                return;
        const OmahaApp *a = &req->apps[0];
        CHECK(!a->updatecheck);
        CHECK_EQ(a->n_events, 3);
        CHECK_EQ(a->events[0].type, 13);
        CHECK_EQ(a->events[1].errorcode, 44);
        CHECK_EQ(a->events[1].result, 0);
        CHECK_EQ(a->events[2].type, 800);
        CHECK_EQ(omaha_app_validate(a, NULL), 0);
        free(req);

        /* A non-numeric eventtype parses but does not validate. */
        req = NULL;
        CHECK_EQ(parse("<request protocol='3.0'><app appid='x' machineid='m1' version='1.0.0'>"
                       "<event eventtype='13x' eventresult='1'/></app></request>",
                       &req),
                 0);
        const char *what = NULL;
        if (req) {
                CHECK_EQ(omaha_app_validate(&req->apps[0], &what), -EINVAL);
                CHECK_STREQ(what, "missing or invalid eventtype");
        }
        free(req);

        /* Too many events. */
        char buf[4096] = "<request protocol='3.0'><app appid='x' machineid='m'>";
        for (int i = 0; i < OMAHA_MAX_EVENTS + 1; i++)
                strcat(buf, "<event eventtype='13' eventresult='1'/>");
        strcat(buf, "</app></request>");
        req = NULL;
        CHECK_EQ(parse(buf, &req), -E2BIG);
        CHECK(req == NULL);
}

static void test_missing_attributes(void) {
        static const struct {
                const char *app;
                const char *what;
        } cases[] = {
                { "<app version='1.0' machineid='m' board='b'><updatecheck/></app>", "missing appid" },
                { "<app appid='a' version='1.0' board='b'><updatecheck/></app>", "missing machineid" },
                { "<app appid='a' machineid='m' board='b'><updatecheck/></app>", "missing version" },
                { "<app appid='a' machineid='m' version='1.0'><updatecheck/></app>", "missing board" },
                { "<app appid='a' machineid='m' version='1.x' board='b'><updatecheck/></app>", "invalid version" },
                { "<app appid='a' machineid='m/../x' version='1.0' board='b'><updatecheck/></app>", "invalid machineid" },
                { "<app appid='a' machineid='m' version='1.0' board='../b'><updatecheck/></app>", "invalid board" },
                { "<app appid='a' machineid='m' version='1.0' board='b' track='a/b'><updatecheck/></app>", "invalid track" },
                { "<app appid='a' machineid='m'><event eventresult='1'/></app>", "missing or invalid eventtype" },
                { "<app appid='a' machineid='m'><event eventtype='3'/></app>", "missing or invalid eventresult" },
                { "<app appid='a' machineid='m'><event eventtype='3' eventresult='0' errorcode='x'/></app>", "invalid errorcode" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[512];
                snprintf(buf, sizeof buf, "<request protocol='3.0'>%s</request>", cases[i].app);
                OmahaRequest *req = NULL;
                CHECK_EQ(parse(buf, &req), 0);
                if (!req)
                        continue;
                const char *what = NULL;
                CHECK_EQ(omaha_app_validate(&req->apps[0], &what), -EINVAL);
                CHECK_STREQ(what, cases[i].what);
                free(req);
        }
}

static void test_malformed(void) {
        static const struct {
                const char *xml;
                int err;
        } cases[] = {
                { "", -EBADMSG },
                { "not xml", -EBADMSG },
                { "<request protocol='3.0'><app appid='x'></request>", -EBADMSG },
                { "<request protocol='3.0'>", -EBADMSG },
                { "<response protocol='3.0'/>", -EBADMSG },
                { "<request protocol='2.0'/>", -EPROTONOSUPPORT },
                { "<request/>", -EPROTONOSUPPORT },
                { "<request protocol='3.0'/><request protocol='3.0'/>", -EBADMSG },
                { "<request protocol='3.0'><app appid='&undefined;'/></request>", -EBADMSG },
                { "<request protocol='3.0'><a><b><c><d><e><f><g><h></h></g></f></e></d></c></b></a></request>", -ELOOP },
                { "<?xml version='1.0'?><!DOCTYPE request><request protocol='3.0'/>", -EPERM },
                { "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
                  "<request protocol='3.0'><app appid='&lol2;'/></request>", -EPERM },
                { "<!DOCTYPE r SYSTEM 'file:///etc/passwd'><request protocol='3.0'/>", -EPERM },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                OmahaRequest *req = NULL;
                int r = parse(cases[i].xml, &req);
                if (r != cases[i].err)
                        fprintf(stderr, "case %zu: %s\n", i, cases[i].xml);
                CHECK_EQ(r, cases[i].err);
                CHECK(req == NULL);
                free(req);
        }
        /* Embedded NUL bytes. */
        OmahaRequest *req = NULL;
        CHECK_EQ(omaha_request_parse("<request protocol='3.0'>\0</request>", 35, &req), -EBADMSG);
        CHECK(omaha_parse_strerror(-EPERM)[0] != 0);
}

static void test_oversized(void) {
        size_t n = OMAHA_MAX_BODY + 1;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (!big)
                return;
        memset(big, ' ', n);
        OmahaRequest *req = NULL;
        CHECK_EQ(omaha_request_parse(big, n, &req), -EMSGSIZE);

        /* Too many apps. */
        strcpy(big, "<request protocol='3.0'>");
        for (int i = 0; i < OMAHA_MAX_APPS + 1; i++)
                strcat(big, "<app appid='a'/>");
        strcat(big, "</request>");
        CHECK_EQ(parse(big, &req), -E2BIG);

        /* Exactly the maximum apps is fine. */
        strcpy(big, "<request protocol='3.0'>");
        for (int i = 0; i < OMAHA_MAX_APPS; i++)
                strcat(big, "<app appid='a'/>");
        strcat(big, "</request>");
        CHECK_EQ(parse(big, &req), 0);
        if (req)
                CHECK_EQ(req->n_apps, OMAHA_MAX_APPS);
        free(req);
        req = NULL;

        /* A stored attribute longer than OMAHA_ATTR_MAX. */
        strcpy(big, "<request protocol='3.0'><app appid='");
        size_t at = strlen(big);
        memset(big + at, 'a', OMAHA_ATTR_MAX + 1);
        big[at + OMAHA_ATTR_MAX + 1] = 0;
        strcat(big, "'/></request>");
        CHECK_EQ(parse(big, &req), -ENAMETOOLONG);

        /* Too many attributes on one element. */
        strcpy(big, "<request protocol='3.0'><app");
        for (int i = 0; i < OMAHA_MAX_ATTRS + 1; i++)
                sprintf(big + strlen(big), " a%d='x'", i);
        strcat(big, "/></request>");
        CHECK_EQ(parse(big, &req), -E2BIG);

        /* Too many elements. */
        strcpy(big, "<request protocol='3.0'>");
        for (int i = 0; i < OMAHA_MAX_ELEMENTS + 1; i++)
                strcat(big, "<x/>");
        strcat(big, "</request>");
        CHECK_EQ(parse(big, &req), -E2BIG);
        free(big);
}

static void test_writer_escapes(void) {
        _cleanup_buf_ Buf b;
        buf_init(&b, 1 << 16);
        OmahaAppAnswer a = {
                .appid = "a\"<&>'b", .status = "ok", .ping = true, .uc_status = "ok",
                .codebase = "http://h/p?x=1&y=\"2\"", .version = "1.2.3", .package_name = "cairn-1.2.3-amd64.cairn",
                .size = 12345, .sha256_b64 = "AAAA+/==", .n_events = 2,
        };
        CHECK_EQ(omaha_response_write(&b, "cairn-server", 42, &a, 1), 0);
        CHECK(strstr(b.data, "appid=\"a&quot;&lt;&amp;&gt;&apos;b\"") != NULL);
        CHECK(strstr(b.data, "codebase=\"http://h/p?x=1&amp;y=&quot;2&quot;\"") != NULL);
        CHECK(strstr(b.data, "<updatecheck status=\"ok\">") != NULL);
        CHECK(strstr(b.data, "size=\"12345\"") != NULL);
        CHECK(strstr(b.data, "sha256=\"AAAA+/==\"") != NULL);
        CHECK(strstr(b.data, "<daystart elapsed_seconds=\"42\">") != NULL);
        CHECK(strstr(b.data, "<ping status=\"ok\"></ping>") != NULL);
        CHECK(strstr(b.data, "<event status=\"ok\"></event><event status=\"ok\"></event></app>") != NULL);

        /* The writer's output parses as XML (as a <response>, so our request parser says EBADMSG on the root,
         * not on well-formedness): check the noupdate shape textually. */
        buf_free(&b);
        OmahaAppAnswer n = { .appid = "x", .status = "ok", .uc_status = "noupdate" };
        CHECK_EQ(omaha_response_write(&b, "s", 0, &n, 1), 0);
        CHECK(strstr(b.data, "<updatecheck status=\"noupdate\"></updatecheck>") != NULL);
        CHECK(strstr(b.data, "<manifest") == NULL);

        /* A channel's poll interval goes out as updatecheck@PollInterval and the agent's parser reads it back. */
        buf_free(&b);
        n.poll_interval = 900;
        CHECK_EQ(omaha_response_write(&b, "s", 0, &n, 1), 0);
        CHECK(strstr(b.data, "<updatecheck status=\"noupdate\" PollInterval=\"900\"></updatecheck>") != NULL);
        OmahaResponse *resp = NULL;
        CHECK_EQ(omaha_response_parse(b.data, b.len, &resp), 0);
        CHECK(resp != NULL && resp->poll_interval == 900 && strcmp(resp->uc_status, "noupdate") == 0);
        free(resp);

        /* Control characters and the size cap. */
        Buf small;
        buf_init(&small, 8);
        CHECK_EQ(buf_put_xml(&small, "\x01"), 0);
        CHECK_STREQ(small.data, "&#1;");
        CHECK_EQ(buf_puts(&small, "12345"), -ENOBUFS);
        CHECK_EQ(buf_puts(&small, "1"), -ENOBUFS); /* sticky */
        buf_free(&small);

        Buf j;
        buf_init(&j, 256);
        CHECK_EQ(buf_put_json(&j, "q\"b\\s\n\t\x7f é"), 0);
        CHECK_STREQ(j.data, "\"q\\\"b\\\\s\\n\\u0009\\u007f é\"");
        buf_free(&j);
}

static void test_version_compare(void) {
        CHECK(omaha_version_valid("1"));
        CHECK(omaha_version_valid("1.2.10"));
        CHECK(omaha_version_valid("3510.2.0"));
        CHECK(!omaha_version_valid(""));
        CHECK(!omaha_version_valid("1..2"));
        CHECK(!omaha_version_valid("1.2."));
        CHECK(!omaha_version_valid(".1"));
        CHECK(!omaha_version_valid("1.2a"));
        CHECK(!omaha_version_valid("-1"));
        CHECK(!omaha_version_valid("1234567890"));
        CHECK(!omaha_version_valid("1.2.3.4.5.6.7.8.9"));
        CHECK(omaha_version_cmp("1.2.10", "1.2.9") > 0);
        CHECK(omaha_version_cmp("1.2.9", "1.2.10") < 0);
        CHECK(omaha_version_cmp("1.2", "1.2.0") == 0);
        CHECK(omaha_version_cmp("1.2.0.1", "1.2") > 0);
        CHECK(omaha_version_cmp("2", "10") < 0);
        CHECK(omaha_version_cmp("010", "10") == 0);
        CHECK(omaha_version_cmp("999999999.0", "999999998.9") > 0);
}

static void test_names(void) {
        CHECK(omaha_name_valid("alpha", 64));
        CHECK(omaha_name_valid("my-channel_2.x", 64));
        CHECK(!omaha_name_valid("", 64));
        CHECK(!omaha_name_valid(".hidden", 64));
        CHECK(!omaha_name_valid("..", 64));
        CHECK(!omaha_name_valid("a/b", 64));
        CHECK(!omaha_name_valid("abc", 2));
        CHECK(omaha_machineid_valid("{8f14e45f-ceea-167a}"));
        CHECK(!omaha_machineid_valid("a b"));
}

static void test_channel_file(void) {
        Channel c;
        unsigned line = 0;
        CHECK_EQ(channel_parse("beta", "# c\nVERSION=1.2.3\nROLLOUT=30\n PAUSED=1 \nMAX_PER_PERIOD=5\nPERIOD=60\nNEW=x\n",
                               &c, &line),
                 0);
        CHECK_STREQ(c.name, "beta");
        CHECK_STREQ(c.version, "1.2.3");
        CHECK_EQ(c.rollout, 30);
        CHECK(c.paused);
        CHECK_EQ(c.max_per_period, 5);
        CHECK_EQ(c.period, 60);
        CHECK_EQ(channel_period_start(&c, 125), 120);
        CHECK_EQ(channel_parse("x", "", &c, NULL), 0);
        CHECK_STREQ(c.version, "");
        CHECK_EQ(c.rollout, 100);
        CHECK_EQ(c.period, 3600);
        CHECK_EQ(c.poll_interval, 0);
        CHECK_EQ(channel_parse("x", "VERSION=1.2\nROLLOUT=101\n", &c, &line), -EINVAL);
        CHECK_EQ(line, 2);
        CHECK_EQ(channel_parse("x", "VERSION=abc\n", &c, &line), -EINVAL);
        CHECK_EQ(channel_parse("x", "PERIOD=0\n", &c, &line), -EINVAL);
        CHECK_EQ(channel_parse("x", "PAUSED=yes\n", &c, &line), -EINVAL);
        CHECK_EQ(channel_parse("x", "POLL_INTERVAL=1800\n", &c, &line), 0);
        CHECK_EQ(c.poll_interval, 1800);
        CHECK_EQ(channel_parse("x", "POLL_INTERVAL=604801\n", &c, &line), -EINVAL);
        CHECK_EQ(channel_parse("x", "garbage\n", &c, &line), -EINVAL);
        CHECK_EQ(channel_parse("../x", "VERSION=1\n", &c, &line), -EINVAL);
}

static void test_rollout_bucket(void) {
        /* Deterministic, in range, and roughly uniform: 30% of 2,000 ids within 25..35%. */
        unsigned b = rollout_bucket("stable", "1.2.3", "m1");
        CHECK(b < 100);
        CHECK_EQ(rollout_bucket("stable", "1.2.3", "m1"), b);
        Channel c = { .rollout = 30 };
        strcpy(c.name, "stable");
        strcpy(c.version, "1.2.3");
        int selected = 0, differs = 0;
        for (int i = 0; i < 2000; i++) {
                char id[40];
                snprintf(id, sizeof id, "machine-%04d", i);
                selected += rollout_selected(&c, id);
                differs += rollout_bucket("stable", "1.2.4", id) != rollout_bucket("stable", "1.2.3", id);
        }
        CHECK(selected > 500 && selected < 700);
        CHECK(differs > 1500); /* a new version draws a new cohort */
        c.rollout = 0;
        CHECK(!rollout_selected(&c, "machine-0001"));
        c.rollout = 100;
        CHECK(rollout_selected(&c, "machine-0001"));
}

static void test_range(void) {
        uint64_t st, len;
#define RANGE(h, size, want, ws, wl)                                                     \
        do {                                                                             \
                st = len = 77;                                                           \
                CHECK_EQ(http_range_parse(h, size, &st, &len), want);                    \
                if ((want) == 1) {                                                       \
                        CHECK_EQ(st, (uint64_t)(ws));                                    \
                        CHECK_EQ(len, (uint64_t)(wl));                                   \
                }                                                                        \
        } while (0)
        RANGE("bytes=0-99", 1000, 1, 0, 100);
        RANGE("bytes=990-2000", 1000, 1, 990, 10); /* end clamped */
        RANGE("bytes=500-", 1000, 1, 500, 500);
        RANGE("bytes=-100", 1000, 1, 900, 100);
        RANGE("bytes=-5000", 1000, 1, 0, 1000); /* suffix longer than the file: all of it */
        RANGE("bytes= 1-2 ", 1000, 1, 1, 2);
        RANGE("bytes=999-999", 1000, 1, 999, 1);
        RANGE("bytes=1000-", 1000, -ERANGE, 0, 0);
        RANGE("bytes=0-", 0, -ERANGE, 0, 0);
        RANGE("bytes=-0", 1000, -ERANGE, 0, 0);
        RANGE("bytes=0-1,5-9", 1000, 0, 0, 0);   /* several ranges: whole file */
        RANGE("bytes=9-5", 1000, 0, 0, 0);       /* invalid: ignored */
        RANGE("items=0-1", 1000, 0, 0, 0);
        RANGE("bytes=-", 1000, 0, 0, 0);
        RANGE("bytes=5", 1000, 0, 0, 0);
        RANGE("bytes=+5-6", 1000, 0, 0, 0);
        RANGE("bytes=99999999999999999999999-", 1000, 0, 0, 0);
        RANGE("bytes=18446744073709551614-", UINT64_MAX, 1, UINT64_MAX - 1, 1);
#undef RANGE
}

/* reldir_openat() and its O_NOFOLLOW walk agree: files beneath are opened, any symlink component is refused. */
static void test_reldir_open(void) {
        char dir[] = "/tmp/test-omaha-reldir.XXXXXX";
        if (!mkdtemp(dir)) {
                CHECK(0);
                return;
        }
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "cd %s && mkdir -p rel/payloads/1.0 out/d && echo x >rel/payloads/1.0/f && echo s >out/d/secret && "
                 "ln -s ../../out/d rel/payloads/evil && ln -s /etc rel/payloads/etc && ln -s f rel/payloads/1.0/link && "
                 "ln -s ../out rel/up && mkfifo rel/payloads/1.0/fifo",
                 dir);
        CHECK_EQ(system(cmd), 0);
        char rel[300];
        snprintf(rel, sizeof rel, "%s/rel", dir);
        int dfd = open(rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(dfd >= 0);
        int (*const fns[2])(int, const char *, int) = { reldir_openat, reldir_openat_walk };
        for (int i = 0; i < 2; i++) {
                int fd = fns[i](dfd, "payloads/1.0/f", O_RDONLY);
                CHECK(fd >= 0);
                if (fd >= 0)
                        close(fd);
                fd = fns[i](dfd, "payloads", O_RDONLY | O_DIRECTORY);
                CHECK(fd >= 0);
                if (fd >= 0)
                        close(fd);
                CHECK_EQ(fns[i](dfd, "payloads/evil/secret", O_RDONLY), -ELOOP);
                CHECK_EQ(fns[i](dfd, "payloads/etc/passwd", O_RDONLY), -ELOOP);
                CHECK_EQ(fns[i](dfd, "payloads/1.0/link", O_RDONLY), -ELOOP);
                CHECK_EQ(fns[i](dfd, "up/d/secret", O_RDONLY), -ELOOP);
                CHECK_EQ(fns[i](dfd, "payloads/1.0/nope", O_RDONLY), -ENOENT);
                CHECK_EQ(fns[i](dfd, "payloads/1.0/f/x", O_RDONLY), -ENOTDIR);
                CHECK_EQ(fns[i](dfd, "../out/d/secret", O_RDONLY), -EINVAL);
                CHECK_EQ(fns[i](dfd, "payloads/../../out/d/secret", O_RDONLY), -EINVAL);
                CHECK_EQ(fns[i](dfd, "/etc/passwd", O_RDONLY), -EINVAL);
                CHECK_EQ(fns[i](dfd, "payloads//1.0/f", O_RDONLY), -EINVAL);
                CHECK_EQ(fns[i](dfd, "payloads/./1.0/f", O_RDONLY), -EINVAL);
                CHECK_EQ(fns[i](dfd, "", O_RDONLY), -EINVAL);
                /* A FIFO opened non-blocking returns at once (channel_load then refuses it by type). */
                fd = fns[i](dfd, "payloads/1.0/fifo", O_RDONLY | O_NONBLOCK);
                CHECK(fd >= 0);
                if (fd >= 0)
                        close(fd);
        }
        struct stat st;
        CHECK_EQ(reldir_stat(dfd, "payloads/1.0/f", &st), 0);
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQ(reldir_stat(dfd, "payloads/1.0/link", &st), 0); /* O_PATH|O_NOFOLLOW: the link itself */
        CHECK(S_ISLNK(st.st_mode));
        CHECK_EQ(reldir_stat(dfd, "payloads/evil/secret", &st), -ELOOP);
        snprintf(cmd, sizeof cmd, "mkdir -p %s/rel/channels && mkfifo %s/rel/channels/pipe && ln -s ../../out/d/secret %s/rel/channels/ln",
                 dir, dir, dir);
        CHECK_EQ(system(cmd), 0);
        Channel c;
        CHECK_EQ(channel_load(dfd, "pipe", &c), -RELDIR_ENOTREG);
        CHECK_STREQ(reldir_strerror(-RELDIR_ENOTREG), "not a regular file");
        CHECK_EQ(channel_load(dfd, "ln", &c), -ELOOP);
        close(dfd);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK_EQ(system(cmd), 0);
}

int main(void) {
        RUN(test_flatcar_request);
        RUN(test_events);
        RUN(test_missing_attributes);
        RUN(test_malformed);
        RUN(test_oversized);
        RUN(test_writer_escapes);
        RUN(test_version_compare);
        RUN(test_names);
        RUN(test_channel_file);
        RUN(test_rollout_bucket);
        RUN(test_range);
        RUN(test_reldir_open);
        return unit_main_end();
}
