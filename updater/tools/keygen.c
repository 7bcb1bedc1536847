/* updater/tools/keygen.c — cairn-keygen: make an Ed25519 signing key pair (NAME.key, NAME.pub) and print its key id. */
#include <getopt.h>

#include "log.h"
#include "payload/sign.h"

static void usage(FILE *f) {
        fprintf(f, "usage: cairn-keygen -o DIR/NAME\n"
                   "Writes DIR/NAME.key (PEM private key, mode 0600) and DIR/NAME.pub (PEM public key)\n"
                   "and prints the key id (16 hex digits).\n");
}

int main(int argc, char **argv) {
        log_init(argv[0]);
        const char *out = NULL;
        static const struct option opts[] = {
                {"output", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'o': out = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!out || optind != argc) {
                usage(stderr);
                return 2;
        }

        char keypath[4096], pubpath[4096];
        if ((size_t)snprintf(keypath, sizeof keypath, "%s.key", out) >= sizeof keypath ||
            (size_t)snprintf(pubpath, sizeof pubpath, "%s.pub", out) >= sizeof pubpath) {
                log_error(-ENAMETOOLONG, "output name \"%s\" is too long", out);
                return 2;
        }
        if (access(keypath, F_OK) == 0) {
                log_error(-EEXIST, "\"%s\" already exists; refusing to overwrite a signing key", keypath);
                return 1;
        }

        _cleanup_pkey_ EVP_PKEY *pkey = NULL;
        int r = key_generate(&pkey);
        if (r < 0) {
                log_error_errno(r, "Failed to generate an Ed25519 key");
                return 1;
        }
        uint8_t id[CAIRN_KEY_ID_SIZE];
        char hex[CAIRN_KEY_ID_HEX_SIZE];
        r = key_id(pkey, id);
        if (r < 0) {
                log_error_errno(r, "Failed to compute the key id");
                return 1;
        }
        r = key_save_private(keypath, pkey);
        if (r < 0) {
                log_error_errno(r, "Failed to write private key \"%s\"", keypath);
                return 1;
        }
        r = key_save_public(pubpath, pkey);
        if (r < 0) {
                log_error_errno(r, "Failed to write public key \"%s\"", pubpath);
                return 1;
        }
        printf("%s\n", key_id_to_hex(id, hex));
        return 0;
}
