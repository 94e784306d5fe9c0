#!/usr/bin/python3
"""`make check` on another Debian release, in a root of its own.

    /usr/bin/python3 -m tests.stacks.stack --suite trixie --name debian13 --results DIR

The cached root of that release with every package of `make deps` (tests/stacks/roots.py;
made once per package list) is copied, a clean clone of the committed tree goes in, and
`tests/check.sh` runs there with MIGPILOT_STACK=<name>: the same suites as on the host,
against that release's libvirt, QEMU, RabbitMQ, nova, oslo.messaging and Ceilometer. The
result files come back into DIR for tests/summary.py. Every process the run left in the root
is stopped by PID and the copy is removed, also after a failure or a timeout.
"""
import argparse
import os
import shutil
import sys
import tempfile

from tests.stacks import roots

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREE = '/root/migpilot'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--suite', default='trixie', help='Debian suite of the root')
    parser.add_argument('--name', default='debian13', help='stack name in the summary')
    parser.add_argument('--results', required=True, help='where the result files go')
    parser.add_argument('--timeout', type=int, default=2700, help='seconds for the run')
    parser.add_argument('--keep', action='store_true', help='keep the root (debugging)')
    args = parser.parse_args()
    shutil.rmtree(args.results, ignore_errors=True)   # no result of an earlier run counts
    os.makedirs(args.results)
    workdir = tempfile.mkdtemp(prefix='migpilot-%s.' % args.name, dir='/var/tmp')
    root = os.path.join(workdir, 'root')
    log_path = os.path.join(args.results, 'stack-setup.log')
    rc = 1
    try:
        stack = roots.stack_root(args.suite, REPO, log_path)
        roots.copy_root(stack, root)
        roots.clone_tree(REPO, root + TREE)
        print('stack %s: %s, make check in %s' % (args.name, args.suite, root), flush=True)
        rc = roots.run(root, ['/bin/bash', '-c', 'cd %s && make check' % TREE],
                       env={'MIGPILOT_STACK': args.name}, timeout=args.timeout, check=False)
    except roots.RootError as exc:
        print('stack %s: %s' % (args.name, exc), file=sys.stderr)
    finally:
        inner = root + TREE + '/build/test-results'
        if os.path.isdir(inner):
            for name in os.listdir(inner):
                src = os.path.join(inner, name)
                if os.path.isfile(src):
                    shutil.copy(src, args.results)
        if not args.keep:
            try:
                roots.remove_root(root)
                shutil.rmtree(workdir)
            except roots.RootError as exc:
                print('stack %s: %s' % (args.name, exc), file=sys.stderr)
                rc = rc or 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
