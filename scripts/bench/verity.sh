#!/usr/bin/env bash
# scripts/bench/verity.sh — cairn-veritytree format vs. veritysetup format (cryptsetup-bin) on the same 256 MiB file
# (SIZE_MIB to change), 4 KiB blocks, same salt and UUID, the file in the page cache for both; one run each, side by
# side: wall seconds, MiB/s, peak RSS. Also checks that both produced the same root hash and hash file.
# Not part of `make check`; timings are never assertions.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MIB=${SIZE_MIB:-256}
VT=$PWD/build/bin/cairn-veritytree
[ -x "$VT" ] || make -s build/bin/cairn-veritytree
command -v veritysetup >/dev/null || { echo "verity bench: veritysetup missing (apt-get install cryptsetup-bin)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "verity bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SALT=$(printf 'cairn-verity-salt:bench' | sha256sum | cut -d' ' -f1)
UUID=0b1e5c4a-9a44-4d2e-8f6e-2f1d6f3e2a10
head -c $((SIZE_MIB << 20)) /dev/zero |
        openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 >"$T/data"
cat "$T/data" >/dev/null

run() { # name command...
        local name=$1
        shift
        rm -f "$T/$name.hash"
        sync
        /usr/bin/time -f "%e %M" -o "$T/$name.time" "$@" "$T/data" "$T/$name.hash" >"$T/$name.out"
}
run ours "$VT" format --salt "$SALT" --uuid "$UUID"
run base veritysetup format --salt "$SALT" --uuid "$UUID"
root() { sed -n 's/^Root hash:[[:space:]]*//p' "$1"; }
[ "$(root "$T/ours.out")" = "$(root "$T/base.out")" ] || { echo "verity bench: root hashes differ" >&2; exit 1; }
cmp -s "$T/ours.hash" "$T/base.hash" || { echo "verity bench: hash files differ" >&2; exit 1; }

printf 'data: %d MiB (page cache), 4 KiB blocks, SHA-256; %s; one run each\n\n' "$SIZE_MIB" "$(veritysetup --version | cut -d' ' -f1-2)"
printf '%-28s %10s %10s %14s\n' "method" "wall s" "MiB/s" "peak RSS MiB"
row() { # label file
        read -r secs rss <"$2"
        printf '%-28s %10.2f %10.0f %14.1f\n' "$1" "$secs" "$(echo "$SIZE_MIB / ($secs + 0.001)" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
row "cairn-veritytree format" "$T/ours.time"
row "veritysetup format" "$T/base.time"
read -r o _ <"$T/ours.time"
read -r b _ <"$T/base.time"
printf '%-28s %10.2f\n' "ratio (ours / veritysetup)" "$(echo "($o + 0.001) / ($b + 0.001)" | bc -l)"
echo "root hash (both): $(root "$T/ours.out")"
