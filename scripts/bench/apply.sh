#!/usr/bin/env bash
# scripts/bench/apply.sh [IMAGE] — apply a 512 MiB slot image from cairn-server on loopback into a disk image's
# USR-B (cold: page cache dropped before each run when possible), side by side with the shell pipeline
# `curl … | zstd -d | tee >(openssl dgst -sha256) > slot` on the same data, the machine's ceiling (`zstd -d` of the
# data alone, `openssl dgst -sha256` of the image alone), `rauc install` when rauc is installed and usable, and a
# delta update (one changed ~1 MiB file and one changed config file). Prints MB/s, CPU seconds and peak RSS.
# Median of RUNS (default 3). Disk images live in BENCH_TMP (default /dev/shm) so device fsync speed does not
# dominate; the release directory is in build/bench (on disk, dropped from the cache for "cold").
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../tests/lib/ab-disk.sh"
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=$ROOT/build/bin
RUNS=${RUNS:-3}
for t in cairn-updated cairn-server cairn-release cairn-keygen cairn-mkdisk; do
        [ -x "$B/$t" ] || { echo "apply.sh: build first (make)" >&2; exit 1; }
done
for t in zstd openssl curl debugfs python3 mkfs.vfat mcopy grub-editenv /usr/bin/time; do
        command -v $t >/dev/null || { echo "apply.sh: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done
IMG=${1:-build/bench/usr-512M.img}
if [ ! -s "$IMG" ]; then
        echo "apply.sh: building $IMG (through payload.sh, once)" >&2
        RUNS=1 bash scripts/bench/payload.sh >/dev/null
fi
export MTOOLS_SKIP_CHECK=1
S=$(mktemp -d "${BENCH_TMP:-/dev/shm}/cairn-apply.XXXXXX")
mkdir -p build/bench
REL=$(mktemp -d "$ROOT/build/bench/apply-rel.XXXXXX")
SPID=
cleanup() {
        [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
        [ -s "$S/rauc/bus.pid" ] && kill "$(cat "$S/rauc/bus.pid")" 2>/dev/null
        for l in ${LOOPS:-}; do losetup -d "$l" 2>/dev/null; done
        [ -n "${BENCH_KEEP:-}" ] || rm -rf "$S" "$REL"
}
on_exit cleanup
size=$(stat -L -c %s "$IMG")

# v2: the same image with one ~1 MiB file and one small config file changed in place.
cp "$IMG" "$S/v2.img"
python3 scripts/bench/change-image.py "$S/v2.img" apply.sh v2

# A sealed /usr image (out/usr.img, docs/verity.md): seal v2 again and sign its verity layout, so the agent checks
# the dm-verity root in its read-back pass (VERITY=0 leaves the layout out of the manifest: the "before" run).
verity=()
if debugfs -R 'cat /lib/cairn/verity.env' "$S/v2.img" 2>/dev/null | grep -q '^usrhash_sector='; then
        vroot=$(scripts/verity-seal.sh seal "$S/v2.img" bench-v2)
        voff=$(debugfs -R 'cat /lib/cairn/verity.env' "$S/v2.img" 2>/dev/null | sed -n 's/^verity_offset=//p')
        vsalt=$(printf 'cairn-verity-salt:bench-v2' | sha256sum | cut -d' ' -f1)
        [ "${VERITY:-1}" = 0 ] || verity=(--verity-root-hash "$vroot" --verity-hash-offset "$voff" --verity-salt "$vsalt")
        echo "apply.sh: v2 sealed for dm-verity (root $vroot)${verity[*]:+, layout in the manifest}" >&2
fi
"$B/cairn-keygen" -o "$S/bench" >/dev/null
mkdir -p "$REL/payloads/2.0.0" "$REL/payloads/raw" "$REL/channels"
"$B/cairn-release" create --image "$S/v2.img" --version 2.0.0 --board amd64 --key "$S/bench.key" \
        ${verity[@]+"${verity[@]}"} -o "$REL/payloads/2.0.0/cairn-2.0.0-amd64.cairn" >/dev/null
printf 'VERSION=2.0.0\n' >"$REL/channels/alpha"
zstd -q -3 -T0 "$S/v2.img" -o "$REL/payloads/raw/usr.img.zst"
payload=$(stat -c %s "$REL/payloads/2.0.0/cairn-2.0.0-amd64.cairn")
zsize=$(stat -c %s "$REL/payloads/raw/usr.img.zst")

# The host: a disk with v1 in USR-A (for the delta run), USR-B empty.
ab_disk "$S/disk0.img" "$IMG" $(( (size + (1 << 20) - 1) >> 20 )) bench "$S"
R=$S/root
mkdir -p "$R/etc/cairn" "$R/usr/lib" "$R/usr/share/cairn/keys"
echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
printf 'VERSION_ID=1.0.0\n' >"$R/usr/lib/os-release"
cp "$S/bench.pub" "$R/usr/share/cairn/keys/"

CAIRN_SERVER=$B/cairn-server start_cairn_server SRV "$S/server.out" "$S/server.log" --reldir "$REL" --db "$S/db.sqlite"
SPID=$SRV_PID URL=$SRV_URL
printf 'GROUP=alpha\nSERVER=%s/v1/update/\nREBOOT_STRATEGY=off\n' "$URL" >"$R/etc/cairn/update.conf"

cold() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; COLD=cold; else COLD=warm; fi; }
measure() { # label cmd... → appends "label wall cpu rss_kb" to $S/results
        local label=$1; shift
        /usr/bin/time -f "%e %U %S %M" -o "$S/time" "$@" >/dev/null 2>>"$S/err" || { echo "apply.sh: $label failed: $(tail -n 3 "$S/err")" >&2; exit 1; }
        read -r wall user sys rss <"$S/time"
        echo "$label $wall $(python3 -c "print($user + $sys)") $rss" >>"$S/results"
}
# RAUC (Debian's rauc 1.8) when installed: a plain bundle of the same image, grub backend on a scratch grubenv,
# loop-device slots; `rauc service` on a private D-Bus (its CPU and RSS are the service's, its wall time the install's).
RAUC=
LOOPS=
if command -v rauc >/dev/null && command -v mksquashfs >/dev/null && command -v dbus-daemon >/dev/null; then
        mkdir -p "$S/rauc/b" "$S/rauc/data" "$S/rauc/mnt"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$S/rauc/key.pem" -out "$S/rauc/cert.pem" -days 30 \
                -subj "/CN=cairn-bench" 2>/dev/null
        cp "$S/v2.img" "$S/rauc/b/rootfs.ext4"
        printf '[update]\ncompatible=cairn-bench\nversion=2.0.0\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.ext4\n' \
                >"$S/rauc/b/manifest.raucm"
        echo "apply.sh: building the RAUC bundle (once)" >&2
        if rauc bundle --cert "$S/rauc/cert.pem" --key "$S/rauc/key.pem" "$S/rauc/b" "$REL/bundle.raucb" >/dev/null 2>&1 &&
           truncate -s "$slot" "$S/rauc/slotA" "$S/rauc/slotB" && LA=$(losetup -f --show "$S/rauc/slotA" 2>/dev/null) &&
           LB=$(losetup -f --show "$S/rauc/slotB" 2>/dev/null); then
                LOOPS="$LA $LB"
                rm -rf "$S/rauc/b"
                grub-editenv "$S/rauc/grubenv" create
                grub-editenv "$S/rauc/grubenv" set ORDER="A B" A_OK=1 B_OK=0 A_TRY=0 B_TRY=0
                printf '[system]\ncompatible=cairn-bench\nbootloader=grub\ngrubenv=%s\ndata-directory=%s\n[keyring]\npath=%s\n[slot.rootfs.0]\ndevice=%s\ntype=ext4\nbootname=A\n[slot.rootfs.1]\ndevice=%s\ntype=ext4\nbootname=B\n' \
                        "$S/rauc/grubenv" "$S/rauc/data" "$S/rauc/cert.pem" "$LA" "$LB" >"$S/rauc/system.conf"
                cat >"$S/rauc/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$S/rauc/bus.sock</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/><allow user="*"/></policy></busconfig>
BUS
                dbus-daemon --config-file="$S/rauc/bus.conf" --fork --print-pid >"$S/rauc/bus.pid"
                for _ in $(seq 50); do [ -S "$S/rauc/bus.sock" ] && break; sleep 0.1; done
                RAUC=1
        else
                echo "apply.sh: rauc bundle or loop devices unavailable; rauc not run" >&2
        fi
fi
rauc_run() {
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$S/rauc/bus.sock
        [ -S "$S/rauc/bus.sock" ] || { echo "apply.sh: private D-Bus for rauc is gone" >&2; exit 1; }
        rm -rf "$S/rauc/data"/*
        /usr/bin/time -f "%e %U %S %M" -o "$S/rauc/svc.time" rauc service --conf="$S/rauc/system.conf" \
                --mount="$S/rauc/mnt" --override-boot-slot=A >"$S/rauc/svc.log" 2>&1 &
        local tp=$!
        sleep 1
        local t0 t1
        t0=$(date +%s.%N)
        rauc install "$REL/bundle.raucb" >"$S/rauc/install.log" 2>&1 || { echo "apply.sh: rauc install failed: $(tail -n 3 "$S/rauc/install.log")" >&2; exit 1; }
        t1=$(date +%s.%N)
        kill -TERM $(pgrep -P "$tp") 2>/dev/null || true
        wait "$tp" 2>/dev/null || true
        read -r _ user sys rss < <(tail -n 1 "$S/rauc/svc.time")
        echo "rauc $(python3 -c "print($t1 - $t0)") $(python3 -c "print($user + $sys)") $rss" >>"$S/results"
}
: >"$S/results"
for i in $(seq "$RUNS"); do
        cp --sparse=always "$S/disk0.img" "$S/disk.img"; rm -rf "$R/var"
        cold
        measure agent ${AGENT_WRAP:-} "$B/cairn-updated" --once --no-nice --no-delta --root "$R" --disk "$S/disk.img" --booted A --boot-id b
        grep -q '^STATE=UPDATED_NEED_REBOOT' "$R/var/lib/cairn/state" || { echo "apply.sh: the agent did not finish" >&2; exit 1; }
        cold
        measure pipeline bash -c "curl -s '$URL/payloads/raw/usr.img.zst' | zstd -q -d | tee >(openssl dgst -sha256 >/dev/null) >'$S/slot.raw'"
        if [ -n "$RAUC" ]; then cold; rauc_run; fi
        cold
        measure zstd-d bash -c "zstd -q -d -c '$REL/payloads/raw/usr.img.zst' >/dev/null"
        cold
        measure sha256 openssl dgst -sha256 "$S/v2.img"
        cp --sparse=always "$S/disk0.img" "$S/disk.img"; rm -rf "$R/var"
        cold
        measure delta "$B/cairn-updated" --once --no-nice --root "$R" --disk "$S/disk.img" --booted A --boot-id b
        delta_bytes=$(sed -n 's/^BYTES_DOWNLOADED=//p' "$R/var/lib/cairn/state")
done
python3 - "$S/results" "$size" "$payload" "$zsize" "$delta_bytes" "$COLD" "$RUNS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, w, c, r = line.split(); rows.setdefault(k, []).append((float(w), float(c), int(r)))
size, payload, zsize, delta, cold, runs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
mbs = lambda k: size / med[k][0] / 1e6
print(f"apply of a {size >> 20} MiB slot image ({cold} cache, median of {runs}); payload {payload / 1e6:.1f} MB, zstd file {zsize / 1e6:.1f} MB")
print(f"{'':34} {'wall s':>8} {'MB/s':>8} {'CPU s':>7} {'peak RSS':>10}")
names = {"agent": "cairn-updated (full, no delta)", "pipeline": "curl | zstd -d | tee >(sha256) >", "zstd-d": "ceiling: zstd -d alone",
         "sha256": "ceiling: openssl dgst -sha256", "delta": "cairn-updated (delta)", "rauc": "rauc install"}
for k in ("agent", "pipeline", "rauc", "zstd-d", "sha256", "delta"):
    if k in med:
        w, c, r = med[k]
        print(f"{names[k]:34} {w:8.2f} {mbs(k):8.0f} {c:7.2f} {r / 1024:8.1f} MiB")
ceiling = min(mbs("zstd-d"), mbs("sha256"))
print(f"agent / pipeline: {mbs('agent') / mbs('pipeline'):.2f}x   agent / ceiling (slower of zstd -d, sha256): {mbs('agent') / ceiling * 100:.0f}%"
      + (f"   agent / rauc: {mbs('agent') / mbs('rauc'):.2f}x" if "rauc" in med else "   rauc: not run (not installed)"))
print(f"delta: {delta} bytes downloaded = {delta * 100 / payload:.2f}% of the full payload")
PY
