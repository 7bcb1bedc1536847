/* provision/getrelease.c — cairn-getrelease: the verified /usr image of a release, for cairn-install. Either a
 * local payload file (-f) or the current release of a channel asked from an Omaha server (-C/-s, the agent's
 * request code). Signatures are checked against the trusted keys before a byte of the image is written, and
 * every chunk is checked before it is written to OUT (a new file). */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "fileio.h"
#include "log.h"
#include "payload/payload.h"
#include "payload/sign.h"

static void usage(FILE *f) {
        fprintf(f, "usage: cairn-getrelease (-f PAYLOAD | -C CHANNEL -s SERVER) -k KEYDIR -o OUT.img --size BYTES [--board B]\n"
                   "Writes the verified /usr image of the release to OUT.img (a new file of BYTES bytes) and prints its version.\n");
}

typedef struct MemSink {
        uint8_t *buf;
        size_t len, cap;
} MemSink;

static int mem_sink(void *userdata, const uint8_t *data, size_t n) {
        MemSink *m = userdata;
        if (n > m->cap - m->len)
                return -EFBIG;
        memcpy(m->buf + m->len, data, n);
        m->len += n;
        return 0;
}

static int load_keys(const char *dir, CairnKeyring *kr) {
        keyring_init(kr);
        _cleanup_free_ char *bad = NULL;
        int r = keyring_load_dir(kr, dir, &bad);
        if (r < 0) {
                keyring_done(kr);
                if (bad)
                        return log_error_errno(r, "trusted key '%s/%s' does not load", dir, bad);
                return log_error_errno(r, "no trusted keys in '%s'", dir);
        }
        return 0;
}

static int from_file(const char *file, const CairnKeyring *kr, int out, uint64_t size) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "cannot open '%s'", file);
        Payload *p = NULL;
        int r = payload_load_fd(fd, kr, &p);
        if (r < 0)
                return log_error(r, "payload '%s' refused: %s", file, payload_strerror(r));
        if (p->image_size > size) {
                payload_free(p);
                return log_error(-EFBIG, "payload '%s': its image (%" PRIu64 " bytes) is larger than the USR partition", file,
                                 p->image_size);
        }
        uint32_t bad = 0;
        r = payload_verify_data(p, fd, out, true, &bad);
        if (r < 0) {
                payload_free(p);
                return log_error(r, "payload '%s': %s%s", file, payload_strerror(r), r == -EILSEQ ? " (corrupt data)" : "");
        }
        if (ftruncate(out, (off_t)size) < 0 || fsync(out) < 0)
                r = log_error_errno(negative_errno(), "cannot write the image");
        else
                printf("%s\n", p->version);
        payload_free(p);
        return r;
}

static int from_server(const char *server, const char *channel, const char *board, const CairnKeyring *kr, int out,
                       uint64_t size) {
        char url[1200];
        if (strstr(server, "/v1/update"))
                snprintf(url, sizeof url, "%s", server);
        else
                snprintf(url, sizeof url, "%s%sv1/update/", server, server[strlen(server) - 1] == '/' ? "" : "/");
        AgentHttpOptions ho = { .stall_timeout = 60, .low_speed_limit = 1024, .transfer_timeout = 3600, .connect_timeout = 30 };
        _cleanup_http_ AgentHttp *h = NULL;
        int r = agent_http_new(&ho, &h);
        if (r < 0)
                return log_error_errno(r, "cannot set up HTTP");
        char mid[33];
        _cleanup_free_ char *rnd = NULL;
        size_t rl;
        if (read_file_bounded("/proc/sys/kernel/random/uuid", 64, &rnd, &rl) < 0)
                snprintf(mid, sizeof mid, "%032x", 0);
        else {
                size_t o = 0;
                for (size_t i = 0; rnd[i] && o < 32; i++)
                        if (rnd[i] != '-' && rnd[i] != '\n')
                                mid[o++] = rnd[i];
                mid[o] = 0;
        }
        AgentRequest rq = { .appid = AGENT_APPID, .version = "0.0.0", .track = channel, .machineid = mid, .board = board,
                            .bootid = mid, .oem = "", .interactive = true, .updatecheck = true };
        _cleanup_buf_ Buf req;
        buf_init(&req, OMAHA_MAX_BODY);
        if ((r = agent_omaha_request_xml(&rq, &req)) < 0)
                return log_error_errno(r, "cannot build the Omaha request");
        _cleanup_buf_ Buf resp;
        buf_init(&resp, OMAHA_MAX_BODY);
        if ((r = agent_http_post(h, url, req.data, req.len, OMAHA_MAX_BODY, &resp)) < 0)
                return log_error(r, "update check at '%s': %s", url, agent_http_error(h));
        _cleanup_free_ OmahaResponse *or = NULL;
        if ((r = omaha_response_parse(resp.data ? resp.data : "", resp.len, &or)) < 0)
                return log_error(r, "update server '%s' sent a malformed Omaha answer", url);
        AgentOffer offer;
        const char *what = NULL;
        if ((r = agent_offer_from_response(or, &offer, &what)) < 0)
                return log_error(r, "update server '%s' answered with %s", url, what);
        if (!offer.update)
                return log_error(-ENOENT, "update server '%s' has no release for channel '%s', board '%s'", url, channel, board);

        uint8_t header[PAYLOAD_HEADER_SIZE];
        MemSink m = { .buf = header, .cap = sizeof header };
        if ((r = agent_http_get_range(h, agent_offer_url(&offer), 0, sizeof header, mem_sink, &m, NULL)) < 0)
                return log_error(r, "fetching the payload header: %s", agent_http_error(h));
        size_t prefix;
        if ((r = payload_prefix_size(header, sizeof header, &prefix)) < 0)
                return log_error(r, "payload of %s: %s", offer.version, payload_strerror(r));
        _cleanup_free_ uint8_t *untrusted_prefix = malloc(prefix);
        if (!untrusted_prefix)
                return log_error(-ENOMEM, "out of memory");
        memcpy(untrusted_prefix, header, sizeof header);
        m = (MemSink){ .buf = untrusted_prefix, .len = sizeof header, .cap = prefix };
        if ((r = agent_http_get_range(h, agent_offer_url(&offer), sizeof header, prefix - sizeof header, mem_sink, &m, NULL)) < 0)
                return log_error(r, "fetching the payload manifest: %s", agent_http_error(h));
        Payload *p = NULL;
        if ((r = payload_load(untrusted_prefix, prefix, kr, &p)) < 0)
                return log_error(r, "payload of %s refused: %s", offer.version, payload_strerror(r));
        if (strcmp(p->version, offer.version) != 0 || strcmp(p->board, board) != 0) {
                r = log_error(-EBADMSG, "payload is %s for %s, the server offered %s for %s", p->version, p->board, offer.version, board);
                payload_free(p);
                return r;
        }
        if (ftruncate(out, (off_t)size) < 0) {
                payload_free(p);
                return log_error_errno(negative_errno(), "cannot size the image");
        }
        const char *urls[OMAHA_MAX_URLS];
        for (size_t i = 0; i < offer.n_urls; i++)
                urls[i] = offer.urls[i];
        AgentApply a = { .http = h, .urls = urls, .n_urls = offer.n_urls, .p = p, .fd = out, .target_off = 0, .target_size = size };
        r = agent_apply(&a);
        if (r >= 0)
                r = agent_apply_verify(&a);
        if (r < 0) {
                log_error(r, "writing release %s: %s", offer.version, a.error[0] ? a.error : strerror(-r));
                payload_free(p);
                return r;
        }
        printf("%s\n", p->version);
        payload_free(p);
        return 0;
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *file = NULL, *channel = NULL, *server = NULL, *keys = NULL, *outp = NULL, *board = "amd64-usr",
                   *size_arg = NULL;
        static const struct option opts[] = { { "file", required_argument, NULL, 'f' }, { "channel", required_argument, NULL, 'C' },
                                              { "server", required_argument, NULL, 's' }, { "keys", required_argument, NULL, 'k' },
                                              { "output", required_argument, NULL, 'o' }, { "size", required_argument, NULL, 'z' },
                                              { "board", required_argument, NULL, 'b' }, { "help", no_argument, NULL, 'h' }, {} };
        int c;
        while ((c = getopt_long(argc, argv, "f:C:s:k:o:h", opts, NULL)) >= 0)
                switch (c) {
                case 'f': file = optarg; break;
                case 'C': channel = optarg; break;
                case 's': server = optarg; break;
                case 'k': keys = optarg; break;
                case 'o': outp = optarg; break;
                case 'z': size_arg = optarg; break;
                case 'b': board = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        if (optind != argc || !keys || !outp || !size_arg || (!file == !(channel && server)) || (file && (channel || server))) {
                usage(stderr);
                return 2;
        }
        char *end;
        errno = 0;
        unsigned long long size = strtoull(size_arg, &end, 10);
        if (errno || *end || size == 0)
                return log_error(-EINVAL, "--size '%s' is not a number of bytes", size_arg), 2;
        CairnKeyring kr;
        if (load_keys(keys, &kr) < 0)
                return 1;
        int out = open(outp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0) {
                keyring_done(&kr);
                return log_error_errno(negative_errno(), "cannot create '%s'", outp), 1;
        }
        int r = file ? from_file(file, &kr, out, size) : from_server(server, channel, board, &kr, out, size);
        keyring_done(&kr);
        close(out);
        if (r < 0) {
                unlink(outp);
                return 1;
        }
        return 0;
}
