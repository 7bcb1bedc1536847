/* tpm/predict.h — the PCR 8, 9 and 11 values of the next boot of a Cairn disk, computed offline (no TPM).
 *
 * The C API the update agent calls before it reboots into a staged slot (cairn-tpm predict is its CLI):
 *
 *   uint16_t banks[] = { TPM_ALG_SHA1, TPM_ALG_SHA256 };
 *   struct predict_options o = { .disk = "/dev/vda", .slot = -1, .algs = banks, .n_algs = 2 };
 *   struct tpm_error e = { 0 };
 *   _cleanup_prediction_ struct prediction *p = NULL;
 *   if (predict_boot(&o, &p, &e) < 0) { log_msg("%s", e.msg); ... }       // e.kind says which class
 *   const struct pcr_bank *b = pcr_banks_find(&p->pcrs, TPM_ALG_SHA256);   // b->value[8], [9], [11]
 *
 * Link tpm/predict.c tpm/slotid.c tpm/algtab.c tpm/alg.c tpm/eventlog.c tpm/error.c bootcfg/{state,grubenv,fat}.c
 * common/gpt.c with -lext2fs -lcom_err -lcrypto -lz.
 *
 * What is modelled (docs/boot.md "Measurements"): stock Debian GRUB 2.06 (x86_64-efi, tpm module built in)
 * running image/grub/grub.cfg for the slot state in the ESP's grubenv — every executed command after expansion
 * (PCR 8, "grub_cmd: …"), the kernel command line ("kernel_cmdline: …"), and the files it reads: grub.cfg, the
 * slot's /boot/vmlinuz and /boot/initrd (PCR 9); and Cairn's initramfs (PCR 11, tpm/slotid.h). The embedded
 * early config is not measured by this GRUB (seen in the firmware log). Under BIOS (i386-pc GRUB has no tpm
 * module) PCR 8 and 9 are not extended at all. */
#pragma once

#include <stdbool.h>

#include "alg.h"
#include "error.h"

struct predict_options {
        const char *disk;      /* image file or block device holding the whole Cairn disk (GPT, ESP, slots) */
        const char *env;       /* a grubenv file to use instead of the ESP's (NULL: as GRUB: grubenv, else .bak) */
        int slot;              /* -1: the slot the state boots; 0 (A) / 1 (B): fail unless the state boots it */
        const char *grub_disk; /* GRUB's name of the disk (NULL: "hd0", the boot disk under OVMF) */
        bool bios;             /* SeaBIOS/i386-pc: GRUB measures nothing */
        const uint16_t *algs;  /* banks to compute */
        size_t n_algs;
};

struct predict_event {
        unsigned pcr;
        uint32_t type;  /* EV_IPL (GRUB) or EV_EVENT_TAG (ours) */
        uint32_t tag;   /* for EV_EVENT_TAG */
        char *text;     /* GRUB's event text without the NUL ("grub_cmd: set slot=A", a file name), or our text */
        struct tpm_digests d;
};

struct prediction {
        int slot;                    /* 0 = A, 1 = B */
        unsigned partno;             /* its GPT partition number */
        char partuuid[37];
        char version[64];            /* VERSION_ID of the slot */
        char identity[256];          /* the PCR 11 slot identity text */
        struct pcr_banks pcrs;       /* PCRs 8, 9, 11 of each requested bank (mask 0x900 | 0x100) */
        size_t n_events;
        struct predict_event *events; /* in the order they are measured */
};

int predict_boot(const struct predict_options *o, struct prediction **ret, struct tpm_error *err)
        _warn_unused_result_;
void prediction_free(struct prediction *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct prediction *, prediction_free);
#define _cleanup_prediction_ _cleanup_(prediction_freep)

#define PREDICT_PCR_MASK ((1u << 8) | (1u << 9) | (1u << 11))
