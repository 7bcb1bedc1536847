#!/usr/bin/env bash
# scripts/bench/payload.sh [IMAGE] — payload creation throughput (cairn-release create) against the baseline
# `zstd -T0 -3 -c IMG >/dev/null` + `openssl dgst -sha256 IMG` (their times summed). Median of RUNS (default 5)
# runs each, page cache warm. Without IMAGE, builds (once, cached in build/bench/) a 512 MiB ext4 image filled
# with real files from /usr/lib. Output files go to a scratch dir (BENCH_TMP, default /dev/shm) so the disk's
# fsync speed does not dominate; the baseline writes nothing at all.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/build/bin
RUNS=${RUNS:-5}
[ -x "$B/cairn-release" ] && [ -x "$B/cairn-keygen" ] || { echo "payload.sh: build first (make)" >&2; exit 1; }
for t in zstd openssl mkfs.ext4 python3; do
        command -v $t >/dev/null || { echo "payload.sh: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done

IMG=${1:-}
if [ -z "$IMG" ]; then
        IMG=build/bench/usr-512M.img
        if [ ! -s "$IMG" ]; then
                mkdir -p build/bench
                stage=$(mktemp -d "$PWD/build/bench/stage.XXXXXX")
                trap 'rm -rf "$stage"' EXIT
                echo "payload.sh: building $IMG from /usr/lib (once)" >&2
                # Files from /usr/lib in sorted order, up to ~340 MiB (4K-block and inode overhead fill the rest), each below 16 MiB.
                find /usr/lib -xdev -type f -size -16M -readable -print0 2>/dev/null | sort -z |
                        python3 -c '
import os, sys
total, out = 0, sys.stdout.buffer
for p in sys.stdin.buffer.read().split(b"\0"):
    if not p: continue
    try: n = os.path.getsize(p)
    except OSError: continue
    if total + n > 340 << 20: break
    total += n; out.write(p + b"\0")' |
                        (cd / && cpio -0 -pdm --quiet "$stage" 2>/dev/null) || true
                truncate -s 512M "$IMG.tmp"
                SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000 \
                        mkfs.ext4 -q -F -L USR-A -U 3e6a1c0a-0000-4000-8000-000000000001 \
                        -E hash_seed=3e6a1c0a-0000-4000-8000-000000000002,root_owner=0:0 \
                        -d "$stage/usr/lib" "$IMG.tmp"
                mv "$IMG.tmp" "$IMG"
                rm -rf "$stage"
        fi
fi
[ -r "$IMG" ] || { echo "payload.sh: cannot read image \"$IMG\"" >&2; exit 1; }

scratch=$(mktemp -d "${BENCH_TMP:-/dev/shm}/cairn-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$B/cairn-keygen" -o "$scratch/bench" >/dev/null
size=$(stat -L -c %s "$IMG")
cat "$IMG" >/dev/null # warm the page cache

now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

ours=() base=() zs=() sh=()
for i in $(seq "$RUNS"); do
        t0=$(now)
        "$B/cairn-release" create --image "$IMG" --version bench --board amd64-usr --key "$scratch/bench.key" \
                -o "$scratch/out.cairn" >/dev/null
        t1=$(now)
        zstd -q -T0 -3 -c "$IMG" >/dev/null
        t2=$(now)
        openssl dgst -sha256 "$IMG" >/dev/null
        t3=$(now)
        ours+=("$(awk "BEGIN{print $t1 - $t0}")")
        zs+=("$(awk "BEGIN{print $t2 - $t1}")")
        sh+=("$(awk "BEGIN{print $t3 - $t2}")")
        base+=("$(awk "BEGIN{print $t3 - $t1}")")
done
psize=$(stat -c %s "$scratch/out.cairn")
mo=$(median "${ours[@]}"); mb=$(median "${base[@]}"); mz=$(median "${zs[@]}"); ms=$(median "${sh[@]}")
python3 - "$size" "$psize" "$mo" "$mb" "$mz" "$ms" "$RUNS" "$(nproc)" "$IMG" <<'PY'
import sys
size, psize = int(sys.argv[1]), int(sys.argv[2])
ours, base, zs, sh = map(float, sys.argv[3:7])
runs, cpus, img = sys.argv[7], sys.argv[8], sys.argv[9]
mb = size / 1e6
print(f"payload creation: {img} ({mb:.0f} MB, payload {psize/1e6:.0f} MB), median of {runs} runs, {cpus} CPUs")
print(f"| {'':38} | {'seconds':>8} | {'MB/s':>8} |")
print(f"|{'-'*40}|{'-'*10}|{'-'*10}|")
print(f"| {'cairn-release create (zstd-3, 1 MiB)':38} | {ours:8.3f} | {mb/ours:8.1f} |")
print(f"| {'  baseline: zstd -T0 -3':38} | {zs:8.3f} | {mb/zs:8.1f} |")
print(f"| {'  baseline: openssl dgst -sha256':38} | {sh:8.3f} | {mb/sh:8.1f} |")
print(f"| {'baseline total (sum)':38} | {base:8.3f} | {mb/base:8.1f} |")
print(f"ratio (ours / baseline throughput): {base/ours:.2f}x  (target >= 1.0x)")
PY
