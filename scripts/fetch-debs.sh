#!/usr/bin/env bash
# scripts/fetch-debs.sh PACKAGES-FILE — make sure every package of a recipe is in the .deb cache
# (CAIRN_DEBS, default ~/.cache/cairn/debs); download only what is missing, so a rebuild needs no registry.
# Prints "PACKAGE<TAB>path" for each line, the newest cached version. Exits non-zero, with one line on
# stderr naming the package and the reason, when a package cannot be resolved or downloaded; callers must
# check the exit status (read the output into a variable first, never through `< <(...)`).
set -euo pipefail
list=$1
cache=${CAIRN_DEBS:-$HOME/.cache/cairn/debs}
die() { echo "fetch-debs: $*" >&2; exit 1; }
[ -r "$list" ] || die "cannot read package list '$list'"
mkdir -p "$cache" || die "cannot create the .deb cache '$cache'"
cache=$(cd "$cache" && pwd)

# The newest cached file matching a glob, or nothing (no match is not an error).
newest() {
        local matches=()
        shopt -s nullglob
        # shellcheck disable=SC2206
        matches=("$cache"/$1)
        shopt -u nullglob
        [ ${#matches[@]} -gt 0 ] || return 0
        printf '%s\n' "${matches[@]}" | sort -V | tail -n 1
}

# apt's package lists are needed for both the depends lookup and the download; fetch them once, on demand.
updated=0
apt_update() {
        [ $updated = 0 ] || return 0
        updated=1
        echo "fetch-debs: apt-get update" >&2
        local err
        err=$(apt-get update -qq 2>&1 >/dev/null) || die "apt-get update failed: $(printf '%s' "$err" | tail -n 1)"
}

# The package a metapackage depends on first (the versioned kernel behind linux-image-cloud-amd64).
resolve() {
        local pkg=$1 target
        target=$(apt-cache depends "$pkg" 2>/dev/null | awk '/^ *Depends:/{print $2; exit}' || true)
        if [ -z "$target" ]; then
                apt_update
                target=$(apt-cache depends "$pkg" 2>/dev/null | awk '/^ *Depends:/{print $2; exit}' || true)
        fi
        [ -n "$target" ] || die "cannot resolve '$pkg': apt-cache knows no Depends: for it"
        printf '%s\n' "$target"
}

download() {
        local target=$1 err
        echo "fetch-debs: downloading $target into $cache" >&2
        # apt-get download runs as the _apt user when it can; the cache need not be writable by it.
        if err=$(cd "$cache" && apt-get download -q "$target" 2>&1 >/dev/null); then return 0; fi
        apt_update
        err=$(cd "$cache" && apt-get download -q "$target" 2>&1 >/dev/null) ||
                die "cannot download '$target': $(printf '%s' "$err" | grep -v '^W: Download is performed unsandboxed' | tail -n 1)"
}

while read -r glob pkg how; do
        case $glob in '' | '#'*) continue ;; esac
        [ -n "${pkg:-}" ] || die "$list: line for '$glob' names no package"
        f=$(newest "$glob")
        if [ -z "$f" ]; then
                target=$pkg
                if [ "${how:-direct}" = depends ]; then target=$(resolve "$pkg"); fi
                download "$target"
                f=$(newest "$glob")
                [ -n "$f" ] || die "'$target' downloaded but no file in $cache matches '$glob'"
        fi
        printf '%s\t%s\n' "$pkg" "$f"
done <"$list"
