#!/bin/bash
# tests/fuzz/run.sh SECONDS RESULTS_DIR FUZZER...
# Runs each libFuzzer target for SECONDS on a copy of its seed corpus and writes a JUnit
# file: a target passes when it ran and found no crash. Reports executions per target.
set -u
seconds=$1
results=$2
shift 2
mkdir -p "$results"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
xml="$results/fuzz.xml"
cases=""
n=0
for fuzzer in "$@"; do
    name=$(basename "$fuzzer")
    corpus_name=${name#fuzz_}
    seeds=tests/fuzz/corpus/$corpus_name
    mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
    if [ -d "$seeds" ]; then
        cp -r "$seeds/." "$work/$name/corpus/"
    else
        echo "fuzz: $name has no seed corpus at $seeds"
        rc=1
    fi
    log=$work/$name.log
    "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$name/artifacts/" "$work/$name/corpus" >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crashes=$(find "$work/$name/artifacts" -type f | wc -l)
    echo "fuzz: $name: ${execs:-0} executions in ${seconds}s, $crashes crash(es), exit $status"
    n=$((n + 1))
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ] || [ -z "$execs" ]; then
        rc=1
        tail -n 40 "$log"
        mkdir -p build/fuzz-crashes && cp -r "$work/$name/artifacts/." build/fuzz-crashes/ 2>/dev/null
        cases="$cases<testcase classname=\"fuzz\" name=\"$name\"><failure message=\"exit $status, $crashes crashes\"/></testcase>"
    else
        cases="$cases<testcase classname=\"fuzz\" name=\"$name\"><system-out>${execs} executions</system-out></testcase>"
    fi
done
echo "<testsuite name=\"fuzz\" tests=\"$n\">$cases</testsuite>" > "$xml"
exit $rc
