#!/usr/bin/env bash
# tests/integration/71-provision-tools.sh — cairn-provision on the build host, against Debian's Ignition
# (ignition-validate 2.14) as the reference parser, and end to end on a scratch root:
#   - configs Ignition accepts and Cairn supports: both accept (including the example in docs/provisioning.md);
#   - configs Ignition rejects (not JSON, spec 2.x, unknown spec): Cairn rejects them too;
#   - valid Ignition that uses what Cairn does not do (systemd units, disks, filesystems, kernel arguments):
#     Cairn refuses with one line naming the field;
#   - the sources in order (fw_cfg Flatcar name, fw_cfg CoreOS name, OEM file, ignition.config.url= served
#     over HTTP on 127.0.0.1 with a remote file checked by its hash), the marker, the notice on a changed
#     config, and a 10 MB config refused with nothing written.
set -euo pipefail
B=$PWD/build/bin
[ -x "$B/cairn-provision" ] || { echo "FAIL: build/bin/cairn-provision missing (run make)"; exit 1; }
command -v ignition-validate >/dev/null || { echo "SKIP: ignition-validate missing (apt-get install ignition)"; exit 77; }
. "$(dirname "$0")/../lib/common.sh"
tmpdir T 71-provision-tools
HPID=
on_exit '[ -z "$HPID" ] || kill $HPID 2>/dev/null'

check_both_accept() { # FILE
        ignition-validate "$1" >/dev/null 2>&1 || fail "ignition-validate rejects $(basename "$1"): $(ignition-validate "$1" 2>&1 | head -n 3)"
        "$B/cairn-provision" --check "$1" >/dev/null 2>"$T/err" || fail "cairn-provision rejects $(basename "$1"): $(cat "$T/err")"
}
check_both_reject() { # FILE PATTERN
        ignition-validate "$1" >/dev/null 2>&1 && fail "ignition-validate accepts $(basename "$1") (test is wrong)"
        "$B/cairn-provision" --check "$1" >/dev/null 2>"$T/err" && fail "cairn-provision accepts $(basename "$1")"
        [ "$(wc -l <"$T/err")" = 1 ] || fail "$(basename "$1"): not one line: $(cat "$T/err")"
        grep -q -- "$2" "$T/err" || fail "$(basename "$1"): message '$(cat "$T/err")' lacks '$2'"
}
check_unsupported() { # FILE FIELD
        ignition-validate "$1" >/dev/null 2>&1 || fail "ignition-validate rejects $(basename "$1") (test is wrong): $(ignition-validate "$1" 2>&1 | head -n 2)"
        "$B/cairn-provision" --check "$1" >/dev/null 2>"$T/err" && fail "cairn-provision accepts $(basename "$1")"
        [ "$(wc -l <"$T/err")" = 1 ] || fail "$(basename "$1"): not one line: $(cat "$T/err")"
        grep -q "unsupported field '$2'" "$T/err" || fail "$(basename "$1"): message '$(cat "$T/err")' does not name '$2'"
}

# --- the reference parser agrees
H=sha512-$(printf 'hi\n' | sha512sum | cut -d' ' -f1)
for v in 3.0.0 3.1.0 3.2.0 3.3.0; do
        cat >"$T/ok-$v.ign" <<EOF
{"ignition": {"version": "$v"},
 "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 a@b"], "groups": ["sudo"], "passwordHash": "\$6\$s\$h"}],
            "groups": [{"name": "ops", "gid": 2000}]},
 "storage": {"files": [{"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,h%0A"}},
                       {"path": "/opt/x", "overwrite": true, "user": {"name": "core"}, "contents": {"source": "http://10.0.2.100/x", "verification": {"hash": "$H"}}}],
             "directories": [{"path": "/var/lib/app", "mode": 448}],
             "links": [{"path": "/etc/motd", "target": "/etc/hostname"}, {"path": "/var/h", "target": "/etc/hostname", "hard": true}]}}
EOF
        check_both_accept "$T/ok-$v.ign"
done
# the example in the docs
sed -n '/^<!-- ignition-example -->/,/^```$/p' docs/provisioning.md | sed '1,2d;$d' >"$T/doc.ign"
[ -s "$T/doc.ign" ] || fail "no Ignition example found in docs/provisioning.md"
check_both_accept "$T/doc.ign"

printf '{"ignition": {"version": "3.3.0"' >"$T/trunc.ign"
check_both_reject "$T/trunc.ign" "not valid JSON"
echo 'version: 3.3.0' >"$T/yaml.ign"
check_both_reject "$T/yaml.ign" "not valid JSON"
echo '{"ignition": {"version": "2.2.0"}}' >"$T/spec2.ign"
check_both_reject "$T/spec2.ign" "version '2.2.0' is not supported"
echo '{"ignition": {"version": "3.7.0"}}' >"$T/spec37.ign"
check_both_reject "$T/spec37.ign" "version '3.7.0' is not supported"
echo '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/x", "mode": "0644"}]}}' >"$T/modestr.ign"
check_both_reject "$T/modestr.ign" "must be an integer"

echo '{"ignition": {"version": "3.3.0"}, "systemd": {"units": [{"name": "a.service", "enabled": true, "contents": "[Unit]\n"}]}}' >"$T/u1.ign"
check_unsupported "$T/u1.ign" systemd
echo '{"ignition": {"version": "3.3.0"}, "storage": {"disks": [{"device": "/dev/vdb", "wipeTable": true}]}}' >"$T/u2.ign"
check_unsupported "$T/u2.ign" storage.disks
echo '{"ignition": {"version": "3.3.0"}, "storage": {"filesystems": [{"device": "/dev/vdb1", "format": "ext4", "path": "/var/data"}]}}' >"$T/u3.ign"
check_unsupported "$T/u3.ign" storage.filesystems
echo '{"ignition": {"version": "3.3.0"}, "kernelArguments": {"shouldExist": ["quiet"]}}' >"$T/u4.ign"
check_unsupported "$T/u4.ign" kernelArguments
echo '{"ignition": {"version": "3.3.0"}, "passwd": {"users": [{"name": "svc", "system": true}]}}' >"$T/u5.ign"
check_unsupported "$T/u5.ign" "passwd.users\[0\].system"
echo '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/a", "append": [{"source": "data:,x"}]}]}}' >"$T/u6.ign"
check_unsupported "$T/u6.ign" "storage.files\[0\].append"
# a path outside the writable trees: valid Ignition, refused by Cairn
echo '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/usr/bin/evil", "contents": {"source": "data:,x"}}]}}' >"$T/usr.ign"
ignition-validate "$T/usr.ign" >/dev/null 2>&1 || fail "ignition-validate rejects usr.ign"
"$B/cairn-provision" --check "$T/usr.ign" 2>"$T/err" && fail "a file in /usr was accepted"
grep -q "'/usr/bin/evil' is not allowed" "$T/err" || fail "usr path message: $(cat "$T/err")"

# --- end to end on a scratch root
mkroot() {
        rm -rf "$T/root" "$T/fw" "$T/oem"
        mkdir -p "$T/root/etc" "$T/root/var" "$T/fw" "$T/oem"
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$T/root/etc/passwd"
        printf 'root:x:0:\nsudo:x:27:\n' >"$T/root/etc/group"
}
fwcfg() { mkdir -p "$T/fw/$1"; cp "$2" "$T/fw/$1/raw"; }
prov() { "$B/cairn-provision" --root "$T/root" --fw-cfg "$T/fw" --oem "$T/oem/config.ign" --cmdline "$T/cmdline" "$@"; }
hostcfg() { echo "{\"ignition\": {\"version\": \"3.3.0\"}, \"storage\": {\"files\": [{\"path\": \"/etc/hostname\", \"contents\": {\"source\": \"data:,$1\"}}]}}" >"$T/$1.ign"; }
for h in flatcar coreos oem url changed; do hostcfg $h; done
: >"$T/cmdline"

# order: Flatcar's fw_cfg name wins over CoreOS' and the OEM file
mkroot; fwcfg opt/org.flatcar-linux/config "$T/flatcar.ign"; fwcfg opt/com.coreos/config "$T/coreos.ign"; cp "$T/oem.ign" "$T/oem/config.ign"
prov 2>"$T/err" || fail "provisioning failed: $(cat "$T/err")"
[ "$(cat "$T/root/etc/hostname")" = flatcar ] || fail "fw_cfg opt/org.flatcar-linux/config is not first"
grep -q "provisioned from fw_cfg opt/org.flatcar-linux/config" "$T/err" || fail "message: $(cat "$T/err")"
# the marker: a second run changes nothing, a changed config gets a notice
prov 2>"$T/err" || fail "second run failed"
[ -s "$T/err" ] && fail "second run with the same config said something: $(cat "$T/err")"
fwcfg opt/org.flatcar-linux/config "$T/changed.ign"
prov 2>"$T/err" || fail "run with a changed config failed"
grep -q "notice: the Ignition config from fw_cfg opt/org.flatcar-linux/config differs .* ignored" "$T/err" || fail "no notice: $(cat "$T/err")"
[ "$(cat "$T/root/etc/hostname")" = flatcar ] || fail "a changed config was applied"

mkroot; fwcfg opt/com.coreos/config "$T/coreos.ign"; cp "$T/oem.ign" "$T/oem/config.ign"
prov 2>/dev/null && [ "$(cat "$T/root/etc/hostname")" = coreos ] || fail "fw_cfg opt/com.coreos/config is not second"
mkroot; cp "$T/oem.ign" "$T/oem/config.ign"
prov 2>/dev/null && [ "$(cat "$T/root/etc/hostname")" = oem ] || fail "the OEM file is not used"
mkroot
prov 2>"$T/err" || fail "no config at all failed"
grep -q "no Ignition config" "$T/err" && [ -f "$T/root/var/lib/cairn/provisioned" ] || fail "no config: $(cat "$T/err")"

# ignition.config.url= over HTTP on 127.0.0.1, with a remote file checked by its hash
mkdir -p "$T/www"
printf 'remote contents\n' >"$T/www/payload"
RH=sha512-$(sha512sum <"$T/www/payload" | cut -d' ' -f1)
python3 -m http.server 0 --bind 127.0.0.1 --directory "$T/www" >"$T/http.log" 2>&1 &
HPID=$!
for _ in $(seq 50); do HP=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/http.log" | head -n1); [ -n "$HP" ] && break; sleep 0.1; done
[ -n "$HP" ] || fail "python http.server did not start"
cat >"$T/www/config.ign" <<EOF
{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/hostname", "contents": {"source": "data:,url"}},
 {"path": "/var/lib/remote", "mode": 384, "contents": {"source": "http://127.0.0.1:$HP/payload", "verification": {"hash": "$RH"}}}]}}
EOF
mkroot; echo "quiet ignition.config.url=http://127.0.0.1:$HP/config.ign console=ttyS0" >"$T/cmdline"
prov 2>"$T/err" || fail "URL provisioning failed: $(cat "$T/err")"
[ "$(cat "$T/root/etc/hostname")" = url ] && [ "$(cat "$T/root/var/lib/remote")" = "remote contents" ] || fail "URL config not applied"
[ "$(stat -c %a "$T/root/var/lib/remote")" = 600 ] || fail "remote file mode"
# a remote file whose hash does not match: nothing of the config is applied
sed -i "s/$RH/sha512-$(printf x | sha512sum | cut -d' ' -f1)/" "$T/www/config.ign"
mkroot
prov 2>"$T/err" && fail "a hash mismatch was accepted"
grep -q "do not match contents.verification.hash" "$T/err" && grep -q "provisioning failed; nothing was applied" "$T/err" || fail "hash mismatch message: $(cat "$T/err")"
[ ! -e "$T/root/etc/hostname" ] && [ ! -e "$T/root/var/lib/cairn/provisioned" ] || fail "hash mismatch: partly applied or marked"
echo "ignition.config.url=http://127.0.0.1:$HP/missing.ign" >"$T/cmdline"
mkroot
prov 2>"$T/err" && fail "a missing URL config was accepted"
grep -q "cannot fetch 'http://127.0.0.1:$HP/...'" "$T/err" || fail "missing URL message: $(cat "$T/err")"
: >"$T/cmdline"

# a 10 MB config on fw_cfg: refused, nothing written, not marked
mkroot
{ printf '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/big", "contents": {"source": "data:,'; head -c $((10 << 20)) /dev/zero | tr '\0' a; printf '"}}]}}'; } >"$T/big.ign"
fwcfg opt/org.flatcar-linux/config "$T/big.ign"
before=$(find "$T/root" | sort)
prov 2>"$T/err" && fail "a 10 MB config was accepted"
grep -q "config is larger than 2 MiB" "$T/err" || fail "10 MB message: $(cat "$T/err")"
[ "$(find "$T/root" | sort)" = "$before" ] || fail "a 10 MB config changed the root"
echo "71-provision-tools: ok"
