#!/usr/bin/env bash
# ci/promote.sh — point a channel of a release directory at an already published payload (no copy, no re-sign).
# Usage: ci/promote.sh VERSION CHANNEL [--reldir DIR] [--rollout PCT] [--force]
#   CHANNEL: alpha, beta, stable or any name of [A-Za-z0-9._-].
#   The channel file RELDIR/channels/CHANNEL keeps its other settings (ROLLOUT, PAUSED, MAX_PER_PERIOD,
#   PERIOD) and is replaced atomically. Moving a channel to an older version needs --force.
set -euo pipefail
die() { echo "promote: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: ci/promote.sh VERSION CHANNEL [--reldir DIR] [--rollout PCT] [--force]"
VERSION=$1 CHANNEL=$2; shift 2
RELDIR=${CAIRN_RELDIR:-out/releases} ROLLOUT= FORCE=0
while [ $# -gt 0 ]; do
        case $1 in
        --reldir) RELDIR=$2; shift 2 ;;
        --rollout) ROLLOUT=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        *) die "unknown option '$1'" ;;
        esac
done
[[ $VERSION =~ ^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$ ]] || die "version '$VERSION' is not dotted numeric (e.g. 1.2.3)"
[[ $CHANNEL =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] || die "channel name '$CHANNEL' must be 1-64 of [A-Za-z0-9._-]"
[ -z "$ROLLOUT" ] || [[ $ROLLOUT =~ ^([0-9]|[1-9][0-9]|100)$ ]] || die "--rollout must be 0..100"

dir=$RELDIR/payloads/$VERSION
ls "$dir"/cairn-"$VERSION"-*.cairn >/dev/null 2>&1 || die "no payload published for version $VERSION in '$dir' (run ci/release.sh first)"
# The very same file that was released: check it against the digest written at release time.
for p in "$dir"/cairn-"$VERSION"-*.cairn; do
        if [ -f "$p.sha256" ]; then
                want=$(cut -d' ' -f1 "$p.sha256")
                have=$(sha256sum "$p" | cut -d' ' -f1)
                [ "$want" = "$have" ] || die "payload '$p' does not match '$p.sha256': refusing to promote a changed file"
        fi
done
# Its delta payloads (payloads/VERSION/deltas/, made by ci/release.sh) stay where they are, served beside the full
# one; a changed one is refused like a changed full payload.
ndeltas=0
for p in "$dir"/deltas/cairn-"$VERSION"-*-from-*.cairn; do
        [ -f "$p" ] || continue
        if [ -f "$p.sha256" ]; then
                [ "$(cut -d' ' -f1 "$p.sha256")" = "$(sha256sum "$p" | cut -d' ' -f1)" ] ||
                        die "delta '$p' does not match '$p.sha256': refusing to promote a changed file"
        fi
        ndeltas=$((ndeltas + 1))
done

mkdir -p "$RELDIR/channels"
file=$RELDIR/channels/$CHANNEL
old_version= rollout=100 paused=0 max=0 period=3600 extra=
# The channel file in the KEY=VALUE grammar every Cairn program reads (common/kvfile.h): blanks around the line,
# the key and the value ignored, '#' comments, one pair of matching quotes around a value stripped. Keys this
# script does not own are kept as they were written.
if [ -f "$file" ]; then
        while IFS= read -r raw || [ -n "$raw" ]; do
                line=${raw%$'\r'}
                line=${line#"${line%%[![:blank:]]*}"}
                line=${line%"${line##*[![:blank:]]}"}
                case $line in ''|'#'*) continue ;; esac
                [[ $line == *=* ]] || die "channel file '$file': '$line' is not KEY=VALUE"
                key=${line%%=*} val=${line#*=}
                key=${key%"${key##*[![:blank:]]}"}
                val=${val#"${val%%[![:blank:]]*}"}
                [[ $key =~ ^[A-Za-z0-9_]{1,64}$ ]] || die "channel file '$file': '$line' is not KEY=VALUE (a key is 1-64 of A-Z a-z 0-9 _)"
                if [ ${#val} -ge 2 ] && { [[ $val == \"*\" ]] || [[ $val == \'*\' ]]; }; then
                        val=${val:1:${#val}-2}
                fi
                case $key in
                VERSION) old_version=$val ;;
                ROLLOUT) rollout=$val ;;
                PAUSED) paused=$val ;;
                MAX_PER_PERIOD) max=$val ;;
                PERIOD) period=$val ;;
                *) extra+=$raw$'\n' ;;
                esac
        done <"$file"
fi
if [ -n "$old_version" ] && [ $FORCE = 0 ]; then
        lower=$(printf '%s\n%s\n' "$old_version" "$VERSION" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n -k5,5n -k6,6n -k7,7n -k8,8n | head -n1)
        if [ "$lower" = "$VERSION" ] && [ "$old_version" != "$VERSION" ]; then
                die "channel '$CHANNEL' is at $old_version, newer than $VERSION (use --force to move it back; hosts never downgrade)"
        fi
fi
[ -n "$ROLLOUT" ] && rollout=$ROLLOUT

tmp=$(mktemp "$file.tmpXXXXXX")
trap 'rm -f "$tmp"' EXIT
{
        echo "# Cairn release channel '$CHANNEL' (see docs/server.md)"
        echo "VERSION=$VERSION"
        echo "ROLLOUT=$rollout"
        echo "PAUSED=$paused"
        echo "MAX_PER_PERIOD=$max"
        echo "PERIOD=$period"
        printf '%s' "$extra"
} >"$tmp"
chmod 0644 "$tmp"
sync "$tmp" 2>/dev/null || true
mv -f "$tmp" "$file"
trap - EXIT
# The channel's history, newest last: ci/release.sh makes the next release's deltas from its last entries.
mkdir -p "$RELDIR/history"
if [ "$(tail -n 1 "$RELDIR/history/$CHANNEL" 2>/dev/null)" != "$VERSION" ]; then
        echo "$VERSION" >>"$RELDIR/history/$CHANNEL"
fi
sync "$RELDIR/channels" 2>/dev/null || true
echo "promote: channel '$CHANNEL' -> $VERSION${old_version:+ (was $old_version)}$([ $ndeltas -gt 0 ] && echo ", $ndeltas delta payload(s) kept")"
