#!/usr/bin/env bash
# tests/integration/50-agent-resume.long.sh — the kill -9 resume test at 100 random points (make check-long).
CAIRN_RESUME_RANDOM=${CAIRN_RESUME_RANDOM:-100} exec "$(dirname "$0")/50-agent-resume.sh"
