#!/usr/bin/env bash
# tests/integration/51-agent-nginx.sh — the payload served by a plain web server: cairn-server answers the update
# check with a codebase on a real nginx (--base-url) serving the same release directory, and cairn-updated does
# its delta update from nginx alone (manifest prefix and chunk runs by HTTP Range), exactly as from a CDN.
source "$(dirname "$0")/../lib/agent-fixture.sh"
. tests/lib/nginx.sh
fx_images; fx_disk; fx_release
rc=0; nginx_start "$T/rel" "$T" || rc=$?
[ $rc = 0 ] || { [ $rc = 77 ] && exit 77; fail "nginx did not start"; }
EXTRA_PIDS=$NGINX_PID
fx_server --base-url "$NGINX_URL/payloads/"
fx_root
P2_SIZE=$(stat -c %s "$P2")

snapshot
agent_once || fail "update through nginx failed: $(tail -n 3 "$T/agent.log")"
[ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] || fail "state after the update: $(state_get STATE)"
[ "$(slot_sum B "$(V2_SIZE)")" = "$(V2_SUM)" ] || fail "slot B does not hold v2"
[ "$(slot_sum A)" = "$SNAP_A" ] || fail "slot A changed during the update"
[ "$(bc_status | json_get 'd["next"]')" = B ] || fail "B is not next"
[ "$(server_payload_bytes)" = 0 ] || fail "payload bytes came from cairn-server, not nginx"

log=$T/nginx/access.log
awk '$2 ~ /^\/payloads\/2\.0\.0\// && $3 == 206 && $5 ~ /^"bytes=/' "$log" | grep -q . || fail "no Range requests at nginx: $(cat "$log")"
awk '$2 ~ /^\/payloads\// && $3 != 206' "$log" | grep -q . && fail "non-Range payload requests at nginx: $(cat "$log")"
sent=$(awk '$2 ~ /^\/payloads\// { s += $4 } END { print s + 0 }' "$log")
[ "$sent" -gt 0 ] && [ "$sent" -lt $((P2_SIZE / 4)) ] || fail "nginx sent $sent bytes of a $P2_SIZE-byte payload for a delta update"
ok "delta update from nginx: slot B = v2, A untouched, B next; $(grep -c ' 206 ' "$log") Range requests, $sent of $P2_SIZE payload bytes, none from cairn-server"
echo PASS
