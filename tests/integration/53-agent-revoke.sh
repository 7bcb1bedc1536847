#!/usr/bin/env bash
# tests/integration/53-agent-revoke.sh — key revocation by a release takes effect on the host the moment the
# release is accepted, before any reboot: 2.0.0 is signed by both trusted keys and revokes the second ("other");
# the agent stages it and records the revocation; then a 3.0.0 signed only by "other" (still in the trusted key
# directory, which only the next /usr replaces) is refused, and the staged 2.0.0 stays as it was.
source "$(dirname "$0")/../lib/agent-fixture.sh"
fx_images; fx_disk
"$B/cairn-keygen" -o "$T/release" >/dev/null
other_id=$("$B/cairn-keygen" -o "$T/other")
ci/release.sh 1.0.0 --image "$T/v1.img" --key "$T/release.key" --reldir "$T/rel" --channel stable >/dev/null
ci/release.sh 2.0.0 --image "$T/v2.img" --key "$T/release.key" --key "$T/other.key" --revoke "$other_id" \
        --reldir "$T/rel" >/dev/null
"$B/cairn-release" inspect --json "$T/rel/payloads/2.0.0/cairn-2.0.0-amd64.cairn" | grep -q "$other_id" ||
        fail "2.0.0 does not name the revoked key"
fx_server
fx_root
cp "$T/other.pub" "$R/usr/share/cairn/keys/"

agent_once || fail "update to 2.0.0 failed: $(tail -n 3 "$T/agent.log")"
[ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] || fail "state after 2.0.0: $(state_get STATE)"
grep -qx "$other_id" "$R/var/lib/cairn/revoked-keys" || fail "the revocation was not recorded: $(cat "$R/var/lib/cairn/revoked-keys" 2>&1)"
snapshot
SNAP_B=$(slot_sum B)

# 3.0.0 signed only by the revoked key. On its own it verifies against the trusted directory (so the refusal
# below comes from the recorded revocation, not from the key set).
usr_image_retag "$T/v1.img" "$T/v3.img" 3.0.0 || fail "no v3 image"
ci/release.sh 3.0.0 --image "$T/v3.img" --key "$T/other.key" --reldir "$T/rel" >/dev/null
"$B/cairn-release" verify --keys "$R/usr/share/cairn/keys" "$T/rel/payloads/3.0.0/cairn-3.0.0-amd64.cairn" >/dev/null ||
        fail "3.0.0 does not verify against the trusted keys alone"
: >"$T/agent.log"
rc=0; agent_once || rc=$?
[ $rc = 1 ] || fail "3.0.0 signed by a revoked key: agent exit status $rc: $(cat "$T/agent.log")"
grep -q "refused: signed only by revoked keys" "$T/agent.log" || fail "no clear refusal: $(cat "$T/agent.log")"
untouched "revoked-key release"
[ "$(slot_sum B)" = "$SNAP_B" ] || fail "the staged 2.0.0 in slot B was touched"
[ "$(bc_status | json_get 'd["next"]')" = B ] || fail "the staged 2.0.0 is no longer next"
ok "2.0.0 revoked key $other_id on acceptance; 3.0.0 signed by it refused ($(grep -m1 refused "$T/agent.log")); staged 2.0.0 kept"

# A corrupt revocation list stops updates with a clear line instead of being ignored.
printf "\nnot-a-key-id\n" >>"$R/var/lib/cairn/revoked-keys"
: >"$T/agent.log"
rc=0; agent_once || rc=$?
[ $rc = 1 ] && grep -q "revoked key list .* line 3 is not a 16-digit key id" "$T/agent.log" ||
        fail "a corrupt revocation list was not reported: rc $rc: $(cat "$T/agent.log")"
untouched "corrupt revocation list"
ok "a corrupt revocation list is reported: $(grep -m1 'revoked key list' "$T/agent.log")"
echo PASS
