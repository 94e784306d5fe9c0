#!/bin/bash
# Runs every suite of `make check`, carrying on past a failing one so that the summary
# shows everything, then sums the results up (tests/summary.py) and fails if any suite
# failed, produced no result, or ran no test, or if any step failed.
#
# Stacks: the suites run on this machine (Debian 12), then the fresh-machine test
# (tests/stacks/fresh.py) and the same suites again in a Debian 13 root
# (tests/stacks/stack.py), whose check.sh runs with MIGPILOT_STACK=debian13.
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
        echo "$name" >> "$RESULTS/failed-steps.txt"
    fi
}

# A hung test must fail, not eat CI's time: pytest-timeout (thread method, since a test may
# be blocked inside libvirt's C client) dumps every thread's stack and ends pytest after
# PER_TEST_TIMEOUT s; `timeout` caps the whole suite. Either way the suite's JUnit file is
# missing or failing, so the summary fails, and lab_down removes what the dead run left.
PER_TEST_TIMEOUT=${PER_TEST_TIMEOUT:-300}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1800}

pytest_suite() {
    local name=$1
    shift
    # -p no:cacheprovider: keep the tree clean; -rfEs: say why anything failed or skipped
    timeout --kill-after=30 "$SUITE_TIMEOUT" \
        $PY -m pytest -p no:cacheprovider -rfEs --timeout="$PER_TEST_TIMEOUT" \
        --timeout-method=thread --junitxml="$RESULTS/$name.xml" "$@"
}

# One lab migration with the agent built with ASan + UBSan, and one under valgrind: a leak,
# an invalid access or undefined behaviour makes the agent exit non-zero, which the test's
# fixture asserts against (it checks every agent's exit status).
agent_asan_suite() {
    ( export MIGPILOT_AGENT=$PWD/build/asan/migpilot-agent
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
      pytest_suite agent-asan tests/integration/test_agent.py -k stalled_migration )
}
agent_valgrind_suite() {
    ( export MIGPILOT_AGENT_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full \
--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
      pytest_suite agent-valgrind tests/integration/test_agent.py -k converging )
}

# Lab, RabbitMQ and agents of a suite that was killed (their fixtures never tore down).
lab_down() {
    $PY -m tests.lab.labctl down >/dev/null || $PY -m tests.lab.labctl down
}

STACK=${MIGPILOT_STACK:-}

step build make -s all
step unit make -s unit RESULTS="$RESULTS"
step unit-asan make -s BUILD=build/asan SANITIZE=1 SUFFIX=-asan unit RESULTS="$RESULTS"
step python pytest_suite python tests/python
step lab pytest_suite lab tests/lab
lab_down
step integration pytest_suite integration tests/integration
lab_down
if [ -n "$STACK" ]; then
    # another release's root (tests/stacks/stack.py): its own suites, summed by the host
    exit $(( ${#failed_steps[@]} > 0 ))
fi
step asan-agent make -s asan-agent
step agent-asan agent_asan_suite
lab_down
step agent-valgrind agent_valgrind_suite
lab_down
step fuzz make -s fuzz-short RESULTS="$RESULTS"
step fresh $PY -m tests.stacks.fresh --junit "$RESULTS/fresh.xml"
step debian13 $PY -m tests.stacks.stack --suite trixie --name debian13 \
    --results "$RESULTS/debian13"

$PY tests/summary.py "$RESULTS" --stack debian12 \
    --expect unit,unit-asan,python,lab,integration,agent-asan,agent-valgrind,fuzz,fresh \
    --sub debian13:unit,unit-asan,python,lab,integration
