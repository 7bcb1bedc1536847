/* tpm/replay.c — the PCR fold over event logs, and the comparison with the TPM. */
#include "replay.h"

int replay_init(struct replay *r, const uint16_t *algs, size_t n, struct tpm_error *err) {
        if (n == 0 || n > TPM_MAX_BANKS)
                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "%zu banks (1-%d)", n, TPM_MAX_BANKS);
        struct replay *t = calloc(1, sizeof *t);
        if (!t)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        t->pcrs.n = n;
        for (size_t i = 0; i < n; i++) {
                if (!tpm_alg_supported(algs[i])) {
                        free(t);
                        return tpm_error_set(err, -EOPNOTSUPP, TPM_ERR_UNSUPPORTED,
                                             "cannot replay bank 0x%04x (%s): no such hash here", algs[i],
                                             tpm_alg_name(algs[i]) ?: "unknown");
                }
                struct pcr_bank *b = &t->pcrs.bank[i];
                b->alg = algs[i];
                b->size = (uint16_t)tpm_alg_size(algs[i]);
                for (unsigned p = 17; p <= 22; p++)
                        memset(b->value[p], 0xFF, b->size);
        }
        *r = *t;
        free(t);
        return 0;
}

static bool startup_locality(const struct eventlog_event *ev, uint8_t *ret_locality) {
        static const char sig[16] = "StartupLocality";
        if (ev->type != EV_NO_ACTION || ev->pcr != 0 || ev->data_size != 17 || memcmp(ev->data, sig, 16) != 0)
                return false;
        *ret_locality = ev->data[16];
        return true;
}

int replay_log(struct replay *r, const struct eventlog *log, struct tpm_error *err) {
        for (size_t e = 0; e < log->n_events; e++) {
                const struct eventlog_event *ev = &log->events[e];
                uint8_t locality;
                if (ev->type == EV_NO_ACTION) {
                        if (startup_locality(ev, &locality))
                                for (size_t i = 0; i < r->pcrs.n; i++) {
                                        struct pcr_bank *b = &r->pcrs.bank[i];
                                        if (b->mask & 1u)
                                                continue; /* only before the first PCR 0 extend */
                                        memset(b->value[0], 0, b->size);
                                        b->value[0][b->size - 1] = locality;
                                }
                        continue;
                }
                for (size_t i = 0; i < r->pcrs.n; i++) {
                        struct pcr_bank *b = &r->pcrs.bank[i];
                        const struct eventlog_digest_ref *d = eventlog_event_digest(ev, b->alg);
                        if (!d || d->size != b->size) {
                                if (!(r->missing[i] & (1u << ev->pcr)))
                                        r->missing_record[i][ev->pcr] = e + 1;
                                r->missing[i] |= 1u << ev->pcr;
                                continue;
                        }
                        int k = tpm_fold(b->alg, b->value[ev->pcr], d->bytes, err);
                        if (k < 0)
                                return k;
                        b->mask |= 1u << ev->pcr;
                }
                r->n_events++;
        }
        return 0;
}

int replay_compare(const struct replay *r, const struct pcr_banks *tpm, uint32_t mask,
                   struct replay_mismatch *ret_mismatch, struct tpm_error *err) {
        for (unsigned p = 0; p < TPM_PCRS; p++) {
                if (!(mask & (1u << p)))
                        continue;
                for (size_t i = 0; i < r->pcrs.n; i++) {
                        const struct pcr_bank *b = &r->pcrs.bank[i];
                        const struct pcr_bank *t = pcr_banks_find(tpm, b->alg);
                        if (!t || !(t->mask & (1u << p)))
                                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID,
                                                     "no TPM value for PCR %u of bank %s", p,
                                                     tpm_alg_name(b->alg) ?: "?");
                        bool missing = r->missing[i] & (1u << p);
                        if (!missing && memcmp(b->value[p], t->value[p], b->size) == 0)
                                continue;
                        struct replay_mismatch m = { .pcr = p, .alg = b->alg, .missing_digest = missing };
                        memcpy(m.replayed, b->value[p], b->size);
                        memcpy(m.tpm, t->value[p], b->size);
                        if (missing)
                                m.missing_record = r->missing_record[i][p];
                        char hr[2 * TPM_MAX_DIGEST + 1], ht[2 * TPM_MAX_DIGEST + 1];
                        if (ret_mismatch)
                                *ret_mismatch = m;
                        if (missing)
                                return tpm_error_set(err, -EBADMSG, TPM_ERR_MISMATCH,
                                                     "PCR %u bank %s cannot be replayed: event %zu has no %s digest",
                                                     p, tpm_alg_name(b->alg) ?: "?", m.missing_record,
                                                     tpm_alg_name(b->alg) ?: "?");
                        return tpm_error_set(err, -EBADMSG, TPM_ERR_MISMATCH,
                                             "PCR %u bank %s differs: the logs replay to %s, the TPM has %s", p,
                                             tpm_alg_name(b->alg) ?: "?", hex_encode(m.replayed, b->size, hr),
                                             hex_encode(m.tpm, b->size, ht));
                }
        }
        return 0;
}
