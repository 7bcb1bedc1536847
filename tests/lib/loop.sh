# tests/lib/loop.sh — attach disk images as loop devices with partition nodes, for tests; source it from bash.
# The host kernel may lack a GPT parser (then partx adds the partitions from userspace) and there may be no
# udev (then the nodes are made here). loop_attach IMG sets LOOP_DEV; loop_cleanup undoes everything
# (unmounts LOOP_MNTS, detaches, removes the nodes it made).
LOOP_DEVS=() LOOP_NODES=() LOOP_MNTS=()

loop_attach() {
        local l b
        l=$(losetup -f --show -P "$1" 2>/dev/null) || return 1
        LOOP_DEVS+=("$l"); b=$(basename "$l"); LOOP_DEV=$l
        ls /sys/block/$b/${b}p* >/dev/null 2>&1 || partx -a "$l" >/dev/null 2>&1 || true
        loop_mknodes "$l"
}

# Make nodes for partitions added later (e.g. after a resize); same rules as loop_attach.
loop_mknodes() {
        local b p n
        b=$(basename "$1")
        for p in /sys/block/$b/${b}p*; do
                [ -e "$p/dev" ] || continue
                n=/dev/$(basename "$p")
                [ -e "$n" ] || { mknod "$n" b "$(cut -d: -f1 "$p/dev")" "$(cut -d: -f2 "$p/dev")"; LOOP_NODES+=("$n"); }
        done
}

loop_cleanup() {
        local m l n
        for m in "${LOOP_MNTS[@]}"; do umount "$m" 2>/dev/null || true; done
        for l in "${LOOP_DEVS[@]}"; do partx -d "$l" 2>/dev/null || true; losetup -d "$l" 2>/dev/null || true; done
        for n in "${LOOP_NODES[@]}"; do rm -f "$n"; done
        LOOP_DEVS=() LOOP_NODES=() LOOP_MNTS=()
}
