"""`migpilot check`: are this compute host's preconditions met? (like `nova-status upgrade
check`).

One line per check, `Success`, `Warning` or `Failure`, each saying what to change.
Exit status: 0 all succeeded, 1 warnings only, 2 at least one failure, 255 the checks could
not run (unreadable file).

The files are read the way oslo.config reads them (INI; last value wins), with nova Zed's
defaults for options they do not set, so nova itself need not be importable here; nova's
libvirt driver is read as source, for the signatures of the methods migpilot's driver
overrides.
"""
import argparse
import configparser
import glob
import os
import sys

import yaml

import _migpilot
from nova_hooks import novacompat

SUCCESS, WARNING, FAILURE = 'Success', 'Warning', 'Failure'
EXIT = {SUCCESS: 0, WARNING: 1, FAILURE: 2}
EXIT_ERROR = 255

DRIVER_MODE = 'migpilot.driver.LibvirtDriver'
STOCK_DRIVERS = ('libvirt.LibvirtDriver', 'libvirt.driver.LibvirtDriver')
METRICS_EVENT = 'compute.live_migration.metrics'
DIRTY_RATE_EVENT = 'compute.live_migration.dirty_rate'
# the meters migpilot's file defines, with the event each comes from
METERS = (('compute.instance.live_migration.time', METRICS_EVENT),
          ('compute.instance.live_migration.downtime', METRICS_EVENT),
          ('compute.instance.live_migration.bytes', METRICS_EVENT),
          ('compute.instance.memory.dirty_rate', DIRTY_RATE_EVENT),
          ('compute.instance.memory.working_set', DIRTY_RATE_EVENT))
# versions with VIR_MIGRATE_POSTCOPY / QEMU's postcopy-ram, and with post-copy recovery
# (VIR_MIGRATE_POSTCOPY_RESUME, QEMU 3.0's postcopy-recover)
MIN_LIBVIRT_POSTCOPY = (1, 3, 3)
MIN_QEMU_POSTCOPY = (2, 5, 0)
MIN_LIBVIRT_RECOVERY = (8, 5, 0)
MIN_QEMU_RECOVERY = (3, 0, 0)


class CheckError(Exception):
    """The checks cannot run (a file that cannot be read or parsed)."""


class Conf:
    """An oslo-style INI file. Missing file = empty (when allowed)."""

    def __init__(self, path, required=True):
        self.path = path
        self.parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                                   default_section='DEFAULT')
        self.parser.optionxform = str
        self.exists = os.path.exists(path)
        if not self.exists:
            if required:
                raise CheckError('cannot read %s: no such file' % path)
            return
        try:
            with open(path) as f:
                self.parser.read_file(f)
        except (OSError, UnicodeDecodeError) as e:
            raise CheckError('cannot read %s: %s' % (path, e))
        except configparser.Error as e:
            raise CheckError('%s is not a valid INI file: %s'
                             % (path, str(e).splitlines()[0]))

    def get(self, section, key, default=None):
        if section == 'DEFAULT':
            value = self.parser.defaults().get(key)
        elif self.parser.has_section(section):
            value = self.parser.get(section, key, fallback=None)
        else:
            value = None
        if value is None:
            return default
        return value.strip()

    def bool(self, section, key, default):
        value = self.get(section, key)
        if value is None or value == '':
            return default
        # the agent's own reading (the core's mpParseBool)
        parsed = _migpilot.parse_bool(value)
        if parsed is not None:
            return parsed
        raise CheckError('%s: [%s] %s = %r is not a boolean' % (self.path, section, key, value))

    def int(self, section, key, default):
        value = self.get(section, key)
        if value is None or value == '':
            return default
        try:
            return int(value)
        except ValueError:
            raise CheckError('%s: [%s] %s = %r is not an integer'
                             % (self.path, section, key, value))


def _nova_package_dir():
    # where nova's package is, without importing it (nova's import has side effects)
    import importlib.util
    try:
        spec = importlib.util.find_spec('nova')
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _version(v):
    """libvirt's encoded version (major * 1000000 + minor * 1000 + micro) as a tuple."""
    return (v // 1000000, (v // 1000) % 1000, v % 1000)


def _vstr(t):
    return '%d.%d.%d' % t


class Checker:
    def __init__(self, args):
        self.nova = Conf(args.nova_conf)
        self.migpilot = Conf(args.migpilot_conf, required=False)
        self.qemu_conf = args.qemu_conf
        self.ceilometer_dir = args.ceilometer_dir
        self.sysctl = args.userfaultfd_sysctl
        self.libvirt_uri = args.libvirt_uri
        self.nova_package_dir = args.nova_package_dir
        self.results = []

    def add(self, status, name, detail):
        self.results.append((status, name, detail))

    # -- the checks, in the order printed --------------------------------------------------

    def mode(self):
        driver = self.nova.get('DEFAULT', 'compute_driver', '')
        if driver == DRIVER_MODE:
            return 'driver'
        if driver in STOCK_DRIVERS:
            return 'agent'
        return None

    def check_driver(self):
        driver = self.nova.get('DEFAULT', 'compute_driver', '')
        mode = self.mode()
        if mode == 'driver':
            nova_dir = self.nova_package_dir or _nova_package_dir()
            shim = os.path.join(nova_dir, 'virt', 'migpilot', 'driver.py') if nova_dir \
                else None
            if not shim or not os.path.exists(shim):
                self.add(FAILURE, 'switching mode',
                         'compute_driver = %s but nova.virt.migpilot is not installed in '
                         'nova\'s package: run `make install` (it installs the shim '
                         'nova/virt/migpilot/driver.py)' % driver)
                return
            mp_mode = self.nova.get('migpilot', 'mode', 'auto')
            self.add(SUCCESS if mp_mode == 'auto' else WARNING, 'switching mode',
                     'nova switches (compute_driver = %s, [migpilot] mode = %s)%s'
                     % (driver, mp_mode, '' if mp_mode == 'auto' else
                        ': set [migpilot] mode = auto to let it switch'))
        elif mode == 'agent':
            self.add(SUCCESS, 'switching mode',
                     'the agent switches through libvirt (compute_driver = %s); nova\'s '
                     'records will not show `running (post-copy)`: set compute_driver = %s '
                     'to let nova switch with its own bookkeeping' % (driver, DRIVER_MODE))
        else:
            self.add(FAILURE, 'switching mode',
                     'compute_driver = %s is not libvirt: set compute_driver = %s '
                     '(or libvirt.LibvirtDriver)' % (driver or '(unset)', DRIVER_MODE))

    def check_driver_signatures(self):
        # nova's source, not nova imported: what migpilot's driver will find when nova
        # loads it (nova_hooks.driver makes the same comparison then)
        nova_dir = self.nova_package_dir or _nova_package_dir()
        if not nova_dir:
            self.add(WARNING, 'driver signatures', 'nova is not installed for %s: cannot '
                     'compare its libvirt driver with what migpilot\'s driver expects'
                     % sys.executable)
            return
        path = os.path.join(nova_dir, 'virt', 'libvirt', 'driver.py')
        try:
            found = novacompat.source_signatures(path)
        except (OSError, SyntaxError, ValueError) as e:
            self.add(WARNING, 'driver signatures', 'cannot read nova\'s libvirt driver: %s'
                     % str(e).splitlines()[0])
            return
        diffs = novacompat.differences(found)
        if not diffs:
            self.add(SUCCESS, 'driver signatures',
                     '%s has the methods migpilot\'s driver overrides (%s) with the '
                     'parameters it expects' % (path, ', '.join(novacompat.EXPECTED)))
        elif self.mode() == 'driver':
            self.add(WARNING, 'driver signatures', novacompat.mismatch(found))
        else:
            self.add(SUCCESS, 'driver signatures',
                     'migpilot\'s driver would behave like nova\'s stock libvirt driver on '
                     'this nova (%s); not in use here (compute_driver = %s): the agent '
                     'switches' % ('; '.join(diffs),
                                   self.nova.get('DEFAULT', 'compute_driver', '') or
                                   '(unset)'))

    def check_postcopy(self):
        if self.nova.bool('libvirt', 'live_migration_permit_post_copy', False):
            self.add(SUCCESS, 'post-copy permitted',
                     '[libvirt] live_migration_permit_post_copy = True')
        else:
            self.add(FAILURE, 'post-copy permitted',
                     'nova starts migrations without VIR_MIGRATE_POSTCOPY, so nothing can '
                     'switch them: set [libvirt] live_migration_permit_post_copy = True '
                     '(migpilot then only measures)')

    def check_timeout_action(self):
        timeout = self.nova.int('libvirt', 'live_migration_completion_timeout', 800)
        action = self.nova.get('libvirt', 'live_migration_timeout_action', 'abort')
        setting = '[libvirt] live_migration_completion_timeout = %d, ' \
                  'live_migration_timeout_action = %s' % (timeout, action)
        mode = self.mode()
        if mode == 'agent':
            if timeout == 0:
                self.add(SUCCESS, 'timeout action', setting + ': nova never acts on a job '
                         'the agent switched')
            elif action == 'abort':
                self.add(FAILURE, 'timeout action', setting + ': nova does not know the agent '
                         'switched and would try to abort a post-copy job (instance ERROR): '
                         'set live_migration_completion_timeout = 0')
            else:
                self.add(WARNING, 'timeout action', setting + ': nova would ask for a switch '
                         'that already happened (a warning in its log): set '
                         'live_migration_completion_timeout = 0')
        elif mode == 'driver':
            if timeout != 0 and action == 'abort':
                self.add(SUCCESS, 'timeout action', setting + ': nova aborts only migrations '
                         'still in pre-copy at its timeout; switched ones are left alone')
            else:
                self.add(SUCCESS, 'timeout action', setting)
        else:
            self.add(WARNING, 'timeout action', setting + ': not judged, compute_driver is '
                     'not libvirt')

    def check_notifications(self):
        drivers = self.nova.get('oslo_messaging_notifications', 'driver', '')
        fmt = self.nova.get('notifications', 'notification_format', 'unversioned')
        if drivers in ('', 'noop'):
            self.add(FAILURE, 'notifications',
                     '[oslo_messaging_notifications] driver is %s, so nova sends no '
                     'notifications and migpilot\'s metrics lack project, user and request: '
                     'set driver = messagingv2' % (drivers or 'unset (noop)'))
        elif drivers not in ('messagingv2', 'messaging'):
            self.add(WARNING, 'notifications',
                     '[oslo_messaging_notifications] driver = %s does not reach the bus: '
                     'set driver = messagingv2' % drivers)
        else:
            self.add(SUCCESS, 'notifications',
                     '[oslo_messaging_notifications] driver = %s, [notifications] '
                     'notification_format = %s' % (drivers, fmt))

    def check_userfaultfd(self):
        try:
            with open(self.sysctl) as f:
                unpriv = f.read().strip()
        except OSError:
            unpriv = None
        if unpriv == '1':
            self.add(SUCCESS, 'userfaultfd', 'vm.unprivileged_userfaultfd = 1')
            return
        user = self._qemu_user()
        if user in ('root', '0', '+0'):
            self.add(SUCCESS, 'userfaultfd', 'QEMU runs as root (%s user = "%s")'
                     % (self.qemu_conf, user))
            return
        self.add(FAILURE, 'userfaultfd',
                 'vm.unprivileged_userfaultfd = %s and QEMU runs as "%s": post-copy would '
                 'fail on the destination: set the sysctl vm.unprivileged_userfaultfd = 1'
                 % (unpriv if unpriv is not None else '(unknown)', user or 'libvirt-qemu'))

    def _qemu_user(self):
        try:
            with open(self.qemu_conf) as f:
                for line in f:
                    line = line.split('#', 1)[0].strip()
                    if line.startswith('user') and '=' in line:
                        key, value = line.split('=', 1)
                        if key.strip() == 'user':
                            return value.strip().strip('"')
        except OSError:
            pass
        return None

    def check_versions(self):
        uri = self.libvirt_uri or self.nova.get('libvirt', 'connection_uri', '') or \
            'qemu:///system'
        try:
            import libvirt
        except ImportError:
            self.add(FAILURE, 'libvirt and QEMU versions',
                     'python3-libvirt is not installed (nova\'s libvirt driver needs it)')
            return
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        try:
            conn = libvirt.openReadOnly(uri)
        except libvirt.libvirtError as e:
            self.add(WARNING, 'libvirt and QEMU versions', 'cannot connect to %s: %s'
                     % (uri, e.get_error_message()))
            return
        try:
            lib, hv = _version(conn.getLibVersion()), _version(conn.getVersion())
        finally:
            conn.close()
        what = 'libvirt %s, QEMU %s' % (_vstr(lib), _vstr(hv))
        if lib < MIN_LIBVIRT_POSTCOPY or hv < MIN_QEMU_POSTCOPY:
            self.add(FAILURE, 'libvirt and QEMU versions',
                     '%s: post-copy needs libvirt >= %s and QEMU >= %s: upgrade'
                     % (what, _vstr(MIN_LIBVIRT_POSTCOPY), _vstr(MIN_QEMU_POSTCOPY)))
        elif lib < MIN_LIBVIRT_RECOVERY or hv < MIN_QEMU_RECOVERY:
            self.add(WARNING, 'libvirt and QEMU versions',
                     '%s: post-copy works, but a broken link loses the guest: recovery '
                     'needs libvirt >= %s and QEMU >= %s' % (
                         what, _vstr(MIN_LIBVIRT_RECOVERY), _vstr(MIN_QEMU_RECOVERY)))
        else:
            self.add(SUCCESS, 'libvirt and QEMU versions',
                     '%s: post-copy and post-copy recovery available' % what)

    def transport_url(self):
        # the agent's own choice (mpTransportUrlResolve)
        url, section = _migpilot.resolve_transport_url(
            self.migpilot.get('amqp', 'transport_url', ''),
            self.nova.get('oslo_messaging_notifications', 'transport_url', ''),
            self.nova.get('DEFAULT', 'transport_url', ''))
        if url is None:
            return None, None
        path = self.migpilot.path if section == '[amqp]' else self.nova.path
        return url, '%s %s transport_url' % (path, section)

    def check_bus(self):
        url, origin = self.transport_url()
        if not url:
            self.add(FAILURE, 'bus', 'no transport_url in %s or %s: set [DEFAULT] '
                     'transport_url' % (self.migpilot.path, self.nova.path))
            return
        exchange = self.migpilot.get('amqp', 'exchange', 'nova')
        # nova's exchange as the agent declares it (durable = auto follows nova.conf)
        from nova_hooks import cmd_listen
        durable = cmd_listen.bus_settings(self.migpilot.path, self.nova.path)[2]
        try:
            listener = _migpilot.Listener(url, exchange=exchange, durable=durable)
        except (_migpilot.Error, OSError) as e:
            self.add(FAILURE, 'bus', 'the agent cannot reach the broker of %s: %s: fix the '
                     'URL or start the broker' % (origin, e))
            return
        listener.close()
        self.add(SUCCESS, 'bus', 'broker of %s reachable, exchange %s declared' % (
            origin, exchange))

    def check_ceilometer(self):
        found = {}
        dirs = [os.path.join(self.ceilometer_dir, 'meters.d')]
        problems = []
        for path in sorted(p for d in dirs for p in glob.glob(os.path.join(d, '*.yaml'))):
            try:
                with open(path) as f:
                    doc = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError) as e:
                problems.append('%s: %s' % (path, str(e).splitlines()[0]))
                continue
            metrics = doc.get('metric') if isinstance(doc, dict) else None
            for meter in metrics if isinstance(metrics, list) else []:
                if isinstance(meter, dict) and meter.get('name') in dict(METERS):
                    events = meter.get('event_type')
                    events = events if isinstance(events, list) else [events]
                    if dict(METERS)[meter['name']] in events:
                        found.setdefault(meter['name'], path)
        missing = [m for m, _ in METERS if m not in found]
        if problems:
            self.add(FAILURE, 'Ceilometer meters', 'unreadable meter definitions: %s'
                     % '; '.join(problems))
        elif missing:
            self.add(WARNING, 'Ceilometer meters',
                     '%s not defined in %s: install etc/ceilometer/meters.d/migpilot.yaml '
                     'there (metrics still reach the bus)' % (', '.join(missing), dirs[0]))
        else:
            self.add(SUCCESS, 'Ceilometer meters', 'the %d meters are defined in %s'
                     % (len(METERS), ', '.join(sorted(set(found.values())))))

    CHECKS = ('check_driver', 'check_driver_signatures', 'check_postcopy', 'check_timeout_action', 'check_notifications',
              'check_userfaultfd', 'check_versions', 'check_bus', 'check_ceilometer')

    def run(self):
        for name in self.CHECKS:
            getattr(self, name)()
        return self.results


def register(subparsers):
    parser = subparsers.add_parser(
        'check', help='check this compute host\'s preconditions (nova.conf, libvirt, bus, '
                      'Ceilometer)',
        description='One line per check: Success, Warning or Failure, with what to change. '
                    'Exit status 0 (all succeeded), 1 (warnings), 2 (failures), 255 (could '
                    'not check).')
    parser.add_argument('--nova-conf', default='/etc/nova/nova.conf', metavar='PATH',
                        help='nova.conf of this compute host (default %(default)s)')
    parser.add_argument('--migpilot-conf', default='/etc/migpilot/migpilot.conf',
                        metavar='PATH', help='the agent\'s configuration (default %(default)s)')
    parser.add_argument('--qemu-conf', default='/etc/libvirt/qemu.conf', metavar='PATH',
                        help='libvirt\'s qemu.conf (default %(default)s)')
    parser.add_argument('--ceilometer-dir', default='/etc/ceilometer', metavar='DIR',
                        help='Ceilometer\'s configuration directory (default %(default)s)')
    parser.add_argument('--libvirt-uri', default=None, metavar='URI',
                        help='libvirt connection (default: nova.conf\'s [libvirt] '
                             'connection_uri, else qemu:///system)')
    # for tests: other places of what the host provides
    parser.add_argument('--userfaultfd-sysctl', default='/proc/sys/vm/unprivileged_userfaultfd',
                        help=argparse.SUPPRESS)
    parser.add_argument('--nova-package-dir', default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args):
    try:
        results = Checker(args).run()
    except CheckError as e:
        sys.stderr.write('migpilot check: %s\n' % e)
        return EXIT_ERROR
    width = max(len(name) for _, name, _ in results)
    for status, name, detail in results:
        sys.stdout.write('%-7s  %-*s  %s\n' % (status, width, name, detail))
    worst = max(EXIT[status] for status, _, _ in results)
    failures = sum(1 for s, _, _ in results if s == FAILURE)
    warnings = sum(1 for s, _, _ in results if s == WARNING)
    sys.stdout.write('%d checks: %d failure(s), %d warning(s)\n'
                     % (len(results), failures, warnings))
    return worst
