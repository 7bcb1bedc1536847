#!/usr/bin/env bash
# tests/run.sh — run every test: unit binaries (plain, ASan+UBSan, and ThreadSanitizer for the threaded ones), fuzz corpus replays, and the
# integration scripts (in parallel, CAIRN_JOBS at a time, longest first). Each prints ok/FAIL/skip; the last line is
# "N passed, N failed, N skipped". Exit status 0 only if nothing failed.
set -u
cd "$(dirname "$0")/.."
LONG=0
[ "${1:-}" = "--long" ] && LONG=1
JOBS=${CAIRN_JOBS:-2}
ONLY=${CAIRN_TESTS:-}          # optional regex to select tests by name
LOGDIR=build/test-logs
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
pass=0 fail=0 skip=0 failed=()

record() { # name rc seconds
        local name=$1 rc=$2 secs=$3
        case $rc in
        0) pass=$((pass + 1)); echo "ok      $name (${secs}s)" ;;
        77) skip=$((skip + 1)); echo "skip    $name: $(grep -m1 -i 'skip' "$LOGDIR/$name.log" || true)" ;;
        *) fail=$((fail + 1)); failed+=("$name"); echo "FAIL    $name (rc=$rc, ${secs}s, log: $LOGDIR/$name.log)"
           tail -n 30 "$LOGDIR/$name.log" | sed 's/^/    | /' ;;
        esac
}

selected() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }

# 1. Unit tests, plain then sanitized (ASan+UBSan: all; ThreadSanitizer: the threaded ones).
for dir in build/tests build/asan/tests build/tsan/tests; do
        [ -d $dir ] || continue
        for t in $dir/test-*; do
                [ -x "$t" ] || continue
                case $dir in build/asan/*) suffix=.asan ;; build/tsan/*) suffix=.tsan ;; *) suffix= ;; esac
                name=unit/$(basename "$t")$suffix
                selected "$name" || continue
                log=$LOGDIR/${name//\//_}.log
                start=$SECONDS
                ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1 \
                        timeout 600 "$t" >"$log" 2>&1
                rc=$?
                mv "$log" "$LOGDIR/$name.log" 2>/dev/null || { mkdir -p "$(dirname "$LOGDIR/$name")"; mv "$log" "$LOGDIR/$name.log"; }
                record "$name" $rc $((SECONDS - start))
        done
done

# 2. Fuzz targets replay their committed corpora under ASan+UBSan.
for f in build/fuzz/fuzz-*; do
        [ -x "$f" ] || continue
        name=fuzz/$(basename "$f")
        selected "$name" || continue
        corpus=tests/fuzz/corpus/$(basename "$f" | sed 's/^fuzz-//')
        mkdir -p "$LOGDIR/fuzz"
        start=$SECONDS
        if [ -d "$corpus" ]; then
                timeout 300 "$f" -runs=0 -timeout=10 -error_exitcode=1 -timeout_exitcode=1 "$corpus" >"$LOGDIR/$name.log" 2>&1
                rc=$?
        else
                echo "skip: no corpus at $corpus" >"$LOGDIR/$name.log"; rc=77
        fi
        record "$name" $rc $((SECONDS - start))
done

# 3. Integration tests, CAIRN_JOBS in parallel. *.long.sh only with --long.
mkdir -p "$LOGDIR/integration"
declare -A pids=() starts=()
run_one() {
        local t=$1 name=integration/$(basename "$1" .sh)
        ( timeout "${CAIRN_TEST_TIMEOUT:-1500}" bash "$t" >"$LOGDIR/$name.log" 2>&1 </dev/null ) &
        pids[$name]=$!; starts[$name]=$SECONDS
}
reap() { # wait for any one job
        while :; do
                for name in "${!pids[@]}"; do
                        if ! kill -0 "${pids[$name]}" 2>/dev/null; then
                                wait "${pids[$name]}"; local rc=$?
                                record "$name" $rc $((SECONDS - ${starts[$name]}))
                                unset "pids[$name]"
                                return
                        fi
                done
                sleep 0.5
        done
}
# Longest first (a test's "# cost: SECONDS" header line, measured on the 2-core reference machine; 20 without
# one), so the few long QEMU tests start at once and the short ones fill the gaps: with JOBS slots the run ends
# close to (sum of costs) / JOBS instead of waiting for a long test that started last.
order() {
        local t cost
        for t in tests/integration/*.sh; do
                [ -f "$t" ] || continue
                case $t in *.long.sh) [ $LONG = 1 ] || continue ;; esac
                selected "integration/$(basename "$t" .sh)" || continue
                cost=$(sed -n '1,12{s/^# cost: \([0-9][0-9]*\).*/\1/p}' "$t" | head -n 1)
                printf '%s %s\n' "${cost:-20}" "$t"
        done | sort -s -k1,1nr | cut -d' ' -f2-
}
while read -r t; do
        while [ ${#pids[@]} -ge "$JOBS" ]; do reap; done
        run_one "$t"
done < <(order)
while [ ${#pids[@]} -gt 0 ]; do reap; done

echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
