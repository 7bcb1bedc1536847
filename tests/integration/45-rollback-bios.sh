#!/usr/bin/env bash
# cost: 800
# A/B update and automatic rollback with the real GRUB under SeaBIOS (see tests/lib/rollback-check.sh).
exec "$(dirname "$0")/../lib/rollback-check.sh" bios
