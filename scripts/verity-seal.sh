#!/usr/bin/env bash
# scripts/verity-seal.sh — the dm-verity layout of a /usr slot image (docs/verity.md, "Slot layout").
#   verity-seal.sh plan SLOT_BYTES ENVFILE   pick the largest ext4 size (whole MiB) whose hash tree and root-hash
#                                            block fit in a slot of SLOT_BYTES; write ENVFILE, the file the image
#                                            carries as /lib/cairn/verity.env (verity_offset, usrhash_sector: both
#                                            known before the tree exists); print the file system size in bytes
#   verity-seal.sh seal IMAGE SEED           build the tree of IMAGE's file system in place (salt from SEED) and
#                                            write the root-hash block GRUB reads; print the root hash
# The slot: [ext4: verity_offset bytes][verity superblock + tree][zero to 4 KiB][root-hash block, 4 KiB][zero]
# The root-hash block is a GRUB environment block (1024 bytes, then zero to 4 KiB): usrhash=, verity_offset=,
# verity_salt=, version= (the image's VERSION_ID, for display). GRUB reads it as the blocklist ($disk,$part)usrhash_sector+2 with `load_env ... usrhash`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CAIRN_BIN:-$top/build/bin}
die() { echo "verity-seal: $*" >&2; exit 1; }
BS=4096
align() { echo $(((($1) + BS - 1) / BS * BS)); }
area() { # DATA_BYTES: bytes of superblock + tree for that much data
        "$BIN/cairn-veritytree" layout --data-blocks $(($1 / BS)) --json | sed -n 's/.*"hash_area_size":\([0-9]*\).*/\1/p'
}
env_get() { sed -n "s/^$1=//p" | head -n 1; }

cmd=${1:-}
case $cmd in
plan)
        [ $# = 3 ] || die "usage: verity-seal.sh plan SLOT_BYTES ENVFILE"
        slot=$2 envfile=$3
        [[ $slot =~ ^[0-9]+$ ]] && [ $((slot % 1048576)) = 0 ] && [ "$slot" -ge $((4 * 1048576)) ] ||
                die "slot size '$slot' must be a whole number of MiB, at least 4 MiB"
        fs=$((slot - 1048576))
        while :; do
                a=$(area "$fs") || die "cairn-veritytree layout failed"
                sector_off=$(align $((fs + a)))
                [ $((sector_off + BS)) -le "$slot" ] && break
                fs=$((fs - 1048576))
                [ "$fs" -gt 0 ] || die "no file system fits a slot of $slot bytes"
        done
        rm -f "$envfile"
        grub-editenv "$envfile" create
        grub-editenv "$envfile" set "verity_offset=$fs" "usrhash_sector=$((sector_off / 512))"
        echo "$fs"
        ;;
seal)
        [ $# = 3 ] || die "usage: verity-seal.sh seal IMAGE SEED"
        img=$2 seed=$3
        [ -f "$img" ] || die "'$img' not found"
        env=$(debugfs -R 'cat /lib/cairn/verity.env' "$img" 2>/dev/null) || true
        off=$(env_get verity_offset <<<"$env") sector=$(env_get usrhash_sector <<<"$env")
        [[ $off =~ ^[0-9]+$ && $sector =~ ^[0-9]+$ ]] ||
                die "'$img' has no /lib/cairn/verity.env with verity_offset and usrhash_sector (build it with verity-seal.sh plan)"
        size=$(stat -c %s "$img")
        fsbytes=$(dumpe2fs -h "$img" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Block size/{s=$2} END{print c*s}')
        [ "$fsbytes" = "$off" ] || die "'$img': the file system is $fsbytes bytes but verity.env says verity_offset=$off"
        a=$(area "$off")
        [ $((sector * 512)) = "$(align $((off + a)))" ] || die "'$img': usrhash_sector=$sector is not right after the tree"
        [ $((sector * 512 + BS)) -le "$size" ] || die "'$img' ($size bytes) is too small for the tree and the root-hash block"
        json=$("$BIN/cairn-veritytree" format "$img" "$img" --data-blocks $((off / BS)) --hash-offset "$off" \
                --salt-seed "$seed" --json) || die "cairn-veritytree format failed on '$img'"
        root=$(sed -n 's/.*"root_hash":"\([0-9a-f]*\)".*/\1/p' <<<"$json")
        salt=$(sed -n 's/.*"salt":"\([0-9a-f]*\)".*/\1/p' <<<"$json")
        [ ${#root} = 64 ] || die "no root hash from cairn-veritytree: $json"
        blk=$(mktemp)
        trap 'rm -f "$blk"' EXIT
        rm -f "$blk"
        grub-editenv "$blk" create
        # version= for `cairn-bootcfg status` (display only), from the image's os-release
        ver=$(debugfs -R 'cat /lib/os-release' "$img" 2>/dev/null | sed -n 's/^VERSION_ID=//p' | tr -d "\"'" | head -n 1)
        [[ $ver =~ ^[A-Za-z0-9._+~-]{1,64}$ ]] || ver=
        grub-editenv "$blk" set "usrhash=$root" "verity_offset=$off" "verity_salt=$salt" ${ver:+"version=$ver"}
        # the whole 4 KiB block: the environment block, then zeros (stale bytes of an older seal go too)
        truncate -s $BS "$blk"
        dd if="$blk" of="$img" bs=512 seek="$sector" conv=notrunc,fsync status=none
        echo "$root"
        ;;
*) die "usage: verity-seal.sh plan SLOT_BYTES ENVFILE | seal IMAGE SEED" ;;
esac
