/* tests/fuzz/fuzz-eventlog.c — libFuzzer target for eventlog_parse() (both modes) and the replay over what parsed:
 * a parsed log's records must lie inside the input, and re-encoding them must give back the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpm/eventlog.h"
#include "tpm/replay.h"

static void check_log(const uint8_t *data, size_t size, const struct eventlog *log, unsigned flags) {
        if (log->n_algs == 0 || log->n_algs > TPM_MAX_BANKS || log->header_size > size)
                abort();
        size_t off = log->header_size;
        for (size_t i = 0; i < log->n_events; i++) {
                const struct eventlog_event *ev = &log->events[i];
                if (ev->offset != off || ev->pcr >= TPM_PCRS || ev->n_digests == 0 || ev->n_digests > log->n_algs)
                        abort();
                if ((flags & EVENTLOG_PARSE_OURS) && (ev->type == EV_NO_ACTION || ev->n_digests != log->n_algs))
                        abort();
                size_t len = 12 + 4 + ev->data_size;
                for (uint32_t d = 0; d < ev->n_digests; d++)
                        len += 2 + ev->digests[d].size;
                if (len > size - off)
                        abort();
                /* the record's bytes, re-encoded when its algorithms are known, are the input's bytes */
                struct tpm_digests ds = { .n = ev->n_digests };
                bool known = true;
                for (uint32_t d = 0; d < ev->n_digests; d++) {
                        known = known && tpm_alg_size(ev->digests[d].alg) == ev->digests[d].size;
                        ds.d[d].alg = ev->digests[d].alg;
                        ds.d[d].size = ev->digests[d].size;
                        memcpy(ds.d[d].bytes, ev->digests[d].bytes, ev->digests[d].size);
                }
                if (known) {
                        uint8_t *rec = NULL;
                        size_t rlen = 0;
                        if (eventlog_record_encode(ev->pcr, ev->type, &ds, ev->data, ev->data_size, &rec, &rlen) < 0)
                                abort();
                        if (rlen != len || memcmp(rec, data + off, len) != 0)
                                abort();
                        free(rec);
                }
                uint32_t tag, tlen;
                const uint8_t *tdata;
                if (eventlog_tagged_decode(ev, &tag, &tdata, &tlen) == 0 && tdata + tlen != ev->data + ev->data_size)
                        abort();
                off += len;
        }
        if (off != size)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > (1u << 20))
                return 0;
        for (unsigned flags = 0; flags <= EVENTLOG_PARSE_OURS; flags += EVENTLOG_PARSE_OURS) {
                struct eventlog *log = NULL;
                struct tpm_error err = { 0 };
                int r = eventlog_parse(data, size, flags, &log, &err);
                if (r < 0) {
                        if (log || err.kind == TPM_ERR_NONE || !err.msg[0] || strchr(err.msg, '\n'))
                                abort();
                        continue;
                }
                check_log(data, size, log, flags);
                /* replay over the banks we can hash */
                uint16_t algs[TPM_MAX_BANKS];
                size_t n = 0;
                for (size_t i = 0; i < log->n_algs; i++)
                        if (tpm_alg_supported(log->algs[i].alg))
                                algs[n++] = log->algs[i].alg;
                struct replay rp;
                if (n > 0) {
                        if (replay_init(&rp, algs, n, &err) < 0 || replay_log(&rp, log, &err) < 0)
                                abort();
                        struct replay_mismatch m;
                        r = replay_compare(&rp, &rp.pcrs, rp.pcrs.bank[0].mask & ~rp.missing[0], &m, &err);
                        (void)r;
                }
                eventlog_free(log);
        }
        return 0;
}
