#!/usr/bin/env bash
# ci/release.sh — make the signed payload of a release into a release directory and put it into channel alpha.
# Usage: ci/release.sh VERSION [--image USR.img] [--key KEY.key]... [--revoke KEYID]... [--board BOARD] [--reldir DIR]
#                       [--channel NAME]
#   --image   the USR slot image (default: $CAIRN_USR_IMAGE; without either, the image of VERSION is built
#             with scripts/build-image.sh and the board comes from the recipe's image.conf)
#   --key     signing key(s) made by cairn-keygen (default: $CAIRN_RELEASE_KEY); KEY.pub beside it, if present,
#             is used to verify the payload before publishing
#   --revoke  a key id (16 hex digits, as cairn-keygen prints it) this release revokes: hosts that accept the
#             release stop trusting that key at once (key rotation: sign with the new key too)
#   --board   default amd64
#   --reldir  default $CAIRN_RELDIR or out/releases
#   --channel default alpha ("" to publish without touching any channel)
# Writes RELDIR/payloads/VERSION/cairn-VERSION-BOARD.cairn (+ .sha256) atomically; a published payload is
# never replaced.
set -euo pipefail
die() { echo "release: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || die "usage: ci/release.sh VERSION [--image USR.img] [--key KEY.key] [--board B] [--reldir DIR]"
VERSION=$1; shift
IMAGE=${CAIRN_USR_IMAGE:-} KEYS=() BOARD=amd64 RELDIR=${CAIRN_RELDIR:-out/releases} CHANNEL=alpha
[ -n "${CAIRN_RELEASE_KEY:-}" ] && KEYS=("$CAIRN_RELEASE_KEY")
keys_given=0 board_given=0 REVOKE=()
while [ $# -gt 0 ]; do
        case $1 in
        --image) IMAGE=$2; shift 2 ;;
        --key) [ $keys_given = 1 ] || KEYS=(); keys_given=1; KEYS+=("$2"); shift 2 ;;
        --revoke) [[ $2 =~ ^[0-9a-f]{16}$ ]] || die "--revoke '$2' is not a 16-digit key id"; REVOKE+=(--revoke "$2"); shift 2 ;;
        --board) BOARD=$2; board_given=1; shift 2 ;;
        --reldir) RELDIR=$2; shift 2 ;;
        --channel) CHANNEL=$2; shift 2 ;;
        *) die "unknown option '$1'" ;;
        esac
done
[[ $VERSION =~ ^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$ ]] || die "version '$VERSION' is not dotted numeric (e.g. 1.2.3)"
[[ $BOARD =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] || die "board '$BOARD' must be 1-64 of [A-Za-z0-9._-]"
if [ -z "$IMAGE" ]; then
        # Build the release's /usr image (reproducible: same commit, same bytes).
        CAIRN_VERSION=$VERSION CAIRN_USR_ONLY=1 CAIRN_OUT=$ROOT/build/release/$VERSION \
                CAIRN_WORK=$ROOT/build/release/work "$ROOT/scripts/build-image.sh" >&2 || die "image build failed"
        IMAGE=$ROOT/build/release/$VERSION/usr.img
        [ $board_given = 1 ] || BOARD=$(. "${CAIRN_RECIPE:-$ROOT/image/recipes/default}/image.conf" && echo "$BOARD")
fi
[ -f "$IMAGE" ] || die "USR image '$IMAGE' not found (build it with 'make image' or pass --image)"
[ ${#KEYS[@]} -gt 0 ] || die "no signing key: pass --key KEY.key or set CAIRN_RELEASE_KEY (make one with cairn-keygen)"
RELEASE=${CAIRN_RELEASE_TOOL:-$ROOT/build/bin/cairn-release}
[ -x "$RELEASE" ] || die "'$RELEASE' not built (run make)"

dir=$RELDIR/payloads/$VERSION
name=cairn-$VERSION-$BOARD.cairn
out=$dir/$name
[ -e "$out" ] && die "'$out' is already published; a release is never replaced (pick a new version)"
mkdir -p "$dir"

tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
keyargs=()
for k in "${KEYS[@]}"; do
        [ -f "$k" ] || die "key '$k' not found"
        keyargs+=(--key "$k")
done
"$RELEASE" create --image "$IMAGE" --version "$VERSION" --board "$BOARD" "${keyargs[@]}" ${REVOKE[@]+"${REVOKE[@]}"} -o "$tmp/$name" \
        || die "cairn-release create failed for '$IMAGE'"

# Verify against the public keys beside the private ones before anything is published.
mkdir "$tmp/keys"
for k in "${KEYS[@]}"; do
        pub=${k%.key}.pub
        [ -f "$pub" ] && cp "$pub" "$tmp/keys/"
done
if ls "$tmp/keys"/*.pub >/dev/null 2>&1; then
        "$RELEASE" verify --keys "$tmp/keys" "$tmp/$name" >/dev/null || die "fresh payload '$name' does not verify"
fi

(cd "$tmp" && sha256sum "$name" >"$name.sha256")
sync "$tmp/$name" "$tmp/$name.sha256" 2>/dev/null || true
mv "$tmp/$name.sha256" "$out.sha256"
mv "$tmp/$name" "$out"
sync "$dir" 2>/dev/null || true
echo "release: published '$out' ($(stat -c %s "$out") bytes, sha256 $(cut -d' ' -f1 "$out.sha256"))"

if [ -n "$CHANNEL" ]; then
        "$ROOT/ci/promote.sh" "$VERSION" "$CHANNEL" --reldir "$RELDIR"
fi
