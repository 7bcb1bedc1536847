#!/usr/bin/env bash
# tests/integration/64-lock-race.long.sh — the lock race test at full size (make check-long): two racers x 1,000
# rounds on one node, and 150 locks between the cluster's failures.
LOCK_RACE_ROUNDS=${LOCK_RACE_ROUNDS:-1000} LOCK_RACE_PHASE_LOCKS=${LOCK_RACE_PHASE_LOCKS:-150} \
        exec "$(dirname "$0")/64-lock-race.sh"
