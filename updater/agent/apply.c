/* updater/agent/apply.c — delta planning and the streaming apply: chunks copied from the active slot or fetched with
 * Range requests, decoded and hash-checked by a small worker pool before they are written, periodic sync +
 * checkpoint for resume, and the final re-read of the whole slot against the manifest's SHA-256. */
#include "agent.h"
#include "clock.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "fileio.h"
#include "hash.h"
#include "image/verity.h"

#define APPLY_WORKERS 2
#define APPLY_SLOTS APPLY_WORKERS /* a chunk is received in a moment; decoding and hashing it is the work */
#define APPLY_RANGE_MAX (64u << 20) /* bytes of one Range request */

/* One-shot SHA-256 (the one place the apply path hashes a buffer). */
static void sha256(const void *data, size_t len, uint8_t out[SHA256_SIZE]) {
        if (sha256_buf(data, len, out) < 0)
                memset(out, 0, SHA256_SIZE); /* cannot match a chunk hash by accident in practice; treated as differing */
}

/* ---- active-slot index ---- */

void agent_index_free(AgentIndex *x) {
        free(x->e);
        *x = (AgentIndex){ 0 };
}

static int entry_cmp(const void *a, const void *b) {
        const AgentIndexEntry *x = a, *y = b;
        int c = memcmp(x->sha256, y->sha256, SHA256_SIZE);
        if (c)
                return c;
        return x->block < y->block ? -1 : x->block > y->block;
}

void agent_index_sort(AgentIndex *x) {
        if (x->n)
                qsort(x->e, x->n, sizeof *x->e, entry_cmp);
}

int64_t agent_index_find(const AgentIndex *x, const uint8_t sha256[SHA256_SIZE]) {
        size_t lo = 0, hi = x->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(x->e[mid].sha256, sha256, SHA256_SIZE);
                if (c == 0) {
                        while (mid > 0 && memcmp(x->e[mid - 1].sha256, sha256, SHA256_SIZE) == 0)
                                mid--;
                        return x->e[mid].block;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

int agent_index_build(int fd, uint64_t off, uint64_t size, uint32_t block_size, AgentIndex *ret) {
        if (block_size == 0)
                return -EINVAL;
        uint64_t n = size / block_size;
        if (n > PAYLOAD_CHUNKS_MAX)
                n = PAYLOAD_CHUNKS_MAX;
        AgentIndex x = { 0 };
        if (n) {
                x.e = calloc(n, sizeof *x.e);
                if (!x.e)
                        return -ENOMEM;
        }
        _cleanup_free_ uint8_t *buf = malloc(block_size);
        if (!buf) {
                free(x.e);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < n; i++) {
                int r = agent_cancelled() ? -ECANCELED : pread_full(fd, buf, block_size, off + i * block_size);
                if (r < 0) {
                        free(x.e);
                        return r;
                }
                sha256(buf, block_size, x.e[i].sha256);
                x.e[i].block = (uint32_t)i;
        }
        x.n = n;
        agent_index_sort(&x);
        *ret = x;
        return 0;
}

int64_t agent_plan(const Payload *p, const AgentIndex *active, uint32_t start, uint8_t *actions, uint32_t *src) {
        int64_t downloads = 0;
        for (uint32_t i = 0; i < p->chunk_count; i++) {
                const PayloadChunk *c = &p->chunks[i];
                src[i] = 0;
                if (i < start) {
                        actions[i] = AGENT_CHUNK_DONE;
                        continue;
                }
                if (c->method == PAYLOAD_METHOD_ZERO) {
                        actions[i] = AGENT_CHUNK_ZERO;
                        continue;
                }
                int64_t b = active && c->raw_len == p->chunk_size ? agent_index_find(active, c->sha256) : -ENOENT;
                if (b >= 0) {
                        actions[i] = AGENT_CHUNK_COPY;
                        src[i] = (uint32_t)b;
                } else {
                        actions[i] = AGENT_CHUNK_DOWNLOAD;
                        downloads++;
                }
        }
        return downloads;
}

/* ---- dm-verity root of the written slot (docs/verity.md) ----
 * With a verity layout in the manifest, the read-back pass that hashes the slot also feeds its data part, bytes
 * [0, hash offset), to a root-only tree builder: no second read. The salt and sizes come from the signed manifest. */

static int verity_begin(const Payload *p, struct verity_tree **ret) {
        *ret = NULL;
        if (!p->has_verity_layout)
                return 0;
        struct verity_params vp;
        verity_params_init(&vp, p->verity_hash_offset / VERITY_BLOCK_DEFAULT);
        vp.salt_size = p->verity_salt_size;
        memcpy(vp.salt, p->verity_salt, p->verity_salt_size);
        struct verity_layout l;
        if (verity_params_check(&vp) < 0 || verity_layout_compute(&vp, &l) < 0 ||
            p->verity_hash_offset + l.area_size > p->image_size)
                return -ERANGE; /* the hash area would end past the image */
        return verity_tree_new(&vp, VERITY_ROOT_ONLY, -1, 0, ret);
}

/* Feed the part of [at, at+n) that lies in the data. */
static int verity_feed(struct verity_tree *t, const Payload *p, uint64_t at, const uint8_t *buf, size_t n) {
        if (!t || at >= p->verity_hash_offset)
                return 0;
        return verity_tree_update(t, buf, (size_t)MIN((uint64_t)n, p->verity_hash_offset - at));
}

/* SHA-256 of [off, off+size) of fd, and with p (a verity layout) the verity root of its data into ret_root. */
static int hash_slot(int fd, uint64_t off, uint64_t size, const Payload *p, uint8_t ret[SHA256_SIZE],
                     uint8_t ret_root[SHA256_SIZE]) {
        _cleanup_verity_tree_ struct verity_tree *vt = NULL;
        if (p) {
                int r = verity_begin(p, &vt);
                if (r < 0)
                        return r;
        }
        const size_t bs = 1u << 20;
        _cleanup_free_ uint8_t *buf = malloc(bs);
        if (!buf)
                return -ENOMEM;
        _cleanup_md_ctx_ EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -ENOMEM;
        (void)posix_fadvise(fd, (off_t)off, (off_t)size, POSIX_FADV_SEQUENTIAL);
        for (uint64_t done = 0; done < size;) {
                if (agent_cancelled())
                        return -ECANCELED;
                size_t n = (size_t)MIN((uint64_t)bs, size - done);
                int r = pread_full(fd, buf, n, off + done);
                if (r < 0)
                        return r;
                if (!EVP_DigestUpdate(ctx, buf, n))
                        return -EIO;
                r = verity_feed(vt, p, done, buf, n);
                if (r < 0)
                        return r;
                done += n;
        }
        if (!EVP_DigestFinal_ex(ctx, ret, NULL))
                return -EIO;
        return vt ? verity_tree_finish(vt, ret_root) : 0;
}

int agent_hash_range(int fd, uint64_t off, uint64_t size, uint8_t ret[SHA256_SIZE]) {
        return sha256_fd_range(fd, off, size, agent_cancelled, ret);
}

/* ---- the pipeline ---- */

typedef enum JobKind { JOB_DECODE, JOB_COPY, JOB_ZERO, JOB_DELTA /* decoded by delta.c */ } JobKind;

typedef struct Job {
        bool busy;          /* owned by the producer or queued/being worked on */
        JobKind kind;
        uint32_t idx;
        size_t filled;
        uint8_t *untrusted_stored; /* chunk bytes as received (chunk_size) */
        uint8_t *raw;              /* decoded bytes (chunk_size) */
        uint8_t *ref;              /* delta payloads: a reference read from the active slot (delta.c) */
} Job;

typedef struct Pipeline {
        AgentApply *a;
        uint8_t *actions;
        uint32_t *src;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Job jobs[APPLY_SLOTS];
        Job *queue[APPLY_SLOTS];
        size_t q_head, q_len;
        bool stop;
        int error;
        uint32_t frontier;   /* chunks [0, frontier) are all written */
        uint64_t since_cp;   /* image bytes handed to the workers since the last checkpoint */
        int64_t last_cp_ms;
        uint32_t completed;  /* chunks written this run */
        pthread_t threads[APPLY_WORKERS];
        size_t n_threads;
        /* The read-back check runs behind the writers: it re-reads [0, frontier) from the device as the frontier
         * advances and hashes it, so the whole-slot SHA-256 is ready soon after the last chunk is written. */
        pthread_t verifier;
        bool verifier_running;
        uint64_t verified_bytes;
        int verify_error;
} Pipeline;

/* The first failure wins: its text, and its update_engine code (ec 0: keep AGENT_EC_ERROR unless set). Called
 * from the worker threads, the read-back thread and the producer alike, so the check and the write are one step
 * under error_lock (the readers look at a->error only after the threads are joined). */
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static int apply_failc(AgentApply *a, int ec, int r, const char *fmt, ...) _printf_(4, 5);
static int apply_failc(AgentApply *a, int ec, int r, const char *fmt, ...) {
        pthread_mutex_lock(&error_lock);
        if (!a->error[0]) {
                a->errcode = ec ? ec : AGENT_EC_ERROR;
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(a->error, sizeof a->error, fmt, ap);
                va_end(ap);
        }
        pthread_mutex_unlock(&error_lock);
        return r;
}
#define apply_fail(a, r, ...) apply_failc(a, 0, r, __VA_ARGS__)

static int run_job(Pipeline *pl, Job *j) {
        AgentApply *a = pl->a;
        const Payload *p = a->p;
        const PayloadChunk *c = &p->chunks[j->idx];
        uint64_t dst = a->target_off + (uint64_t)j->idx * p->chunk_size;
        int r;
        JobKind kind = j->kind;
        if (p->is_delta && kind != JOB_ZERO) {
                /* delta: a COPY chunk or a downloaded PATCH/full one, each with its reference checked (delta.c) */
                r = agent_delta_decode(a, j->idx, j->untrusted_stored, kind == JOB_DECODE ? j->filled : 0, j->ref,
                                       j->raw);
                if (r < 0)
                        return r;
                kind = JOB_DELTA;
        }
        switch (kind) {
        case JOB_DELTA:
                break;
        case JOB_DECODE:
                r = payload_chunk_decode(p, j->idx, j->untrusted_stored, j->filled, j->raw, c->raw_len);
                if (r < 0)
                        return apply_failc(a, r == -EILSEQ ? AGENT_EC_OPERATION_HASH_MISMATCH : AGENT_EC_ERROR, r,
                                           "chunk %u of the payload: %s", j->idx, payload_strerror(r));
                break;
        case JOB_COPY: {
                uint64_t from = a->active_off + (uint64_t)pl->src[j->idx] * p->chunk_size;
                r = pread_full(a->fd, j->raw, c->raw_len, from);
                if (r < 0)
                        return apply_fail(a, r, "reading the active slot at byte %" PRIu64 ": %s", from,
                                          strerror(-r));
                uint8_t h[SHA256_SIZE];
                sha256(j->raw, c->raw_len, h);
                if (memcmp(h, c->sha256, SHA256_SIZE) != 0)
                        return apply_fail(a, -EILSEQ, "the active slot changed while it was being copied (chunk %u)",
                                          j->idx);
                break;
        }
        case JOB_ZERO:
                /* Deallocate instead of writing zeros where the file or device can (reads back as zeros; the
                 * read-back check covers it like any other chunk). */
                if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)dst, c->raw_len) == 0)
                        return 0;
                memset(j->raw, 0, c->raw_len);
                break;
        }
        r = pwrite_full(a->fd, j->raw, c->raw_len, dst);
        if (r < 0)
                return apply_failc(a, AGENT_EC_DOWNLOAD_WRITE, r, "writing the target slot at byte %" PRIu64 ": %s%s",
                                   dst, strerror(-r), r == -EFBIG ? " (a file-size limit, ulimit -f, is in force)" : "");
        return 0;
}

static void *worker(void *ud) {
        Pipeline *pl = ud;
        pthread_mutex_lock(&pl->lock);
        for (;;) {
                while (!pl->stop && pl->q_len == 0)
                        pthread_cond_wait(&pl->cond, &pl->lock);
                if (pl->q_len == 0 && pl->stop)
                        break;
                Job *j = pl->queue[pl->q_head];
                pl->q_head = (pl->q_head + 1) % APPLY_SLOTS;
                pl->q_len--;
                bool skip = pl->error < 0;
                pthread_mutex_unlock(&pl->lock);
                int r = skip ? 0 : run_job(pl, j);
                pthread_mutex_lock(&pl->lock);
                if (r < 0 && pl->error == 0)
                        pl->error = r;
                if (r >= 0 && !skip) {
                        pl->actions[j->idx] = AGENT_CHUNK_DONE;
                        pl->completed++;
                        uint32_t n = pl->a->p->chunk_count;
                        while (pl->frontier < n && pl->actions[pl->frontier] == AGENT_CHUNK_DONE)
                                pl->frontier++;
                }
                j->busy = false;
                pthread_cond_broadcast(&pl->cond);
        }
        pthread_mutex_unlock(&pl->lock);
        return NULL;
}

/* A free job for the producer, or NULL when the pipeline failed. */
static Job *acquire(Pipeline *pl) {
        pthread_mutex_lock(&pl->lock);
        Job *got = NULL;
        for (;;) {
                if (pl->error < 0)
                        break;
                for (size_t i = 0; i < APPLY_SLOTS && !got; i++)
                        if (!pl->jobs[i].busy)
                                got = &pl->jobs[i];
                if (got)
                        break;
                pthread_cond_wait(&pl->cond, &pl->lock);
        }
        if (got) {
                got->busy = true;
                got->filled = 0;
        }
        pthread_mutex_unlock(&pl->lock);
        return got;
}

static void submit(Pipeline *pl, Job *j) {
        pthread_mutex_lock(&pl->lock);
        pl->queue[(pl->q_head + pl->q_len) % APPLY_SLOTS] = j;
        pl->q_len++;
        pthread_cond_broadcast(&pl->cond);
        pthread_mutex_unlock(&pl->lock);
}

/* Wait until every submitted job is finished. */
static void drain(Pipeline *pl) {
        pthread_mutex_lock(&pl->lock);
        for (;;) {
                bool busy = false;
                for (size_t i = 0; i < APPLY_SLOTS; i++)
                        busy |= pl->jobs[i].busy;
                if (!busy)
                        break;
                pthread_cond_wait(&pl->cond, &pl->lock);
        }
        pthread_mutex_unlock(&pl->lock);
}

static int pipeline_error(Pipeline *pl) {
        pthread_mutex_lock(&pl->lock);
        int r = pl->error;
        pthread_mutex_unlock(&pl->lock);
        return r;
}

static int checkpoint(Pipeline *pl) {
        AgentApply *a = pl->a;
        pthread_mutex_lock(&pl->lock);
        uint32_t f = pl->frontier;
        pthread_mutex_unlock(&pl->lock);
        if (fdatasync(a->fd) < 0) {
                int r = negative_errno();
                return apply_failc(a, AGENT_EC_DOWNLOAD_WRITE, r, "syncing the target slot: %s", strerror(-r));
        }
        if (a->progress)
                a->progress(a->userdata, f, a->p->chunk_count);
        if (a->checkpoint) {
                int r = a->checkpoint(a->userdata, f);
                if (r < 0)
                        return apply_fail(a, r, "saving the resume point: %s", strerror(-r));
        }
        return 0;
}

/* Sync + checkpoint every checkpoint_bytes of image or every second, whichever comes first. */
static int maybe_checkpoint(Pipeline *pl, uint64_t added) {
        AgentApply *a = pl->a;
        uint64_t every = a->checkpoint_bytes ? a->checkpoint_bytes : (32u << 20);
        pl->since_cp += added;
        int64_t now = mono_ms();
        if (pl->since_cp < every && now - pl->last_cp_ms < 1000)
                return 0;
        pl->since_cp = 0;
        pl->last_cp_ms = now;
        return checkpoint(pl);
}

typedef struct Download {
        Pipeline *pl;
        uint32_t cur;
        Job *job;
} Download;

static int download_sink(void *ud, const uint8_t *data, size_t n) {
        Download *d = ud;
        Pipeline *pl = d->pl;
        const Payload *p = pl->a->p;
        while (n > 0) {
                if (!d->job) {
                        d->job = acquire(pl);
                        if (!d->job)
                                return pipeline_error(pl) ?: -EIO;
                        d->job->kind = JOB_DECODE;
                        d->job->idx = d->cur;
                }
                Job *j = d->job;
                size_t need = p->chunks[d->cur].stored_len - j->filled;
                size_t take = MIN(n, need);
                memcpy(j->untrusted_stored + j->filled, data, take);
                j->filled += take;
                data += take;
                n -= take;
                if (j->filled == p->chunks[d->cur].stored_len) {
                        submit(pl, j);
                        d->job = NULL;
                        int r = maybe_checkpoint(pl, p->chunks[d->cur].raw_len);
                        d->cur++;
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static void release_job(Pipeline *pl, Job *j) {
        pthread_mutex_lock(&pl->lock);
        j->busy = false;
        pthread_cond_broadcast(&pl->cond);
        pthread_mutex_unlock(&pl->lock);
}

/* The verity tree of the read-back runs in a thread of its own, fed the same pieces through a small ring, so its
 * SHA-256 runs beside the image's instead of after it (the read-back is the apply's last stage). One producer (the
 * read-back), one consumer. */
#define VFEED_SLOTS 4
typedef struct VerityFeeder {
        struct verity_tree *vt;
        const Payload *p;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        uint8_t *buf[VFEED_SLOTS];
        size_t len[VFEED_SLOTS];
        uint64_t at[VFEED_SLOTS];
        unsigned head, count;
        bool eof;
        int error;
} VerityFeeder;

static void *vfeed_run(void *ud) {
        VerityFeeder *f = ud;
        pthread_mutex_lock(&f->mu);
        for (;;) {
                while (f->count == 0 && !f->eof)
                        pthread_cond_wait(&f->cv, &f->mu);
                if (f->count == 0 || f->error < 0)
                        break;
                unsigned k = f->head;
                pthread_mutex_unlock(&f->mu);
                int r = verity_feed(f->vt, f->p, f->at[k], f->buf[k], f->len[k]);
                pthread_mutex_lock(&f->mu);
                f->head = (f->head + 1) % VFEED_SLOTS;
                f->count--;
                if (r < 0)
                        f->error = r;
                pthread_cond_broadcast(&f->cv);
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        return NULL;
}

/* The next free slot to read into (waits for one); NULL once the tree failed. */
static uint8_t *vfeed_get(VerityFeeder *f) {
        pthread_mutex_lock(&f->mu);
        while (f->count == VFEED_SLOTS && f->error == 0)
                pthread_cond_wait(&f->cv, &f->mu);
        uint8_t *b = f->error < 0 ? NULL : f->buf[(f->head + f->count) % VFEED_SLOTS];
        pthread_mutex_unlock(&f->mu);
        return b;
}

static void vfeed_put(VerityFeeder *f, size_t n, uint64_t at) {
        pthread_mutex_lock(&f->mu);
        unsigned k = (f->head + f->count) % VFEED_SLOTS;
        f->len[k] = n;
        f->at[k] = at;
        f->count++;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
}

static int vfeed_start(VerityFeeder *f, struct verity_tree *vt, const Payload *p, size_t bs) {
        *f = (VerityFeeder){ .vt = vt, .p = p };
        for (unsigned i = 0; i < VFEED_SLOTS; i++)
                if (!(f->buf[i] = malloc(bs)))
                        goto fail;
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        if (pthread_create(&f->thread, NULL, vfeed_run, f) == 0)
                return 0;
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
fail:
        for (unsigned i = 0; i < VFEED_SLOTS; i++)
                free(f->buf[i]);
        return -ENOMEM;
}

/* Drain what was put, stop the thread; the tree's error, if any. */
static int vfeed_stop(VerityFeeder *f) {
        pthread_mutex_lock(&f->mu);
        f->eof = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        for (unsigned i = 0; i < VFEED_SLOTS; i++)
                free(f->buf[i]);
        return f->error;
}

static void *readback(void *ud) {
        Pipeline *pl = ud;
        AgentApply *a = pl->a;
        const Payload *p = a->p;
        const size_t bs = 256u << 10;
        uint8_t *buf = malloc(bs);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r = buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
        struct verity_tree *vt = NULL;
        if (r >= 0)
                r = verity_begin(p, &vt);
        VerityFeeder vf;
        bool feeding = false;
        if (r >= 0 && vt)
                feeding = (r = vfeed_start(&vf, vt, p, bs)) >= 0;
        uint64_t done = 0;
        while (r >= 0 && done < p->image_size) {
                pthread_mutex_lock(&pl->lock);
                uint64_t upto;
                for (;;) {
                        upto = MIN((uint64_t)pl->frontier * p->chunk_size, p->image_size);
                        if (upto > done || pl->stop || pl->error < 0)
                                break;
                        pthread_cond_wait(&pl->cond, &pl->lock);
                }
                bool give_up = upto <= done;
                pthread_mutex_unlock(&pl->lock);
                if (give_up)
                        break; /* stopped early: agent_apply_verify() re-reads everything itself */
                while (r >= 0 && done < upto) {
                        if (agent_cancelled()) {
                                r = -ECANCELED; /* give up: nothing is final before agent_apply_verify() */
                                break;
                        }
                        size_t n = (size_t)MIN((uint64_t)bs, upto - done);
                        uint8_t *dst = feeding ? vfeed_get(&vf) : buf;
                        if (!dst) {
                                r = -EIO; /* the tree failed: vfeed_stop() below says how */
                                break;
                        }
                        r = pread_full(a->fd, dst, n, a->target_off + done);
                        if (r >= 0 && !EVP_DigestUpdate(ctx, dst, n))
                                r = -EIO;
                        if (r >= 0 && feeding)
                                vfeed_put(&vf, n, done);
                        if (r >= 0)
                                done += n;
                }
        }
        if (feeding) {
                int fr = vfeed_stop(&vf);
                if (fr < 0)
                        r = fr;
        }
        if (r >= 0 && done == p->image_size && EVP_DigestFinal_ex(ctx, a->readback_sha256, NULL) &&
            (!vt || verity_tree_finish(vt, a->readback_verity_root) >= 0))
                a->readback_done = true;
        verity_tree_free(vt);
        pthread_mutex_lock(&pl->lock);
        pl->verified_bytes = done;
        pl->verify_error = r;
        pthread_mutex_unlock(&pl->lock);
        EVP_MD_CTX_free(ctx);
        free(buf);
        return NULL;
}

static int run_pipeline(Pipeline *pl) {
        AgentApply *a = pl->a;
        const Payload *p = a->p;
        int r = 0;
        pl->last_cp_ms = mono_ms();
        const uint64_t range_max = a->range_max ? a->range_max : APPLY_RANGE_MAX;
        for (uint32_t i = a->start_chunk; i < p->chunk_count && r >= 0;) {
                if (agent_cancelled()) {
                        r = apply_fail(a, -ECANCELED, "interrupted (stop requested) at chunk %u", i);
                        break;
                }
                uint8_t act = pl->actions[i];
                if (act == AGENT_CHUNK_DONE) {
                        i++;
                        continue;
                }
                if (act == AGENT_CHUNK_COPY || act == AGENT_CHUNK_ZERO) {
                        Job *j = acquire(pl);
                        if (!j) {
                                r = pipeline_error(pl);
                                break;
                        }
                        j->kind = act == AGENT_CHUNK_COPY ? JOB_COPY : JOB_ZERO;
                        j->idx = i;
                        submit(pl, j);
                        if (act == AGENT_CHUNK_COPY) {
                                a->chunks_copied++;
                                a->bytes_copied += p->chunks[i].raw_len;
                        } else
                                a->bytes_zero += p->chunks[i].raw_len;
                        r = maybe_checkpoint(pl, p->chunks[i].raw_len);
                        i++;
                } else {
                        /* A run of chunks to download: one Range request, bounded in size. */
                        uint32_t end = i;
                        uint64_t bytes = 0;
                        while (end < p->chunk_count && pl->actions[end] == AGENT_CHUNK_DOWNLOAD &&
                               (end == i || bytes + p->chunks[end].stored_len <= range_max)) {
                                bytes += p->chunks[end].stored_len;
                                end++;
                        }
                        Download d = { .pl = pl, .cur = i };
                        r = agent_http_get_range(a->http, a->urls[a->url_index], p->chunks[i].offset, bytes,
                                                 download_sink, &d, &a->bytes_downloaded);
                        if (d.job)
                                release_job(pl, d.job); /* a partial chunk: dropped, fetched again on resume */
                        a->chunks_downloaded += d.cur - i;
                        if (r < 0) {
                                int pe = pipeline_error(pl);
                                if (pe < 0)
                                        r = pe; /* the sink stopped because a worker failed */
                                else if (r != -ECANCELED && a->url_index + 1 < a->n_urls) {
                                        /* This server failed: the next <url> serves the rest of the run (the
                                         * chunks received whole are kept). */
                                        a->url_index++;
                                        i = d.cur;
                                        r = 0;
                                        continue;
                                } else
                                        apply_failc(a, r == -ECANCELED ? AGENT_EC_ERROR : AGENT_EC_DOWNLOAD_TRANSFER, r,
                                                    "%s", agent_http_error(a->http));
                                break;
                        }
                        i = end;
                }
                if (r >= 0)
                        r = pipeline_error(pl);
        }
        drain(pl);
        int pe = pipeline_error(pl);
        if (r >= 0)
                r = pe;
        /* Keep what was verified and written, also after a failure, so the next try resumes there. */
        int q = checkpoint(pl);
        if (r >= 0)
                r = q;
        return r;
}

int agent_apply(AgentApply *a) {
        const Payload *p = a->p;
        a->error[0] = 0;
        a->errcode = 0;
        a->bad_chunk = UINT32_MAX;
        if (a->n_urls == 0 || a->url_index >= a->n_urls)
                return apply_fail(a, -EINVAL, "no payload URL");
        if (!p->verified)
                return apply_fail(a, -EPERM, "payload not verified");
        if (p->image_size > a->target_size)
                return apply_fail(a, -EFBIG, "image of %" PRIu64 " bytes does not fit the %" PRIu64 "-byte slot",
                                  p->image_size, a->target_size);
        if (a->start_chunk > p->chunk_count)
                a->start_chunk = 0;
        {
                _cleanup_verity_tree_ struct verity_tree *vt = NULL;
                if (verity_begin(p, &vt) < 0) /* before anything is written */
                        return apply_failc(a, AGENT_EC_NEW_ROOTFS_VERIFICATION, -ERANGE,
                                           "the manifest's dm-verity hash area (from byte %" PRIu64 ") ends past the image",
                                           p->verity_hash_offset);
        }

        _cleanup_free_ uint8_t *actions = malloc(p->chunk_count);
        _cleanup_free_ uint32_t *src = malloc(sizeof(uint32_t) * p->chunk_count);
        if (!actions || !src)
                return -ENOMEM;
        AgentIndex idx = { 0 };
        int r;
        a->source_mismatch = false;
        if (p->is_delta) {
                r = agent_delta_plan(a, actions, src); /* delta.c: checks every reference first */
                if (r < 0)
                        return r;
        } else {
                if (a->active_size) {
                        r = agent_index_build(a->fd, a->active_off, a->active_size, p->chunk_size, &idx);
                        if (r < 0)
                                return apply_fail(a, r, "reading the active slot: %s", strerror(-r));
                }
                agent_plan(p, a->active_size ? &idx : NULL, a->start_chunk, actions, src);
                agent_index_free(&idx);
        }

        Pipeline pl = { .a = a, .actions = actions, .src = src, .frontier = a->start_chunk };
        pthread_mutex_init(&pl.lock, NULL);
        pthread_cond_init(&pl.cond, NULL);
        r = 0;
        for (size_t i = 0; i < APPLY_SLOTS && r >= 0; i++) {
                pl.jobs[i].untrusted_stored = malloc(p->chunk_size);
                pl.jobs[i].raw = malloc(p->chunk_size);
                if (p->is_delta)
                        pl.jobs[i].ref = malloc(MIN((uint64_t)PAYLOAD_REF_CHUNKS_MAX * p->chunk_size, PAYLOAD_REF_MAX));
                if (!pl.jobs[i].untrusted_stored || !pl.jobs[i].raw || (p->is_delta && !pl.jobs[i].ref))
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < APPLY_WORKERS && r >= 0; i++) {
                int e = pthread_create(&pl.threads[i], NULL, worker, &pl);
                if (e)
                        r = -e;
                else
                        pl.n_threads++;
        }
        a->readback_done = false;
        if (r >= 0 && pthread_create(&pl.verifier, NULL, readback, &pl) == 0)
                pl.verifier_running = true;
        if (r >= 0)
                r = run_pipeline(&pl);
        pthread_mutex_lock(&pl.lock);
        pl.stop = true;
        pthread_cond_broadcast(&pl.cond);
        pthread_mutex_unlock(&pl.lock);
        for (size_t i = 0; i < pl.n_threads; i++)
                pthread_join(pl.threads[i], NULL);
        if (pl.verifier_running)
                pthread_join(pl.verifier, NULL);
        for (size_t i = 0; i < APPLY_SLOTS; i++) {
                free(pl.jobs[i].untrusted_stored);
                free(pl.jobs[i].raw);
                free(pl.jobs[i].ref);
        }
        pthread_mutex_destroy(&pl.lock);
        pthread_cond_destroy(&pl.cond);
        if (r < 0) {
                if (r == -EILSEQ)
                        sscanf(a->error, "chunk %u", &a->bad_chunk);
                return r == -ENOMEM ? apply_fail(a, r, "out of memory") : r;
        }

        return 0;
}

int agent_apply_verify(AgentApply *a) {
        /* Every chunk was checked before it was written; now the whole slot, as it reads back from the device
         * (hashed behind the writers during the apply when that ran to the end, else re-read here). */
        const Payload *p = a->p;
        uint8_t h[SHA256_SIZE], root[SHA256_SIZE];
        int r = 0;
        if (a->readback_done) {
                memcpy(h, a->readback_sha256, SHA256_SIZE);
                memcpy(root, a->readback_verity_root, SHA256_SIZE);
        } else
                r = hash_slot(a->fd, a->target_off, p->image_size, p->has_verity_layout ? p : NULL, h, root);
        if (r == -ERANGE)
                return apply_failc(a, AGENT_EC_NEW_ROOTFS_VERIFICATION, r,
                                   "the manifest's dm-verity hash area (from byte %" PRIu64 ") ends past the image",
                                   p->verity_hash_offset);
        if (r < 0)
                return apply_fail(a, r, "re-reading the target slot: %s", strerror(-r));
        if (memcmp(h, p->image_sha256, SHA256_SIZE) != 0)
                return apply_failc(a, AGENT_EC_NEW_ROOTFS_VERIFICATION, -EILSEQ,
                                   "the written slot does not read back to the manifest's SHA-256");
        /* The bytes are the signed image; the tree in them must also be the one of the signed root hash, or the
         * slot would not boot (its initramfs refuses it). */
        if (p->has_verity_layout && memcmp(root, p->verity_root, SHA256_SIZE) != 0) {
                char got[2 * SHA256_SIZE + 1];
                return apply_failc(a, AGENT_EC_NEW_ROOTFS_VERIFICATION, -EILSEQ,
                                   "the written slot's dm-verity root hash %s is not the manifest's",
                                   hex_encode(root, SHA256_SIZE, got));
        }
        return 0;
}
