#!/usr/bin/env bash
# tests/integration/52-agent-throttle.sh — the host's own work comes first: without --no-nice the agent runs at
# nice 19 and I/O class best-effort 7, and DOWNLOAD_RATE_LIMIT holds the transfer to the configured rate (a full
# download of the payload cannot finish faster than size / rate; only a lower bound is checked).
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_all
P2_SIZE=$(stat -c %s "$P2")
RATE=$((4 * 1024 * 1024))
echo "DOWNLOAD_RATE_LIMIT=4M" >>"$R/etc/cairn/update.conf"

start=$(date +%s.%N)
"$B/cairn-updated" --once --no-delta --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-1 >>"$T/agent.log" 2>&1 &
APID=$!
EXTRA_PIDS=$APID
nice_seen= io_seen=
# Sample until both reached their final values (the agent sets them one after the other right at its start:
# a sample in between reads the old I/O class) or the agent has ended; the last sample is judged.
while kill -0 "$APID" 2>/dev/null; do
        n=$(awk '{ print $19 }' "/proc/$APID/stat" 2>/dev/null) && [ -n "$n" ] && nice_seen=$n
        i=$(ionice -p "$APID" 2>/dev/null) && [ -n "$i" ] && io_seen=$i
        [ "$nice_seen" = 19 ] && [ "$io_seen" = "best-effort: prio 7" ] && break
        sleep 0.05
done
wait "$APID" || fail "rate-limited update failed: $(tail -n 3 "$T/agent.log")"
EXTRA_PIDS=
end=$(date +%s.%N)
[ "$nice_seen" = 19 ] || fail "agent nice value '$nice_seen', expected 19"
[ "$io_seen" = "best-effort: prio 7" ] || fail "agent I/O priority '$io_seen', expected best-effort: prio 7"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2"
python3 - "$start" "$end" "$P2_SIZE" "$RATE" <<'PY' || fail "the download beat its rate limit"
import sys
start, end, size, rate = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
floor = 0.8 * size / rate   # libcurl averages the rate over the transfer; allow a little burst
print(f"{size} bytes in {end - start:.2f} s at DOWNLOAD_RATE_LIMIT {rate} B/s (floor {floor:.2f} s)")
sys.exit(0 if end - start >= floor else 1)
PY
ok "nice 19, $io_seen; DOWNLOAD_RATE_LIMIT=4M held the $P2_SIZE-byte download to the rate; slot B = v2"
echo PASS
