#!/usr/bin/env bash
# scripts/bench/verity-apply.sh [IMAGE] — what the dm-verity check costs the agent's apply (docs/verity.md): the same
# sealed 512 MiB slot image (default out/usr.img, with its os-release changed and sealed again as v2) released twice,
# once with the verity layout in the manifest (the agent computes the root of the data in its read-back pass) and
# once without (the agent does what it did before verity), served by cairn-server on loopback, applied by
# cairn-updated --once --no-delta into USR-B of a disk image in BENCH_TMP (default /dev/shm). The two kinds of run
# alternate, RUNS times each (default 5), page cache dropped before each when possible. Prints medians.
# FILL=MiB: instead of IMAGE, a sealed slot whose file system holds FILL MiB of random data (the worst case).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${CAIRN_BIN:-$ROOT/build/bin}
RUNS=${RUNS:-5}
IMG=${1:-out/usr.img}
[ -s "$IMG" ] || { echo "verity-apply.sh: $IMG missing (make image)" >&2; exit 1; }
. tests/lib/usr-image.sh
. tests/lib/ab-disk.sh
export MTOOLS_SKIP_CHECK=1
S=$(mktemp -d "${BENCH_TMP:-/dev/shm}/cairn-vapply.XXXXXX")
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$S"' EXIT
if [ -n "${FILL:-}" ]; then
        # a slot whose file system is FILL MiB of random data (no zero blocks to skip, nothing for zstd to shrink)
        mkdir -p "$S/tree/lib/cairn"
        head -c $((FILL * 1048576)) /dev/urandom >"$S/tree/bulk"
        fs=$(scripts/verity-seal.sh plan $((512 * 1048576)) "$S/tree/lib/cairn/verity.env")
        usr_os_release "$S/tree" 1.0.0
        "$B/cairn-mkimage" -o "$S/v1.img" --size "$fs" --seed bench --label USR --no-journal "$S/tree" >/dev/null
        truncate -s 512M "$S/v1.img"
        scripts/verity-seal.sh seal "$S/v1.img" bench-v1 >/dev/null
        rm -rf "$S/tree"
        IMG=$S/v1.img
fi
usr_image_retag "$IMG" "$S/v2.img" 2.0.0
root=$(scripts/verity-seal.sh seal "$S/v2.img" bench-v2)
off=$(debugfs -R 'cat /lib/cairn/verity.env' "$S/v2.img" 2>/dev/null | sed -n 's/^verity_offset=//p')
salt=$(printf 'cairn-verity-salt:bench-v2' | sha256sum | cut -d' ' -f1)
"$B/cairn-keygen" -o "$S/bench" >/dev/null
for mode in plain verity; do
        rel=$S/rel-$mode
        mkdir -p "$rel/payloads/2.0.0" "$rel/channels"
        extra=()
        [ $mode = verity ] && extra=(--verity-root-hash "$root" --verity-hash-offset "$off" --verity-salt "$salt")
        "$B/cairn-release" create --image "$S/v2.img" --version 2.0.0 --board amd64 --key "$S/bench.key" \
                ${extra[@]+"${extra[@]}"} -o "$rel/payloads/2.0.0/cairn-2.0.0-amd64.cairn" >/dev/null
        printf 'VERSION=2.0.0\n' >"$rel/channels/alpha"
        "$B/cairn-server" --reldir "$rel" --db "$S/db-$mode.sqlite" --listen 127.0.0.1:0 >"$S/server-$mode.out" 2>/dev/null &
        PIDS="$PIDS $!"
        for _ in $(seq 100); do grep -q "listening on" "$S/server-$mode.out" 2>/dev/null && break; sleep 0.05; done
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$S/server-$mode.out")
        mkdir -p "$S/root-$mode/etc/cairn" "$S/root-$mode/usr/lib" "$S/root-$mode/usr/share/cairn/keys"
        echo 0123456789abcdef0123456789abcdef >"$S/root-$mode/etc/machine-id"
        printf 'VERSION_ID=1.0.0\n' >"$S/root-$mode/usr/lib/os-release"
        cp "$S/bench.pub" "$S/root-$mode/usr/share/cairn/keys/"
        printf 'GROUP=alpha\nSERVER=http://127.0.0.1:%s/v1/update/\nREBOOT_STRATEGY=off\n' "$port" \
                >"$S/root-$mode/etc/cairn/update.conf"
done
size=$(stat -c %s "$IMG")
ab_disk "$S/disk0.img" "$IMG" $(( (size + (1 << 20) - 1) >> 20 )) bench "$S"
: >"$S/results"
for i in $(seq "$RUNS"); do
        order="plain verity"
        [ $((i % 2)) = 0 ] && order="verity plain" # neither kind always runs first
        for mode in $order; do
                cp --sparse=always "$S/disk0.img" "$S/disk.img"
                rm -rf "$S/root-$mode/var"
                sync
                [ -w /proc/sys/vm/drop_caches ] && echo 3 >/proc/sys/vm/drop_caches
                /usr/bin/time -f "%e %U %S %M" -o "$S/time" "$B/cairn-updated" --once --no-nice --no-delta \
                        --root "$S/root-$mode" --disk "$S/disk.img" --booted A --boot-id b >/dev/null 2>"$S/err" ||
                        { echo "verity-apply.sh: $mode apply failed: $(tail -n 3 "$S/err")" >&2; exit 1; }
                grep -q '^STATE=UPDATED_NEED_REBOOT' "$S/root-$mode/var/lib/cairn/state" ||
                        { echo "verity-apply.sh: $mode apply did not finish" >&2; exit 1; }
                read -r wall user sys rss <"$S/time"
                echo "$mode $wall $(python3 -c "print($user + $sys)") $rss" >>"$S/results"
        done
done
python3 - "$S/results" "$size" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
mb = int(sys.argv[2]) / 1e6
med = {}
print("| agent apply, 512 MiB, full (median of %d) | wall s | MB/s | CPU s | peak RSS MiB |" % (len(rows) // 2))
print("|---|---|---|---|---|")
for m, name in (("plain", "manifest without verity layout (before)"), ("verity", "with verity root check (after)")):
    r = [x for x in rows if x[0] == m]
    w = statistics.median(float(x[1]) for x in r); c = statistics.median(float(x[2]) for x in r)
    rss = statistics.median(int(x[3]) for x in r) / 1024
    med[m] = w
    print(f"| {name} | {w:.2f} | {mb / w:.0f} | {c:.2f} | {rss:.1f} |")
print(f"| ratio after/before (wall) | **{med['verity'] / med['plain']:.3f}** | | | |")
print("runs (wall s): " + ", ".join(f"{x[0]} {x[1]}" for x in rows))
PY
