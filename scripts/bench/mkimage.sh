#!/usr/bin/env bash
# scripts/bench/mkimage.sh DEB... — cairn-mkimage vs. the baseline `dpkg-deb -x` + `mkfs.ext4 -d` on the same .debs and
# the same image size. Runs each RUNS times (default 5) and prints median wall seconds, peak RSS and the ratio.
# Default inputs: ~/.cache/cairn/debs/*.deb. Not part of `make check`.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
MK=$PWD/build/bin/cairn-mkimage
[ -x "$MK" ] || make -s build/bin/cairn-mkimage
[ -x /usr/bin/time ] || { echo "mkimage bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
if [ $# -eq 0 ]; then
        shopt -s nullglob
        set -- ~/.cache/cairn/debs/*.deb
        [ $# -gt 0 ] || { echo "mkimage bench: no .debs given and none in ~/.cache/cairn/debs" >&2; exit 1; }
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SOURCE_DATE_EPOCH=1700000000

# One size for both: what fit mode picks, plus 64 MiB so mkfs.ext4's defaults (5% reserved) fit as well.
"$MK" -o "$T/fit.img" "$@"
SIZE=$(($(stat -c %s "$T/fit.img") + (64 << 20)))
rm -f "$T/fit.img"

ours() {
        "$MK" -o "$T/ours.img" --size "$SIZE" "$@"
}
baseline() {
        rm -rf "$T/root" && mkdir "$T/root"
        for d in "$@"; do dpkg-deb -x "$d" "$T/root"; done
        rm -f "$T/base.img"
        mkfs.ext4 -q -F -d "$T/root" -E root_owner=0:0 "$T/base.img" "$((SIZE / 1024))k"
}

measure() { # name fn args... -> appends "secs rss_kb" lines to $T/name
        local name=$1; shift
        : >"$T/$name"
        for _ in $(seq "$RUNS"); do
                sync
                /usr/bin/time -f "%e %M" -o "$T/$name.one" bash -c "$(declare -f "$1"); MK='$MK' T='$T' SIZE='$SIZE' $*" >/dev/null
                cat "$T/$name.one" >>"$T/$name"
        done
}
# Peak RSS of the baseline is the larger of its two steps; /usr/bin/time on `bash -c` reports the max over children.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

measure ours ours "$@"
measure base baseline "$@"
o_t=$(cut -d' ' -f1 "$T/ours" | median); o_m=$(cut -d' ' -f2 "$T/ours" | median)
b_t=$(cut -d' ' -f1 "$T/base" | median); b_m=$(cut -d' ' -f2 "$T/base" | median)
e2fsck -fn "$T/ours.img" >/dev/null 2>&1 || echo "warning: e2fsck reports problems in our image" >&2

printf 'inputs: %s\nimage size: %d MiB, %d runs each\n\n' "$(for d in "$@"; do basename "$d"; done | tr '\n' ' ')" $((SIZE >> 20)) "$RUNS"
printf '%-40s %12s %14s\n' "method" "median s" "peak RSS MiB"
printf '%-40s %12.2f %14.1f\n' "cairn-mkimage" "$o_t" "$(echo "$o_m / 1024" | bc -l)"
printf '%-40s %12.2f %14.1f\n' "dpkg-deb -x + mkfs.ext4 -d" "$b_t" "$(echo "$b_m / 1024" | bc -l)"
printf '%-40s %12.2f %14.2f\n' "ratio (ours / baseline)" "$(echo "$o_t / $b_t" | bc -l)" "$(echo "$o_m / $b_m" | bc -l)"
