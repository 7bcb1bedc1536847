#!/usr/bin/env bash
# scripts/bench/run.sh — `make bench`: every benchmark, each printing its own side-by-side table against
# its baseline. Not part of make check; timings are never assertions. BENCH=name to run one.
set -uo pipefail
cd "$(dirname "$0")/../.."
rc=0
for b in mkimage payload server apply delta verity lock fleetlock tpm; do
        [ -n "${BENCH:-}" ] && [ "$BENCH" != "$b" ] && continue
        [ -x "scripts/bench/$b.sh" ] || [ -f "scripts/bench/$b.sh" ] || continue
        echo "== $b"
        bash "scripts/bench/$b.sh" || { echo "bench $b failed"; rc=1; }
        echo
done
exit $rc
