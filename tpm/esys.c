/* tpm/esys.c — the TPM through tpm2-tss: TCTI loading, ESAPI calls, and the one conversion of TSS2_RC to -errno. */
#include "tpm.h"

#include <stdlib.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

struct tpm {
        char *tcti_conf;
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
};

/* TSS2_RC → -errno and a message naming the operation: the only place TSS2_RC is interpreted. Connection-level
 * failures (no TCTI, nothing listening, device gone) are -ENODEV/TPM_ERR_NO_TPM while probing (tpm_open), else
 * -EIO/TPM_ERR_TPM: a TPM that answered once and then stopped is a failure, not an absent TPM. */
static int tss_error(struct tpm_error *err, TSS2_RC rc, bool probing, const char *what) {
        TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
        bool tpm_layer = layer == TSS2_TPM_RC_LAYER;
        int code = -EIO;
        enum tpm_error_kind kind = TPM_ERR_TPM;
        if (!tpm_layer) {
                switch (base) {
                case TSS2_BASE_RC_NO_CONNECTION:
                case TSS2_BASE_RC_IO_ERROR:
                case TSS2_BASE_RC_NOT_SUPPORTED:
                case TSS2_BASE_RC_NO_TPM:
                case TSS2_BASE_RC_BAD_TCTI_STRUCTURE:
                case TSS2_BASE_RC_INCOMPATIBLE_TCTI:
                        code = probing ? -ENODEV : -EIO;
                        kind = probing ? TPM_ERR_NO_TPM : TPM_ERR_TPM;
                        break;
                case TSS2_BASE_RC_TRY_AGAIN:
                        code = -EAGAIN;
                        break;
                case TSS2_BASE_RC_MEMORY:
                        code = -ENOMEM;
                        break;
                case TSS2_BASE_RC_BAD_VALUE:
                case TSS2_BASE_RC_BAD_REFERENCE:
                case TSS2_BASE_RC_BAD_SIZE:
                        code = -EINVAL;
                        break;
                case TSS2_BASE_RC_MALFORMED_RESPONSE:
                case TSS2_BASE_RC_INSUFFICIENT_RESPONSE:
                        code = -EBADMSG;
                        break;
                default:
                        break;
                }
        } else if ((rc & 0x080) == 0) { /* format zero */
                switch (rc & 0x97F) {
                case TPM2_RC_INITIALIZE:
                case TPM2_RC_FAILURE:
                        code = -EIO;
                        break;
                case TPM2_RC_LOCALITY:
                        code = -EPERM;
                        break;
                case TPM2_RC_RETRY:
                case TPM2_RC_YIELDED:
                case TPM2_RC_TESTING:
                        code = -EAGAIN;
                        break;
                default:
                        break;
                }
        } else {
                switch (rc & 0x0BF) { /* format one: error number without handle/parameter bits */
                case TPM2_RC_VALUE:
                case TPM2_RC_HASH:
                case TPM2_RC_SIZE:
                        code = -EINVAL;
                        break;
                default:
                        break;
                }
        }
        return tpm_error_set(err, code, kind, "%s failed: %s (0x%x)", what, Tss2_RC_Decode(rc), rc);
}

const char *tpm_tcti(const struct tpm *t) {
        return t->tcti_conf;
}

void tpm_close(struct tpm *t) {
        if (!t)
                return;
        if (t->esys)
                Esys_Finalize(&t->esys);
        if (t->tcti)
                Tss2_TctiLdr_Finalize(&t->tcti);
        free(t->tcti_conf);
        free(t);
}

static int get_pcr_caps(struct tpm *t, TPML_PCR_SELECTION *ret, bool probing, struct tpm_error *err) {
        TPMI_YES_NO more = 0;
        TPMS_CAPABILITY_DATA *cap = NULL;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1,
                                        &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, probing, "TPM2_GetCapability(PCRS)");
        if (cap->capability != TPM2_CAP_PCRS || cap->data.assignedPCR.count > TPM2_NUM_PCR_BANKS) {
                Esys_Free(cap);
                return tpm_error_set(err, -EBADMSG, TPM_ERR_TPM, "TPM2_GetCapability(PCRS) returned a bad answer");
        }
        *ret = cap->data.assignedPCR;
        Esys_Free(cap);
        return 0;
}

int tpm_open(const char *tcti, struct tpm **ret, struct tpm_error *err) {
        if (!tcti || !*tcti)
                tcti = getenv("CAIRN_TPM_TCTI");
        if (!tcti || !*tcti)
                tcti = TPM_DEFAULT_TCTI;
        _cleanup_tpm_ struct tpm *t = calloc(1, sizeof *t);
        if (!t || !(t->tcti_conf = strdup(tcti)))
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        struct tpm_error inner = { 0 };
        TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                t->tcti = NULL;
                tss_error(&inner, rc, true, "starting the TCTI");
                return tpm_error_set(err, -ENODEV, TPM_ERR_NO_TPM, "no TPM at \"%s\" (%s)", tcti, inner.msg);
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                t->esys = NULL;
                tss_error(&inner, rc, true, "Esys_Initialize");
                return tpm_error_set(err, -ENODEV, TPM_ERR_NO_TPM, "no TPM at \"%s\" (%s)", tcti, inner.msg);
        }
        TPML_PCR_SELECTION sel;
        int r = get_pcr_caps(t, &sel, true, &inner);
        if (r == -ENODEV)
                return tpm_error_set(err, -ENODEV, TPM_ERR_NO_TPM, "no TPM at \"%s\" (%s)", tcti, inner.msg);
        if (r < 0) {
                if (err)
                        *err = inner;
                return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int tpm_banks(struct tpm *t, uint16_t *ret_algs, size_t *ret_n, struct tpm_error *err) {
        TPML_PCR_SELECTION sel;
        int r = get_pcr_caps(t, &sel, false, err);
        if (r < 0)
                return r;
        uint16_t algs[TPM_MAX_BANKS];
        size_t n = 0;
        for (uint32_t i = 0; i < sel.count; i++) {
                const TPMS_PCR_SELECTION *s = &sel.pcrSelections[i];
                bool active = false;
                for (unsigned j = 0; j < s->sizeofSelect && j < TPM2_PCR_SELECT_MAX; j++)
                        active = active || s->pcrSelect[j] != 0;
                if (!active)
                        continue;
                if (n == TPM_MAX_BANKS)
                        return tpm_error_set(err, -E2BIG, TPM_ERR_TPM, "the TPM has more than %d active banks",
                                             TPM_MAX_BANKS);
                algs[n++] = s->hash;
        }
        if (n == 0)
                return tpm_error_set(err, -ENOENT, TPM_ERR_TPM, "the TPM has no active PCR bank");
        memcpy(ret_algs, algs, n * sizeof algs[0]);
        *ret_n = n;
        return 0;
}

static void select_pcrs(TPMS_PCR_SELECTION *s, uint16_t alg, uint32_t mask) {
        memset(s, 0, sizeof *s);
        s->hash = alg;
        s->sizeofSelect = 3;
        for (unsigned p = 0; p < TPM_PCRS; p++)
                if (mask & (1u << p))
                        s->pcrSelect[p / 8] |= (uint8_t)(1u << (p % 8));
}

static uint32_t selected_mask(const TPMS_PCR_SELECTION *s) {
        uint32_t m = 0;
        for (unsigned p = 0; p < TPM_PCRS && p / 8 < s->sizeofSelect; p++)
                if (s->pcrSelect[p / 8] & (1u << (p % 8)))
                        m |= 1u << p;
        return m;
}

/* Read the PCRs in mask of one bank. Esys_PCR_Read returns at most 8 digests per call: loop, taking from outSel
 * which PCRs came back, until none is left; if the update counter moves between calls, start over. */
static int read_bank(struct tpm *t, uint16_t alg, uint32_t mask, struct pcr_bank *ret, struct tpm_error *err) {
        unsigned size = tpm_alg_size(alg);
        if (!size)
                return tpm_error_set(err, -EOPNOTSUPP, TPM_ERR_UNSUPPORTED, "the TPM has a bank 0x%04x we do not know",
                                     alg);
        for (int attempt = 0; attempt < 5; attempt++) {
                struct pcr_bank b = { .alg = alg, .size = (uint16_t)size };
                uint32_t left = mask, counter = 0;
                bool first = true, moved = false;
                while (left && !moved) {
                        TPML_PCR_SELECTION in = { .count = 1 };
                        select_pcrs(&in.pcrSelections[0], alg, left);
                        UINT32 upd = 0;
                        TPML_PCR_SELECTION *out = NULL;
                        TPML_DIGEST *vals = NULL;
                        TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &upd, &out,
                                                   &vals);
                        if (rc != TSS2_RC_SUCCESS)
                                return tss_error(err, rc, false, "TPM2_PCR_Read");
                        uint32_t got = 0;
                        bool bad = out->count > 1 || (out->count == 1 && out->pcrSelections[0].hash != alg);
                        if (!bad && out->count == 1)
                                got = selected_mask(&out->pcrSelections[0]);
                        bad = bad || (got & ~left) || (unsigned)__builtin_popcount(got) != vals->count;
                        for (uint32_t i = 0, p = 0; !bad && p < TPM_PCRS; p++) {
                                if (!(got & (1u << p)))
                                        continue;
                                if (vals->digests[i].size != size)
                                        bad = true;
                                else
                                        memcpy(b.value[p], vals->digests[i].buffer, size);
                                i++;
                        }
                        Esys_Free(out);
                        Esys_Free(vals);
                        if (bad || got == 0)
                                return tpm_error_set(err, -EBADMSG, TPM_ERR_TPM,
                                                     "TPM2_PCR_Read of bank %s returned %s", tpm_alg_name(alg),
                                                     bad ? "a selection or digests we did not ask for"
                                                         : "no PCR values");
                        if (!first && upd != counter)
                                moved = true;
                        counter = upd;
                        first = false;
                        left &= ~got;
                        b.mask |= got;
                }
                if (!moved) {
                        *ret = b;
                        return 0;
                }
        }
        return tpm_error_set(err, -EAGAIN, TPM_ERR_TPM, "the PCRs kept changing while being read");
}

int tpm_pcr_read(struct tpm *t, uint32_t mask, struct pcr_banks *ret, struct tpm_error *err) {
        uint16_t algs[TPM_MAX_BANKS];
        size_t n;
        int r = tpm_banks(t, algs, &n, err);
        if (r < 0)
                return r;
        struct pcr_banks *b = calloc(1, sizeof *b);
        if (!b)
                return tpm_error_set(err, -ENOMEM, TPM_ERR_IO, "out of memory");
        b->n = n;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = read_bank(t, algs[i], mask, &b->bank[i], err);
        if (r >= 0)
                *ret = *b;
        free(b);
        return r < 0 ? r : 0;
}

int tpm_pcr_extend(struct tpm *t, unsigned pcr, const struct tpm_digests *d, struct tpm_error *err) {
        if (pcr >= TPM_PCRS || d->n == 0 || d->n > TPM2_NUM_PCR_BANKS)
                return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "bad extend of PCR %u with %zu digests", pcr, d->n);
        TPML_DIGEST_VALUES v = { .count = (UINT32)d->n };
        for (size_t i = 0; i < d->n; i++) {
                if (d->d[i].size != tpm_alg_size(d->d[i].alg) || d->d[i].size > sizeof(TPMU_HA))
                        return tpm_error_set(err, -EINVAL, TPM_ERR_INVALID, "bad digest for bank 0x%04x", d->d[i].alg);
                v.digests[i].hashAlg = d->d[i].alg;
                memcpy(&v.digests[i].digest, d->d[i].bytes, d->d[i].size);
        }
        TSS2_RC rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
        if (rc != TSS2_RC_SUCCESS) {
                char what[64];
                snprintf(what, sizeof what, "TPM2_PCR_Extend of PCR %u", pcr);
                return tss_error(err, rc, false, what);
        }
        return 0;
}
