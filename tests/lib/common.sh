# tests/lib/common.sh — what every test and benchmark script shares. Source it; it defines:
#   fail MSG...        print "FAIL: MSG", the tails of the files in FAIL_LOGS (words, globs allowed) and, in a test
#                      that boots VMs (tests/lib/vm.sh), each guest's console tail; exit 1
#   on_exit CMD...     run CMD at exit (the last registered first); KEEP_TMP=1 keeps the directories of tmpdir
#   tmpdir VAR NAME    VAR= a fresh directory /tmp/cairn-NAME.XXXXXX, removed at exit (not in a subshell: the
#                      removal is registered in this shell)
#   start_cairn_server VAR OUT LOG ARGS...
#                      start cairn-server ($CAIRN_SERVER or build/bin/cairn-server) on 127.0.0.1:0 with ARGS, wait
#                      for its "listening on" line in OUT (stderr appended to LOG); sets VAR_PID, VAR_PORT and
#                      VAR_URL (http://127.0.0.1:PORT). Fails the test if it exits or prints no port in 5 s.
# The caller keeps `set -euo pipefail` its own business.

FAIL_LOGS=${FAIL_LOGS:-}
FAIL_TAIL=${FAIL_TAIL:-20}
fail() {
        echo "FAIL: $*"
        local f
        for f in $FAIL_LOGS; do
                [ -f "$f" ] && { echo "--- $f (tail)"; tail -n "$FAIL_TAIL" "$f"; }
        done
        ! declare -F vm_fail_report >/dev/null || vm_fail_report
        exit 1
}

CAIRN_EXIT_CMDS=()
on_exit() { CAIRN_EXIT_CMDS+=("$*"); }
cairn_run_exit() {
        local i
        for ((i = ${#CAIRN_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
                eval "${CAIRN_EXIT_CMDS[$i]}" || true
        done
}
trap cairn_run_exit EXIT

tmpdir() { # VAR NAME
        local d
        d=$(mktemp -d "/tmp/cairn-$2.XXXXXX")
        on_exit "[ -n \"\${KEEP_TMP:-}\" ] || rm -rf '$d'"
        printf -v "$1" '%s' "$d"
}

start_cairn_server() { # VAR OUT LOG ARGS...
        local var=$1 out=$2 log=$3 bin=${CAIRN_SERVER:-$PWD/build/bin/cairn-server} pid port
        shift 3
        : >"$out"
        "$bin" --listen 127.0.0.1:0 "$@" >"$out" 2>>"$log" &
        pid=$!
        on_exit "kill $pid 2>/dev/null && wait $pid 2>/dev/null"
        for _ in $(seq 100); do
                grep -q "listening on" "$out" 2>/dev/null && break
                kill -0 "$pid" 2>/dev/null || fail "cairn-server exited at start: $(tail -n 3 "$log")"
                sleep 0.05
        done
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [ -n "$port" ] || fail "cairn-server did not print its port"
        printf -v "${var}_PID" '%s' "$pid"
        printf -v "${var}_PORT" '%s' "$port"
        printf -v "${var}_URL" '%s' "http://127.0.0.1:$port"
}
