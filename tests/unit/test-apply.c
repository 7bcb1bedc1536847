/* tests/unit/test-apply.c — the agent's streaming apply pipeline (updater/agent/apply.c) end to end in one process:
 * a real payload served over HTTP with Range by a small server thread on 127.0.0.1, the workers decoding and
 * writing chunks into a disk file, the read-back hasher behind them, then agent_apply_verify. Also the failure
 * paths that are raised from the worker threads (a chunk whose bytes do not match its hash) and from the
 * transfer (the server going away mid-payload). `make check` runs this binary under ThreadSanitizer as well. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "fileio.h"
#include "hash.h"
#include "payload/payload.h"
#include "unit.h"

#define CS (64u * 1024u)
#define CHUNKS 40u
#define IMAGE_SIZE (CS * CHUNKS - 777u) /* a short last chunk */
#define SLOT_SIZE (CS * (CHUNKS + 4u))

static uint8_t image[IMAGE_SIZE];
static uint8_t *payload;
static size_t payload_len;

/* ---- a tiny HTTP/1.1 server with Range, one connection at a time ---- */

typedef struct Server {
        int fd;
        int port;
        pthread_t thread;
        int stop; /* atomic */
        size_t cut_after;  /* non-zero: close the connection after sending this many body bytes in total */
        size_t corrupt_at; /* non-zero: flip the byte at this payload offset in what is sent */
        size_t corrupt_at2; /* and this one */
        size_t sent;
} Server;

static void serve_one(Server *s, int c) {
        char req[4096];
        size_t n = 0;
        for (;;) { /* keep-alive: answer requests until the client closes */
                char *end;
                while (!(end = memmem(req, n, "\r\n\r\n", 4))) {
                        if (n == sizeof req)
                                return;
                        ssize_t r = read(c, req + n, sizeof req - n);
                        if (r <= 0)
                                return;
                        n += (size_t)r;
                }
                size_t hlen = (size_t)(end - req) + 4;
                unsigned long long a = 0, b = payload_len - 1;
                const char *range = memmem(req, hlen, "Range: bytes=", 13);
                if (range)
                        sscanf(range + 13, "%llu-%llu", &a, &b);
                if (b >= payload_len)
                        b = payload_len - 1;
                size_t len = (size_t)(b - a + 1);
                char head[256];
                int hl = snprintf(head, sizeof head,
                                  "HTTP/1.1 %s\r\nContent-Length: %zu\r\nContent-Range: bytes %llu-%llu/%zu\r\n\r\n",
                                  range ? "206 Partial Content" : "200 OK", len, a, b, payload_len);
                if (write_full(c, head, (size_t)hl) < 0)
                        return;
                for (size_t off = 0; off < len;) {
                        uint8_t chunk[8192];
                        size_t k = len - off < sizeof chunk ? len - off : sizeof chunk;
                        memcpy(chunk, payload + a + off, k);
                        if (s->corrupt_at && s->corrupt_at >= a + off && s->corrupt_at < a + off + k)
                                chunk[s->corrupt_at - a - off] ^= 0x55;
                        if (s->corrupt_at2 && s->corrupt_at2 >= a + off && s->corrupt_at2 < a + off + k)
                                chunk[s->corrupt_at2 - a - off] ^= 0x55;
                        if (s->cut_after && s->sent + k > s->cut_after)
                                return; /* the connection drops mid-body */
                        if (write_full(c, chunk, k) < 0)
                                return;
                        s->sent += k;
                        off += k;
                }
                memmove(req, req + hlen, n - hlen);
                n -= hlen;
        }
}

static void *server_main(void *ud) {
        Server *s = ud;
        while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
                int c = accept(s->fd, NULL, NULL);
                if (c < 0)
                        continue;
                serve_one(s, c);
                close(c);
        }
        return NULL;
}

static void server_start(Server *s) {
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(s->fd >= 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof sa;
        CHECK_EQ(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
        CHECK_EQ(listen(s->fd, 8), 0);
        CHECK_EQ(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
        s->port = ntohs(sa.sin_port);
        CHECK_EQ(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(Server *s) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
        shutdown(s->fd, SHUT_RDWR); /* wakes accept() */
        pthread_join(s->thread, NULL);
        close(s->fd);
}

/* ---- fixtures ---- */

static void make_image(void) {
        uint32_t x = 777;
        for (size_t i = 0; i < IMAGE_SIZE; i++) {
                size_t c = i / CS;
                if (c % 7 == 3)
                        image[i] = 0; /* zero chunks */
                else if (c % 5 == 1) {
                        x = x * 1103515245u + 12345u;
                        image[i] = (uint8_t)(x >> 16); /* incompressible */
                } else
                        image[i] = "apply pipeline test\n"[i % 20] ^ (uint8_t)(c & 7);
        }
}

static CairnKeyring ring;

static void make_payload(void) {
        EVP_PKEY *key = NULL;
        CHECK_EQ(key_generate(&key), 0);
        keyring_init(&ring);
        CHECK_EQ(keyring_add(&ring, key), 0);
        char ip[512], op[512];
        snprintf(ip, sizeof ip, "%s/image", unit_tmpdir());
        snprintf(op, sizeof op, "%s/payload", unit_tmpdir());
        CHECK_EQ(write_file_atomic(ip, image, sizeof image, 0644), 0);
        int ifd = open(ip, O_RDONLY | O_CLOEXEC), ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        EVP_PKEY *keys[] = { key };
        PayloadBuildOptions o = { .version = "2.0.0", .board = "amd64-usr", .chunk_size = CS, .threads = 2,
                                  .compression = PAYLOAD_METHOD_ZSTD, .keys = keys, .n_keys = 1 };
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), 0);
        close(ifd);
        close(ofd);
        char *buf = NULL;
        CHECK_EQ(read_file_bounded(op, 1 << 26, &buf, &payload_len), 0);
        payload = (uint8_t *)buf;
        /* key now belongs to the keyring (freed by keyring_done) */
}

static Payload *load_payload(void) {
        size_t prefix = 0;
        CHECK_EQ(payload_prefix_size(payload, payload_len, &prefix), 0);
        Payload *p = NULL;
        CHECK_EQ(payload_load(payload, prefix, &ring, &p), 0);
        return p;
}

/* A disk file: slot A (active, holding a few of the image's chunks at other places) then slot B (target). */
static int make_disk(void) {
        char path[512];
        snprintf(path, sizeof path, "%s/disk", unit_tmpdir());
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK_EQ(ftruncate(fd, 2 * (off_t)SLOT_SIZE), 0);
        for (uint32_t c = 0; c < 6; c++) /* chunks 0..5 of the image at blocks 10..15 of A: copy candidates */
                CHECK_EQ(pwrite_full(fd, image + c * CS, CS, (10 + c) * (uint64_t)CS), 0);
        return fd;
}

static int checkpoints;
static int on_checkpoint(void *ud, uint32_t next) {
        __atomic_add_fetch(&checkpoints, 1, __ATOMIC_RELAXED);
        return 0;
}

static int run_apply(Server *s, int fd, const Payload *p, AgentApply *a, char url[128], AgentHttp *http) {
        snprintf(url, 128, "http://127.0.0.1:%d/payload", s->port);
        static const char *urls[1];
        urls[0] = url;
        *a = (AgentApply){ .http = http, .urls = urls, .n_urls = 1, .p = p, .fd = fd,
                           .active_off = 0, .active_size = SLOT_SIZE, .target_off = SLOT_SIZE,
                           .target_size = SLOT_SIZE, .checkpoint = on_checkpoint,
                           .checkpoint_bytes = 4 * CS, .range_max = 9 * CS };
        return agent_apply(a);
}

static AgentHttp *new_http(void) {
        AgentHttpOptions ho = { .stall_timeout = 10, .connect_timeout = 5, .transfer_timeout = 60 };
        AgentHttp *h = NULL;
        CHECK_EQ(agent_http_new(&ho, &h), 0);
        return h;
}

static void test_apply_roundtrip(void) {
        Server s = { 0 };
        server_start(&s);
        _cleanup_payload_ Payload *p = load_payload();
        int fd = make_disk();
        AgentApply a;
        char url[128];
        AgentHttp *http = new_http();
        checkpoints = 0;
        CHECK_EQ(run_apply(&s, fd, p, &a, url, http), 0);
        CHECK_STREQ(a.error, "");
        CHECK_EQ(a.chunks_copied, 5);      /* chunks 0..5 found in slot A, but chunk 3 is a zero chunk */
        CHECK(a.chunks_downloaded > 0);
        CHECK(checkpoints > 1);
        CHECK_EQ(agent_apply_verify(&a), 0);
        /* The slot as written equals the image, byte for byte (independently of the agent's own hashing). */
        uint8_t want[HASH_SHA256_SIZE], got[HASH_SHA256_SIZE];
        CHECK_EQ(sha256_buf(image, sizeof image, want), 0);
        CHECK_EQ(sha256_fd_range(fd, SLOT_SIZE, IMAGE_SIZE, NULL, got), 0);
        CHECK(memcmp(want, got, sizeof want) == 0);
        close(fd);
        agent_http_free(http); /* closes its kept-alive connection, which the server thread is reading */
        server_stop(&s);
}

/* Bytes flipped in transit inside two neighbouring stored chunks: the worker threads find them not matching their
 * hashes at about the same time. The first failure is reported (text and code, written under the pipeline's
 * lock: ThreadSanitizer checks that) and the apply stops with -EILSEQ. */
static void test_apply_corrupt_chunk(void) {
        _cleanup_payload_ Payload *p = load_payload();
        uint32_t victim = UINT32_MAX;
        for (uint32_t i = 10; i + 1 < p->chunk_count; i++)
                if (p->chunks[i].method != PAYLOAD_METHOD_ZERO && p->chunks[i + 1].method != PAYLOAD_METHOD_ZERO) {
                        victim = i;
                        break;
                }
        CHECK(victim != UINT32_MAX);
        Server s = { .corrupt_at = (size_t)p->chunks[victim].offset + p->chunks[victim].stored_len / 2,
                     .corrupt_at2 = (size_t)p->chunks[victim + 1].offset + p->chunks[victim + 1].stored_len / 2 };
        server_start(&s);
        int fd = make_disk();
        AgentApply a;
        char url[128];
        AgentHttp *http = new_http();
        int r = run_apply(&s, fd, p, &a, url, http);
        CHECK_EQ(r, -EILSEQ);
        CHECK(a.error[0] != 0);
        CHECK_EQ(a.errcode, AGENT_EC_OPERATION_HASH_MISMATCH);
        CHECK(a.bad_chunk == victim || a.bad_chunk == victim + 1);
        close(fd);
        agent_http_free(http); /* closes its kept-alive connection, which the server thread is reading */
        server_stop(&s);
}

/* The server drops the connection half-way: the transfer fails with a reason; what was written stays
 * checkpointed below the failure. */
static void test_apply_cut(void) {
        Server s = { .cut_after = payload_len / 2 };
        server_start(&s);
        _cleanup_payload_ Payload *p = load_payload();
        int fd = make_disk();
        AgentApply a;
        char url[128];
        AgentHttp *http = new_http();
        int r = run_apply(&s, fd, p, &a, url, http);
        CHECK(r < 0);
        CHECK(a.error[0] != 0);
        close(fd);
        agent_http_free(http); /* closes its kept-alive connection, which the server thread is reading */
        server_stop(&s);
}

int main(void) {
        make_image();
        make_payload();
        RUN(test_apply_roundtrip);
        RUN(test_apply_corrupt_chunk);
        RUN(test_apply_cut);
        keyring_done(&ring);
        free(payload);
        return unit_main_end();
}
