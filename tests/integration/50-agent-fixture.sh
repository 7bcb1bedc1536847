#!/usr/bin/env bash
# tests/integration/50-agent-fixture.sh — the agent fixture (tests/lib/agent-fixture.sh) checked on its own: v1 and
# v2 differ in a few MiB blocks, the disk boots A holding v1, the server serves the 2.0.0 payload.
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_all
cmp -s "$T/v1.img" "$T/v2.img" && fail "v1 and v2 images are identical"
diff=$( (cmp -l "$T/v1.img" "$T/v2.img" || true) | awk '{ b = int(($1 - 1) / 1048576); if (!(b in s)) { s[b] = 1; n++ } } END { print n + 0 }')
[ "$diff" -ge 2 ] && [ "$diff" -le 4 ] || fail "v2 differs from v1 in $diff MiB blocks (want 2-4)"
[ "$(slot_sum A "$(stat -c %s "$T/v1.img")")" = "$(sha256sum "$T/v1.img" | cut -c1-64)" ] || fail "USR-A does not hold v1"
[ "$(bc_status | json_get 'd["next"]')" = A ] || fail "fixture disk does not boot A"
curl -sf -o /dev/null "$URL/payloads/2.0.0/cairn-2.0.0-amd64.cairn" || fail "server does not serve the v2 payload"
ok "fixture: v1/v2 differ in $diff MiB blocks, disk boots A with v1, server serves 2.0.0"
echo PASS
