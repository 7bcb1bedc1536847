#!/usr/bin/env bash
# tests/integration/50-agent-resume.long.sh — the kill -9 resume test at 20 random points (make check-long).
CAIRN_RESUME_RANDOM=${CAIRN_RESUME_RANDOM:-20} exec "$(dirname "$0")/50-agent-resume.sh"
