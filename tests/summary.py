#!/usr/bin/python3
"""Sums up the results of `make check`: libcheck XML logs and JUnit XML files.

Prints one line per suite of each stack and a final `check: N passed, N failed` line, in
which every failed step, missing or unreadable result and test file that ran no test
counts as a failure. Exits 1 when a test failed or was skipped (nothing may skip itself green), when an expected suite left
no result, or when no test ran at all.
"""
import argparse
import glob
import os
import sys
import xml.etree.ElementTree as ET


def _local(tag):
    return tag.rsplit('}', 1)[-1]


def count_file(path):
    """Returns (passed, failed, skipped) for one result file."""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    checks = [e for e in root.iter() if _local(e.tag) == 'test' and e.get('result')]
    if checks:
        # libcheck: <testsuites><suite><test result="success|failure|error">
        for test in checks:
            if test.get('result') == 'success':
                passed += 1
            else:
                failed += 1
        return passed, failed, skipped
    for case in root.iter('testcase'):
        kinds = {_local(child.tag) for child in case}
        if kinds & {'failure', 'error'}:
            failed += 1
        elif 'skipped' in kinds:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def read_failed_steps(results):
    """The steps of tests/check.sh that failed (one name a line in failed-steps.txt)."""
    try:
        with open(os.path.join(results, 'failed-steps.txt')) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def collect(results, stack, expect):
    """{suite: (passed, failed, skipped)} of one stack's result files, problems (lines)."""
    totals = {}
    problems = []
    for path in sorted(glob.glob(os.path.join(results, '*.xml'))):
        suite = os.path.basename(path)[:-4].split('-test_')[0]
        try:
            counts = count_file(path)
        except ET.ParseError as exc:
            print('summary: %s: unreadable result file: %s' % (path, exc))
            counts = (0, 1, 0)
        if counts == (0, 0, 0):
            # a test file that ran nothing fails, even when its suite's other files ran
            print('summary: %s ran no test' % path)
            counts = (0, 1, 0)
        old = totals.get(suite, (0, 0, 0))
        totals[suite] = tuple(a + b for a, b in zip(old, counts))
    for suite in expect:
        if suite not in totals:
            problems.append('%s/%s produced no result' % (stack, suite))
    for suite, (p, f, s) in sorted(totals.items()):
        if p == 0 and f == 0:
            problems.append('%s/%s ran no test' % (stack, suite))
    return totals, problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('results')
    parser.add_argument('--stack', default='host', help='name of the stack of RESULTS')
    parser.add_argument('--expect', default='',
                        help='comma-separated suites that must have results')
    parser.add_argument('--sub', action='append', default=[], metavar='NAME:SUITES',
                        help='a stack whose results are in RESULTS/NAME, with the suites '
                        'it must have (comma-separated)')
    args = parser.parse_args()
    stacks = [(args.stack, args.results, args.expect)]
    for sub in args.sub:
        name, _, expect = sub.partition(':')
        stacks.append((name, os.path.join(args.results, name), expect))
    passed = failed = skipped = 0
    ok = True
    for stack, results, expect in stacks:
        totals, problems = collect(results, stack,
                                   [s for s in expect.split(',') if s])
        for suite, (p, f, s) in sorted(totals.items()):
            print('summary: %-9s %-14s %4d passed, %d failed, %d skipped'
                  % (stack, suite, p, f, s))
            passed += p
            failed += f
            skipped += s
        steps = read_failed_steps(results)
        if steps:
            # a step can fail with no test failing (a build, a suite killed by its
            # timeout): each counts as one failure
            print('summary: %-9s failed steps: %s' % (stack, ' '.join(steps)))
            failed += len(steps)
        for line in problems:
            print('summary: %s' % line)
            failed += 1
            ok = False
    if skipped:
        print('summary: %d test(s) skipped: nothing may skip itself green' % skipped)
    print('summary: stacks: %s' % ', '.join(s[0] for s in stacks))
    print('check: %d passed, %d failed' % (passed, failed + skipped))
    if failed or skipped or passed == 0 or not ok:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
