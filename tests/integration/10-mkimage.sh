#!/usr/bin/env bash
# tests/integration/10-mkimage.sh — cairn-mkimage end to end: a real .deb in usr root mode, a recipe, reproducibility,
# fit mode, e2fsck, and every bad-input case (non-zero exit, message naming the culprit, no output left behind).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
MK=$PWD/build/bin/cairn-mkimage
[ -x "$MK" ] || { echo "build/bin/cairn-mkimage missing (run make)"; exit 1; }
for t in dpkg-deb debugfs e2fsck dumpe2fs; do
        command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
dbg() { debugfs -R "$1" "$2" 2>/dev/null; }

# --- a .deb built here ---
P=$T/pkg
mkdir -p $P/DEBIAN $P/usr/bin $P/usr/share/doc/hello $P/etc/hello $P/var/lib/hello $P/bin $P/lib/modules
cat >$P/DEBIAN/control <<'EOF'
Package: hello-cairn
Version: 1.0
Architecture: all
Maintainer: Cairn <cairn@example.invalid>
Description: test package
EOF
printf '#!/bin/sh\necho hello\n' >$P/usr/bin/hello
chmod 0755 $P/usr/bin/hello
echo "greeting=hi" >$P/etc/hello/hello.conf
echo state >$P/var/lib/hello/state
echo doc >$P/usr/share/doc/hello/README
ln -s /usr/bin/hello $P/bin/hi
touch -d @1600000000 $P/usr/bin/hello
dpkg-deb --root-owner-group -Zxz --build $P $T/hello.deb >/dev/null

export SOURCE_DATE_EPOCH=1700000000
mkdir -p $T/a $T/b
$MK -o $T/a/usr.img --root-mode usr --label USR-A --seed test $T/hello.deb
$MK -o $T/b/usr.img --root-mode usr --label USR-A --seed test $T/hello.deb
[ "$(sha256sum <$T/a/usr.img)" = "$(sha256sum <$T/b/usr.img)" ] || fail "two builds differ"
e2fsck -fn $T/a/usr.img >/dev/null 2>&1 || fail "e2fsck found problems"
I=$T/a/usr.img
[ "$(dbg 'cat /bin/hello' $I)" = "$(printf '#!/bin/sh\necho hello')" ] || fail "usr/bin/hello not at /bin/hello"
dbg 'stat /bin/hello' $I | grep -q "Mode:  0755" || fail "mode of /bin/hello"
dbg 'stat /bin/hello' $I | grep -q "mtime: 0x5f5e1000" || fail "mtime of /bin/hello not kept"
dbg 'stat /bin/hi' $I | grep -q 'Fast link dest: "/usr/bin/hello"' || fail "bin/hi symlink"
[ "$(dbg 'cat /share/cairn/etc/hello/hello.conf' $I)" = "greeting=hi" ] || fail "etc not mapped to /share/cairn/etc"
dbg 'ls /' $I | grep -qw var && fail "var/ should be dropped in usr mode"
dbg 'ls /' $I | grep -qw usr && fail "usr/ should be the root in usr mode"
dumpe2fs -h $I 2>/dev/null | grep -q "Filesystem volume name:   USR-A" || fail "label"
for f in "Filesystem created" "Last write time" "Last checked"; do
        dumpe2fs -h $I 2>/dev/null | grep "^$f:" | grep -q "Tue Nov 14 22:13:20 2023" || fail "$f is not the epoch"
done
dumpe2fs -h $I 2>/dev/null | grep "^Filesystem features:" | grep -q "has_journal.*resize_inode.*dir_index.*extent.*64bit.*flex_bg.*metadata_csum" ||
        fail "features: $(dumpe2fs -h $I 2>/dev/null | grep features)"
dbg 'stat <8>' $I | grep -q "ctime: 0x6553f100" || fail "journal inode time"
# different seed, different UUID
$MK -o $T/c.img --root-mode usr --seed other $T/hello.deb
[ "$(dumpe2fs -h $T/c.img 2>/dev/null | grep UUID)" != "$(dumpe2fs -h $I 2>/dev/null | grep UUID)" ] || fail "seed does not change UUID"

# epoch 0 by default: no wall clock anywhere
env -u SOURCE_DATE_EPOCH $MK -o $T/zero.img $T/hello.deb
dumpe2fs -h $T/zero.img 2>/dev/null | grep "^Last write time:" | grep -q "Thu Jan  1 00:00:00 1970" || fail "epoch 0 write time"
dbg 'stat /' $T/zero.img | grep -q "ctime: 0x00000000" || fail "epoch 0 root ctime"
dbg 'stat /usr/bin/hello' $T/zero.img | grep -q "mtime: 0x00000000" || fail "epoch 0 clamps mtime"

# fit mode: small but sufficient, clean; explicit size honoured
sz=$(stat -c %s $I)
[ "$sz" -le $((16 << 20)) ] || fail "fit image unexpectedly large: $sz"
[ $((sz % (1 << 20))) -eq 0 ] || fail "fit size not whole MiB"
$MK -o $T/sized.img --size 64M $T/hello.deb
[ "$(stat -c %s $T/sized.img)" -eq $((64 << 20)) ] || fail "--size 64M"
e2fsck -fn $T/sized.img >/dev/null 2>&1 || fail "e2fsck sized"

# --- recipe ---
mkdir -p $T/r/overlay/sub
echo overlay >$T/r/overlay/sub/file
echo motd >$T/r/motd
cat >$T/r/image.recipe <<'EOF'
# test recipe: inputs are mapped by --root-mode, directive paths are image paths
deb ${DEBS}/hello*.deb
dir overlay /usr/lib/overlay
exclude /share/doc/*
mkdir /lib/private mode=0700 uid=12 gid=34
file /share/cairn/etc/motd motd mode=0600
write /lib/os-release "ID=cairn\nVERSION_ID=${VERSION}\n"
symlink /bin/sh hello
hardlink /bin/hello2 /bin/hello
attr /bin/hello mode=04755
xattr /bin/hello security.capability 0x0100000200040000000000000000000000000000
rm /lib/overlay/sub
EOF
$MK -o $T/r.img --root-mode usr --recipe $T/r/image.recipe --var DEBS=$T --var VERSION=42
e2fsck -fn $T/r.img >/dev/null 2>&1 || fail "e2fsck recipe image"
[ "$(dbg 'cat /lib/os-release' $T/r.img)" = "$(printf 'ID=cairn\nVERSION_ID=42')" ] || fail "write + var"
dbg 'stat /lib/private' $T/r.img | grep -q "Mode:  0700" || fail "mkdir mode"
dbg 'stat /lib/private' $T/r.img | grep -q "User:    12   Group:    34" || fail "mkdir owner"
dbg 'stat /share/cairn/etc/motd' $T/r.img | grep -q "Mode:  0600" || fail "file mode"
dbg 'stat /bin/hello' $T/r.img | grep -q "Mode:  04755" || fail "attr"
dbg 'stat /bin/hello2' $T/r.img | grep -q "Links: 2" || fail "hardlink"
dbg 'ea_list /bin/hello' $T/r.img | grep -q "security.capability" || fail "xattr"
dbg 'stat /bin/sh' $T/r.img | grep -q 'Fast link dest: "hello"' || fail "symlink"
dbg 'ls /share' $T/r.img | grep -qw doc && dbg 'ls /share/doc' $T/r.img | grep -qw hello && fail "exclude"
dbg 'ls /lib/overlay' $T/r.img | grep -qw sub && fail "rm"

# --- bad inputs: non-zero exit, one line naming the culprit, no output, no temp file ---
mkdir -p $T/bad
expect_fail() { # culprit-regex command...
        local want=$1; shift
        rm -f $T/bad/out.img
        if "$@" 2>$T/bad/err; then fail "succeeded: $*"; fi
        grep -qE -e "$want" $T/bad/err || fail "message '$(cat $T/bad/err)' does not match '$want'"
        [ "$(wc -l <$T/bad/err)" -eq 1 ] || fail "more than one line: $(cat $T/bad/err)"
        [ ! -e $T/bad/out.img ] || fail "output left behind for: $*"
        [ -z "$(ls $T/bad | grep tmp)" ] || fail "temp file left behind for: $*"
        echo "ok: $(cat $T/bad/err)"
}
expect_fail "'$T/missing.deb': No such file" $MK -o $T/bad/out.img $T/missing.deb
head -c 3000 /dev/urandom >$T/random.deb
expect_fail "'$T/random.deb': not a Debian package" $MK -o $T/bad/out.img $T/random.deb
head -c $(($(stat -c %s $T/hello.deb) - 200)) $T/hello.deb >$T/trunc.deb
expect_fail "'$T/trunc.deb': data.tar.xz: " $MK -o $T/bad/out.img $T/trunc.deb
mkdir -p $T/big/lib
head -c $((24 << 20)) /dev/urandom >$T/big/lib/big.ko
expect_fail "content does not fit in --size 16M \('/lib/big.ko' needs more space\); try a larger --size" \
        $MK -o $T/bad/out.img --size 16M $T/big
printf 'mkdir /a\n\nfrobnicate /x\n' >$T/bad.recipe
expect_fail "'$T/bad.recipe' line 3: unknown directive" $MK -o $T/bad/out.img --recipe $T/bad.recipe
printf 'write /x "${UNSET}"\n' >$T/bad2.recipe
expect_fail "'$T/bad2.recipe' line 1: undefined variable" $MK -o $T/bad/out.img --recipe $T/bad2.recipe
printf 'rm /not/there\n' >$T/bad3.recipe
expect_fail "'$T/bad3.recipe' line 1: '/not/there': not in the image" $MK -o $T/bad/out.img --recipe $T/bad3.recipe
expect_fail "'$T/nodir/out.img': cannot create output" $MK -o $T/nodir/out.img $T/hello.deb
expect_fail "--size 'lots'" $MK -o $T/bad/out.img --size lots $T/hello.deb
echo "all mkimage checks passed"
