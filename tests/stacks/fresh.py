#!/usr/bin/python3
"""The fresh-machine test: the README's set-up path on a pristine Debian root.

    /usr/bin/python3 -m tests.stacks.fresh [--suite bookworm] [--junit FILE] [--keep]

A copy of the cached minbase root (tests/stacks/roots.py: made once with debootstrap under
/var/cache/migpilot/roots, packages from the host's apt archive cache), a clean clone of
the committed tree, then what a new user types, in order:

  apt-get install make          the README's step before its first command
  make -j2                      the FIRST command: installs the build packages, builds
  migpilot-agent --version, import _migpilot, migpilot --help (from the tree)
  make install DESTDIR=...      and the installed agent and CLI
  make deps                     every package the tests, the lab and the demo need
  dpkg-buildpackage -b          the .debs, installed with apt; --check-config and the CLI
                                run from the installed files

and, in a second fresh root, the same first command with the build packages cut short:
it must fail and name what is missing (the test would catch a missing install step).
"""
import argparse
import os
import shutil
import sys
import tempfile

from tests.stacks import roots
from tests.stacks.junit import Suite

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREE = '/root/migpilot'          # where the clone sits inside the root
STEP_TIMEOUT = 1800


class Fresh:
    def __init__(self, suite, workdir, log_path):
        self.suite = suite
        self.root = os.path.join(workdir, 'root')
        self.log_path = log_path

    def sh(self, script, timeout=STEP_TIMEOUT, check=True):
        """Runs a shell script inside the root, in the clone; its output goes to the log."""
        with open(self.log_path, 'a') as f:
            f.write('\n### %s\n' % script)
        return roots.run(self.root, ['/bin/bash', '-ec', 'cd %s\n%s' % (TREE, script)],
                         timeout=timeout, log_path=self.log_path, check=check)

    def output(self, script):
        rc = self.sh('( %s ) > /tmp/step.out 2>&1' % script, check=False)
        with open(os.path.join(self.root, 'tmp', 'step.out')) as f:
            text = f.read()
        if rc != 0:
            raise AssertionError('%s: exit %d: %s' % (script, rc, text[-800:]))
        return text

    def prepare(self):
        roots.copy_root(roots.base_root(self.suite), self.root)
        roots.write_sources(self.root, self.suite)
        roots.clone_tree(REPO, self.root + TREE)
        self.sh('apt-get update -q && apt-get install -y -q --no-install-recommends make')

    def first_command(self):
        self.sh('make -j2')
        for path in ('build/migpilot-agent', 'build/libmigpilot-core.a'):
            if not os.path.exists(os.path.join(self.root + TREE, path)):
                raise AssertionError('make -j2 left no %s' % path)

    def expect(self, script, needle):
        text = self.output(script)
        if needle not in text:
            raise AssertionError('%s printed %r, expected %r' % (script, text[-500:], needle))

    def version(self):
        return self.output('make -s print-version').strip()

    def from_tree(self):
        self.expect('build/migpilot-agent --version', self.version())
        self.expect('cd / && PYTHONPATH=%s /usr/bin/python3 -c "import _migpilot; '
                    'print(_migpilot.__name__)"' % TREE, '_migpilot')
        self.expect('/usr/bin/python3 -m nova_hooks --help', 'usage: migpilot')

    def make_install(self):
        self.sh('make -j2 install DESTDIR=/tmp/inst')
        self.expect('/tmp/inst/usr/local/sbin/migpilot-agent --version', self.version())
        self.expect('cd / && PYTHONPATH=$(echo /tmp/inst/usr/local/lib/python3*/dist-packages) '
                    '/tmp/inst/usr/local/bin/migpilot --help', 'usage: migpilot')

    def make_deps(self):
        self.sh('make deps')
        self.expect('/usr/bin/python3 -c "import libvirt, oslo_messaging, nova, ceilometer; '
                    'print(\'imports ok\')"', 'imports ok')

    def debs(self):
        self.sh('apt-get build-dep -y -q ./ && dpkg-buildpackage -b -us -uc')
        self.sh('apt-get install -y -q ../migpilot-agent_*.deb ../python3-migpilot_*.deb')
        self.expect('/usr/sbin/migpilot-agent --version', self.version())
        self.expect('/usr/sbin/migpilot-agent --check-config --config '
                    '/etc/migpilot/migpilot.conf && echo config-ok', 'config-ok')
        self.expect('cd / && /usr/bin/migpilot --help', 'usage: migpilot')
        self.expect('cd / && /usr/bin/python3 -c "import _migpilot, nova_hooks; '
                    'print(_migpilot.__file__)"', '/usr/lib/python3/dist-packages/')
        self.expect('id migpilot', 'libvirt')

    def missing_step_caught(self):
        # the first command with the build packages cut short: the build must stop, and
        # say which library is missing, instead of passing or failing to link
        rc = self.sh('make -j2 DEB_BUILD_PACKAGES="build-essential python3-dev '
                     'python3-setuptools" > /tmp/short.out 2>&1', check=False)
        with open(os.path.join(self.root, 'tmp', 'short.out')) as f:
            text = f.read()
        if rc == 0:
            raise AssertionError('make passed without libvirt-dev, librabbitmq-dev, ...')
        if 'pkg-config cannot find' not in text:
            raise AssertionError('make failed without naming the missing package: %s'
                                 % text[-800:])

    def cleanup(self):
        roots.remove_root(self.root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--suite', default='bookworm')
    parser.add_argument('--junit', help='JUnit result file')
    parser.add_argument('--keep', action='store_true', help='keep the roots (debugging)')
    args = parser.parse_args()
    suite = Suite('fresh-' + args.suite)
    workdir = tempfile.mkdtemp(prefix='migpilot-fresh.', dir='/var/tmp')
    log_path = os.path.join(workdir, 'fresh.log')
    print('fresh: log %s' % log_path, flush=True)
    fresh = Fresh(args.suite, os.path.join(workdir, 'a'), log_path)
    short = Fresh(args.suite, os.path.join(workdir, 'b'), log_path)
    try:
        suite.step('prepare', fresh.prepare)
        suite.step('first-command', fresh.first_command, needs=['prepare'])
        suite.step('from-tree', fresh.from_tree, needs=['first-command'])
        suite.step('make-install', fresh.make_install, needs=['first-command'])
        suite.step('make-deps', fresh.make_deps, needs=['prepare'])
        suite.step('debs', fresh.debs, needs=['make-deps'])
        suite.step('prepare-short', short.prepare)
        suite.step('missing-step-caught', short.missing_step_caught, needs=['prepare-short'])
    finally:
        if not args.keep:
            for f in (fresh, short):
                try:
                    f.cleanup()
                except roots.RootError as exc:
                    print('fresh: %s' % exc, file=sys.stderr)
    if args.junit:
        suite.write(args.junit)
    if suite.failed:
        os.system('tail -n 40 %s' % log_path)
        return 1
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
