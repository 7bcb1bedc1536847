/* provision/ignition.h — the subset of Ignition spec 3.x that Cairn provisions on first boot: parse and
 * validate a config, stage everything it asks for (in memory, against a root directory), then apply it.
 * Nothing is written before the whole config has been checked and every file's contents are in hand. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Largest config accepted (bytes) and limits on what a config may make us hold in memory. */
#define PROV_CONFIG_MAX (2u << 20)
#define PROV_FILE_MAX (16u << 20)
#define PROV_TOTAL_MAX (64u << 20)

/* One line describing why a step failed (no trailing newline); escaped, so safe to print. */
struct prov_err {
        char msg[512];
};

/* Fetch url (http/https) into a malloc'ed buffer of at most max bytes: 0, or -errno with err->msg set. */
typedef int (*prov_fetch_fn)(const char *url, size_t max, char **ret_data, size_t *ret_len, struct prov_err *err);

struct prov_plan;

/* Parse and validate an untrusted config. data: URL contents are decoded (and hash-checked) here; remote
 * contents are fetched by prov_stage(). On error *ret is untouched and err says what (naming the field). */
int prov_parse(const char *untrusted, size_t len, struct prov_plan **ret, struct prov_err *err);
/* Fetch remote contents, check hashes, read root's /etc/passwd, /etc/shadow, /etc/group and compute the new
 * ones, resolve owners and check every path against what is already under root. Writes nothing. */
int prov_stage(struct prov_plan *p, const char *root, prov_fetch_fn fetch, struct prov_err *err);
/* Apply a staged plan under root: create everything as temporary names first, then rename into place; on
 * a failure before the renames everything created is removed again. */
int prov_apply(struct prov_plan *p, const char *root, struct prov_err *err);
/* Counts for the summary line. */
void prov_summary(const struct prov_plan *p, char *buf, size_t n);
void prov_plan_free(struct prov_plan *p);

/* Helpers exposed for tests. */
int prov_data_url_decode(const char *url, char **ret, size_t *ret_len);
bool prov_path_allowed(const char *path);
