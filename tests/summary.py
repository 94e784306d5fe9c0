#!/usr/bin/python3
"""Sums up the results of `make check`: libcheck XML logs and JUnit XML files.

Prints one line per suite and a final `make check: N passed, N failed` line. Exits 1 when
a test failed or was skipped (nothing may skip itself green), when an expected suite left
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('results')
    parser.add_argument('--expect', default='',
                        help='comma-separated suites that must have results')
    args = parser.parse_args()
    totals = {}
    for path in sorted(glob.glob(os.path.join(args.results, '*.xml'))):
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
    ok = True
    for suite in [s for s in args.expect.split(',') if s]:
        if suite not in totals:
            print('summary: suite %s produced no result' % suite)
            ok = False
    passed = failed = skipped = 0
    for suite, (p, f, s) in sorted(totals.items()):
        print('summary: %-12s %4d passed, %d failed, %d skipped' % (suite, p, f, s))
        passed += p
        failed += f
        skipped += s
        if p == 0 and f == 0:
            print('summary: suite %s ran no test' % suite)
            ok = False
    if skipped:
        print('summary: %d test(s) skipped: nothing may skip itself green' % skipped)
    print('make check: %d passed, %d failed' % (passed, failed + skipped))
    if failed or skipped or passed == 0 or not ok:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
