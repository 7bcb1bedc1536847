#!/usr/bin/env bash
# scripts/fetch-debs.sh PACKAGES-FILE — make sure every package of a recipe is in the .deb cache
# (CAIRN_DEBS, default ~/.cache/cairn/debs); download only what is missing, so a rebuild needs no registry.
# Prints "NAME-GLOB<TAB>path" for each line, the newest cached version.
set -euo pipefail
list=$1
cache=${CAIRN_DEBS:-$HOME/.cache/cairn/debs}
mkdir -p "$cache"
newest() { ls -1 "$cache"/$1 2>/dev/null | sort -V | tail -n 1; }
while read -r glob pkg how; do
        case $glob in ''|'#'*) continue ;; esac
        f=$(newest "$glob")
        if [ -z "$f" ]; then
                target=$pkg
                if [ "$how" = depends ]; then
                        target=$(apt-cache depends "$pkg" 2>/dev/null | awk '/^ *Depends:/{print $2; exit}')
                        [ -n "$target" ] || { echo "fetch-debs: cannot resolve '$pkg' (run apt-get update?)" >&2; exit 1; }
                fi
                echo "fetch-debs: downloading $target into $cache" >&2
                (cd "$cache" && apt-get download -q "$target" >/dev/null 2>&1) ||
                        (apt-get update -qq >/dev/null && cd "$cache" && apt-get download -q "$target" >/dev/null 2>&1) ||
                        { echo "fetch-debs: cannot download '$target'" >&2; exit 1; }
                f=$(newest "$glob")
                [ -n "$f" ] || { echo "fetch-debs: '$target' downloaded but no file matches '$glob'" >&2; exit 1; }
        fi
        printf '%s\t%s\n' "$pkg" "$f"
done <"$list"
