#!/usr/bin/env bash
# scripts/bench/delta.sh — the real kernel point update, built with the project's own pipeline: two /usr images
# (scripts/build-image.sh, CAIRN_USR_ONLY=1) that differ only in Debian's cloud kernel (KERNEL_OLD → KERNEL_NEW,
# default linux-image-6.1.0-54-cloud-amd64 → -57-, fetched with apt-get download into CAIRN_DEBS), and the
# one-file-changed case of apply.sh (v1 with one ~1 MiB file and one config file changed in place).
# For each: bytes a host downloads with the full payload, with today's chunk reuse (chunks whose hash is in the
# active slot are copied), with the delta payload (cairn-release delta, window 0 and 1 MiB), side by side with
# `zstd -19 --long=31 --patch-from=OLD NEW`; delta creation time; and the agent applying full vs delta from
# cairn-server on loopback into a disk image (throughput, peak RSS from /usr/bin/time).
# Work files in build/bench/delta (images kept: BENCH_REBUILD=1 builds them again).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=$ROOT/build/bin
. tests/lib/common.sh
. tests/lib/ab-disk.sh
KERNEL_OLD=${KERNEL_OLD:-linux-image-6.1.0-54-cloud-amd64}
KERNEL_NEW=${KERNEL_NEW:-linux-image-6.1.0-57-cloud-amd64}
for t in cairn-release cairn-keygen cairn-server cairn-updated cairn-mkdisk cairn-mkimage; do
        [ -x "$B/$t" ] || { echo "delta.sh: build first (make)" >&2; exit 1; }
done
for t in zstd python3 debugfs mkfs.vfat mcopy grub-editenv /usr/bin/time; do
        command -v $t >/dev/null || { echo "delta.sh: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done
W=$ROOT/build/bench/delta
mkdir -p "$W"
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

# ---- the two kernel builds ----
build_usr() { # KERNEL-PACKAGE VERSION OUT.img
        local pkg=$1 ver=$2 out=$3 rec=$W/recipe-$2
        [ -s "$out" ] && [ -z "${BENCH_REBUILD:-}" ] && return 0
        rm -rf "$rec"; cp -a image/recipes/default "$rec"
        # The recipe's kernel line pinned to one versioned package: its file is put into the .deb cache here
        # (apt-get download), and the line's glob matches only that file (scripts/build-image.sh looks the
        # kernel up under the metapackage's name, so that name stays).
        local cache=${CAIRN_DEBS:-$HOME/.cache/cairn/debs}
        mkdir -p "$cache"
        if ! ls "$cache/${pkg}"_*.deb >/dev/null 2>&1; then
                (cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
                        { echo "delta.sh: cannot download $pkg (apt-get download); set KERNEL_OLD/KERNEL_NEW" >&2; exit 1; }
        fi
        awk -v pkg="$pkg" '$2 == "linux-image-cloud-amd64" { printf "%s_*.deb linux-image-cloud-amd64 direct\n", pkg; next }
                { print }' image/recipes/default/packages >"$rec/packages"
        echo "delta.sh: building /usr $ver with $pkg" >&2
        CAIRN_VERSION=$ver CAIRN_RECIPE=$rec CAIRN_USR_ONLY=1 CAIRN_OUT=$W/out-$ver CAIRN_WORK=$W/work-$ver \
                CAIRN_SEED=${BENCH_SEED:-cairn-$ver} scripts/build-image.sh >&2
        mv "$W/out-$ver/usr.img" "$out"
        rm -rf "$W/out-$ver" "$W/work-$ver"
}
build_usr "$KERNEL_OLD" 1.0.0 "$W/k-old.img"
build_usr "$KERNEL_NEW" 1.0.1 "$W/k-new.img"

# ---- the one-file-changed case of apply.sh: its 512 MiB image of real files (payload.sh builds it) ----
ONEFILE=${ONEFILE_IMG:-build/bench/usr-512M.img}
if [ ! -s "$ONEFILE" ]; then
        echo "delta.sh: building $ONEFILE (through payload.sh, once)" >&2
        RUNS=1 bash scripts/bench/payload.sh >/dev/null
fi
if [ ! -s "$W/f-new.img" ] || [ -n "${BENCH_REBUILD:-}" ]; then
        cp --sparse=always "$ONEFILE" "$W/f-old.img"
        cp --sparse=always "$ONEFILE" "$W/f-new.img"
        python3 scripts/bench/change-image.py "$W/f-new.img" delta.sh "one-file case"
fi

"$B/cairn-keygen" -o "$W/bench" >/dev/null 2>&1 || true
mkdir -p "$W/keys"; cp "$W/bench.pub" "$W/keys/"

# Bytes today's agent downloads for a full payload against an active slot: every chunk whose SHA-256 is not a
# chunk of the old image (the agent's index), at its stored size in the payload.
reuse_bytes() { # PAYLOAD OLD.img
        python3 - "$1" "$2" <<'PY'
import hashlib, struct, sys
p = open(sys.argv[1], "rb").read()
mlen, = struct.unpack_from("<I", p, 16); m = p[32:32 + mlen]
cs, n = struct.unpack_from("<II", m, 48); v, b, r = m[74], m[75], struct.unpack_from("<H", m, 76)[0]
t = (224 + v + b + 8 * r + 7) // 8 * 8
old = open(sys.argv[2], "rb").read()
have = {hashlib.sha256(old[i:i + cs]).digest() for i in range(0, len(old) - cs + 1, cs)}
slen, = struct.unpack_from("<I", p, 20)
total = 32 + mlen + slen
for i in range(n):
    off, stored, raw, meth = struct.unpack_from("<QIIB", m, t + 56 * i)
    if meth != 3 and m[t + 56 * i + 24:t + 56 * i + 56] not in have:
        total += stored
print(total)
PY
}
secs() { python3 -c 'import sys; print("%.1f" % float(sys.argv[1]))' "$1"; }
pct() { python3 -c 'import sys; print("%.1f%%" % (100.0 * int(sys.argv[1]) / int(sys.argv[2])))' "$1" "$2"; }
timed() { # OUT-VAR CMD... → elapsed seconds in OUT-VAR
        local __v=$1; shift
        local __a __b; __a=$(date +%s.%N); "$@" >/dev/null 2>&1; __b=$(date +%s.%N)
        printf -v "$__v" '%s' "$(python3 -c "print('%.1f' % ($__b - $__a))")"
}

LEVEL=${DELTA_LEVEL:-19}
declare -A RES
measure() { # case OLD NEW
        local c=$1 old=$2 new=$3
        "$B/cairn-release" create --image "$old" --version 1.0.0 --board amd64-usr --key "$W/bench.key" -o "$W/$c-old.cairn" >/dev/null
        "$B/cairn-release" create --image "$new" --version 1.0.1 --board amd64-usr --key "$W/bench.key" -o "$W/$c-new.cairn" >/dev/null
        local full; full=$(stat -c %s "$W/$c-new.cairn")
        local reuse; reuse=$(reuse_bytes "$W/$c-new.cairn" "$old")
        local t0 t1 s0 s1 tz
        timed t0 "$B/cairn-release" delta --from "$old" --to "$W/$c-new.cairn" --keys "$W/keys" --key "$W/bench.key" \
                --window 0 --level "$LEVEL" -o "$W/$c-d0.cairn"
        timed t1 "$B/cairn-release" delta --from "$old" --to "$W/$c-new.cairn" --keys "$W/keys" --key "$W/bench.key" \
                --window 1M --level "$LEVEL" -o "$W/$c-d1.cairn"
        s0=$(stat -c %s "$W/$c-d0.cairn") s1=$(stat -c %s "$W/$c-d1.cairn")
        timed tz zstd -q -f -19 --long=31 -T0 --patch-from="$old" "$new" -o "$W/$c.zst-patch"
        local sz; sz=$(stat -c %s "$W/$c.zst-patch")
        local kinds; kinds=$("$B/cairn-release" inspect "$W/$c-d0.cairn" | sed -n 's/^Chunk count: *//p')
        printf '%-22s %12s %8s\n' "$c" bytes "of full"
        printf '  %-36s %12d %8s\n' "full payload" "$full" 100%
        printf '  %-36s %12d %8s\n' "chunk reuse (today's agent)" "$reuse" "$(pct "$reuse" "$full")"
        printf '  %-36s %12d %8s   created in %s s (%s)\n' "delta, window 0 (same-offset chunk)" "$s0" "$(pct "$s0" "$full")" "$t0" "$kinds"
        printf '  %-36s %12d %8s   created in %s s\n' "delta, window 1 MiB each side" "$s1" "$(pct "$s1" "$full")" "$t1"
        printf '  %-36s %12d %8s   in %s s\n' "zstd -19 --long --patch-from (image)" "$sz" "$(pct "$sz" "$full")" "$tz"
        RES[$c]=$s0
}
echo "delta.sh: $KERNEL_OLD → $KERNEL_NEW ($(stat -c %s "$W/k-new.img") byte /usr images; delta level $LEVEL)"
measure kernel "$W/k-old.img" "$W/k-new.img"
measure one-file "$W/f-old.img" "$W/f-new.img"

# ---- the agent applying it from cairn-server: full vs delta, into a disk image ----
S=$(mktemp -d "${BENCH_TMP:-/dev/shm}/cairn-delta.XXXXXX")
cleanup() { [ -n "${BENCH_KEEP:-}" ] || rm -rf "$S"; }
on_exit cleanup
size=$(stat -c %s "$W/k-new.img") slot_mb=$(( ($(stat -c %s "$W/k-new.img") + (1 << 20) - 1) >> 20 ))
REL=$S/rel
mkdir -p "$REL/payloads/1.0.1/deltas" "$REL/channels"
cp "$W/kernel-new.cairn" "$REL/payloads/1.0.1/cairn-1.0.1-amd64-usr.cairn"
cp "$W/kernel-d0.cairn" "$REL/payloads/1.0.1/deltas/cairn-1.0.1-amd64-usr-from-1.0.0.cairn"
printf 'VERSION=1.0.1\n' >"$REL/channels/alpha"
ab_disk "$S/disk0.img" "$W/k-old.img" "$slot_mb" bench "$S"
CAIRN_SERVER=$B/cairn-server start_cairn_server SRV "$S/server.out" "$S/server.log" --reldir "$REL" --db "$S/db.sqlite"
PORT=$SRV_PORT
R=$S/root
mkdir -p "$R/etc/cairn" "$R/usr/lib" "$R/usr/share/cairn/keys" "$R/var/lib/cairn"
echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
printf 'ID=cairn\nVERSION_ID=1.0.0\nCAIRN_BOARD=amd64-usr\n' >"$R/usr/lib/os-release"
cp "$W/bench.pub" "$R/usr/share/cairn/keys/"
printf 'GROUP=alpha\nSERVER=http://127.0.0.1:%s/v1/update/\nREBOOT_STRATEGY=off\n' "$PORT" >"$R/etc/cairn/update.conf"
cp -a "$R" "$S/root0"
sent() { awk '$2 == "GET" && $3 ~ /^\/payloads\// && ($4 == 200 || $4 == 206) { s += $5 } END { print s + 0 }' "$S/server.log"; }
apply_run() { # label [agent options]
        local label=$1; shift
        rm -rf "$R"; cp -a "$S/root0" "$R"
        cp --sparse=always "$S/disk0.img" "$S/disk.img"
        local before; before=$(sent)
        /usr/bin/time -f '%e %M' -o "$S/time" "$B/cairn-updated" --once --no-nice --root "$R" --disk "$S/disk.img" \
                --booted A --boot-id b1 "$@" >"$S/agent.log" 2>&1 || { echo "delta.sh: $label apply failed:"; tail -n 3 "$S/agent.log"; return 1; }
        local e rss; read -r e rss <"$S/time"
        local got=$(( $(sent) - before ))
        printf '  %-28s %12d bytes fetched  %6s s  %7.1f MB/s of image  peak RSS %6.1f MiB\n' "$label" "$got" "$e" \
                "$(python3 -c "print($size / 1e6 / max(float('$e'), 0.001))")" "$(python3 -c "print($rss / 1024)")"
}
echo "agent apply of $KERNEL_NEW into USR-B (slot image $size bytes; cairn-server on loopback; /dev/shm disk):"
apply_run "full payload (--no-delta)" --no-delta
mv "$REL/payloads/1.0.1/deltas" "$S/deltas.off"
apply_run "full payload + chunk reuse"
mv "$S/deltas.off" "$REL/payloads/1.0.1/deltas"
apply_run "delta payload"
