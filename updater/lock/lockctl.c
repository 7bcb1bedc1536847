/* updater/lock/lockctl.c — the operator's view of the cluster reboot lock in etcd, like locksmithctl (status,
 * lock [ID], unlock [ID], set-max N): `cairnctl lock-status|lock|unlock|set-max` and its alias cairn-lockctl
 * (lockctl-main.c) both run lock_cli_main(). Exit status: 0 done, 1 failed, 2 usage, 3 no slot free (lock only). */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>

#include "fileio.h"
#include "lock.h"
#include "lockctl.h"
#include "log.h"
#include "parse.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static const char *status_verb = "status";

static void usage(FILE *f) {
        fprintf(f,
                "usage: %s [options] %s | lock [ID] | unlock [ID] | set-max N\n"
                "  --endpoint URL       etcd client URL (repeatable, or a comma list; default $ETCD_ENDPOINTS,\n"
                "                       then $LOCKSMITHD_ENDPOINT, then http://127.0.0.1:2379)\n"
                "  --group G            the group's semaphore instead of the default one ($LOCK_GROUP)\n"
                "  --cacert FILE        CA to verify etcd's certificate with\n"
                "  --cert FILE --key FILE  TLS client certificate and key\n"
                "  --user USER:PASS     etcd user and password (or $CAIRN_LOCK_USER=USER:PASS, or\n"
                "                       $LOCKSMITHD_ETCD_USERNAME and $LOCKSMITHD_ETCD_PASSWORD)\n"
                "  --timeout SECS       for one request to one endpoint (default 10)\n"
                "  --machine-id-file F  where the default ID comes from (default /etc/machine-id)\n"
                "  --json               machine-readable output\n"
                "  --root DIR           prefix of /etc/machine-id (and, for cairnctl, of update.conf, whose\n"
                "                       ETCD_* and LOCK_GROUP settings are the defaults)\n"
                "lock and unlock without ID act for this machine; unlock ID frees another machine's slot.\n"
                "Exit status: 0 done, 1 failed, 2 usage, 3 no slot free.\n",
                log_prog, status_verb);
}

static int read_machine_id(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, 256, &data, &len);
        if (r < 0)
                return log_error_errno(r, "cannot read the machine id from '%s' (pass an ID or --machine-id-file)", path);
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
                data[--len] = 0;
        if (strlen(data) != len || !semaphore_id_valid(data))
                return log_error(-EINVAL, "'%s' does not hold a usable machine id", path);
        snprintf(buf, size, "%s", data);
        return 0;
}

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int print_status(const char *key, const Semaphore *s, bool json) {
        if (json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *h = json_object_new_array();
                if (!o || !h)
                        return -ENOMEM;
                json_object_object_add(o, "key", json_object_new_string(key));
                json_object_object_add(o, "semaphore", json_object_new_int64(s->semaphore));
                json_object_object_add(o, "max", json_object_new_int64(s->max));
                for (size_t i = 0; i < s->n_holders; i++)
                        json_object_array_add(h, json_object_new_string(s->holders[i]));
                json_object_object_add(o, "holders", h);
                print_json(o);
                return 0;
        }
        printf("Available: %" PRId64 "\nMax: %" PRId64 "\n", s->semaphore, s->max);
        if (s->n_holders) {
                printf("\nMACHINE ID\n");
                for (size_t i = 0; i < s->n_holders; i++)
                        printf("%s\n", s->holders[i]);
        }
        return 0;
}

static void print_result(const char *key, const char *id, const char *result, bool json) {
        if (json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return;
                json_object_object_add(o, "key", json_object_new_string(key));
                json_object_object_add(o, "id", json_object_new_string(id));
                json_object_object_add(o, "result", json_object_new_string(result));
                print_json(o);
        } else
                printf("%s: %s\n", result, id);
}

int lock_cli_main(int argc, char **argv, const char *status_name, lock_cli_defaults_fn load_defaults) {
        status_verb = status_name ? status_name : "status";
        enum { O_ENDPOINT = 256, O_GROUP, O_CACERT, O_CERT, O_KEY, O_USER, O_TIMEOUT, O_MIDFILE, O_JSON, O_ROOT };
        static const struct option opts[] = {
                { "endpoint", required_argument, NULL, O_ENDPOINT }, { "group", required_argument, NULL, O_GROUP },
                { "cacert", required_argument, NULL, O_CACERT },     { "cert", required_argument, NULL, O_CERT },
                { "key", required_argument, NULL, O_KEY },           { "user", required_argument, NULL, O_USER },
                { "timeout", required_argument, NULL, O_TIMEOUT },   { "machine-id-file", required_argument, NULL, O_MIDFILE },
                { "json", no_argument, NULL, O_JSON },               { "help", no_argument, NULL, 'h' },
                { "root", required_argument, NULL, O_ROOT },
                {},
        };
        LockOptions o = { 0 };
        const char *midfile = NULL;
        const char *root = "";
        char midbuf[4096];
        const char *user = NULL;
        bool json = false;
        int c, r;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case O_ENDPOINT:
                        if (lock_options_add_endpoints(&o, optarg) < 0)
                                return log_error(-E2BIG, "more than %d endpoints", LOCK_MAX_ENDPOINTS), 2;
                        break;
                case O_GROUP:
                        o.group = optarg;
                        break;
                case O_CACERT:
                        o.ca_file = optarg;
                        break;
                case O_CERT:
                        o.cert_file = optarg;
                        break;
                case O_KEY:
                        o.key_file = optarg;
                        break;
                case O_USER:
                        user = optarg;
                        break;
                case O_TIMEOUT:
                        if (parse_unsigned_range(optarg, 1, 3600, &o.timeout) < 0)
                                return log_error(-EINVAL, "--timeout '%s': expected 1..3600 seconds", optarg), 2;
                        break;
                case O_MIDFILE:
                        midfile = optarg;
                        break;
                case O_JSON:
                        json = true;
                        break;
                case O_ROOT:
                        root = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[optind++];
        const char *arg = optind < argc ? argv[optind++] : NULL;
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        if (strcmp(cmd, status_verb) == 0)
                cmd = "status";
        else if (strcmp(cmd, "status") == 0 && strcmp(status_verb, "status") != 0) {
                usage(stderr);
                return 2;
        }
        if (!midfile) {
                snprintf(midbuf, sizeof midbuf, "%s/etc/machine-id", root);
                midfile = midbuf;
        }
        /* The host's update.conf (cairnctl) fills what neither options nor the environment set. */
        LockCliDefaults d = { 0 };
        if (load_defaults && load_defaults(root, &d) < 0)
                return 1;
        if (o.n_endpoints == 0 && !(getenv("ETCD_ENDPOINTS") && *getenv("ETCD_ENDPOINTS")) &&
            !(getenv("LOCKSMITHD_ENDPOINT") && *getenv("LOCKSMITHD_ENDPOINT")) && d.endpoints && *d.endpoints &&
            lock_options_add_endpoints(&o, d.endpoints) < 0)
                return log_error(-E2BIG, "update.conf: ETCD_ENDPOINTS has more than %d endpoints", LOCK_MAX_ENDPOINTS), 2;
        if (!o.ca_file && d.ca_file && *d.ca_file)
                o.ca_file = d.ca_file;
        if (!o.cert_file && !o.key_file && d.cert_file && *d.cert_file && d.key_file && *d.key_file) {
                o.cert_file = d.cert_file;
                o.key_file = d.key_file;
        }

        _cleanup_free_ char *env_ep = NULL;
        if (o.n_endpoints == 0) {
                const char *e = getenv("ETCD_ENDPOINTS");
                if (!e || !*e)
                        e = getenv("LOCKSMITHD_ENDPOINT");
                env_ep = strdup(e && *e ? e : "http://127.0.0.1:2379");
                if (!env_ep || lock_options_add_endpoints(&o, env_ep) < 0)
                        return log_error(-E2BIG, "cannot use the endpoint list"), 2;
        }
        if (!o.group && getenv("LOCK_GROUP") && *getenv("LOCK_GROUP"))
                o.group = getenv("LOCK_GROUP");
        if (!o.group && d.group && *d.group)
                o.group = d.group;
        _cleanup_free_ char *userbuf = NULL;
        if (!user)
                user = getenv("CAIRN_LOCK_USER");
        if (user) {
                userbuf = strdup(user);
                char *colon = userbuf ? strchr(userbuf, ':') : NULL;
                if (!colon || colon == userbuf)
                        return log_error(-EINVAL, "--user expects USER:PASS"), 2;
                *colon = 0;
                o.user = userbuf;
                o.password = colon + 1;
        } else if (getenv("LOCKSMITHD_ETCD_USERNAME") && *getenv("LOCKSMITHD_ETCD_USERNAME")) {
                o.user = getenv("LOCKSMITHD_ETCD_USERNAME");
                o.password = getenv("LOCKSMITHD_ETCD_PASSWORD");
        } else if (d.user && *d.user) {
                o.user = d.user;
                o.password = d.password;
        }

        bool need_id = (strcmp(cmd, "lock") == 0 || strcmp(cmd, "unlock") == 0) && !arg;
        bool known = (strcmp(cmd, "status") == 0 && !arg) || (strcmp(cmd, "set-max") == 0 && arg) ||
                     strcmp(cmd, "lock") == 0 || strcmp(cmd, "unlock") == 0;
        if (!known) {
                usage(stderr);
                return 2;
        }
        int64_t newmax = 0;
        if (strcmp(cmd, "set-max") == 0) {
                uint64_t v;
                if (parse_u64_range(arg, 0, SEMAPHORE_MAX_MAX, &v) < 0)
                        return log_error(-EINVAL, "set-max '%s': expected 0..%d", arg, SEMAPHORE_MAX_MAX), 2;
                newmax = (int64_t)v;
        }
        char id[SEMAPHORE_ID_MAX + 1] = "";
        if (need_id) {
                if (read_machine_id(midfile, id, sizeof id) < 0)
                        return 1;
        } else if (arg && strcmp(cmd, "set-max") != 0) {
                if (!semaphore_id_valid(arg))
                        return log_error(-EINVAL, "'%s' is not a valid id (1..%u printable bytes)", arg, SEMAPHORE_ID_MAX), 2;
                snprintf(id, sizeof id, "%s", arg);
        }

        const LockBackend *b = &lock_backend_etcd;
        Lock *l = NULL;
        r = b->open(&o, &l);
        if (r == -EPROTONOSUPPORT)
                return log_error(r, "endpoints must be http:// or https:// URLs"), 2;
        if (r == -EINVAL)
                return log_error(r, "--cert and --key go together"), 2;
        if (r < 0)
                return log_error_errno(r, "cannot set up the etcd client"), 1;
        const char *key = b->name_of(l);
        int ret = 0;
        if (strcmp(cmd, "status") == 0) {
                _cleanup_semaphore_ Semaphore s = { 0 };
                r = b->status(l, &s);
                if (r >= 0)
                        r = print_status(key, &s, json);
        } else if (strcmp(cmd, "lock") == 0) {
                r = b->take(l, id);
                if (r >= 0)
                        print_result(key, id, r > 0 ? "locked" : "already-held", json);
                else if (r == -EBUSY)
                        ret = 3;
        } else if (strcmp(cmd, "unlock") == 0) {
                if (need_id) {
                        r = b->release(l, id);
                        if (r == 0) {
                                log_error(-ENOENT, "'%s' holds no slot of etcd key '%s'; nothing released "
                                                   "(to free another machine's slot: unlock ID)", id, key);
                                ret = 1;
                        }
                } else
                        r = b->evict(l, id);
                if (r > 0)
                        print_result(key, id, "unlocked", json);
        } else {
                int64_t old = 0;
                r = b->set_max(l, newmax, &old);
                if (r >= 0) {
                        if (json) {
                                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                                if (j) {
                                        json_object_object_add(j, "key", json_object_new_string(key));
                                        json_object_object_add(j, "old_max", json_object_new_int64(old));
                                        json_object_object_add(j, "max", json_object_new_int64(newmax));
                                        print_json(j);
                                }
                        } else
                                printf("Old-Max: %" PRId64 "\nMax: %" PRId64 "\n", old, newmax);
                }
        }
        if (r < 0) {
                log_msg("%s: %s", cmd, b->error(l));
                if (!ret)
                        ret = 1;
        }
        b->close(l);
        return ret;
}
