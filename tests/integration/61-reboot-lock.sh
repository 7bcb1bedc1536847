#!/usr/bin/env bash
# cost: 60
# tests/integration/61-reboot-lock.sh — the agent's reboot lifecycle against real etcd and a FleetLock test server:
# an update staged → lock taken (seen by etcdctl from inside the pre-reboot hook) → reboot command → the new boot's
# health gate → post-boot hook (lock still held) → released; a failing health gate keeps the lock; a failing or
# hanging pre-reboot hook releases it and there is no reboot; kill -9 inside the pre-reboot hook, after the
# reboot command, and inside the post-boot hook; etcd unreachable (no reboot, the reason in cairnctl status);
# the daemon's status --json and cairnctl reboot under REBOOT_STRATEGY=off; reboot windows (closed: waits and
# shows the next opening; open: reboots inside it); the cairnctl lock verbs; the FleetLock client (protocol as
# Zincati/airlock document it: header, body, error body). The reboot command is a test seam (--reboot-cmd).
source "$(dirname "$0")/../lib/agent-fixture.sh"
for t in etcd etcdctl; do
        command -v $t >/dev/null || { echo "skip: $t not installed (scripts/deps.sh installs etcd-server, etcd-client)"; exit 77; }
done
. "$ROOT/tests/lib/etcd.sh"
OTHER=()
cleanup63() {
        local rc=$?
        set +e
        for p in "${OTHER[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        etcd_stop_all
        return $rc
}
trap 'cleanup63; fx_cleanup' EXIT
export TZ=UTC
fx_images; fx_disk; fx_release; fx_server
etcd_single e1
E1=$EP
: >"$T/reboots"

host() { # NAME [update.conf lines…]: a host root (own machine id, 1.0.0 in A) and its own disk
        local n=$1 r=$T/h-$1; shift
        rm -rf "$r"
        mkdir -p "$r/etc/cairn" "$r/usr/lib" "$r/usr/share/cairn/keys" "$r/var/lib/cairn"
        printf '%s\n' "$(printf %s "$n" | sha256sum | cut -c1-32)" >"$r/etc/machine-id"
        printf 'ID=cairn\nVERSION_ID=1.0.0\n' >"$r/usr/lib/os-release"
        cp "$T/release.pub" "$r/usr/share/cairn/keys/"
        { printf 'GROUP=alpha\nSERVER=%s/v1/update/\nHTTP_STALL_TIMEOUT=3\nREBOOT_STRATEGY=etcd-lock\n' "$URL"
          printf 'ETCD_ENDPOINTS=%s\nHEALTH_DELAY=0\nFIRST_CHECK_DELAY=0\nLOCK_RETRY_MIN=1\nLOCK_RETRY_MAX=2\n' "$E1"
          [ $# -gt 0 ] && printf '%s\n' "$@"; } >"$r/etc/cairn/update.conf"
        cp --sparse=always "$T/disk0.img" "$T/h-$n.img"
}
mid() { cat "$T/h-$1/etc/machine-id"; }
conf() { printf '%s\n' "${@:2}" >>"$T/h-$1/etc/cairn/update.conf"; }
# once NAME BOOT SLOT [args]: one agent run in that boot (boot-1 on A before the reboot, boot-2 on B after it).
agent_exec() {
        local n=$1 boot=$2 slot=$3; shift 3
        exec "$B/cairn-updated" --once --no-nice --root "$T/h-$n" --disk "$T/h-$n.img" --booted "$slot" --boot-id "$boot" \
                --reboot-cmd "${RCMD:-echo $n $boot >>$T/reboots}" "$@" >>"$T/agent-$n.log" 2>&1
}
once() { (agent_exec "$@"); }
# once_bg …: the same in the background; APID is cairn-updated's own pid (for kill -9).
once_bg() { (agent_exec "$@") & APID=$!; OTHER+=("$APID"); }
booted_v2() { printf 'ID=cairn\nVERSION_ID=2.0.0\n' >"$T/h-$1/usr/lib/os-release"; }
sget() { sed -n "s/^$2=//p" "$T/h-$1/var/lib/cairn/state"; }
hook() { # NAME pre-reboot|post-boot|health FILE SCRIPT
        mkdir -p "$T/h-$1/etc/cairn/$2.d"
        printf '#!/bin/sh\n%s\n' "$4" >"$T/h-$1/etc/cairn/$2.d/$3"
        chmod +x "$T/h-$1/etc/cairn/$2.d/$3"
}
reboots_of() { grep -c "^$1 " "$T/reboots" || true; }
holders() { etcd_holders "$E1" | tr '\n' ' ' | sed 's/ $//'; }
fail63() { echo "--- $1 agent log (tail)"; tail -n 12 "$T/agent-$1.log"; echo "--- state"; cat "$T/h-$1/var/lib/cairn/state" | grep -E '^(STATE|LOCK_|REBOOT_|STAGED_)'; fail "${@:2}"; }

# ---- config: a window half set, or unparsable → one line naming key, value and the accepted forms; exit 1 ----
for bad in "REBOOT_WINDOW_START=Thu 04:00" "LOCKSMITHD_REBOOT_WINDOW_LENGTH=90" "REBOOT_WINDOW_START=Thursday"; do
        host bad "$bad"
        set +e; (agent_exec bad boot-1 A); rc=$?; set -e
        [ $rc = 1 ] && [ "$(wc -l <"$T/agent-bad.log")" = 1 ] || fail "config '$bad': rc=$rc, $(cat "$T/agent-bad.log")"
        grep -q "update.conf\" line 10: ${bad%%=*}=\"${bad#*=}\" " "$T/agent-bad.log" && grep -Eq '"Thu 04:00"|1h30m' "$T/agent-bad.log" ||
                fail "config '$bad' message: $(cat "$T/agent-bad.log")"
        echo "  $(cat "$T/agent-bad.log")"
        rm -f "$T/agent-bad.log"
done
ok "a half-set or unparsable window: one error line with key, value and the accepted forms, exit 1"

# ---- A: the whole lifecycle; the hooks see the lock held ----
host a
hook a pre-reboot 10-drain "etcdctl --endpoints $E1 get $ETCD_KEY --print-value-only >$T/a-pre-seen"
hook a post-boot 10-uncordon "etcdctl --endpoints $E1 get $ETCD_KEY --print-value-only >$T/a-post-seen"
once a boot-1 A || fail63 a "stage + reboot of a failed"
[ "$(reboots_of a)" = 1 ] || fail63 a "a: reboot command ran $(reboots_of a) times"
grep -q "\"$(mid a)\"" "$T/a-pre-seen" || fail63 a "the pre-reboot hook did not see a's lock: $(cat "$T/a-pre-seen")"
[ "$(sget a LOCK_PHASE)" = rebooting ] && [ "$(holders)" = "$(mid a)" ] || fail63 a "after the reboot command: phase $(sget a LOCK_PHASE), holders '$(holders)'"
booted_v2 a
once a boot-2 B || fail63 a "the new boot's run failed"
grep -q "\"$(mid a)\"" "$T/a-post-seen" || fail63 a "the post-boot hook ran without the lock held: $(cat "$T/a-post-seen" 2>/dev/null)"
[ -z "$(holders)" ] && [ "$(sget a LOCK_PHASE)" = none ] || fail63 a "after the good boot: holders '$(holders)', phase $(sget a LOCK_PHASE)"
[ "$(reboots_of a)" = 1 ] || fail63 a "a rebooted again"
grep -q "released the reboot lock" "$T/h-a/var/lib/cairn/state" || fail63 a "no release note"
ok "lifecycle: staged → lock (held inside the pre-reboot hook) → reboot → health gate → post-boot hook (lock held) → released"

# ---- N: the hooks' environment: a clean PATH, the CAIRN_* variables, nothing else of the daemon's (no secrets) ----
SECRETS=(ETCD_PASSWORD=s3cret-env CAIRN_LOCK_USER=root:s3cret-env LOCKSMITHD_ETCD_PASSWORD=s3cret-env
        "PATH=$T/evil-bin:$PATH" FOO=inherited)
henv() { # NAME: a host whose pre-reboot and post-boot hooks record their environment
        host "$1"
        hook "$1" pre-reboot 10-env "env >$T/$1-pre.env"
        hook "$1" post-boot 10-env "env >$T/$1-post.env"
}
check_env() { # FILE KEY=VALUE… : exactly these variables (the shell's own PWD/SHLVL/_ aside)
        python3 - "$@" <<'PY'
import sys
got = {}
for l in open(sys.argv[1]).read().splitlines():
    k, _, v = l.partition("=")
    if k not in ("PWD", "SHLVL", "_", "OLDPWD"):
        got[k] = v
want = dict(a.split("=", 1) for a in sys.argv[2:])
home = got.pop("HOME", "")
assert home.startswith("/"), ("HOME", home)
assert got == want, {"missing or wrong": {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v},
                     "unexpected": {k: v for k, v in got.items() if k not in want}}
PY
}
henv n
(export "${SECRETS[@]}"; once n boot-1 A) || fail63 n "stage + reboot of n"
booted_v2 n
(export "${SECRETS[@]}"; once n boot-2 B) || fail63 n "n's new boot"
[ -z "$(holders)" ] || fail63 n "n kept the lock"
COMMON=(PATH=/usr/sbin:/usr/bin:/sbin:/bin TZ=UTC CAIRN_REBOOT_STRATEGY=etcd-lock CAIRN_LOCK=etcd CAIRN_LOCK_GROUP=
        "CAIRN_MACHINE_ID=$(mid n)" CAIRN_OLD_VERSION=1.0.0 CAIRN_NEW_VERSION=2.0.0)
check_env "$T/n-pre.env" "${COMMON[@]}" CAIRN_HOOK=pre-reboot CAIRN_HOOK_TIMEOUT=600 CAIRN_BOOT_ID=boot-1 \
        CAIRN_BOOTED_SLOT=A CAIRN_BOOTED_VERSION=1.0.0 CAIRN_NEXT_SLOT=B CAIRN_REBOOT_REASON=update ||
        fail63 n "pre-reboot hook environment: $(cat "$T/n-pre.env")"
check_env "$T/n-post.env" "${COMMON[@]}" CAIRN_HOOK=post-boot CAIRN_HOOK_TIMEOUT=300 CAIRN_BOOT_ID=boot-2 \
        CAIRN_BOOTED_SLOT=B CAIRN_BOOTED_VERSION=2.0.0 CAIRN_ROLLED_BACK=0 ||
        fail63 n "post-boot hook environment: $(cat "$T/n-post.env")"
! grep -l 's3cret\|inherited\|evil-bin' "$T/n-pre.env" "$T/n-post.env" || fail63 n "a hook inherited the daemon's environment"
# Came back on the old slot (the new one did not boot): the post-boot hook is told, and the lock released.
henv r
(export "${SECRETS[@]}"; once r boot-1 A) || fail63 r "stage + reboot of r"
once r boot-2 A || true # its exit status is the update check's
[ -z "$(holders)" ] || fail63 r "r kept the lock after coming back on the old slot"
check_env "$T/r-post.env" PATH=/usr/sbin:/usr/bin:/sbin:/bin TZ=UTC CAIRN_REBOOT_STRATEGY=etcd-lock CAIRN_LOCK=etcd \
        CAIRN_LOCK_GROUP= "CAIRN_MACHINE_ID=$(mid r)" CAIRN_OLD_VERSION=1.0.0 CAIRN_NEW_VERSION=2.0.0 \
        CAIRN_HOOK=post-boot CAIRN_HOOK_TIMEOUT=300 CAIRN_BOOT_ID=boot-2 CAIRN_BOOTED_SLOT=A CAIRN_BOOTED_VERSION=1.0.0 \
        CAIRN_ROLLED_BACK=1 || fail63 r "post-boot hook environment after a rollback: $(cat "$T/r-post.env")"
ok "hook environment: PATH=/usr/sbin:/usr/bin:/sbin:/bin, TZ, HOME and the CAIRN_* variables (versions, slots, machine id, strategy, rolled back), no secret or other variable of the daemon's"

# ---- B: the new boot fails its health gate: the lock is kept ----
host b
once b boot-1 A || fail63 b "stage b"
booted_v2 b
hook b health 10-broken "exit 1"
once b boot-2 B || true # its exit status is the update check's
[ "$(holders)" = "$(mid b)" ] || fail63 b "b's lock was released after a failed health gate: '$(holders)'"
"$B/cairnctl" --root "$T/h-b" status | grep -q '^reboot: *keeping the reboot lock: the boot into 2.0.0 has not passed its health gate' ||
        fail63 b "status does not say why the lock is kept: $("$B/cairnctl" --root "$T/h-b" status)"
rm "$T/h-b/etc/cairn/health.d/10-broken"
once b boot-2 B || fail63 b "b after the health check was fixed"
[ -z "$(holders)" ] || fail63 b "b's lock not released after the gate passed: '$(holders)'"
ok "a new boot that fails its health gate keeps the lock (status says why); released once it passes"

# ---- C, D: a failing and a hanging pre-reboot hook: lock released, no reboot ----
host c
hook c pre-reboot 10-drain "exit 1"
once c boot-1 A || fail63 c "stage c"
[ "$(reboots_of c)" = 0 ] && [ -z "$(holders)" ] && [ "$(sget c LOCK_PHASE)" = none ] || fail63 c "failing hook: reboots $(reboots_of c), holders '$(holders)'"
grep -q '^LOCK_NOTE=no reboot: pre-reboot hook ".*/10-drain" failed; released the reboot lock; retry in [0-9]* s' "$T/h-c/var/lib/cairn/state" ||
        fail63 c "failing hook note"
host d PRE_REBOOT_TIMEOUT=2
hook d pre-reboot 10-drain "sleep 60"
s=$SECONDS
once d boot-1 A || fail63 d "stage d"
[ $((SECONDS - s)) -lt 30 ] || fail63 d "a hanging hook held the agent for $((SECONDS - s)) s"
[ "$(reboots_of d)" = 0 ] && [ -z "$(holders)" ] || fail63 d "hanging hook: reboots $(reboots_of d), holders '$(holders)'"
grep -q 'pre-reboot hook ".*/10-drain" timed out; released the reboot lock' "$T/h-d/var/lib/cairn/state" || fail63 d "hanging hook note"
# Fixed hook: the next run reboots (the backoff of 1-2 s has passed).
rm "$T/h-c/etc/cairn/pre-reboot.d/10-drain"; sleep 2
once c boot-1 A || fail63 c "c after fixing the hook"
[ "$(reboots_of c)" = 1 ] || fail63 c "c did not reboot after its hook was fixed"
booted_v2 c; once c boot-2 B || fail63 c "c new boot"
[ -z "$(holders)" ] || fail63 c "c kept the lock"
ok "failing and hanging (PRE_REBOOT_TIMEOUT=2) pre-reboot hooks: lock released, no reboot; the reason saved; retried later"

# ---- E: kill -9 inside the pre-reboot hook; the restart gives the lock back ----
host e
hook e pre-reboot 10-drain "echo \$\$ >$T/e-hook; sleep 60"
once_bg e boot-1 A
for _ in $(seq 300); do [ -s "$T/e-hook" ] && break; sleep 0.1; done
[ -s "$T/e-hook" ] || fail63 e "the pre-reboot hook did not start"
[ "$(sget e LOCK_PHASE)" = pre-reboot ] && [ "$(holders)" = "$(mid e)" ] || fail63 e "inside the hook: phase $(sget e LOCK_PHASE), holders '$(holders)'"
kill -9 "$APID"; wait "$APID" 2>/dev/null || true
kill -9 -- "-$(cat "$T/e-hook")" 2>/dev/null || true
conf e REBOOT_STRATEGY=off # the restarted agent no longer wants to reboot: it must not keep the lock
rm "$T/h-e/etc/cairn/pre-reboot.d/10-drain"
once e boot-1 A || fail63 e "restart after kill -9"
[ -z "$(holders)" ] && [ "$(sget e LOCK_PHASE)" = none ] && [ "$(reboots_of e)" = 0 ] ||
        fail63 e "after kill -9 in the hook: holders '$(holders)', phase $(sget e LOCK_PHASE), reboots $(reboots_of e)"
ok "kill -9 inside the pre-reboot hook: the restarted agent gave the lock back and did not reboot"

# ---- F: kill -9 while the reboot command runs; the restart (same boot) reboots again, still one slot ----
host f
RCMD="echo \$\$ >$T/f-cmd; sleep 60" once_bg f boot-1 A
for _ in $(seq 300); do [ -s "$T/f-cmd" ] && break; sleep 0.1; done
[ "$(sget f LOCK_PHASE)" = rebooting ] && [ "$(holders)" = "$(mid f)" ] || fail63 f "during the reboot command: phase $(sget f LOCK_PHASE), holders '$(holders)'"
kill -9 "$APID"; wait "$APID" 2>/dev/null || true
kill -9 "$(cat "$T/f-cmd")" 2>/dev/null || true
once f boot-1 A || fail63 f "restart after kill -9 in the reboot command"
[ "$(reboots_of f)" = 1 ] && [ "$(holders)" = "$(mid f)" ] || fail63 f "restart: reboots $(reboots_of f), holders '$(holders)'"
booted_v2 f
# ---- G: … and kill -9 inside the post-boot hook of the new boot; the restart runs it again, then releases ----
hook f post-boot 10-uncordon "echo \$\$ >$T/f-post; sleep 60"
once_bg f boot-2 B
for _ in $(seq 300); do [ -s "$T/f-post" ] && break; sleep 0.1; done
[ "$(sget f LOCK_PHASE)" = post-boot ] && [ "$(holders)" = "$(mid f)" ] || fail63 f "inside the post-boot hook: phase $(sget f LOCK_PHASE), holders '$(holders)'"
kill -9 "$APID"; wait "$APID" 2>/dev/null || true
kill -9 -- "-$(cat "$T/f-post")" 2>/dev/null || true
hook f post-boot 10-uncordon "touch $T/f-post-again"
once f boot-2 B || fail63 f "restart in the post-boot hook"
[ -f "$T/f-post-again" ] && [ -z "$(holders)" ] && [ "$(sget f LOCK_PHASE)" = none ] || fail63 f "after the post-boot restart: holders '$(holders)'"
ok "kill -9 during the reboot command (restart reboots again with the one slot it holds) and inside the post-boot hook (rerun, then released)"

# ---- H: etcd unreachable: no reboot, the reason in cairnctl status; recovery when it answers ----
read -r dead < <(etcd_free_ports 1)
host h "ETCD_ENDPOINTS=http://127.0.0.1:$dead"
once h boot-1 A || fail63 h "stage h"
[ "$(reboots_of h)" = 0 ] || fail63 h "rebooted without etcd"
"$B/cairnctl" --root "$T/h-h" status >"$T/h-st.txt"
grep -q "^reboot: *no reboot: cannot take the reboot lock: .*127.0.0.1:$dead.*cannot connect" "$T/h-st.txt" || fail63 h "status without etcd: $(cat "$T/h-st.txt")"
grep -q '^reboot strategy:  etcd-lock (etcd)' "$T/h-st.txt" || fail63 h "status strategy line: $(cat "$T/h-st.txt")"
"$B/cairnctl" --root "$T/h-h" status --json | json_get '(d["reboot"]["strategy"], d["reboot"]["lock_phase"], "cannot connect" in d["reboot"]["reason"])' >"$T/h-st.json"
[ "$(cat "$T/h-st.json")" = "('etcd-lock', 'acquiring', True)" ] || fail63 h "status --json without etcd: $(cat "$T/h-st.json")"
echo "  no etcd: $(grep '^reboot:' "$T/h-st.txt")"
conf h "ETCD_ENDPOINTS=http://127.0.0.1:$dead,$E1"; sleep 2
once h boot-1 A || fail63 h "h with a live endpoint"
[ "$(reboots_of h)" = 1 ] && [ "$(holders)" = "$(mid h)" ] || fail63 h "h did not reboot once etcd answered"
booted_v2 h; once h boot-2 B; [ -z "$(holders)" ] || fail63 h "h kept the lock"
ok "etcd unreachable: no reboot, cairnctl status (human and --json) says why; a live endpoint later → reboot, release"

# ---- I: the daemon: status --json with holders; cairnctl reboot under REBOOT_STRATEGY=off ----
host i REBOOT_STRATEGY=off
once i boot-1 A || fail63 i "stage i"
[ "$(reboots_of i)" = 0 ] || fail63 i "REBOOT_STRATEGY=off rebooted by itself"
SOCK=$T/i.sock
"$B/cairn-updated" --no-nice --root "$T/h-i" --disk "$T/h-i.img" --booted A --boot-id boot-1 --socket "$SOCK" \
        --reboot-cmd "echo i boot-1 >>$T/reboots" >>"$T/agent-i.log" 2>&1 & DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
ictl() { "$B/cairnctl" --socket "$SOCK" --root "$T/h-i" "$@"; }
sleep 1
[ "$(ictl status --json | json_get '(d["daemon"], d["reboot"]["strategy"], d["reboot"]["lock_phase"])')" = "(True, 'off', 'none')" ] ||
        fail63 i "daemon status: $(ictl status --json)"
ictl reboot >"$T/i-reboot.txt" || fail63 i "cairnctl reboot: $(cat "$T/i-reboot.txt")"
grep -q 'rebooting with the reboot lock held' "$T/i-reboot.txt" || fail63 i "cairnctl reboot said: $(cat "$T/i-reboot.txt")"
[ "$(reboots_of i)" = 1 ] && [ "$(holders)" = "$(mid i)" ] || fail63 i "cairnctl reboot: reboots $(reboots_of i), holders '$(holders)'"
ictl status --json | json_get '(d["reboot"]["lock_phase"], d["reboot"]["holders"], d["reboot"]["max"], d["reboot"]["lock_held"])' >"$T/i-st.json"
[ "$(cat "$T/i-st.json")" = "('rebooting', ['$(mid i)'], 1, True)" ] || fail63 i "status --json after cairnctl reboot: $(cat "$T/i-st.json")"
ictl status | grep -q "^lock holders:     1 of max 1" || fail63 i "human status holders: $(ictl status)"
kill "$DPID"; wait "$DPID" || true; DPID=
booted_v2 i; once i boot-2 B || fail63 i "i new boot"
[ -z "$(holders)" ] && [ "$(sget i REBOOT_REQUESTED)" = 0 ] || fail63 i "after cairnctl reboot's boot: holders '$(holders)', requested $(sget i REBOOT_REQUESTED)"
[ "$(reboots_of i)" = 1 ] || fail63 i "i rebooted twice"
ok "daemon: status --json (strategy, phase, holders, max); cairnctl reboot under off takes the etcd lock, reboots, releases after the boot"

# ---- J: windows: closed → waits, shows the next opening; open → reboots inside it ----
later=$(date -u -d '+3 hours' +%H:%M)
host j "REBOOT_WINDOW_START=$later" REBOOT_WINDOW_LENGTH=1h
once j boot-1 A || fail63 j "stage j"
[ "$(reboots_of j)" = 0 ] && [ -z "$(holders)" ] || fail63 j "rebooted outside the window"
want=$(date -u -d "$(date -u -d '+3 hours' +%Y-%m-%d)T$later:00Z" +%Y-%m-%dT%H:%M:%SZ)
"$B/cairnctl" --root "$T/h-j" status --json | json_get '(d["reboot"]["window"], d["reboot"]["window_open"], d["reboot"]["next_window"])' >"$T/j.json"
[ "$(cat "$T/j.json")" = "('daily $later for 1h', False, '$want')" ] || fail63 j "window status: $(cat "$T/j.json") (want next $want)"
grep -q "^LOCK_NOTE=waiting for the reboot window (daily $later for 1h): it opens at " "$T/h-j/var/lib/cairn/state" || fail63 j "window note"
# Open now, with a few seconds left: the daemon reboots within them.
host w REBOOT_STRATEGY=off
once w boot-1 A || fail63 w "stage w"
now=$(date -u +%s); start=$(( now / 60 * 60 - 60 )); len=$(( now - start + 8 ))
conf w REBOOT_STRATEGY=etcd-lock "REBOOT_WINDOW_START=$(date -u -d "@$start" +%H:%M)" "REBOOT_WINDOW_LENGTH=${len}s"
"$B/cairn-updated" --no-nice --root "$T/h-w" --disk "$T/h-w.img" --booted A --boot-id boot-1 --socket "$T/w.sock" \
        --reboot-cmd "echo w \$(date -u +%s) >>$T/reboots" >>"$T/agent-w.log" 2>&1 & DPID=$!
for _ in $(seq 200); do [ "$(reboots_of w)" = 1 ] && break; sleep 0.1; done
kill "$DPID"; wait "$DPID" || true; DPID=
[ "$(reboots_of w)" = 1 ] || fail63 w "no reboot inside an open window"
at=$(sed -n 's/^w //p' "$T/reboots")
[ "$at" -ge "$start" ] && [ "$at" -le $((start + len)) ] || fail63 w "rebooted at $at, window [$start, $((start + len))]"
etcdctl --endpoints "$E1" put $ETCD_KEY '{"semaphore":1,"max":1,"holders":null}' >/dev/null # free w's slot
ok "windows: closed → no reboot, status shows daily $later and the next opening $want; open → rebooted inside it"

# ---- K: cairnctl lock verbs (defaults from update.conf) and the cairn-lockctl alias ----
C() { "$B/cairnctl" --root "$T/h-a" "$@"; }
[ "$(C lock-status --json)" = '{"key":"coreos.com/updateengine/rebootlock/semaphore","semaphore":1,"max":1,"holders":[]}' ] ||
        fail "cairnctl lock-status --json: $(C lock-status --json)"
[ "$(C lock)" = "locked: $(mid a)" ] || fail "cairnctl lock (this machine)"
[ "$(holders)" = "$(mid a)" ] || fail "etcdctl does not see cairnctl's lock"
[ "$(C --json set-max 3)" = '{"key":"coreos.com/updateengine/rebootlock/semaphore","old_max":1,"max":3}' ] || fail "cairnctl set-max"
C lock someone-else >/dev/null && C unlock someone-else >/dev/null || fail "cairnctl lock/unlock ID"
[ "$("$B/cairn-lockctl" --endpoint "$E1" status)" = "$(printf 'Available: 2\nMax: 3\n\nMACHINE ID\n%s' "$(mid a)")" ] || fail "cairn-lockctl alias status"
set +e; C lock-status --endpoint "http://127.0.0.1:$dead" --timeout 2 2>"$T/k.err"; rc=$?; set -e
[ $rc = 1 ] && grep -q "cannot connect" "$T/k.err" || fail "lock-status against a dead endpoint: rc=$rc $(cat "$T/k.err")"
C unlock >/dev/null && C set-max 1 >/dev/null || fail "cairnctl unlock/set-max"
ok "cairnctl lock-status/lock/unlock/set-max against etcd (update.conf's ETCD_ENDPOINTS, --json, --endpoint), cairn-lockctl alias"

# ---- L: FleetLock client against a protocol test server ----
FLPORT_FILE=$T/fl.port
python3 - "$FLPORT_FILE" "$T/fl.log" <<'PY' >>"$T/fl.out" 2>&1 & FLPID=$!
import http.server, json, sys
sem = {}  # group -> holders (max 1)
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        log.write(json.dumps({"path": self.path, "proto": self.headers.get("fleet-lock-protocol"),
                              "ctype": self.headers.get("Content-Type"), "body": body.decode()}) + "\n")
        if self.headers.get("fleet-lock-protocol") != "true":
            return self.answer(400, {"kind": "missing_header", "value": "fleet-lock-protocol header missing"})
        try:
            p = json.loads(body)["client_params"]; i, g = p["id"], p["group"]
        except Exception:
            return self.answer(400, {"kind": "bad_body", "value": "client_params"})
        h = sem.setdefault(g, [])
        if self.path == "/base/v1/pre-reboot":
            if i not in h:
                if len(h) >= 1:
                    return self.answer(409, {"kind": "failed_lock_semaphore_full", "value": "semaphore currently full\x1b[2J"})
                h.append(i)
            return self.answer(200, {})
        if self.path == "/base/v1/steady-state":
            if i in h: h.remove(i)
            return self.answer(200, {})
        return self.answer(404, {"kind": "not_found", "value": self.path})
    def answer(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
OTHER+=("$FLPID")
for _ in $(seq 100); do [ -s "$FLPORT_FILE" ] && break; sleep 0.05; done
FL=http://127.0.0.1:$(cat "$FLPORT_FILE")
flpost() { curl -s -o /dev/null -w '%{http_code}' -H 'fleet-lock-protocol: true' -d "{\"client_params\":{\"id\":\"$2\",\"group\":\"default\"}}" "$FL/base/v1/$1"; }
[ "$(flpost pre-reboot other-node)" = 200 ] || fail "test server: pre-reboot for other-node"
host k REBOOT_STRATEGY=fleetlock "FLEETLOCK_URL=$FL/base/"
once k boot-1 A || fail63 k "stage k"
[ "$(reboots_of k)" = 0 ] || fail63 k "rebooted while the FleetLock semaphore was full"
grep -q '^LOCK_NOTE=waiting for the reboot lock: no slot free (FleetLock .*/base/v1/pre-reboot.: HTTP 409, failed_lock_semaphore_full: semaphore currently full\\x1b\[2J); retry in' "$T/h-k/var/lib/cairn/state" ||
        fail63 k "full semaphore note (with the server's error body, escaped)"
[ "$(flpost steady-state other-node)" = 200 ] || fail "test server: steady-state"
sleep 2
once k boot-1 A || fail63 k "k with a free slot"
[ "$(reboots_of k)" = 1 ] || fail63 k "k did not reboot with a free FleetLock slot"
booted_v2 k; once k boot-2 B || fail63 k "k new boot"
python3 - "$T/fl.log" "$(mid k)" <<'PY' || fail63 k "FleetLock requests: $(cat "$T/fl.log")"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
mine = [r for r in reqs if sys.argv[2] in r["body"]]
paths = [r["path"] for r in mine]
assert paths == ["/base/v1/pre-reboot", "/base/v1/pre-reboot", "/base/v1/steady-state"], paths
for r in mine:
    assert r["proto"] == "true" and r["ctype"] == "application/json", r
    assert json.loads(r["body"]) == {"client_params": {"id": sys.argv[2], "group": "default"}}, r["body"]
PY
[ "$(flpost pre-reboot third-node)" = 200 ] || fail63 k "k's FleetLock slot was not given back"
ok "FleetLock client: POST <base>/v1/pre-reboot and /v1/steady-state, header fleet-lock-protocol: true, body {client_params:{id,group}}; a full semaphore (409, kind failed_lock_semaphore_full) → no reboot"

# ---- M: against cairn-server's own FleetLock endpoints (FLEET_SERVER: another build of it) ----
FS=${FLEET_SERVER:-$B/cairn-server}
if "$FS" --help 2>&1 | grep -q -- '--lock-group'; then
        : >"$T/fs.out"
        "$FS" --reldir "$T/rel" --db "$T/fs.sqlite" --listen 127.0.0.1:0 --lock-group default=1 >"$T/fs.out" 2>>"$T/fs.log" & FSPID=$!
        OTHER+=("$FSPID")
        for _ in $(seq 200); do grep -q "listening on" "$T/fs.out" 2>/dev/null && break; sleep 0.05; done
        FSURL=http://127.0.0.1:$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/fs.out")
        fslocks() { curl -sf "$FSURL/api/v1/locks" | python3 -c 'import json,sys; g=[x for x in json.load(sys.stdin)["groups"] if x["group"]=="default"][0]; print(" ".join(h["id"] for h in g["holders"]))'; }
        fspost() { curl -s -o /dev/null -w '%{http_code}' -H 'fleet-lock-protocol: true' -d "{\"client_params\":{\"id\":\"$2\",\"group\":\"default\"}}" "$FSURL/v1/$1"; }
        [ "$(fspost pre-reboot other-node)" = 200 ] || fail "cairn-server FleetLock: curl pre-reboot"
        host m REBOOT_STRATEGY=fleetlock "FLEETLOCK_URL=$FSURL/"
        once m boot-1 A || fail63 m "stage m"
        [ "$(reboots_of m)" = 0 ] || fail63 m "rebooted while cairn-server's semaphore was full"
        grep -q '^LOCK_NOTE=waiting for the reboot lock: no slot free (FleetLock .*HTTP 409, failed_lock_semaphore_full' "$T/h-m/var/lib/cairn/state" ||
                fail63 m "cairn-server full semaphore note"
        [ "$(fspost steady-state other-node)" = 200 ] || fail "cairn-server FleetLock: curl steady-state"
        sleep 2
        once m boot-1 A || fail63 m "m with a free slot"
        [ "$(reboots_of m)" = 1 ] && [ "$(fslocks)" = "$(mid m)" ] || fail63 m "m: reboots $(reboots_of m), cairn-server holders '$(fslocks)'"
        booted_v2 m; once m boot-2 B || fail63 m "m new boot"
        [ -z "$(fslocks)" ] || fail63 m "m did not release its cairn-server slot: '$(fslocks)'"
        ok "the agent against cairn-server's FleetLock endpoints: refused while full, then locked (GET /api/v1/locks shows it), released after the boot"
else
        echo "note: $FS has no FleetLock endpoints (--lock-group); the part against cairn-server did not run"
fi
echo PASS
