#!/usr/bin/env bash
# cost: 120
# Boot the built image under OVMF (UEFI) twice: ready line for slot A, ROOT grown, /var kept.
exec "$(dirname "$0")/../lib/boot-check.sh" efi
