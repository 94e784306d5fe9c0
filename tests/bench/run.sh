#!/bin/bash
# tests/bench/run.sh [--quick]      (make bench = the full run, as root)
#
# Full: the model over the whole grid, the log scanner on 1 GiB, the lab table (real
# migrations, every policy) and the agent's own cost, then tests/bench/README.md from the
# results in tests/bench/results/. About 20-25 minutes on a 2-core machine.
# --quick: the model on a small grid and the log scanner on 64 MiB (under a minute, no lab);
# its results go to tests/bench/results/quick/ and the committed ones stay as they are.
#
# The lab uses MPLAB_PREFIX (default mpbench) and MPLAB_RABBIT_PORT (default 5713).
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
export MPLAB_PREFIX=${MPLAB_PREFIX:-mpbench}
export MPLAB_RABBIT_PORT=${MPLAB_RABBIT_PORT:-5713}
results=tests/bench/results
case "${1:-}" in
    --quick) quick=1 ;;
    "") quick=0 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
stamp() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)

if [ "$quick" = 1 ]; then
    out=$results/quick
    mkdir -p "$out"
    stamp "model (quick grid)"
    $PY -m tests.bench.model.run --quick --out "$out"
    stamp "log scanner (64M)"
    # logs/run.sh writes results/logs.json: keep the committed full-size one
    keep=$(mktemp)
    trap 'rm -f "$keep"' EXIT
    [ -f $results/logs.json ] && cp $results/logs.json "$keep"
    tests/bench/logs/run.sh 64M || stamp "log scanner: exit status $? (see $out/logs.json)"
    mv $results/logs.json "$out/logs.json"
    [ -s "$keep" ] && cp "$keep" $results/logs.json
    stamp "quick run done in $(( $(date +%s) - start )) s; results in $out"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "bench: the lab parts need root (namespaces, libvirtd, QEMU)" >&2
    exit 1
fi
mkdir -p $results
stamp "model (full grid)"
$PY -m tests.bench.model.run --out $results
stamp "log scanner (1G)"
# its own targets decide its exit status; a miss is in its results, not a reason to stop
tests/bench/logs/run.sh 1G || stamp "log scanner: exit status $? (see results/logs.json)"
stamp "lab: stressed-memory table, every policy"
$PY -m tests.bench.lab.run --out $results
stamp "lab: the agent's own cost"
$PY -m tests.bench.agent.run --out $results
stamp "README"
$PY -m tests.bench.report
stamp "done in $(( $(date +%s) - start )) s; results in $results, summary in tests/bench/README.md"
