#!/usr/bin/env bash
# cost: 160
# tests/integration/43-reproducible.sh — two builds of the default image from the same inputs and seed, in
# different work directories, give byte-identical disks (raw and qcow2).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export SOURCE_DATE_EPOCH=1700000000 CAIRN_SEED=repro-test
for i in 1 2; do
        CAIRN_OUT=$W/out$i CAIRN_WORK=$W/work$i scripts/build-image.sh
        rm -rf "$W/work$i"
done
sha256sum "$W"/out1/* "$W"/out2/*
for f in cairn.img cairn.qcow2 usr.img; do
        a=$(sha256sum <"$W/out1/$f") b=$(sha256sum <"$W/out2/$f")
        [ "$a" = "$b" ] || fail "$f differs between two builds"
done
echo "43-reproducible: ok"
