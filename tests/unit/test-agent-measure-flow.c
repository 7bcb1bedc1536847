/* tests/unit/test-agent-measure-flow.c — the agent's measured-boot flow (updater/agent/measure.c) against a
 * scripted cairn-tpm ($CAIRN_TPM_COMMAND): what it asks cairn-tpm, which banks it predicts (the TPM's, or sha1 +
 * sha256 without one), what it records, and each verdict after the boot — match, mismatch (changed value, a TPM
 * bank not predicted), other-slot (rollback), no TPM, an unreadable TPM answer. The real cairn-tpm and a real boot:
 * tests/integration/66-tpm-boot.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/agent-internal.h"
#include "agent/measure.h"
#include "fileio.h"
#include "unit.h"

#define H20A "1111111111111111111111111111111111111111"
#define H20B "2222222222222222222222222222222222222222"
#define H32A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H32B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char dir[900];

static void put(const char *rel, const char *text, mode_t mode) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        CHECK_EQ(mkdir_parents(p, false), 0);
        CHECK_EQ(write_file_atomic(p, text, strlen(text), mode), 0);
}

static char *get(const char *rel) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        char *t = NULL;
        size_t n;
        if (read_file_bounded(p, 1 << 20, &t, &n) < 0)
                return NULL;
        return t;
}

/* The scripted cairn-tpm: `pcrs` prints tpm.json (or exits with the code in tpm.rc), `predict` prints
 * predict.json; both log their arguments to args.log. */
static void script(const char *tpm_json, int tpm_rc, const char *predict_json) {
        char s[4096];
        snprintf(s, sizeof s,
                 "#!/bin/sh\necho \"$*\" >>%s/args.log\n"
                 "case $1 in\n"
                 "pcrs) [ %d = 0 ] || { echo 'cairn-tpm: no TPM at \"x\" (test): measured boot is not available here' >&2; exit %d; }\n"
                 "      cat %s/tpm.json ;;\n"
                 "predict) cat %s/predict.json ;;\n"
                 "esac\n",
                 dir, tpm_rc, tpm_rc, dir, dir);
        put("cairn-tpm", s, 0755);
        put("tpm.json", tpm_json, 0644);
        put("predict.json", predict_json, 0644);
        put("args.log", "", 0644);
}

static Agent *agent(const char *boot_id) {
        put("root/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0644);
        put("root/usr/lib/os-release", "VERSION_ID=1.0.0\n", 0644);
        char root[1000];
        snprintf(root, sizeof root, "%s/root", dir);
        AgentOptions o = { .root = root, .booted = 0, .boot_id = boot_id };
        Agent *a = NULL;
        char err[512] = "";
        int r = agent_new(&o, &a, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "agent_new: %s\n", err);
        CHECK_EQ(r, 0);
        return a;
}

#define TPM2 "{\"tcti\":\"x\",\"banks\":{\"sha1\":{\"8\":\"" H20A "\",\"9\":\"" H20A "\",\"11\":\"" H20A "\"}," \
             "\"sha256\":{\"8\":\"" H32A "\",\"9\":\"" H32A "\",\"11\":\"" H32A "\"}}}"
#define PRED(ver) "{\"slot\":\"B\",\"version\":\"" ver "\",\"banks\":{\"sha1\":{\"8\":\"" H20A "\",\"9\":\"" H20A \
                  "\",\"11\":\"" H20A "\"},\"sha256\":{\"8\":\"" H32A "\",\"9\":\"" H32A "\",\"11\":\"" H32A "\"}}," \
                  "\"events\":[{\"pcr\":8,\"digests\":{\"sha1\":\"" H20A "\"}}]}"

static MeasureRecord record(void) {
        MeasureRecord m = { 0 };
        char err[512] = "", sd[1000];
        snprintf(sd, sizeof sd, "%s/root/var/lib/cairn", dir);
        int r = measure_record_load(sd, &m, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "record: %s (%d)\n", err, r);
        CHECK_EQ(r, 0);
        return m;
}

static void test_predict(void) {
        script(TPM2, 0, PRED("2.0.0"));
        Agent *a = agent("boot-1");
        if (!a)
                return;
        CHECK_EQ(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", true), 0);
        char *args = get("args.log");
        CHECK(args && strstr(args, "pcrs --pcrs 8,9,11 --json\n"));
        CHECK(args && strstr(args, "predict --disk /dev/disk-x --slot B --banks sha1,sha256 --bios --json\n"));
        free(args);
        MeasureRecord m = record();
        CHECK_EQ(m.slot, 1);
        CHECK_STREQ(m.version, "2.0.0");
        CHECK_STREQ(m.boot_id, "boot-1");
        CHECK_STREQ(m.tpm, "present");
        CHECK_EQ(m.n_banks, 2);
        CHECK_EQ(m.result, MEASURE_UNCHECKED);
        /* the install event's element */
        CHECK(a->event_xml && strstr(a->event_xml, "<cairnpcrs kind=\"predicted\" slot=\"B\" version=\"2.0.0\">"));
        CHECK(a->event_xml && strstr(a->event_xml, "<pcr bank=\"sha256\" index=\"11\" value=\"" H32A "\"></pcr>"));
        agent_free(a);

        /* no TPM: sha1 + sha256 predicted, the record says why */
        script("", 3, PRED("2.0.0"));
        a = agent("boot-1");
        CHECK_EQ(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false), 0);
        args = get("args.log");
        CHECK(args && strstr(args, "--banks sha1,sha256 "));
        free(args);
        m = record();
        CHECK_STREQ(m.tpm, "absent");
        CHECK(strstr(m.note, "measured boot is not available here: predicted sha1 and sha256") != NULL);
        CHECK(a->event_xml == NULL);

        /* the slot holds another version: no record (a stale one would be compared with the wrong boot) */
        script(TPM2, 0, PRED("2.0.1"));
        CHECK_EQ(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false), -ESTALE);
        char *rec = get("root/var/lib/cairn/tpm-prediction");
        CHECK(rec == NULL);
        free(rec);
        /* cairn-tpm's answer is garbage, or it fails: no record */
        script(TPM2, 0, "{\"banks\":{\"sha256\":{\"8\":\"zz\"}}}");
        CHECK(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false) < 0);
        script(TPM2, 0, "not json");
        CHECK(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false) < 0);
        rec = get("root/var/lib/cairn/tpm-prediction");
        CHECK(rec == NULL);
        free(rec);
        agent_free(a);
}

/* A prediction made in boot-1 (the values of TPM2), then checked in boot-2 with tpm_json as the TPM. */
static MeasureRecord check(const char *tpm_json, int tpm_rc, int booted) {
        script(TPM2, 0, PRED("2.0.0"));
        Agent *a = agent("boot-1");
        CHECK_EQ(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false), 0);
        agent_free(a);
        script(tpm_json, tpm_rc, PRED("2.0.0"));
        a = agent("boot-2");
        agent_measure_check(a, booted);
        agent_free(a);
        return record();
}

static void test_check(void) {
        MeasureRecord m = check(TPM2, 0, 1);
        CHECK_EQ(m.result, MEASURE_MATCH);
        CHECK_STREQ(m.check_boot_id, "boot-2");
        CHECK_EQ(m.n_actual, 2);
        CHECK(strstr(m.detail, "PCR 8, 9, 11 of 2 banks equal the prediction for slot B (2.0.0)") != NULL);
        /* checked once: a second run in the same boot does not compare again (the TPM now differs) */
        script("{\"banks\":{}}", 0, "");
        Agent *a = agent("boot-2");
        agent_measure_check(a, 1);
        agent_free(a);
        CHECK_EQ(record().result, MEASURE_MATCH);
        /* the same boot as the prediction: nothing compared yet */
        script(TPM2, 0, PRED("2.0.0"));
        a = agent("boot-1");
        CHECK_EQ(agent_measure_predict(a, "/dev/disk-x", 1, "2.0.0", false), 0);
        agent_measure_check(a, 1);
        agent_free(a);
        CHECK_EQ(record().result, MEASURE_UNCHECKED);

        m = check("{\"banks\":{\"sha1\":{\"8\":\"" H20A "\",\"9\":\"" H20B "\",\"11\":\"" H20A "\"},"
                  "\"sha256\":{\"8\":\"" H32A "\",\"9\":\"" H32A "\",\"11\":\"" H32B "\"}}}", 0, 1);
        CHECK_EQ(m.result, MEASURE_MISMATCH);
        CHECK(strstr(m.detail, "2 of the PCRs differ from the prediction for slot B (2.0.0); first: PCR 9 bank sha1") != NULL);
        CHECK_EQ(m.n_actual, 2);
        CHECK_STREQ(m.actual[1].hex[2], H32B);
        /* a TPM bank that was not predicted is a mismatch too */
        m = check("{\"banks\":{\"sha1\":{\"8\":\"" H20A "\",\"9\":\"" H20A "\",\"11\":\"" H20A "\"},"
                  "\"sha256\":{\"8\":\"" H32A "\",\"9\":\"" H32A "\",\"11\":\"" H32A "\"},"
                  "\"sha512\":{\"8\":\"" H32A H32A "\",\"9\":\"" H32A H32A "\",\"11\":\"" H32A H32A "\"}}}", 0, 1);
        CHECK_EQ(m.result, MEASURE_MISMATCH);
        CHECK(strstr(m.detail, "bank sha512 of the TPM was not predicted") != NULL);
        /* rollback: the host came back on A; not compared, not a mismatch */
        m = check(TPM2, 0, 0);
        CHECK_EQ(m.result, MEASURE_OTHER_SLOT);
        CHECK(strstr(m.detail, "came back on slot A (a rollback): not compared") != NULL);
        char *args = get("args.log");
        CHECK(args && !strstr(args, "pcrs")); /* the TPM was not even read */
        free(args);
        /* no TPM; a TPM answer that cannot be used */
        m = check("", 3, 1);
        CHECK_EQ(m.result, MEASURE_NO_TPM);
        CHECK(strstr(m.detail, "no TPM on this host") != NULL);
        m = check("{\"banks\":{\"sha256\":{\"8\":\"" H32A "\"}}}", 0, 1);
        CHECK_EQ(m.result, MEASURE_ERROR);
        CHECK(strstr(m.detail, "lacks PCR 9 of bank sha256") != NULL);
        m = check("{\"banks\":{\"sha256\":{\"8\":\"" H32A "\"}}} trailing", 0, 1);
        CHECK_EQ(m.result, MEASURE_ERROR);
}

int main(void) {
        snprintf(dir, sizeof dir, "%s", unit_tmpdir());
        char path[2048];
        snprintf(path, sizeof path, "%s/cairn-tpm", dir);
        setenv("CAIRN_TPM_COMMAND", path, 1);
        RUN(test_predict);
        RUN(test_check);
        return unit_main_end();
}
