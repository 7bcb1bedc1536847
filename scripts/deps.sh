#!/usr/bin/env bash
# scripts/deps.sh [--bench] — install the Debian packages Cairn needs to build and test (and, with --bench, what
# the benchmarks compare against). Idempotent and quiet when nothing is missing. Needs root (or sudo) only when
# something must be installed.
set -euo pipefail

PKGS=(
        # build (libclang-rt-14-dev: the libFuzzer runtime for `make fuzz`; libclang-common-14-dev only recommends it)
        build-essential clang libclang-rt-14-dev pkg-config libarchive-dev libext2fs-dev zlib1g-dev libzstd-dev libssl-dev
        libblkid-dev libcurl4-openssl-dev libexpat1-dev libmicrohttpd-dev libsqlite3-dev libtss2-dev libjson-c-dev
        # image assembly
        e2fsprogs dosfstools mtools gdisk cpio kmod qemu-utils zstd
        grub-common grub-efi-amd64-bin grub-pc-bin
        # test peers
        qemu-system-x86 ovmf seabios swtpm swtpm-tools tpm2-tools etcd-server etcd-client nginx-light vboot-utils cryptsetup-bin
        curl python3 sqlite3 openssl socat
        # provisioning: ignition-validate (the reference parser for our Ignition subset), the OpenSSH client for SSH tests
        ignition openssh-client
        # benchmarks
        hyperfine wrk time bc
)
# The baselines `make bench` puts beside our numbers (RAUC for the apply benchmark).
BENCH_PKGS=(rauc squashfs-tools dbus-daemon)
[ "${1:-}" = --bench ] && PKGS+=("${BENCH_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
