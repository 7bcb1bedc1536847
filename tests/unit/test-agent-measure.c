/* tests/unit/test-agent-measure.c — the agent's measured-boot record (updater/agent/measure-record.c): round trips,
 * every refusal of a damaged or foreign record, the status block (human and JSON), and the <cairnpcrs> element
 * the server's Omaha parser reads (updater/omaha). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/measure.h"
#include "omaha/omaha.h"
#include "unit.h"

#define H20 "00112233445566778899aabbccddeeff00112233"
#define H32 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static const char good[] = "SLOT=B\nVERSION=0.2.1\nPREDICTED_BOOT_ID=0d1e-77aa\nPREDICTED_AT=1700000000\nTPM=present\n"
                           "PCR_sha1_8=" H20 "\nPCR_sha1_9=" H20 "\nPCR_sha1_11=" H20 "\n"
                           "PCR_sha256_8=" H32 "\nPCR_sha256_9=" H32 "\nPCR_sha256_11=" H32 "\n";

static int parse(const char *text, MeasureRecord *m, const char **why) {
        unsigned line;
        return measure_record_parse(text, strlen(text), m, why, &line);
}

static void test_round_trip(void) {
        MeasureRecord m;
        const char *why = NULL;
        CHECK_EQ(parse(good, &m, &why), 0);
        CHECK_EQ(m.slot, 1);
        CHECK_STREQ(m.version, "0.2.1");
        CHECK_EQ(m.n_banks, 2);
        CHECK_STREQ(m.banks[1].name, "sha256");
        CHECK_STREQ(m.banks[1].hex[2], H32);
        CHECK_EQ(m.result, MEASURE_UNCHECKED);
        /* with a check result and TPM values */
        m.result = MEASURE_MISMATCH;
        strcpy(m.check_boot_id, "abcd");
        strcpy(m.detail, "1 of the PCRs differ");
        m.n_actual = 0;
        CHECK_EQ(measure_bank_set(m.actual, &m.n_actual, "sha256", 8, H32, &why), 0);
        CHECK_EQ(measure_bank_set(m.actual, &m.n_actual, "sha256", 9, H32, &why), 0);
        CHECK_EQ(measure_bank_set(m.actual, &m.n_actual, "sha256", 11, H32, &why), 0);
        Buf b;
        buf_init(&b, MEASURE_FILE_MAX);
        CHECK_EQ(measure_record_format(&m, &b), 0);
        MeasureRecord m2;
        CHECK_EQ(parse(b.data, &m2, &why), 0);
        CHECK_EQ(m2.result, MEASURE_MISMATCH);
        CHECK_STREQ(m2.detail, "1 of the PCRs differ");
        CHECK_EQ(m2.n_actual, 1);
        CHECK_EQ(memcmp(&m, &m2, sizeof m), 0);
        buf_free(&b);
}

static void bad(const char *text, const char *want) {
        MeasureRecord m;
        const char *why = NULL;
        int r = parse(text, &m, &why);
        CHECK_EQ(r, -EBADMSG);
        if (r == -EBADMSG && (!why || !strstr(why, want))) {
                fprintf(stderr, "  reason \"%s\", wanted \"%s\"\n", why ? why : "(null)", want);
                unit_failures++;
        }
}

static void test_refusals(void) {
        char t[4096];
        bad("", "lacks one of SLOT");
        bad("garbage\n", "KEY=VALUE");
        snprintf(t, sizeof t, "%sSLOT=A\n", good);
        bad(t, "given twice");
        snprintf(t, sizeof t, "%sPCR_sha1_8=" H20 "\n", good);
        bad(t, "given twice");
        snprintf(t, sizeof t, "%sWHAT=1\n", good);
        bad(t, "not a known key");
        snprintf(t, sizeof t, "%sPCR_md5_8=" H20 "\n", good);
        bad(t, "unknown bank");
        snprintf(t, sizeof t, "%sPCR_sha384_7=" H20 "\n", good);
        bad(t, "other than 8, 9 and 11");
        snprintf(t, sizeof t, "%sPCR_sha384_8=" H20 "\n", good);  /* sha1-sized value in sha384 */
        bad(t, "digest of the bank's size");
        snprintf(t, sizeof t, "%sPCR_sha512_8=%s\n", good, H32 H32); /* sha512 but only PCR 8 */
        bad(t, "lacks one of PCR 8, 9, 11");
        bad("SLOT=C\n", "SLOT is not A or B");
        bad("VERSION=1..2\n", "dotted version");
        bad("PREDICTED_AT=-5\n", "not a time");
        bad("PREDICTED_AT=99999999999999999999\n", "not a time");
        bad("TPM=maybe\n", "TPM is not");
        bad("PREDICTED_BOOT_ID=../etc\n", "not a boot id");
        bad("PCR_sha1_8=" H20 "\n", "lacks one of SLOT");
        bad("SLOT=A\nVERSION=1.0\nPREDICTED_BOOT_ID=ab\nPREDICTED_AT=1\nTPM=absent\n", "no predicted PCR");
        /* uppercase hex is not what we write */
        char up[4096];
        snprintf(up, sizeof up, "%s", good);
        char *p = strstr(up, "PCR_sha1_8=") + 11 + 10;
        *p = 'A';
        bad(up, "lowercase hex");
        snprintf(t, sizeof t, "%sCHECK_RESULT=match\n", good);
        bad(t, "not all together");
        snprintf(t, sizeof t, "%sCHECK_BOOT_ID=ab\nCHECK_RESULT=fine\nCHECK_DETAIL=x\n", good);
        bad(t, "CHECK_RESULT is not");
        snprintf(t, sizeof t, "%sTPM_sha1_8=" H20 "\n", good);
        bad(t, "without a CHECK_RESULT");
        snprintf(t, sizeof t, "%sNOTE=a\tb\n", good);
        bad(t, "control characters");
        /* a NUL byte in the middle, and the size bound */
        MeasureRecord m;
        const char *why;
        unsigned line;
        char nul[] = "SLOT=A\0\nVERSION=1\n";
        CHECK_EQ(measure_record_parse(nul, sizeof nul - 1, &m, &why, &line), -EBADMSG);
        static char big[MEASURE_FILE_MAX + 2];
        memset(big, '#', sizeof big);
        CHECK_EQ(measure_record_parse(big, sizeof big, &m, &why, &line), -EBADMSG);
        /* format refuses what would not parse back */
        CHECK_EQ(parse(good, &m, &why), 0);
        Buf b;
        buf_init(&b, MEASURE_FILE_MAX);
        m.slot = 2;
        CHECK_EQ(measure_record_format(&m, &b), -EINVAL);
        m.slot = 0;
        strcpy(m.note, "line\nbreak");
        CHECK_EQ(measure_record_format(&m, &b), -EINVAL);
        buf_free(&b);
}

static void test_files_and_status(void) {
        const char *dir = unit_tmpdir();
        MeasureRecord m;
        char err[512];
        unlink("/nonexistent");
        CHECK_EQ(measure_record_load(dir, &m, err, sizeof err), -ENOENT);
        char *text = strdup("{\"state\":\"IDLE\"}\n");
        CHECK_EQ(measure_status_merge(&text, dir, true), 0);
        CHECK_STREQ(text, "{\"state\":\"IDLE\",\"measured_boot\":null}\n");
        free(text);
        const char *why;
        CHECK_EQ(parse(good, &m, &why), 0);
        CHECK_EQ(measure_record_save(dir, &m), 0);
        MeasureRecord m2;
        CHECK_EQ(measure_record_load(dir, &m2, err, sizeof err), 0);
        CHECK_EQ(memcmp(&m, &m2, sizeof m), 0);
        text = strdup("{\"state\":\"IDLE\"}\n");
        CHECK_EQ(measure_status_merge(&text, dir, true), 0);
        CHECK(strstr(text, "\"measured_boot\":{\"slot\":\"B\",\"version\":\"0.2.1\"") != NULL);
        CHECK(strstr(text, "\"sha256\":{\"8\":\"" H32 "\",\"9\":\"" H32 "\",\"11\":\"" H32 "\"}") != NULL);
        CHECK(strstr(text, "\"check\":null") != NULL);
        free(text);
        text = strdup("State: IDLE\n");
        CHECK_EQ(measure_status_merge(&text, dir, false), 0);
        CHECK(strstr(text, "Measured boot: PCRs predicted for slot B (0.2.1)") != NULL);
        CHECK(strstr(text, "sha256 PCR 11 " H32) != NULL);
        free(text);
        /* a damaged record: status says so, with the file and the line */
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, MEASURE_FILE);
        FILE *f = fopen(path, "a");
        fputs("PCR_sha1_8=zz\n", f);
        fclose(f);
        CHECK_EQ(measure_record_load(dir, &m2, err, sizeof err), -EBADMSG);
        CHECK(strstr(err, "line 13") != NULL);
        text = strdup("{\"state\":\"IDLE\"}\n");
        CHECK_EQ(measure_status_merge(&text, dir, true), 0);
        CHECK(strstr(text, "\"measured_boot\":{\"error\":") != NULL);
        free(text);
        CHECK_EQ(measure_record_remove(dir), 0);
        CHECK_EQ(measure_record_load(dir, &m2, err, sizeof err), -ENOENT);
}

static OmahaRequest *req(const char *event_children) {
        char x[8192];
        snprintf(x, sizeof x,
                 "<request protocol=\"3.0\"><app appid=\"a\" machineid=\"m1\" version=\"1.0\">"
                 "<event eventtype=\"800\" eventresult=\"1\">%s</event></app></request>",
                 event_children);
        OmahaRequest *r = NULL;
        CHECK_EQ(omaha_request_parse(x, strlen(x), &r), 0);
        return r;
}

static void test_omaha_pcrs(void) {
        OmahaRequest *r = req("<cairnpcrs kind=\"predicted\" slot=\"B\" version=\"0.2.1\">"
                              "<pcr bank=\"sha256\" index=\"8\" value=\"" H32 "\"/>"
                              "<pcr bank=\"sha1\" index=\"11\" value=\"" H20 "\"/></cairnpcrs>");
        if (!r)
                return;
        OmahaApp *a = &r->apps[0];
        CHECK_EQ(a->n_events, 1);
        CHECK_EQ(a->n_pcr_reports, 1);
        CHECK(a->pcr_reports[0].invalid == NULL);
        CHECK_EQ(a->pcr_reports[0].n, 2);
        CHECK_STREQ(a->pcr_reports[0].kind, "predicted");
        CHECK_STREQ(a->pcr_reports[0].pcr[1].bank, "sha1");
        CHECK_EQ(a->pcr_reports[0].pcr[1].index, 11);
        free(r);
        static const char *const bads[] = {
                "<cairnpcrs kind=\"guessed\" slot=\"B\" version=\"1\"><pcr bank=\"sha1\" index=\"8\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"C\" version=\"1\"></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\"></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"md5\" index=\"8\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"sha1\" index=\"24\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"sha1\" index=\"08\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"sha256\" index=\"8\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"sha1\" index=\"8\" value=\"" H20 "\"/>"
                "<pcr bank=\"sha1\" index=\"8\" value=\"" H20 "\"/></cairnpcrs>",
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"><pcr bank=\"sha1\" index=\"8\"/></cairnpcrs>",
        };
        for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
                r = req(bads[i]);
                if (!r)
                        continue;
                CHECK_EQ(r->apps[0].n_pcr_reports, 1);
                CHECK(r->apps[0].pcr_reports[0].invalid != NULL);
                CHECK_EQ(r->apps[0].pcr_reports[0].n, 0);
                CHECK_EQ(r->apps[0].n_events, 1); /* the event itself still counts */
                free(r);
        }
        /* a third report is dropped; a <pcr> outside <cairnpcrs> and <cairnpcrs> outside <event> are ignored */
        r = req("<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"/><cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"/>"
                "<cairnpcrs kind=\"measured\" slot=\"A\" version=\"1\"/><pcr bank=\"sha1\" index=\"8\" value=\"" H20 "\"/>");
        if (r) {
                CHECK_EQ(r->apps[0].n_pcr_reports, 2);
                CHECK(r->apps[0].pcr_reports_dropped);
                CHECK_EQ(r->apps[0].pcr_reports[0].n, 0);
                free(r);
        }
}

int main(void) {
        RUN(test_round_trip);
        RUN(test_refusals);
        RUN(test_files_and_status);
        RUN(test_omaha_pcrs);
        return unit_main_end();
}
