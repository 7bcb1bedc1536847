#!/usr/bin/env bash
# tests/integration/50-agent-update.sh — cairn-updated against the real cairn-server: full update, delta update (bytes
# counted from the server's request log), events and the instance table, the post-boot health gate → mark-good,
# rollback detection (failed version never retried automatically), the daemon with cairnctl over its socket, and
# `cairnctl status` from the state file when the daemon is down.
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_all
P2_SIZE=$(stat -c %s "$P2")
instances() { curl -sf "$URL/api/v1/instances"; }
events() { curl -sf "$URL/api/v1/events?limit=100"; }

# ---- full update (no delta): every chunk fetched, slot verified, B boots next ----
snapshot
agent_once --no-delta || fail "full update failed: $(tail -n 3 "$T/agent.log")"
[ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] || fail "state after the update: $(state_get STATE)"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2"
[ "$(slot_sum A)" = "$SNAP_A" ] || fail "slot A changed during the update"
bc=$(bc_status)
[ "$(echo "$bc" | json_get 'd["next"]')" = B ] || fail "B is not next: $bc"
[ "$(echo "$bc" | json_get '(d["slots"]["B"]["priority"], d["slots"]["B"]["tries"], d["slots"]["B"]["successful"])')" = "(2, 1, False)" ] \
        || fail "B state after set-next: $bc"
full=$(server_payload_bytes)
[ "$full" -ge "$P2_SIZE" ] || fail "full update fetched $full bytes, payload is $P2_SIZE"
ok "full update: slot B = v2 (sha256), B next with tries=1, A untouched, $full of $P2_SIZE payload bytes fetched"
ev=$(events)
for t in 13 14 800; do
        echo "$ev" | python3 -c 'import json,sys; e=json.load(sys.stdin); t=int(sys.argv[1]); sys.exit(0 if any(x["type"]==t and x["result"]==1 for x in e) else 1)' $t \
                || fail "event $t/1 not recorded by the server: $ev"
done
ok "events 13/1, 14/1, 800/1 recorded by the server"

# A second run while the update is staged: nothing is fetched again.
before=$(server_payload_bytes)
agent_once || fail "second run with a staged update failed"
[ "$(server_payload_bytes)" = "$before" ] || fail "a staged update was downloaded again"
[ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] || fail "state after a rerun: $(state_get STATE)"
ok "staged update not fetched again"

# `cairnctl status` with the daemon down reads the state file.
"$B/cairnctl" --root "$R" status >"$T/st.txt" || fail "cairnctl status (offline)"
grep -q '^state: *UPDATED_NEED_REBOOT' "$T/st.txt" && grep -q 'not running' "$T/st.txt" || fail "offline status: $(cat "$T/st.txt")"
"$B/cairnctl" --root "$R" status --json | json_get 'd["state"], d["new_version"], d["daemon"]' >"$T/st.json"
[ "$(cat "$T/st.json")" = "('UPDATED_NEED_REBOOT', '2.0.0', False)" ] || fail "offline status --json: $(cat "$T/st.json")"
ok "cairnctl status from the state file: $(head -n1 "$T/st.txt")"

# ---- "reboot" into B: health gate passes → mark-good, event 3/2 with the previous version ----
printf 'ID=cairn\nVERSION_ID=2.0.0\n' >"$R/usr/lib/os-release"
mkdir -p "$R/etc/cairn/health.d" "$R/usr/lib/cairn/health.d"
printf '#!/bin/sh\ntouch "%s/health-ran"\n' "$T" >"$R/usr/lib/cairn/health.d/10-ran"
printf '#!/bin/sh\nexit 1\n' >"$R/usr/lib/cairn/health.d/20-broken"
printf '#!/bin/sh\nexit 0\n' >"$R/etc/cairn/health.d/20-broken" # /etc masks /usr/lib
chmod +x "$R"/usr/lib/cairn/health.d/* "$R"/etc/cairn/health.d/*
"$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted B --boot-id boot-2 >>"$T/agent.log" 2>&1 \
        || fail "post-boot run on B failed: $(tail -n 3 "$T/agent.log")"
[ -f "$T/health-ran" ] || fail "health check did not run"
bc=$(bc_status)
[ "$(echo "$bc" | json_get '(d["next"], d["slots"]["B"]["successful"], d["slots"]["B"]["tries"])')" = "('B', True, 0)" ] \
        || fail "B not marked good: $bc"
[ "$(state_get STATE)" = IDLE ] && [ -z "$(state_get STAGED_VERSION)" ] || fail "state after mark-good: $(state_get STATE)"
events | python3 -c 'import json,sys; e=json.load(sys.stdin); sys.exit(0 if any(x["type"]==3 and x["result"]==2 and x.get("previous_version")=="1.0.0" for x in e) else 1)' \
        || fail "event 3/2 previousversion=1.0.0 not recorded: $(events)"
instances | python3 -c 'import json,sys; i=[x for x in json.load(sys.stdin) if x["machine_id"]=="0123456789abcdef0123456789abcdef"]; sys.exit(0 if i and i[0]["version"]=="2.0.0" else 1)' \
        || fail "instance table does not show the machine on 2.0.0: $(instances)"
ok "booted B: health gate (masking /etc over /usr/lib) passed → B marked good, event 3/2 from 1.0.0, instance on 2.0.0"

# ---- a failing health gate does not mark good ----
cp "$T/disk.img" "$T/disk-good.img"
"$B/cairn-bootcfg" --disk "$T/disk.img" --state-dir "$T/bcs" --booted A --force set-next A >/dev/null # A unverified, forced
printf '#!/bin/sh\nexit 1\n' >"$R/etc/cairn/health.d/30-fail"; chmod +x "$R/etc/cairn/health.d/30-fail"
printf 'ID=cairn\nVERSION_ID=1.0.0\n' >"$R/usr/lib/os-release"
printf 'SERVER=http://127.0.0.1:1/v1/update/\n' >>"$R/etc/cairn/update.conf" # no update server for this run
"$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-3 >>"$T/agent.log" 2>&1 \
        && fail "run with a failing health check succeeded"
grep -q 'health check ".*30-fail" failed; slot A not marked good' "$T/agent.log" || fail "health failure not reported: $(tail -n 3 "$T/agent.log")"
[ "$(bc_status | json_get 'd["slots"]["A"]["successful"]')" = False ] || fail "A marked good despite a failing check"
ok "failing health check: slot not marked good, error names the script"
rm -f "$R/etc/cairn/health.d/30-fail"
cp "$T/disk-good.img" "$T/disk.img"
fx_root # fresh root and state (1.0.0 on A) for the next parts

# ---- delta update on a fresh disk: only the changed chunks are fetched ----
cp --sparse=always "$T/disk0.img" "$T/disk.img"
: >"$T/server.log.mark"; base=$(server_payload_bytes)
agent_once || fail "delta update failed: $(tail -n 3 "$T/agent.log")"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "delta: slot B does not hold v2"
delta=$(( $(server_payload_bytes) - base ))
pct=$((delta * 100 / P2_SIZE))
[ "$delta" -lt $((P2_SIZE / 5)) ] || fail "delta update fetched $delta of $P2_SIZE bytes ($pct%)"
[ "$(state_get BYTES_DOWNLOADED)" = "$delta" ] || fail "agent counted $(state_get BYTES_DOWNLOADED) bytes, server sent $delta"
ok "delta update: $delta of $P2_SIZE payload bytes fetched ($pct%; 2 changed 1 MiB chunks of a 20 MiB image), $(state_get BYTES_REUSED) bytes reused from slot A"

# ---- rollback: B never came up (GRUB fell back to A) → 2.0.0 reported failed, never retried automatically ----
"$B/cairn-updated" --once --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-4 >>"$T/agent.log" 2>&1 \
        || fail "run after the rollback failed: $(tail -n 3 "$T/agent.log")"
grep -q '^FAILED=2.0.0$' "$R/var/lib/cairn/state" || fail "2.0.0 not recorded as failed: $(cat "$R/var/lib/cairn/state")"
grep -q 'rolled back: version 2.0.0' "$R/var/lib/cairn/state" || fail "rollback not in last error"
events | python3 -c 'import json,sys; e=json.load(sys.stdin); sys.exit(0 if any(x["type"]==3 and x["result"]==0 and x["errorcode"]==44 and x.get("previous_version")=="2.0.0" for x in e) else 1)' \
        || fail "rollback event 3/0 errorcode 44 previousversion 2.0.0 not recorded: $(events | head -c 600)"
before=$(server_payload_bytes)
agent_once --boot-id boot-5 || fail "check after the rollback failed"
[ "$(server_payload_bytes)" = "$before" ] || fail "the failed version was downloaded again"
"$B/cairnctl" --root "$R" status | grep -q 'failed version:   2.0.0' || fail "status does not list the failed version"
ok "rollback detected: 2.0.0 reported (3/0 errorcode 44) and not retried"

# ---- the daemon: cairnctl over the socket; `update --force` installs the failed version on request ----
SOCK=$T/updated.sock
"$B/cairn-updated" --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-5 --socket "$SOCK" \
        --reboot-cmd "touch $T/rebooted" >>"$T/agent.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fail "daemon socket did not appear"
ctl() { "$B/cairnctl" --socket "$SOCK" --root "$R" "$@"; }
ctl status | grep -q '^daemon: *running' || fail "status through the socket: $(ctl status)"
[ "$(ctl status --json | json_get 'd["daemon"]')" = True ] || fail "status --json through the socket"
ctl check >"$T/check.txt" || fail "cairnctl check: $(cat "$T/check.txt")"
# 2.0.0 is offered, but it failed to boot here before: check says both, and update (without --force) skips it.
grep -qx 'update available: 2.0.0 (it failed to boot before: installed only by cairnctl update --force)' "$T/check.txt" ||
        fail "cairnctl check of an offered, previously failed version: $(cat "$T/check.txt")"
ctl update >"$T/upd.txt" || fail "cairnctl update"
grep -q 'no update' "$T/upd.txt" || fail "update of a failed version without --force: $(cat "$T/upd.txt")"
sed -i 's/^REBOOT_STRATEGY=off/REBOOT_STRATEGY=reboot/' "$R/etc/cairn/update.conf"
kill "$DPID"; wait "$DPID" || fail "daemon exit status on SIGTERM"; DPID=
[ -S "$SOCK" ] && fail "socket left behind after SIGTERM"
"$B/cairn-updated" --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-5 --socket "$SOCK" \
        --reboot-cmd "touch $T/rebooted" >>"$T/agent.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
ctl update --force >"$T/upd.txt" || fail "cairnctl update --force: $(cat "$T/upd.txt")"
grep -q 'updated to 2.0.0 (slot B)' "$T/upd.txt" || fail "update --force output: $(cat "$T/upd.txt")"
[ -f "$T/rebooted" ] || fail "REBOOT_STRATEGY=reboot did not run the reboot command"
[ "$(ctl status --json | json_get 'd["state"]')" = UPDATED_NEED_REBOOT ] || fail "daemon state after update"
ctl frobnicate 2>/dev/null && fail "unknown command accepted"
kill -0 "$DPID" || fail "daemon died"
kill "$DPID"; wait "$DPID" || true; DPID=
rc=0; "$B/cairnctl" --socket "$SOCK" check 2>"$T/err.txt" || rc=$?
[ $rc = 3 ] && grep -q 'not running' "$T/err.txt" || fail "cairnctl check with the daemon down: rc=$rc $(cat "$T/err.txt")"
ok "daemon: status/check/update over the socket, --force installs a failed version, reboot command run, clean SIGTERM"

# ---- a newer release replaces the staged one before the reboot ----
sed -i 's/^REBOOT_STRATEGY=reboot/REBOOT_STRATEGY=off/' "$R/etc/cairn/update.conf"
cp -a "$T/tree2" "$T/tree3"; echo "three" >>"$T/tree3/etc/app.conf"; usr_os_release "$T/tree3" 3.0.0
"$B/cairn-mkimage" -o "$T/v3.img" --size 20M --seed cairn-usr --label USR "$T/tree3" >/dev/null
ci/release.sh 3.0.0 --image "$T/v3.img" --key "$T/release.key" --reldir "$T/rel" >/dev/null
snapshot_a=$(slot_sum A)
agent_once --boot-id boot-5 || fail "replacing the staged release failed: $(tail -n 3 "$T/agent.log")"
[ "$(state_get STAGED_VERSION)" = 3.0.0 ] || fail "staged version after replacement: $(state_get STAGED_VERSION)"
[ "$(slot_sum B "$(stat -c %s "$T/v3.img")")" = "$(sha256sum "$T/v3.img" | cut -c1-64)" ] || fail "slot B does not hold v3"
[ "$(bc_status | json_get '(d["next"], d["slots"]["B"]["priority"], d["slots"]["B"]["tries"])')" = "('B', 2, 1)" ] \
        || fail "boot selection after replacing the staged release: $(bc_status)"
[ "$(slot_sum A)" = "$snapshot_a" ] || fail "slot A changed while replacing the staged release"
ok "3.0.0 replaced the staged 2.0.0 in slot B before the reboot (B out of the boot order while written, then next again)"

# ---- the check interval: CHECK_INTERVAL, or the channel's POLL_INTERVAL sent as Omaha PollInterval ----
printf 'FIRST_CHECK_DELAY=0\nHEALTH_DELAY=0\nCHECK_INTERVAL=1000\n' >>"$R/etc/cairn/update.conf"
next_check() { # → "SECONDS SUFFIX" of the daemon's first "next check in" line
        : >"$T/d.log"
        "$B/cairn-updated" --no-nice --root "$R" --disk "$T/disk.img" --booted A --boot-id boot-5 --socket "$SOCK" \
                >>"$T/d.log" 2>&1 &
        DPID=$!
        for _ in $(seq 200); do grep -q 'next check in' "$T/d.log" && break; sleep 0.05; done
        kill "$DPID"; wait "$DPID" || true; DPID=
        sed -n 's/.*next check in \([0-9]*\) s\(.*\)$/\1\2/p' "$T/d.log" | head -n1
}
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
got=$(next_check)
in_range "${got%% *}" 900 1100 && [ "$got" = "${got%% *}" ] || fail "without PollInterval: next check '$got' (want ~1000 s): $(cat "$T/d.log")"
echo "POLL_INTERVAL=7200" >>"$T/rel/channels/alpha"
curl -s -d '<request protocol="3.0"><app appid="{7d5b2c1e-4f3a-4e8b-9c6d-2a1f0e9b8c73}" version="9.0.0" track="alpha" machineid="0123456789abcdef0123456789abcdef" board="amd64"><updatecheck/></app></request>' \
        "$URL/v1/update/" | grep -o '<updatecheck[^>]*>' >"$T/uc.txt"
grep -q 'status="noupdate" PollInterval="7200"' "$T/uc.txt" || fail "server answer without PollInterval: $(cat "$T/uc.txt")"
got2=$(next_check)
in_range "${got2%% *}" 6480 7920 && [[ $got2 == *"PollInterval"* ]] || fail "with PollInterval=7200: next check '$got2': $(cat "$T/d.log")"
ok "next check after ${got% *} s from CHECK_INTERVAL=1000; after $got2 with the channel's POLL_INTERVAL=7200 ($(cat "$T/uc.txt"))"
echo PASS
