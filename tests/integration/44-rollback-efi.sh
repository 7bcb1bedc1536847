#!/usr/bin/env bash
# cost: 600
# A/B update and automatic rollback with the real GRUB under OVMF (see tests/lib/rollback-check.sh).
exec "$(dirname "$0")/../lib/rollback-check.sh" efi
