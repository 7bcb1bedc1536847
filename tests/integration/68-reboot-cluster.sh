#!/usr/bin/env bash
# cost: 70
# tests/integration/68-reboot-cluster.sh — five agents (own machine ids, state dirs and disks) with a staged update
# contend for a 3-node etcd cluster's reboot lock with max=2: at no revision more than 2 holders (every write seen
# by `etcdctl watch` decoded), a node killed mid-run changes nothing, and every host reboots once and releases after
# its new boot passed the health gate. Then two nodes down (no quorum): `cairnctl reboot` on every host reboots
# nobody and every status says why; a node returns and all of them reboot (still at most 2 at a time). The test
# plays the machines: when a host's reboot command has run, it kills that daemon and starts it in the next boot.
source "$(dirname "$0")/../lib/agent-fixture.sh"
for t in etcd etcdctl; do
        command -v $t >/dev/null || { echo "skip: $t not installed (scripts/deps.sh installs etcd-server, etcd-client)"; exit 77; }
done
. "$ROOT/tests/lib/etcd.sh"
declare -A DAEMON=()
OTHER=()
cleanup64() {
        set +e
        for p in "${DAEMON[@]}" "${OTHER[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        etcd_stop_all
}
trap 'rc=$?; cleanup64; (exit $rc); fx_cleanup' EXIT
fx_images; fx_disk; fx_release; fx_server

read -r c1 c2 c3 p1 p2 p3 < <(etcd_free_ports 6)
CL="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
etcd_start n1 "$c1" "$p1" "$CL" c64; etcd_start n2 "$c2" "$p2" "$CL" c64; etcd_start n3 "$c3" "$p3" "$CL" c64
N1=http://127.0.0.1:$c1 N2=http://127.0.0.1:$c2 N3=http://127.0.0.1:$c3
EPS=$N1,$N2,$N3
etcd_healthy "$EPS" || fail "3-node cluster did not start"
etcdctl --endpoints "$N1" put $ETCD_KEY '{"semaphore":2,"max":2,"holders":null}' >/dev/null
etcdctl --endpoints "$N3" watch --prefix coreos.com/updateengine/rebootlock/ -w json >"$T/watch.json" 2>"$T/watch.log" &
OTHER+=($!)
sleep 0.5
: >"$T/reboots"

HOSTS="1 2 3 4 5"
for n in $HOSTS; do
        r=$T/h$n
        mkdir -p "$r/etc/cairn/pre-reboot.d" "$r/etc/cairn/post-boot.d" "$r/usr/lib" "$r/usr/share/cairn/keys" "$r/var/lib/cairn"
        printf 'host%02d000000000000000000000000000\n' "$n" >"$r/etc/machine-id"
        printf 'ID=cairn\nVERSION_ID=1.0.0\n' >"$r/usr/lib/os-release"
        cp "$T/release.pub" "$r/usr/share/cairn/keys/"
        printf 'GROUP=alpha\nSERVER=%s/v1/update/\nREBOOT_STRATEGY=off\nETCD_ENDPOINTS=%s\nHEALTH_DELAY=0\nFIRST_CHECK_DELAY=0\nCHECK_INTERVAL=1h\nLOCK_RETRY_MIN=1\nLOCK_RETRY_MAX=3\n' \
                "$URL" "$EPS" >"$r/etc/cairn/update.conf"
        # The hooks make the holders overlap (a drain and an uncordon take a moment).
        printf '#!/bin/sh\nsleep 1\n' >"$r/etc/cairn/pre-reboot.d/10-drain"
        printf '#!/bin/sh\nsleep 1\n' >"$r/etc/cairn/post-boot.d/10-uncordon"
        chmod +x "$r"/etc/cairn/*.d/*
        cp --sparse=always "$T/disk0.img" "$T/h$n.img"
        "$B/cairn-updated" --once --no-nice --root "$r" --disk "$T/h$n.img" --booted A --boot-id boot-1 >>"$T/agent-$n.log" 2>&1 ||
                fail "staging on host $n: $(tail -n 3 "$T/agent-$n.log")"
        echo REBOOT_STRATEGY=etcd-lock >>"$r/etc/cairn/update.conf"
done
ok "five hosts staged 2.0.0 (REBOOT_STRATEGY=off while staging, then etcd-lock)"

start_daemon() { # n boot slot
        local n=$1
        ( exec "$B/cairn-updated" --no-nice --root "$T/h$n" --disk "$T/h$n.img" --booted "$3" --boot-id "$2" \
                --socket "$T/h$n.sock" --reboot-cmd "echo $n $2 >>$T/reboots" >>"$T/agent-$n.log" 2>&1 ) &
        DAEMON[$n]=$!
}
declare -A DONE=()
# play_reboots FROM TO SLOT: whenever a host's reboot command ran in boot FROM, "reboot" it into boot TO.
play_reboots() {
        local from=$1 to=$2 slot=$3 n
        for n in $HOSTS; do
                [ -n "${DONE[$n.$from]:-}" ] && continue
                grep -qx "$n $from" "$T/reboots" || continue
                kill -9 "${DAEMON[$n]}" 2>/dev/null; wait "${DAEMON[$n]}" 2>/dev/null || true
                printf 'ID=cairn\nVERSION_ID=2.0.0\n' >"$T/h$n/usr/lib/os-release"
                start_daemon "$n" "$to" "$slot"
                DONE[$n.$from]=1
        done
}
count_done() { local c=0 n; for n in $HOSTS; do [ -n "${DONE[$n.$1]:-}" ] && c=$((c + 1)); done; echo $c; }
phase_of() { sed -n 's/^LOCK_PHASE=//p' "$T/h$1/var/lib/cairn/state"; }
all_released() { local n; for n in $HOSTS; do [ "$(phase_of "$n")" = none ] || return 1; done; [ -z "$(etcd_holders "$N3")" ]; }

for n in $HOSTS; do start_daemon "$n" boot-1 A; done
killed=
for _ in $(seq 900); do
        play_reboots boot-1 boot-2 B
        if [ -z "$killed" ] && [ "$(count_done boot-1)" -ge 2 ]; then
                etcd_stop n1 # every agent's first endpoint
                killed=$(count_done boot-1)
        fi
        [ "$(count_done boot-1)" = 5 ] && all_released 2>/dev/null && break
        sleep 0.1
done
[ "$(count_done boot-1)" = 5 ] || fail "only $(count_done boot-1) of 5 hosts rebooted: $(cat "$T/reboots" | tr '\n' ' '); notes: $(grep -h '^LOCK_NOTE' "$T"/h*/var/lib/cairn/state | tr '\n' ' ')"
all_released || fail "not all released: phases $(for n in $HOSTS; do printf '%s ' "$(phase_of $n)"; done); holders $(etcd_holders "$N3" | tr '\n' ' ')"
[ "$(wc -l <"$T/reboots")" = 5 ] || fail "reboot commands: $(cat "$T/reboots" | tr '\n' ' ') (want each host once)"
for n in $HOSTS; do
        "$B/cairn-bootcfg" --disk "$T/h$n.img" --state-dir "$T/h$n/var/lib/cairn/bootcfg" status --json |
                json_get '(d["next"], d["slots"]["B"]["successful"])' | grep -qx "('B', True)" || fail "host $n: B not marked good"
done
check_watch() { # max [file] → "events peak"
        python3 - "${2:-$T/watch.json}" "$1" <<'PY'
import base64, json, sys
maxh, events, peak = int(sys.argv[2]), 0, 0
dec = json.JSONDecoder(); buf = open(sys.argv[1]).read(); i = 0
while i < len(buf):
    while i < len(buf) and buf[i].isspace(): i += 1
    if i >= len(buf): break
    try: obj, i = dec.raw_decode(buf, i)
    except ValueError: break  # a partial last record (the watch is still running)
    for ev in obj.get("Events") or []:
        v = json.loads(base64.b64decode(ev["kv"]["value"]))
        h = v["holders"] or []
        assert len(h) <= v["max"] == maxh, ("too many holders", ev["kv"]["mod_revision"], v)
        assert v["semaphore"] == v["max"] - len(h) and len(set(h)) == len(h), v
        peak = max(peak, len(h)); events += 1
print(events, peak)
PY
}
read -r events peak < <(check_watch 2) || fail "watch check failed"
[ "$events" -ge 10 ] && [ "$peak" = 2 ] || fail "watch: $events writes, peak $peak holders (want >= 10 writes and 2 at once)"
ok "5 agents, max 2, 3 nodes: each rebooted once, released after its health gate; $events revisions, never more than $peak holders; n1 killed after $killed reboots"

# ---- no quorum: nobody reboots, every host says so; a node returns → all reboot ----
# The watch does not survive the quorum loss: a second one replays every revision from here on.
rev=$(etcdctl --endpoints "$N3" get $ETCD_KEY -w json | json_get 'd["header"]["revision"]')
etcd_stop n2
REQ=()
for n in $HOSTS; do
        "$B/cairnctl" --socket "$T/h$n.sock" reboot >"$T/req-$n.txt" 2>&1 & REQ+=($!)
done
for p in "${REQ[@]}"; do wait "$p" || true; done
sleep 3
[ "$(wc -l <"$T/reboots")" = 5 ] || fail "a host rebooted without quorum: $(tail -n +6 "$T/reboots" | tr '\n' ' ')"
for n in $HOSTS; do
        "$B/cairnctl" --root "$T/h$n" --state-dir "$T/h$n/var/lib/cairn" --socket /nonexistent status --json |
                json_get 'd["reboot"]["reason"]' >"$T/why-$n.txt"
        grep -Eq "no reboot: cannot (take|release) the reboot lock: no etcd endpoint answered.*127.0.0.1:$c3.*(no leader|no quorum|unavailable|timed out)" "$T/why-$n.txt" ||
                fail "host $n does not say why it does not reboot: $(cat "$T/why-$n.txt"; cat "$T/req-$n.txt")"
done
echo "  host 1: $(cat "$T/why-1.txt")"
etcd_start n2 "$c2" "$p2" "$CL" c64
etcd_healthy "$N2,$N3" || fail "n2 did not come back"
etcdctl --endpoints "$N3" watch --rev=$((rev + 1)) --prefix coreos.com/updateengine/rebootlock/ -w json \
        >"$T/watch2.json" 2>"$T/watch2.log" &
OTHER+=($!)
for _ in $(seq 1200); do
        play_reboots boot-2 boot-3 B
        [ "$(count_done boot-2)" = 5 ] && all_released 2>/dev/null && break
        sleep 0.1
done
[ "$(count_done boot-2)" = 5 ] || fail "after quorum returned only $(count_done boot-2) of 5 rebooted: $(grep -h '^LOCK_NOTE' "$T"/h*/var/lib/cairn/state | tr '\n' ' ')"
all_released || fail "after the second round not all released: $(etcd_holders "$N3" | tr '\n' ' ')"
for n in $HOSTS; do
        grep -q '^REBOOT_REQUESTED=0$' "$T/h$n/var/lib/cairn/state" || fail "host $n still has a reboot request"
done
sleep 0.5
read -r events2 peak2 < <(check_watch 2 "$T/watch2.json") || fail "watch check failed (second round)"
[ "$events2" -ge 10 ] || fail "second round: only $events2 writes"
ok "no quorum: cairnctl reboot on 5 hosts rebooted none, each status says why; n2 back → all 5 rebooted and released ($events2 revisions, peak $peak2)"
echo PASS
