#!/bin/bash
# Runs every suite of `make check`, carrying on past a failing one so that the summary
# shows everything, then sums the results up (tests/summary.py) and fails if any suite
# failed, produced no result, or ran no test.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
RESULTS=$PWD/build/test-results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
failed_steps=()

step() {
    local name=$1
    shift
    echo "=== $name: $*"
    local start=$SECONDS
    if "$@"; then
        echo "=== $name: ok ($((SECONDS - start)) s)"
    else
        echo "=== $name: FAILED ($((SECONDS - start)) s)"
        failed_steps+=("$name")
    fi
}

pytest_suite() {
    local name=$1
    shift
    # -p no:cacheprovider: keep the tree clean; -rfEs: say why anything failed or skipped
    $PY -m pytest -p no:cacheprovider -rfEs --junitxml="$RESULTS/$name.xml" "$@"
}

step build make -s all
step unit make -s unit RESULTS="$RESULTS"
step unit-asan make -s BUILD=build/asan SANITIZE=1 SUFFIX=-asan unit RESULTS="$RESULTS"
step python pytest_suite python tests/python
step lab pytest_suite lab tests/lab
step integration pytest_suite integration tests/integration
step fuzz make -s fuzz-short RESULTS="$RESULTS"

$PY tests/summary.py "$RESULTS" --expect unit,unit-asan,python,lab,integration,fuzz
rc=$?
if [ ${#failed_steps[@]} -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
    rc=1
fi
exit $rc
