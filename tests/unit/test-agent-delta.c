/* tests/unit/test-agent-delta.c — the agent's side of delta payloads (updater/agent/delta.c): the up-front check of
 * every reference in the active slot, and the per-chunk decode with a reference re-read and re-checked. */
#include <fcntl.h>

#include "unit.h"
#include "fileio.h"
#include "agent/agent.h"

#define CS 4096u
#define NCH 16u

static EVP_PKEY *key;
static CairnKeyring ring;
static uint8_t src_img[CS * NCH], dst_img[CS * NCH];

static void make_images(void) {
        for (size_t i = 0; i < sizeof src_img; i++)
                src_img[i] = (uint8_t)("agent delta text\n"[i % 17] ^ (i / 500) % 7);
        memcpy(dst_img, src_img, sizeof dst_img);
        for (int k = 0; k < 30; k++)
                dst_img[5 * CS + (size_t)k * 131] ^= 0x22; /* chunk 5: PATCH */
        memcpy(dst_img + 9 * CS, src_img + 2 * CS, CS);    /* chunk 9: COPY of source chunk 2 */
}

static char *tmp_path(const char *name) {
        static char buf[4][512];
        static int n;
        char *p = buf[n++ % 4];
        snprintf(p, 512, "%s/%s", unit_tmpdir(), name);
        return p;
}

static uint8_t *delta_buf(size_t *ret_len) {
        const char *sp = tmp_path("src"), *dp = tmp_path("dst"), *op = tmp_path("d.cairn");
        CHECK(write_file_atomic(sp, src_img, sizeof src_img, 0644) == 0);
        CHECK(write_file_atomic(dp, dst_img, sizeof dst_img, 0644) == 0);
        int sfd = open(sp, O_RDONLY | O_CLOEXEC), ifd = open(dp, O_RDONLY | O_CLOEXEC);
        int ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        EVP_PKEY *keys[] = {key};
        PayloadBuildOptions o = { .version = "2.0.0", .board = "amd64", .chunk_size = CS, .threads = 1,
                                  .compression = PAYLOAD_METHOD_ZSTD, .level = 3, .keys = keys, .n_keys = 1,
                                  .delta = true, .source_fd = sfd };
        CHECK_EQ(payload_create(ifd, ofd, &o, NULL), 0);
        close(sfd);
        close(ifd);
        close(ofd);
        char *b = NULL;
        CHECK(read_file_bounded(op, 1 << 22, &b, ret_len) == 0);
        return (uint8_t *)b;
}

static void test_plan_and_decode(void) {
        size_t len = 0;
        uint8_t *buf = delta_buf(&len);
        Payload *p = NULL;
        CHECK_EQ(payload_load(buf, len, &ring, &p), 0);
        if (!p)
                return;
        CHECK_EQ(p->chunks[5].method, PAYLOAD_METHOD_PATCH);
        CHECK_EQ(p->chunks[9].method, PAYLOAD_METHOD_COPY);
        /* A "disk": the active slot (the source, then slack) at 0, the target after it. */
        const uint64_t slot = sizeof src_img + 8 * CS;
        const char *dp = tmp_path("disk");
        int fd = open(dp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(ftruncate(fd, (off_t)(2 * slot)) == 0);
        CHECK(pwrite_full(fd, src_img, sizeof src_img, 0) == 0);
        uint8_t actions[NCH];
        uint32_t src[NCH];
        AgentApply a = { .p = p, .fd = fd, .active_off = 0, .active_size = slot, .target_off = slot, .target_size = slot };
        CHECK_EQ(agent_delta_plan(&a, actions, src), 0);
        CHECK_EQ(actions[9], AGENT_CHUNK_COPY);
        CHECK_EQ(actions[5], AGENT_CHUNK_DOWNLOAD);
        CHECK(!a.source_mismatch);

        /* Decode: COPY from the slot, PATCH with its stored bytes; each equals the new image's chunk. */
        static uint8_t ref[3 * CS];
        uint8_t out[CS];
        const PayloadChunk *pc = &p->chunks[5];
        CHECK_EQ(agent_delta_decode(&a, 9, NULL, 0, ref, out), 0);
        CHECK(memcmp(out, dst_img + 9 * CS, CS) == 0);
        CHECK_EQ(agent_delta_decode(&a, 5, buf + pc->offset, pc->stored_len, ref, out), 0);
        CHECK(memcmp(out, dst_img + 5 * CS, CS) == 0);

        /* A patch chunk damaged in transit: -EILSEQ, update_engine's code 29. */
        buf[pc->offset + pc->stored_len / 2] ^= 0x40;
        a.error[0] = 0;
        CHECK_EQ(agent_delta_decode(&a, 5, buf + pc->offset, pc->stored_len, ref, out), -EILSEQ);
        CHECK_EQ(a.errcode, AGENT_EC_OPERATION_HASH_MISMATCH);
        CHECK(strstr(a.error, "chunk 5 of the payload") != NULL);
        buf[pc->offset + pc->stored_len / 2] ^= 0x40;

        /* The slot changes after the check: the worker's re-check catches it. */
        uint8_t b0;
        CHECK(pread_full(fd, &b0, 1, pc->ref_offset + 10) == 0);
        uint8_t bx = b0 ^ 1;
        CHECK(pwrite_full(fd, &bx, 1, pc->ref_offset + 10) == 0);
        a.error[0] = 0;
        CHECK_EQ(agent_delta_decode(&a, 5, buf + pc->offset, pc->stored_len, ref, out), -ESTALE);
        CHECK(a.source_mismatch);
        CHECK(strstr(a.error, "changed since it was checked") != NULL);

        /* The up-front check: the modified slot is not the source; names the first chunk whose reference differs. */
        a = (AgentApply){ .p = p, .fd = fd, .active_off = 0, .active_size = slot, .target_off = slot, .target_size = slot };
        CHECK_EQ(agent_delta_plan(&a, actions, src), -ESTALE);
        CHECK(a.source_mismatch);
        CHECK_EQ(a.bad_chunk, 5);
        CHECK(strstr(a.error, "chunk 5: the active slot is not this delta's source release") != NULL);
        /* Resuming past that chunk: its reference is not needed any more. */
        a = (AgentApply){ .p = p, .fd = fd, .active_size = slot, .target_off = slot, .start_chunk = 6 };
        CHECK_EQ(agent_delta_plan(&a, actions, src), 0);
        CHECK_EQ(actions[5], AGENT_CHUNK_DONE);
        CHECK(pwrite_full(fd, &b0, 1, pc->ref_offset + 10) == 0);

        /* An active slot smaller than the references, and none at all. */
        a = (AgentApply){ .p = p, .fd = fd, .active_size = 4 * CS, .target_off = slot };
        CHECK_EQ(agent_delta_plan(&a, actions, src), -ESTALE);
        CHECK(strstr(a.error, "lies beyond its end") != NULL);
        a = (AgentApply){ .p = p, .fd = fd, .active_size = 0, .target_off = slot };
        CHECK_EQ(agent_delta_plan(&a, actions, src), -ESTALE);
        CHECK(a.source_mismatch);
        close(fd);
        payload_free(p);
        free(buf);
}

int main(void) {
        make_images();
        if (key_generate(&key) < 0)
                return 1;
        keyring_init(&ring);
        EVP_PKEY_up_ref(key);
        if (keyring_add(&ring, key) < 0)
                return 1;
        RUN(test_plan_and_decode);
        keyring_done(&ring);
        EVP_PKEY_free(key);
        return unit_main_end();
}
