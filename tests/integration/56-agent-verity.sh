#!/usr/bin/env bash
# tests/integration/56-agent-verity.sh — the agent and dm-verity (docs/verity.md), on the agent tests' fixture with
# sealed slot images (ext4 + hash tree + root-hash block, scripts/verity-seal.sh):
#  - a release whose signed root hash is not the one of its image: written, then refused by the read-back check
#    (B not made next, A untouched);
#  - a release whose hash area would end past the image: refused before anything is written to B;
#  - a good release: B holds the image, its tree verifies with veritysetup against the signed root, cairnctl
#    status shows that root as staged, cairn-bootcfg status shows B's version and root;
#  - cairn-release refuses a root hash of the wrong length and a layout without root or past the image end.
source "$(dirname "$0")/../lib/agent-fixture.sh"
command -v veritysetup >/dev/null || { echo "skip: veritysetup (cryptsetup-bin) not installed"; exit 77; }

sealed_image() { # TREE VERSION OUT: a slot-sized sealed image of TREE with os-release VERSION
        local tree=$1 fs
        usr_os_release "$tree" "$2"
        mkdir -p "$tree/lib/cairn"
        fs=$(scripts/verity-seal.sh plan $((SLOT_MB * 1048576)) "$tree/lib/cairn/verity.env")
        "$B/cairn-mkimage" -o "$3" --size "$fs" --seed cairn-usr --label USR "$tree" >/dev/null
        truncate -s ${SLOT_MB}M "$3"
        scripts/verity-seal.sh seal "$3" "seed-$2" >/dev/null
}
fx_tree "$T/tree1" 1
fx_tree "$T/tree2" 2
sealed_image "$T/tree1" 1.0.0 "$T/v1.img"
sealed_image "$T/tree2" 2.0.0 "$T/v2.img"
fx_disk
"$B/cairn-keygen" -o "$T/release" >/dev/null
ci/release.sh 1.0.0 --image "$T/v1.img" --key "$T/release.key" --reldir "$T/rel" --channel stable >/dev/null
fx_server
fx_root
# The boot selection (not the slots' content, which a refused apply may have written).
selection() { bc_status | python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["next"], [(k, v["priority"], v["tries"], v["successful"]) for k, v in sorted(d["slots"].items())])'; }
root_of() { # IMAGE: usrhash= of its root-hash block
        local s
        s=$(debugfs -R 'cat /lib/cairn/verity.env' "$1" 2>/dev/null | sed -n 's/^usrhash_sector=//p')
        dd if="$1" bs=512 skip="$s" count=2 status=none | tr -d '\0' | sed -n 's/^usrhash=//p'
}
R1=$(root_of "$T/v1.img")
# ci/release.sh through a wrapper that can change what it signs (the release manager's tool gone wrong)
cat >"$T/release-wrap" <<EOF
#!/usr/bin/env bash
args=()
while [ \$# -gt 0 ]; do
        case \$1 in
        --verity-root-hash) args+=("\$1" "\${BAD_ROOT:-\$2}"); shift 2 ;;
        --verity-hash-offset) args+=("\$1" "\${BAD_OFFSET:-\$2}"); shift 2 ;;
        *) args+=("\$1"); shift ;;
        esac
done
exec "$B/cairn-release" "\${args[@]}"
EOF
chmod +x "$T/release-wrap"
publish() { # VERSION IMAGE [VAR=VALUE...]: release into alpha
        local v=$1 img=$2
        shift 2
        env "$@" CAIRN_RELEASE_TOOL="$T/release-wrap" ci/release.sh "$v" --image "$img" --key "$T/release.key" \
                --reldir "$T/rel" >/dev/null 2>"$T/release.err" || fail "release $v: $(cat "$T/release.err")"
}
inspect() { "$B/cairn-release" inspect --json "$T/rel/payloads/$1/cairn-$1-amd64.cairn"; }

# 1. Signed root hash that is not the image's (v1's root on v2's image).
publish 2.0.0 "$T/v2.img" BAD_ROOT="$R1"
[ "$(inspect 2.0.0 | json_get 'd["verity_root_hash"]')" = "$R1" ] || fail "the wrapper did not sign the wrong root"
SNAP_A=$(slot_sum A) SEL=$(selection)
agent_once --no-delta && fail "the agent accepted a slot whose tree is not the signed root's"
grep -q "the written slot's dm-verity root hash $(root_of "$T/v2.img") is not the manifest's" "$T/agent.log" ||
        fail "no clear refusal in the agent log: $(tail -n 3 "$T/agent.log")"
[ "$(slot_sum A)" = "$SNAP_A" ] && [ "$(selection)" = "$SEL" ] || fail "wrong root: A or the boot selection changed"
[ "$(bc_status | json_get 'd["next"]')" = A ] || fail "B was made next after the refusal"
ok "a slot whose dm-verity root is not the signed one is refused after writing (A boots next)"

# 2. Hash area past the end of the image (the offset is inside it, so the manifest parses).
usr_image_retag "$T/v2.img" "$T/v3.img" 3.0.0
scripts/verity-seal.sh seal "$T/v3.img" seed-3 >/dev/null
dd if=/dev/urandom of="$T/noise" bs=1M count=1 status=none
python3 - "$T/disk.img" $((B_START * 512)) "$T/noise" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(open(sys.argv[3], "rb").read())
PY
B_BEFORE=$(slot_sum B)
BAD=$((SLOT_MB * 1048576 - 4096))
publish 3.0.0 "$T/v3.img" BAD_OFFSET=$BAD
agent_once --no-delta && fail "the agent accepted a hash area past the image end"
grep -q "dm-verity hash area (from byte $BAD) ends past the image" "$T/agent.log" ||
        fail "no clear refusal of the hash offset: $(tail -n 3 "$T/agent.log")"
[ "$(slot_sum B)" = "$B_BEFORE" ] || fail "slot B was written although the layout was refused"
[ "$(slot_sum A)" = "$SNAP_A" ] && [ "$(selection)" = "$SEL" ] || fail "hash area: A or the boot selection changed"
ok "a hash area that ends past the image is refused before B is written"

# 3. A good release.
usr_image_retag "$T/v2.img" "$T/v4.img" 4.0.0
R4=$(scripts/verity-seal.sh seal "$T/v4.img" seed-4)
publish 4.0.0 "$T/v4.img"
[ "$(inspect 4.0.0 | json_get 'd["verity_root_hash"]')" = "$R4" ] || fail "4.0.0 does not sign the image's root"
agent_once --no-delta || fail "a good sealed release was refused: $(tail -n 3 "$T/agent.log")"
[ "$(state_get STATE)" = UPDATED_NEED_REBOOT ] || fail "state after the update: $(state_get STATE)"
[ "$(state_get STAGED_VERITY_ROOT)" = "$R4" ] || fail "state file: STAGED_VERITY_ROOT=$(state_get STAGED_VERITY_ROOT)"
st=$("$B/cairnctl" --root "$R" status --json) || fail "cairnctl status: $st"
[ "$(echo "$st" | json_get 'd["staged_verity_root"]')" = "$R4" ] || fail "cairnctl status: $st"
# the oracle: veritysetup checks the tree the agent wrote into B against the signed root
python3 - "$T/disk.img" $((B_START * 512)) $((SLOT_MB * 1048576)) "$T/b.img" <<'PY'
import sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); open(sys.argv[4], "wb").write(f.read(int(sys.argv[3])))
PY
off=$(inspect 4.0.0 | json_get 'd["verity_hash_offset"]')
veritysetup verify "$T/b.img" "$T/b.img" "$R4" --hash-offset "$off" || fail "veritysetup: B's tree does not verify"
bc=$(bc_status)
[ "$(echo "$bc" | json_get 'd["slots"]["B"]["verity_root"]')" = "$R4" ] &&
        [ "$(echo "$bc" | json_get 'd["slots"]["B"]["version"]')" = 4.0.0 ] &&
        [ "$(echo "$bc" | json_get 'd["slots"]["A"]["verity_root"]')" = "$R1" ] &&
        [ "$(echo "$bc" | json_get 'd["slots"]["A"]["version"]')" = 1.0.0 ] || fail "cairn-bootcfg status: $bc"
ok "good release: B verified by veritysetup against the signed root; cairnctl and cairn-bootcfg show it"

# 4. cairn-release refusals: one line, non-zero exit, nothing written.
bad_release() { # PATTERN ARGS...
        local pat=$1 rc=0
        shift
        "$B/cairn-release" create --image "$T/v4.img" --version 9.0.0 --board amd64 --key "$T/release.key" \
                -o "$T/bad.cairn" "$@" 2>"$T/err" >/dev/null || rc=$?
        [ $rc != 0 ] || fail "cairn-release $*: accepted"
        [ "$(grep -vc '^usage\|^  ' "$T/err")" = 1 ] && grep -q -- "$pat" "$T/err" || fail "cairn-release $*: $(cat "$T/err")"
        [ ! -e "$T/bad.cairn" ] || fail "cairn-release $*: left $T/bad.cairn behind"
}
bad_release "needs 64 hex digits" --verity-root-hash "${R4:0:63}" --verity-hash-offset "$off" --verity-salt -
bad_release "needs 64 hex digits" --verity-root-hash "${R4}00" --verity-hash-offset "$off" --verity-salt -
bad_release "go together" --verity-hash-offset "$off" --verity-salt -
bad_release "go together" --verity-root-hash "$R4" --verity-hash-offset "$off"
bad_release "multiple of 4096" --verity-root-hash "$R4" --verity-hash-offset $((off + 512)) --verity-salt -
bad_release "past the end" --verity-root-hash "$R4" --verity-hash-offset $((SLOT_MB * 1048576)) --verity-salt -
bad_release "verity-salt" --verity-root-hash "$R4" --verity-hash-offset "$off" --verity-salt abc
ok "cairn-release refuses bad verity arguments"
echo PASS
