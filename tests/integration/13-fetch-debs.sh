#!/usr/bin/env bash
# tests/integration/13-fetch-debs.sh — the .deb cache from nothing (issue: set-up on a fresh machine): with an empty
# CAIRN_DEBS, scripts/fetch-debs.sh downloads what a recipe names (a direct package and a metapackage resolved through
# its Depends:) with the real apt-get, prints one "PACKAGE<TAB>path" per line, and a second run downloads nothing; a
# package that does not exist stops it with exit 1 and one line naming the package and apt's reason; build-image.sh
# stops on that failure with its own line (not an unbound-variable error later on).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$(dirname "$0")/../.."
command -v apt-get >/dev/null || { echo "skip: apt-get not available"; exit 77; }
T=$(mktemp -d /tmp/cairn-13.XXXXXX)
trap 'rm -rf "$T"' EXIT

printf '# test recipe\n\nbusybox-static_*.deb busybox-static direct\n' >"$T/packages"
CAIRN_DEBS=$T/cache scripts/fetch-debs.sh "$T/packages" >"$T/out" 2>"$T/err" || fail "fetch into an empty cache: $(cat "$T/err")"
[ "$(wc -l <"$T/out")" = 1 ] || fail "expected one line: $(cat "$T/out")"
IFS=$'\t' read -r pkg path <"$T/out"
[ "$pkg" = busybox-static ] && [ -f "$path" ] && [[ $path == "$T/cache/busybox-static_"*.deb ]] || fail "output: $(cat "$T/out")"
dpkg-deb --info "$path" >/dev/null || fail "'$path' is not a .deb"
grep -q 'downloading busybox-static' "$T/err" || fail "no download line: $(cat "$T/err")"
# Cached: nothing downloaded, same answer.
CAIRN_DEBS=$T/cache scripts/fetch-debs.sh "$T/packages" >"$T/out2" 2>"$T/err2" || fail "second run: $(cat "$T/err2")"
cmp -s "$T/out" "$T/out2" || fail "second run answered differently"
[ ! -s "$T/err2" ] || fail "second run was not silent: $(cat "$T/err2")"
echo "ok: empty cache filled by apt-get download, then used as is"

# The metapackage: resolved through apt-cache depends (the kernel's path).
printf 'busybox-static_*.deb busybox-static direct\nlinux-image-[0-9]*-cloud-amd64_*.deb linux-image-cloud-amd64 depends\n' >"$T/p2"
CAIRN_DEBS=$T/cache scripts/fetch-debs.sh "$T/p2" >"$T/out3" 2>"$T/err3" || fail "kernel fetch: $(cat "$T/err3")"
grep -Eq "^linux-image-cloud-amd64	$T/cache/linux-image-[0-9].*-cloud-amd64_.*\.deb$" "$T/out3" || fail "kernel line: $(cat "$T/out3")"
echo "ok: the kernel metapackage resolved to $(basename "$(cut -f2 "$T/out3" | tail -n1)")"

# A package that does not exist: exit 1, one line naming it.
printf 'nosuch_*.deb cairn-no-such-package direct\n' >"$T/bad"
rc=0; CAIRN_DEBS=$T/cache scripts/fetch-debs.sh "$T/bad" >"$T/out4" 2>"$T/err4" || rc=$?
[ $rc = 1 ] || fail "bad package: exit $rc"
grep -q "^fetch-debs: cannot download 'cairn-no-such-package': .*" "$T/err4" || fail "bad package message: $(cat "$T/err4")"
[ ! -s "$T/out4" ] || fail "bad package printed a path: $(cat "$T/out4")"
printf 'nosuch_*.deb cairn-no-such-meta depends\n' >"$T/badmeta"
rc=0; CAIRN_DEBS=$T/cache scripts/fetch-debs.sh "$T/badmeta" >/dev/null 2>"$T/err5" || rc=$?
[ $rc = 1 ] && grep -q "cannot resolve 'cairn-no-such-meta'" "$T/err5" || fail "bad metapackage: rc=$rc $(cat "$T/err5")"
echo "ok: a missing package or metapackage: exit 1 and $(tail -n1 "$T/err4")"

# build-image.sh stops at that failure with its own line.
if [ -x build/bin/cairn-mkimage ]; then
        mkdir -p "$T/recipe"
        cp -r image/recipes/default/. "$T/recipe/"
        cp "$T/bad" "$T/recipe/packages"
        rc=0; CAIRN_RECIPE=$T/recipe CAIRN_DEBS=$T/cache CAIRN_WORK=$T/work CAIRN_OUT=$T/o scripts/build-image.sh >/dev/null 2>"$T/err6" || rc=$?
        [ $rc != 0 ] || fail "build-image.sh succeeded without its packages"
        grep -q "build-image: cannot get the recipe's Debian packages" "$T/err6" || fail "build-image message: $(cat "$T/err6")"
        grep -q 'unbound variable' "$T/err6" && fail "build-image ran on past the failure: $(cat "$T/err6")"
        rc=0; CAIRN_WORK= scripts/build-image.sh >/dev/null 2>"$T/err7" || rc=$?
        [ $rc != 0 ] && grep -q 'CAIRN_WORK is set but empty' "$T/err7" || fail "empty CAIRN_WORK: rc=$rc $(cat "$T/err7")"
        rc=0; CAIRN_WORK=/ scripts/build-image.sh >/dev/null 2>"$T/err8" || rc=$?
        [ $rc != 0 ] && grep -q "refusing to use '/' as CAIRN_WORK" "$T/err8" || fail "CAIRN_WORK=/: rc=$rc $(cat "$T/err8")"
        echo "ok: build-image.sh stops on the fetch failure; refuses an empty or / CAIRN_WORK"
fi
echo PASS
