#!/usr/bin/env bash
# scripts/bench/verity-boot.sh [IMAGE] — what dm-verity costs at boot and when reading /usr, in QEMU (TCG, OVMF):
#  - boot time, QEMU start to the "ready" line, of IMAGE (default out/cairn.img, /usr on dm-verity) and of
#    BASE_IMAGE (an image built before verity, e.g. from the commit before issue 13's part 2), alternating, RUNS
#    times each (default 3), one VM at a time;
#  - sequential read throughput of /usr inside the verity guest: dd of the file system's bytes from
#    /dev/mapper/usr (every block hashed and checked) and from the raw partition under it, page cache dropped
#    before each read, RUNS times each;
#  - the time `cairn-dmverity open` takes in the guest (the whole-tree check and the activation).
# Prints medians. Timings are for documentation only (docs/verity.md, docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
IMG=${1:-out/cairn.img}
RUNS=${RUNS:-3}
[ -f "$IMG" ] || { echo "verity-boot.sh: $IMG missing (make image)" >&2; exit 1; }
. tests/lib/vm.sh
VERSION=$(cat VERSION)
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
boot_time() { # NAME IMAGE: seconds from QEMU start to the ready line
        local t0 t1
        t0=$(date +%s.%N)
        vm_start "$1" "$2" --firmware efi
        vm_wait "$1" "Cairn .* ready" 600 || { echo "verity-boot.sh: $2 did not boot" >&2; exit 1; }
        t1=$(date +%s.%N)
        echo "$t0 $t1" | awk '{printf "%.1f\n", $2 - $1}'
}
: >"$VM_DIR/with" >"$VM_DIR/without" >"$VM_DIR/rd-verity" >"$VM_DIR/rd-raw" >"$VM_DIR/open"
for i in $(seq "$RUNS"); do
        if [ -n "${BASE_IMAGE:-}" ]; then
                boot_time base "$BASE_IMAGE" >>"$VM_DIR/without"
                vm_poweroff base 120
        fi
        boot_time v "$IMG" >>"$VM_DIR/with"
        if [ "$i" = 1 ]; then
                blocks=$(vm_run v 'cairn-dmverity table usr' | awk '{print $9}')
                mib=$((blocks * 4096 / 1048576))
                raw=$(vm_run v 'cairn-dmverity table usr' | awk '{print $5}')
        fi
        for dev in mapper raw; do
                src=/dev/mapper/usr
                [ $dev = raw ] && src=/dev/block/$raw
                [ $dev = raw ] && vm_run v "[ -e /dev/block/$raw ] || { mkdir -p /dev/block; mknod /dev/block/$raw b ${raw%:*} ${raw#*:}; }" >/dev/null
                out=$(vm_run v "sync; echo 3 >/proc/sys/vm/drop_caches; t0=\$(cut -d' ' -f1 /proc/uptime); dd if=$src of=/dev/null bs=1M count=$mib 2>/dev/null; t1=\$(cut -d' ' -f1 /proc/uptime); echo \$t0 \$t1" 600)
                echo "$out" | awk -v m="$mib" '{printf "%.1f\n", m / ($2 - $1)}' >>"$VM_DIR/rd-$([ $dev = raw ] && echo raw || echo verity)"
        done
        # the activation alone (tree check + ioctls), once more under another name
        out=$(vm_run v "root=\$(cairn-dmverity table usr | cut -d' ' -f12); t0=\$(cut -d' ' -f1 /proc/uptime); cairn-dmverity open /dev/block/$raw \$root bench$i >/dev/null; t1=\$(cut -d' ' -f1 /proc/uptime); echo \$t0 \$t1")
        echo "$out" | awk '{printf "%.2f\n", $2 - $1}' >>"$VM_DIR/open"
        vm_poweroff v 120
done
printf '| measurement (median of %s, TCG guest) | with dm-verity | without |\n|---|---|---|\n' "$RUNS"
printf '| boot to the ready line (s) | %s | %s |\n' "$(median <"$VM_DIR/with")" \
        "$([ -s "$VM_DIR/without" ] && median <"$VM_DIR/without" || echo "- (set BASE_IMAGE)")"
printf '| `cairn-dmverity open` (tree check + activation, s) | %s | - |\n' "$(median <"$VM_DIR/open")"
printf '| sequential read of /usr, %s MiB (MiB/s) | %s | %s |\n' "$mib" "$(median <"$VM_DIR/rd-verity")" "$(median <"$VM_DIR/rd-raw")"
echo "boots: with $(tr '\n' ' ' <"$VM_DIR/with")/ without $(tr '\n' ' ' <"$VM_DIR/without"); reads MiB/s: verity $(tr '\n' ' ' <"$VM_DIR/rd-verity")/ raw $(tr '\n' ' ' <"$VM_DIR/rd-raw")"
