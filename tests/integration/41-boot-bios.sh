#!/usr/bin/env bash
# cost: 110
# Boot the built image under SeaBIOS (legacy BIOS, GRUB i386-pc from the BIOS boot partition) twice.
exec "$(dirname "$0")/../lib/boot-check.sh" bios
