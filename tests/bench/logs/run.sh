#!/bin/bash
# tests/bench/logs/run.sh [SIZE]   (default 1G)
# Generates a synthetic nova-compute log of SIZE in a temporary directory (removed at exit),
# then measures `migpilot logs --json` (the C scanner through the extension) and the pure
# Python regex baseline on it: MB/s, the ratio, peak RSS (also on a 1/8 size file, to show
# memory does not grow with the input). Results: tests/bench/results/logs.json.
# MIGPILOT_PYTHONPATH: where the built _migpilot is (default: the repo, `make python`).
set -eu
cd "$(dirname "$0")/../../.."
size=${1:-1G}
work=$(mktemp -d "${TMPDIR:-/tmp}/migpilot-logs-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 tests/bench/logs/gen.py "$size" "$work/nova-compute.log"
sync   # no writeback of the new file during the measurements
small_bytes=$(( $(stat -c %s "$work/nova-compute.log") / 8 ))
head -c "$small_bytes" "$work/nova-compute.log" > "$work/small.log"
/usr/bin/python3 tests/bench/logs/bench.py "$work/nova-compute.log" "$work/small.log" \
    tests/bench/results/logs.json
