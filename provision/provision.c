/* provision/provision.c — cairn-provision: find this boot's Ignition config (QEMU fw_cfg, the OEM partition,
 * ignition.config.url=), provision from it once, and remember that on ROOT. */
#include <getopt.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "fetch.h"
#include "fileio.h"
#include "ignition.h"
#include "log.h"
#include "macro.h"

static const char *const fw_cfg_names[] = { "opt/org.flatcar-linux/config", "opt/com.coreos/config" };

struct source {
        char what[300];
        char *data;
        size_t len;
};

static void usage(FILE *f) {
        fprintf(f,
                "usage: cairn-provision [--root DIR] [--fw-cfg DIR] [--oem FILE] [--cmdline FILE] [--config FILE]\n"
                "       cairn-provision --check FILE   (validate a config, change nothing)\n"
                "Provisions the host from its Ignition config on first boot (see docs/provisioning.md).\n");
}

static void hash_hex(const char *d, size_t n, char out[65]) {
        unsigned char md[32];
        unsigned int l = 0;
        EVP_Digest(d, n, md, &l, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
}

/* 1 and the config if this source has one, 0 if not, <0 (message printed) if it is there but unreadable. */
static int read_source(const char *path, const char *what, struct source *s) {
        int r = read_file_bounded(path, PROV_CONFIG_MAX, &s->data, &s->len);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        snprintf(s->what, sizeof s->what, "%s", what);
        if (r == -EFBIG)
                return log_error(r, "config from %s: config is larger than %u MiB", what, PROV_CONFIG_MAX >> 20);
        if (r < 0)
                return log_error_errno(r, "config from %s: cannot read '%s'", what, path);
        return 1;
}

static int cmdline_url(const char *cmdline, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        *ret = NULL;
        int r = read_file_bounded(cmdline, 65536, &buf, &len);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        for (char *t = strtok(buf, " \t\n"); t; t = strtok(NULL, " \t\n"))
                if (strncmp(t, "ignition.config.url=", 20) == 0) {
                        free(*ret);
                        if (!(*ret = strdup(t + 20)))
                                return -ENOMEM;
                }
        return 0;
}

/* Local sources in order: fw_cfg (Flatcar's name, then Fedora CoreOS'), then the OEM partition's file. */
static int find_local(const char *fw_cfg, const char *oem, struct source *s) {
        char path[4096], what[300];
        for (size_t i = 0; i < ELEMENTSOF(fw_cfg_names); i++) {
                snprintf(path, sizeof path, "%s/%s/raw", fw_cfg, fw_cfg_names[i]);
                snprintf(what, sizeof what, "fw_cfg %s", fw_cfg_names[i]);
                int r = read_source(path, what, s);
                if (r != 0)
                        return r;
        }
        snprintf(what, sizeof what, "the OEM partition (%s)", oem);
        return read_source(oem, what, s);
}

static int provision(const char *root, struct source *s) {
        struct prov_err err = { .msg = "" };
        struct prov_plan *p = NULL;
        int r = prov_parse(s->data, s->len, &p, &err);
        if (r >= 0)
                r = prov_stage(p, root, prov_fetch_http, &err);
        if (r >= 0)
                r = prov_apply(p, root, &err);
        if (r < 0) {
                log_msg("config from %s: %s", s->what, *err.msg ? err.msg : strerror(-r));
                prov_plan_free(p);
                return r;
        }
        char sum[200];
        prov_summary(p, sum, sizeof sum);
        log_msg("provisioned from %s: %s", s->what, sum);
        prov_plan_free(p);
        return 0;
}

static int check_only(const char *file) {
        struct source s = { .what = "" };
        snprintf(s.what, sizeof s.what, "'%s'", file);
        int r = read_file_bounded(file, PROV_CONFIG_MAX, &s.data, &s.len);
        if (r == -EFBIG)
                return log_error(r, "config from %s: config is larger than %u MiB", s.what, PROV_CONFIG_MAX >> 20);
        if (r < 0)
                return log_error_errno(r, "cannot read '%s'", file);
        struct prov_err err = { .msg = "" };
        struct prov_plan *p = NULL;
        r = prov_parse(s.data, s.len, &p, &err);
        free(s.data);
        if (r < 0)
                return log_error(r, "config from '%s': %s", file, err.msg);
        char sum[200];
        prov_summary(p, sum, sizeof sum);
        printf("%s: valid for Cairn: %s\n", file, sum);
        prov_plan_free(p);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *root = "", *fw_cfg = "/sys/firmware/qemu_fw_cfg/by_name", *oem = "/oem/config.ign",
                   *cmdline = "/proc/cmdline", *config = NULL, *check = NULL;
        static const struct option opts[] = { { "root", required_argument, NULL, 'r' },
                                              { "fw-cfg", required_argument, NULL, 'f' },
                                              { "oem", required_argument, NULL, 'o' },
                                              { "cmdline", required_argument, NULL, 'k' },
                                              { "config", required_argument, NULL, 'c' },
                                              { "check", required_argument, NULL, 'C' },
                                              { "help", no_argument, NULL, 'h' },
                                              {} };
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r': root = optarg; break;
                case 'f': fw_cfg = optarg; break;
                case 'o': oem = optarg; break;
                case 'k': cmdline = optarg; break;
                case 'c': config = optarg; break;
                case 'C': check = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if (check)
                return check_only(check) < 0 ? 1 : 0;
        if (strcmp(root, "/") == 0)
                root = "";

        char marker[4096];
        snprintf(marker, sizeof marker, "%s/var/lib/cairn/provisioned", root);
        struct source s = { .what = "" };
        int r;
        if (config) {
                char what[300];
                snprintf(what, sizeof what, "'%s'", config);
                r = read_source(config, what, &s);
                if (r == 0)
                        r = log_error(-ENOENT, "config file '%s' does not exist", config);
        } else
                r = find_local(fw_cfg, oem, &s);

        struct stat st;
        if (lstat(marker, &st) == 0) {
                /* Provisioned before: never again. Say so if a different config is offered now. */
                _cleanup_free_ char *m = NULL;
                size_t ml;
                char h[65] = "";
                if (r > 0)
                        hash_hex(s.data, s.len, h);
                if (r > 0 && (read_file_bounded(marker, 4096, &m, &ml) < 0 || !strstr(m, h)))
                        log_msg("notice: the Ignition config from %s differs from the one this host was provisioned with "
                                "on its first boot; it is ignored (provisioning runs once)", s.what);
                else
                        log_debug("already provisioned");
                free(s.data);
                return 0;
        }
        if (r == 0) {
                _cleanup_free_ char *url = NULL;
                if ((r = cmdline_url(cmdline, &url)) < 0)
                        return log_error_errno(r, "cannot read '%s'", cmdline), 1;
                if (url) {
                        struct prov_err err = { .msg = "" };
                        snprintf(s.what, sizeof s.what, "ignition.config.url");
                        r = prov_fetch_http(url, PROV_CONFIG_MAX, &s.data, &s.len, &err);
                        if (r == -EFBIG)
                                log_msg("config from %s: config is larger than %u MiB", s.what, PROV_CONFIG_MAX >> 20);
                        else if (r < 0)
                                log_msg("config from %s: %s", s.what, err.msg);
                        r = r < 0 ? r : 1;
                }
        }
        if (r == 0) {
                log_msg("no Ignition config (fw_cfg, OEM partition, ignition.config.url=): nothing to provision");
                s.data = NULL, s.len = 0;
                snprintf(s.what, sizeof s.what, "none");
        } else if (r < 0 || (r = provision(root, &s)) < 0) {
                log_msg("provisioning failed; nothing was applied (the config is tried again on the next boot)");
                free(s.data);
                return 1;
        }
        char h[65], *text;
        hash_hex(s.data ? s.data : "", s.len, h);
        if (asprintf(&text, "source=%s\nsha256=%s\n", s.what, s.data ? h : "none") < 0)
                return 1;
        free(s.data);
        if ((r = mkdir_parents(marker, false)) < 0 || (r = write_file_atomic(marker, text, strlen(text), 0644)) < 0) {
                free(text);
                return log_error_errno(r, "cannot write the marker '%s'", marker), 1;
        }
        free(text);
        return 0;
}
