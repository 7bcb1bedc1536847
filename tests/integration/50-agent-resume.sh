#!/usr/bin/env bash
# cost: 170
# tests/integration/50-agent-resume.sh — kill -9 of cairn-updated during an apply (download rate-limited so the apply
# takes a few seconds), then a rerun: it resumes from the last verified chunk (fewer bytes fetched), completes, and
# the slot verifies. Default: 20 random points (seed printed; CAIRN_RESUME_SEED=S repeats a run);
# CAIRN_RESUME_POINTS="0.3 1.5 2.6" (seconds) for fixed ones, CAIRN_RESUME_RANDOM=N for another count.
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_all
P2_SIZE=$(stat -c %s "$P2")
echo 'DOWNLOAD_RATE_LIMIT=4M' >>"$R/etc/cairn/update.conf"
cp -a "$R" "$T/root0"
# 20 random points over the ~3.3 s apply (the issue's count), reproducible from the printed seed.
seed=${CAIRN_RESUME_SEED:-$RANDOM}
points=${CAIRN_RESUME_POINTS:-$(python3 -c 'import random,sys; r=random.Random(int(sys.argv[2])); print(" ".join("%.2f" % r.uniform(0.05, 3.4) for _ in range(int(sys.argv[1]))))' "${CAIRN_RESUME_RANDOM:-20}" "$seed")}
echo "kill -9 points (CAIRN_RESUME_SEED=$seed): $points"
resumed=0
for at in $points; do
        rm -rf "$R"; cp -a "$T/root0" "$R"
        cp --sparse=always "$T/disk0.img" "$T/disk.img"
        snapshot
        "$B/cairn-updated" --once --no-nice --no-delta --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 \
                >>"$T/agent.log" 2>&1 &
        pid=$!
        sleep "$at"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        next=$(state_get RESUME_NEXT); next=${next:-0}
        st=$(state_get STATE)
        # FINALIZING is saved before the flip and UPDATED_NEED_REBOOT after it: a kill between the two leaves B
        # next, which is safe only because B was fully written and verified first. Check exactly that.
        if [ "$st" = FINALIZING ] && [ "$(bc_status | json_get 'd["next"]')" = B ]; then
                [ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "kill -9 at ${at}s: B boots next but does not verify"
                [ "$(slot_sum A)" = "$SNAP_A" ] || fail "kill -9 at ${at}s: slot A changed"
        elif [ "$st" != UPDATED_NEED_REBOOT ]; then
                untouched "kill -9 at ${at}s"
        fi
        base=$(server_payload_bytes)
        agent_once --no-delta || fail "rerun after kill -9 at ${at}s failed: $(tail -n 3 "$T/agent.log")"
        got=$(( $(server_payload_bytes) - base ))
        [ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "after kill -9 at ${at}s: slot B does not verify"
        [ "$(bc_status | json_get 'd["next"]')" = B ] || fail "after kill -9 at ${at}s: B not next"
        [ "$(slot_sum A)" = "$SNAP_A" ] || fail "after kill -9 at ${at}s: slot A changed"
        if [ "$next" -gt 0 ] && [ "$st" != UPDATED_NEED_REBOOT ]; then
                [ "$got" -lt "$P2_SIZE" ] || fail "kill at ${at}s: resume point $next but the rerun fetched $got of $P2_SIZE bytes"
                resumed=$((resumed + 1))
        fi
        echo "ok: kill -9 at ${at}s (state $st, resume point chunk $next): rerun fetched $got of $P2_SIZE bytes, slot B verifies, B next"
done
[ "$resumed" -ge 1 ] || fail "no kill point left a resume point (the apply was too fast to interrupt?)"
echo PASS
