#!/usr/bin/env bash
# ci/release.sh — make the signed payload of a release into a release directory and put it into channel alpha.
# Usage: ci/release.sh VERSION [--image USR.img] [--key KEY.key]... [--revoke KEYID]... [--board BOARD] [--reldir DIR]
#                       [--channel NAME]
#   --image   the USR slot image (default: $CAIRN_USR_IMAGE; without either, the image of VERSION is built
#             with scripts/build-image.sh and the board comes from the recipe's image.conf)
#   --key     signing key(s) made by cairn-keygen (default: $CAIRN_RELEASE_KEY, else this checkout's
#             development key build/keys/dev.key, the key `make image` builds into the image); KEY.pub beside
#             it, if present, is used to verify the payload before publishing. A warning says when no key
#             signing the release is among the keys the image trusts (its /usr/share/cairn/keys).
#   --revoke  a key id (16 hex digits, as cairn-keygen prints it) this release revokes: hosts that accept the
#             release stop trusting that key at once (key rotation: sign with the new key too)
#   --board   default: the image's own CAIRN_BOARD (its /usr/lib/os-release); a different --board is refused.
#             The image's VERSION_ID must be VERSION: a host would otherwise be offered the release again after
#             every reboot.
#   --reldir  default $CAIRN_RELDIR or out/releases
#   --channel default alpha ("" to publish without touching any channel)
#   --deltas N  also make delta payloads from the last N releases of the channel (default $CAIRN_DELTAS, else 2;
#             0: none): the channel's history (RELDIR/history/CHANNEL, written by ci/promote.sh), or, before the
#             channel has one, the newest published versions older than VERSION. A delta needs the older
#             payload to verify with the public keys beside the signing keys.
#   --delta-window N, --delta-level N  passed to `cairn-release delta` (--window, --level)
# Writes RELDIR/payloads/VERSION/cairn-VERSION-BOARD.cairn (+ .sha256) atomically, and its deltas as
# RELDIR/payloads/VERSION/deltas/cairn-VERSION-BOARD-from-OLD.cairn (+ .sha256), all before the channel is moved;
# a published payload is never replaced.
set -euo pipefail
die() { echo "release: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || die "usage: ci/release.sh VERSION [--image USR.img] [--key KEY.key] [--board B] [--reldir DIR]"
VERSION=$1; shift
IMAGE=${CAIRN_USR_IMAGE:-} KEYS=() BOARD= RELDIR=${CAIRN_RELDIR:-out/releases} CHANNEL=alpha
[ -n "${CAIRN_RELEASE_KEY:-}" ] && KEYS=("$CAIRN_RELEASE_KEY")
keys_given=0 board_given=0 REVOKE=() DELTAS=${CAIRN_DELTAS:-2} DELTA_OPTS=()
while [ $# -gt 0 ]; do
        case $1 in
        --image) IMAGE=$2; shift 2 ;;
        --key) [ $keys_given = 1 ] || KEYS=(); keys_given=1; KEYS+=("$2"); shift 2 ;;
        --revoke) [[ $2 =~ ^[0-9a-f]{16}$ ]] || die "--revoke '$2' is not a 16-digit key id"; REVOKE+=(--revoke "$2"); shift 2 ;;
        --board) BOARD=$2; board_given=1; shift 2 ;;
        --reldir) RELDIR=$2; shift 2 ;;
        --channel) CHANNEL=$2; shift 2 ;;
        --deltas) DELTAS=$2; shift 2 ;;
        --delta-window) DELTA_OPTS+=(--window "$2"); shift 2 ;;
        --delta-level) DELTA_OPTS+=(--level "$2"); shift 2 ;;
        *) die "unknown option '$1'" ;;
        esac
done
[[ $VERSION =~ ^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$ ]] || die "version '$VERSION' is not dotted numeric (e.g. 1.2.3)"
[[ $DELTAS =~ ^[0-9]{1,2}$ ]] || die "--deltas '$DELTAS' must be a number 0..99"
[ $board_given = 0 ] || [[ $BOARD =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] || die "board '$BOARD' must be 1-64 of [A-Za-z0-9._-]"
if [ -z "$IMAGE" ]; then
        # Build the release's /usr image (reproducible: same commit, same bytes) in a work directory of this run's
        # own, so two releases built at once from one checkout do not remove each other's files; the image is
        # renamed into build/release/VERSION/ whole.
        mkdir -p "$ROOT/build/release/$VERSION"
        work=$(mktemp -d "$ROOT/build/release/.work.XXXXXX") || die "cannot make a work directory in build/release"
        rc=0
        CAIRN_VERSION=$VERSION CAIRN_USR_ONLY=1 CAIRN_OUT=$ROOT/build/release/$VERSION \
                CAIRN_WORK=$work "$ROOT/scripts/build-image.sh" >&2 || rc=$?
        rm -rf "$work"
        [ $rc = 0 ] || die "image build failed"
        IMAGE=$ROOT/build/release/$VERSION/usr.img
fi
[ -f "$IMAGE" ] || die "USR image '$IMAGE' not found (build it with 'make image' or pass --image)"

# The image is the one source of truth for its board and version (its /usr/lib/os-release, read with debugfs
# without mounting): the agent on a host reports exactly these, and the server offers by them.
command -v debugfs >/dev/null || die "debugfs (e2fsprogs) is needed to read the image's os-release"
osr=$(debugfs -R 'cat /lib/os-release' "$IMAGE" 2>/dev/null) || true
[ -n "$osr" ] || die "'$IMAGE' has no readable /usr/lib/os-release (is it a Cairn /usr image?)"
osr_get() { # KEY: its value in os-release, quotes removed (the os-release(5) grammar)
        printf '%s\n' "$osr" | sed -n "s/^$1=//p" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}
img_board=$(osr_get CAIRN_BOARD) img_version=$(osr_get VERSION_ID)
[ -n "$img_board" ] || die "'$IMAGE': os-release has no CAIRN_BOARD"
[ -n "$img_version" ] || die "'$IMAGE': os-release has no VERSION_ID"
if [ $board_given = 1 ] && [ "$BOARD" != "$img_board" ]; then
        die "--board '$BOARD' disagrees with the image, which says CAIRN_BOARD=$img_board (hosts report the image's)"
fi
BOARD=$img_board
[[ $BOARD =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] || die "the image's board '$BOARD' must be 1-64 of [A-Za-z0-9._-]"
[ "$img_version" = "$VERSION" ] ||
        die "'$IMAGE' says VERSION_ID=$img_version, not $VERSION: a host running it would be offered $VERSION again after every reboot (build the image with CAIRN_VERSION=$VERSION)"

if [ ${#KEYS[@]} -eq 0 ] && [ -f "$ROOT/build/keys/dev.key" ]; then
        echo "release: signing with the development key $ROOT/build/keys/dev.key (--key or CAIRN_RELEASE_KEY for a real release)" >&2
        KEYS=("$ROOT/build/keys/dev.key")
fi
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
# dm-verity (docs/verity.md): a sealed image names its root-hash block in /lib/cairn/verity.env; the root hash,
# hash offset and salt from that block go into the signed manifest, once cairn-veritytree has checked that the
# tree in the image is the tree of its file system and has that root.
verity=()
venv=$(debugfs -R 'cat /lib/cairn/verity.env' "$IMAGE" 2>/dev/null) || true
if [ -n "$venv" ]; then
        sector=$(sed -n 's/^usrhash_sector=//p' <<<"$venv")
        [[ $sector =~ ^[0-9]+$ ]] || die "'$IMAGE': /lib/cairn/verity.env names no usrhash_sector"
        blk=$(dd if="$IMAGE" bs=512 skip="$sector" count=2 status=none | tr -d '\0')
        vget() { sed -n "s/^$1=//p" <<<"$blk" | head -n 1; }
        vroot=$(vget usrhash) voff=$(vget verity_offset) vsalt=$(vget verity_salt)
        [[ $vroot =~ ^[0-9a-f]{64}$ && $voff =~ ^[0-9]+$ && $vsalt =~ ^[0-9a-f]*$ ]] ||
                die "'$IMAGE' is not sealed: no valid root-hash block at sector $sector (run scripts/verity-seal.sh seal)"
        "${CAIRN_BIN:-$ROOT/build/bin}/cairn-veritytree" verify "$IMAGE" "$IMAGE" "$vroot" --hash-offset "$voff" \
                --salt "${vsalt:--}" >/dev/null || die "'$IMAGE': its dm-verity tree does not match (see above); reseal it"
        verity=(--verity-root-hash "$vroot" --verity-hash-offset "$voff" --verity-salt "${vsalt:--}")
fi
"$RELEASE" create --image "$IMAGE" --version "$VERSION" --board "$BOARD" "${keyargs[@]}" ${REVOKE[@]+"${REVOKE[@]}"} ${verity[@]+"${verity[@]}"} -o "$tmp/$name" \
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

# Warn when the image itself would not accept its own release: none of the signing keys is among the keys
# in its /usr/share/cairn/keys (compared as public keys, derived from the private ones with openssl).
mkdir "$tmp/trusted"
while read -r f; do
        case $f in *.pub) debugfs -R "dump /share/cairn/keys/$f $tmp/trusted/$f" "$IMAGE" >/dev/null 2>&1 || true ;; esac
done < <(debugfs -R 'ls -p /share/cairn/keys' "$IMAGE" 2>/dev/null | awk -F/ 'NF > 5 && $6 != "." && $6 != ".." {print $6}' || true)
trusted=
for t in "$tmp/trusted"/*.pub; do
        [ -f "$t" ] || continue
        trusted+=$(openssl pkey -pubin -in "$t" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)$'\n'
done
signed_trusted=0
for k in "${KEYS[@]}"; do
        d=$(openssl pkey -in "$k" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
        grep -qx "$d" <<<"$trusted" && signed_trusted=1
done
if [ $signed_trusted = 0 ]; then
        echo "release: warning: no signing key (${KEYS[*]}) is trusted by '$IMAGE' ($(ls "$tmp/trusted" | tr '\n' ' ')in /usr/share/cairn/keys); hosts running this image will refuse the releases that follow it unless they are signed by one of those keys too (build the image with CAIRN_KEYS_DIR)" >&2
fi

# Deltas from the channel's last releases (or the newest older ones), made against their published payloads.
vsort() { sort -t. -k1,1n -k2,2n -k3,3n -k4,4n -k5,5n -k6,6n -k7,7n -k8,8n; }
older() { # VERSION → 0 if it is older than the release being made
        [ "$1" != "$VERSION" ] && [ "$(printf '%s\n%s\n' "$1" "$VERSION" | vsort | tail -n 1)" = "$VERSION" ]
}
froms=()
if [ "$DELTAS" -gt 0 ]; then
        hist=$RELDIR/history/$CHANNEL
        cands=()
        if [ -n "$CHANNEL" ] && [ -s "$hist" ]; then
                mapfile -t cands < <(tac "$hist" | awk '!seen[$0]++')
        else
                mapfile -t cands < <(ls "$RELDIR/payloads" 2>/dev/null | grep -E '^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$' | vsort -r)
        fi
        for v in "${cands[@]}"; do
                [ ${#froms[@]} -lt "$DELTAS" ] || break
                older "$v" || continue
                [ -f "$RELDIR/payloads/$v/cairn-$v-$BOARD.cairn" ] || continue
                froms+=("$v")
        done
fi
if [ ${#froms[@]} -gt 0 ] && ! ls "$tmp/keys"/*.pub >/dev/null 2>&1; then
        echo "release: warning: no KEY.pub beside the signing keys: no delta payloads (the older payloads cannot be verified)" >&2
        froms=()
fi
mkdir "$tmp/deltas"
for v in "${froms[@]}"; do
        dname=cairn-$VERSION-$BOARD-from-$v.cairn
        if "$RELEASE" delta --from "$RELDIR/payloads/$v/cairn-$v-$BOARD.cairn" --to "$tmp/$name" --keys "$tmp/keys" \
                "${keyargs[@]}" ${DELTA_OPTS[@]+"${DELTA_OPTS[@]}"} -o "$tmp/deltas/$dname" >&2 &&
                "$RELEASE" verify --keys "$tmp/keys" --source "$RELDIR/payloads/$v/cairn-$v-$BOARD.cairn" \
                        "$tmp/deltas/$dname" >/dev/null; then
                (cd "$tmp/deltas" && sha256sum "$dname" >"$dname.sha256")
        else
                echo "release: warning: no delta from $v (see above); hosts on $v get the full payload" >&2
                rm -f "$tmp/deltas/$dname"
        fi
done
if ls "$tmp/deltas"/*.cairn >/dev/null 2>&1; then
        mkdir -p "$dir/deltas"
        for d in "$tmp/deltas"/*.cairn; do
                b=$(basename "$d")
                [ -e "$dir/deltas/$b" ] && { echo "release: '$dir/deltas/$b' is already published; kept" >&2; continue; }
                sync "$d" "$d.sha256" 2>/dev/null || true
                mv "$d.sha256" "$dir/deltas/$b.sha256"
                mv "$d" "$dir/deltas/$b"
                echo "release: published delta '$dir/deltas/$b' ($(stat -c %s "$dir/deltas/$b") bytes)"
        done
        sync "$dir/deltas" 2>/dev/null || true
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
