# tests/lib/usr-image.sh — small /usr slot images for tests whose releases go through ci/release.sh, which reads
# the release's board and version from the image's own /usr/lib/os-release (lib/os-release inside the slot).
#   usr_os_release TREE VERSION [BOARD]      write TREE/lib/os-release (BOARD default amd64)
#   usr_image_retag IN OUT VERSION [BOARD]   copy the image IN to OUT with its os-release rewritten (debugfs); a
#                                            sealed slot's dm-verity tree then no longer matches (on purpose)
#   usr_image_retag_sealed IN OUT VERSION [BOARD]   the same, then the tree and root-hash block rebuilt, so the
#                                            slot boots (scripts/verity-seal.sh)
#   usr_image OUT VERSION SIZE_MB [BOARD]    a fresh image: random bulk data plus os-release
usr_os_release() {
        mkdir -p "$1/lib"
        printf 'NAME="Cairn"\nID=cairn\nVERSION_ID=%s\nCAIRN_BOARD=%s\n' "$2" "${3:-amd64}" >"$1/lib/os-release"
}
usr_image_retag() {
        local in=$1 out=$2 osr
        osr=$(mktemp)
        printf 'NAME="Cairn"\nID=cairn\nVERSION_ID=%s\nCAIRN_BOARD=%s\n' "$3" "${4:-amd64}" >"$osr"
        cp --sparse=always "$in" "$out"
        debugfs -w -R "rm /lib/os-release" "$out" >/dev/null 2>&1 || true
        debugfs -w -R "write $osr /lib/os-release" "$out" >/dev/null 2>&1
        rm -f "$osr"
        [ "$(debugfs -R 'cat /lib/os-release' "$out" 2>/dev/null | sed -n 's/^VERSION_ID=//p')" = "$3" ] ||
                { echo "usr_image_retag: could not write os-release into $out" >&2; return 1; }
}
usr_image_retag_sealed() {
        usr_image_retag "$@" || return 1
        "$(dirname "${BASH_SOURCE[0]}")/../../scripts/verity-seal.sh" seal "$2" "retag-$3" >/dev/null ||
                { echo "usr_image_retag_sealed: could not seal $2" >&2; return 1; }
}
usr_image() {
        local out=$1 tree
        tree=$(mktemp -d)
        usr_os_release "$tree" "$2" "${4:-}"
        head -c $(($3 * 1024 * 1024 * 3 / 4)) /dev/urandom >"$tree/bulk"
        "${CAIRN_BIN:-build/bin}/cairn-mkimage" -o "$out" --size "$3"M --seed "usr-$2" --label USR --no-journal "$tree" >/dev/null
        local rc=$?
        rm -rf "$tree"
        return $rc
}
