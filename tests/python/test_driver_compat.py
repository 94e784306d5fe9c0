"""nova_hooks.driver across nova releases, without a hypervisor: the guard that compares the
overridden methods' signatures with nova's when the class is created, and the eventlet /
native-thread choice of the PCI listing. The fake parents below carry nova's signatures
exactly as its source defines them at the tags named (github.com/openstack/nova)."""
import functools
import inspect
import logging
import os
import subprocess
import textwrap
import threading

import eventlet.patcher
import eventlet.tpool
import libvirt
import pytest

from nova import utils as nova_utils
from nova.compute import power_state
from nova.virt.libvirt import driver as nova_driver

from nova_hooks import driver
from nova_hooks import novacompat

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
UNBOUNDED = libvirt.VIR_DOMAIN_JOB_UNBOUNDED


class FakeNova:
    """What the hooks call of nova's LibvirtDriver besides the methods they override."""

    def __init__(self):
        self.calls = []
        self._host = object()

    def _get_migration_flags(self, is_block_migration):
        return libvirt.VIR_MIGRATE_POSTCOPY

    # as nova defines it from Zed to master (2026-08)
    def _parse_migration_flags(self):
        self._live_migration_flags = self._block_migration_flags = \
            libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_POSTCOPY

    def _is_post_copy_enabled(self, migration_flags):
        return bool(migration_flags & libvirt.VIR_MIGRATE_POSTCOPY)

    def _get_vpmems(self, instance, prefix=None):
        return []

    def live_migration_force_complete(self, instance):
        self.calls.append(('force_complete', instance))

    def _monitor_called(self, args):
        # nova's loop, in short: one job-info poll through the guest, then the switch the
        # policy may queue (the pilot's force_complete) if the hook put its tap there
        args['guest']._domain.jobStats()
        if isinstance(args['guest']._domain, driver._JobStatsTap):
            args['guest']._domain._tap_pilot.force_complete()
        self.calls.append(('monitor', args))
        return 'monitor-result'

    def _pci_called(self):
        self.calls.append(('pci', threading.get_ident()))
        return '[]'


def how_called(method):
    """Records how the method was called (positions, keywords); its signature stays."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.calls.append(('called with', len(args), sorted(kwargs)))
        return method(self, *args, **kwargs)
    return wrapper


# nova 26.0.0 (Zed, Debian 12's; commit 2db7cbf7d0a6692a885968bec67f48e7262ceec3),
# nova/virt/libvirt/driver.py
class ZedLibvirtDriver(FakeNova):
    def _get_pci_passthrough_devices(self):
        return self._pci_called()

    @how_called
    def _live_migration_monitor(self, context, instance, guest,
                                dest, post_method,
                                recover_method, block_migration,
                                migrate_data, finish_event,
                                disk_paths):
        args = dict(locals())
        del args['self']
        return self._monitor_called(args)


# nova 31.0.0 (2025.1, Debian 13's; commit 6042300453411133652dd8d3b789f5057a084075),
# nova/virt/libvirt/driver.py: the same as Zed
class EpoxyLibvirtDriver(FakeNova):
    def _get_pci_passthrough_devices(self):
        return self._pci_called()

    @how_called
    def _live_migration_monitor(self, context, instance, guest,
                                dest, post_method,
                                recover_method, block_migration,
                                migrate_data, finish_event,
                                disk_paths):
        args = dict(locals())
        del args['self']
        return self._monitor_called(args)


# nova master of 2026-08-21 (commit 00a030403f672b975364c855b7d25b40ef83e757; already so
# in 33.0.0, 2026.1), nova/virt/libvirt/driver.py: finish_event became future
class MasterLibvirtDriver(FakeNova):
    def _parse_migration_flags(self):
        FakeNova._parse_migration_flags(self)

    def _get_pci_passthrough_devices(self):
        return self._pci_called()

    def _live_migration_monitor(self, context, instance, guest,
                                dest, post_method,
                                recover_method, block_migration,
                                migrate_data, future,
                                disk_paths):
        args = dict(locals())
        del args['self']
        return self._monitor_called(args)


class Migration:
    status = 'running'


class MigrateData:
    block_migration = False
    migration = Migration()


class Instance:
    uuid = '178b0921-8f85-4257-88b6-2e743b5a975c'


class FakeDomain:
    def __init__(self):
        self.polls = 0

    def jobStats(self, flags=0):
        self.polls += 1
        return {'type': UNBOUNDED, 'time_elapsed': 500 * self.polls, 'memory_iteration': 1}


class FakeGuest:
    def __init__(self):
        self._domain = FakeDomain()

    def get_power_state(self, host):
        return power_state.RUNNING


MONITOR_PARAMS = ('context', 'instance', 'guest', 'dest', 'post_method', 'recover_method',
                  'block_migration', 'migrate_data', 'finish_event', 'disk_paths')


def monitor_args():
    """nova's arguments to _live_migration_monitor, in order (distinct objects)."""
    return ['ctxt', Instance(), FakeGuest(), 'dest-host', object(), object(), False,
            MigrateData(), object(), ['vda']]


def hooked(parent):
    """migpilot's driver over `parent`, as nova_hooks.driver.LibvirtDriver is over nova's."""
    return type('LibvirtDriver', (driver.LibvirtDriverHooks, parent), {})


def driver_records(caplog):
    return [r for r in caplog.records if r.name == driver.__name__]


@pytest.fixture
def conf():
    """nova's CONF, as the driver reads it; overrides undone after the test."""
    yield driver.CONF
    driver.CONF.clear_override('mode', group='migpilot')
    driver.CONF.clear_override('resource_audit_in_thread', group='migpilot')


@pytest.fixture
def tpool_calls(monkeypatch):
    """eventlet.tpool.execute replaced by a recorder that runs the call in this thread."""
    calls = []

    def execute(func, *args, **kwargs):
        calls.append(func)
        return func(*args, **kwargs)
    monkeypatch.setattr(eventlet.tpool, 'execute', execute)
    return calls


def patched(monkeypatch, *modules):
    """eventlet says it monkey-patched these modules (nothing is patched)."""
    monkeypatch.setattr(eventlet.patcher, 'is_monkey_patched', lambda m: m in modules)


# -- the guard -----------------------------------------------------------------------------

def test_expected_signatures_are_the_installed_novas():
    # Debian 12's nova Zed: the driver's own class matched at import, and the source read
    # by `migpilot check` gives what inspect gives
    assert driver.LibvirtDriver._migpilot_stock is None
    by_inspect = novacompat.class_signatures(
        lambda name: getattr(nova_driver.LibvirtDriver, name, None))
    by_source = novacompat.source_signatures(inspect.getsourcefile(nova_driver))
    assert by_source == by_inspect
    assert tuple(by_inspect['_live_migration_monitor'].parameters) == MONITOR_PARAMS
    assert novacompat.mismatch(by_inspect) is None


@pytest.mark.parametrize('parent', [ZedLibvirtDriver, EpoxyLibvirtDriver])
@pytest.mark.parametrize('by_keyword', [False, True])
def test_matching_nova_policy_hook_active(caplog, conf, parent, by_keyword):
    with caplog.at_level(logging.DEBUG):
        cls = hooked(parent)
    assert cls._migpilot_stock is None
    assert driver_records(caplog) == []
    d = cls()
    args = monitor_args()
    with caplog.at_level(logging.INFO):
        if by_keyword:
            result = d._live_migration_monitor(**dict(zip(MONITOR_PARAMS, args)))
        else:
            result = d._live_migration_monitor(*args)
    assert result == 'monitor-result'
    how, (what, got), (what2, got2) = d.calls
    # by keyword: robust to a caller that passes some by name
    assert how == ('called with', 0, sorted(MONITOR_PARAMS))
    # the pilot's force-complete reached nova's own method, before the monitor returned
    assert (what, got) == ('force_complete', args[1])
    assert what2 == 'monitor'
    # the parent got every argument by its name, the guest with the tap around its domain
    assert list(got2) == list(MONITOR_PARAMS)
    for name, value in zip(MONITOR_PARAMS, args):
        if name != 'guest':
            assert got2[name] is value, name
    tap = got2['guest']._domain
    assert isinstance(tap, driver._JobStatsTap)
    assert tap._tap_domain is args[2]._domain and args[2]._domain.polls == 1
    assert tap._tap_pilot.samples == 1
    assert 'migpilot: watching live migration to dest-host' in caplog.text


def test_master_nova_stock_driver_one_line(caplog, conf, monkeypatch, tpool_calls):
    with caplog.at_level(logging.DEBUG):
        cls = hooked(MasterLibvirtDriver)
    records = driver_records(caplog)
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.WARNING and '\n' not in line
    assert line == 'migpilot: ' + cls._migpilot_stock
    assert ('_live_migration_monitor: expected (context, instance, guest, dest, post_method, '
            'recover_method, block_migration, migrate_data, finish_event, disk_paths), '
            'found (context, instance, guest, dest, post_method, recover_method, '
            'block_migration, migrate_data, future, disk_paths)') in line
    assert '_get_pci_passthrough_devices' not in line       # that one matches
    assert 'behaves exactly like nova\'s stock libvirt driver' in line
    assert 'migpilot agent switches' in line and '[policy] mode = auto' in line

    # and then it is the stock driver: the caller's arguments, untouched, nothing else
    def no_policy(*args, **kwargs):
        raise AssertionError('the policy hook ran')
    monkeypatch.setattr(cls, '_migpilot_pilot', no_policy)
    conf.set_override('resource_audit_in_thread', True, group='migpilot')
    patched(monkeypatch, 'thread', 'socket')      # would offload, were the hooks active
    d = cls()
    args = monitor_args()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert d._live_migration_monitor(*args[:4], post_method=args[4],
                                         recover_method=args[5], block_migration=args[6],
                                         migrate_data=args[7], future=args[8],
                                         disk_paths=args[9]) == 'monitor-result'
        assert d._get_pci_passthrough_devices() == '[]'
    (what, got), pci = d.calls
    assert what == 'monitor'
    names = MONITOR_PARAMS[:8] + ('future',) + MONITOR_PARAMS[9:]
    assert list(got) == list(names)
    assert all(got[n] is v for n, v in zip(names, args))
    assert not isinstance(got['guest']._domain, driver._JobStatsTap)
    assert pci == ('pci', threading.get_ident()) and tpool_calls == []
    assert driver_records(caplog) == []


class VarargsLibvirtDriver(FakeNova):
    """A nova whose monitor takes anything: not what the driver was written for."""

    def _get_pci_passthrough_devices(self, *args, **kwargs):
        self.calls.append(('pci', args, kwargs))

    def _live_migration_monitor(self, *args, **kwargs):
        self.calls.append(('monitor', args, kwargs))


def test_stock_overrides_pass_args_and_kwargs_through(caplog):
    with caplog.at_level(logging.WARNING):
        cls = hooked(VarargsLibvirtDriver)
    assert len(driver_records(caplog)) == 1
    assert '_live_migration_monitor: expected (context, instance, guest, dest, ' in \
        cls._migpilot_stock
    assert 'found (*args, **kwargs); _get_pci_passthrough_devices: expected (), found ' \
        '(*args, **kwargs)' in cls._migpilot_stock
    d = cls()
    a, b, c = object(), object(), object()
    d._live_migration_monitor(a, b, extra=c)
    d._get_pci_passthrough_devices(b, flag=a)
    assert d.calls == [('monitor', (a, b), {'extra': c}), ('pci', (b,), {'flag': a})]


def test_missing_method_is_a_mismatch():
    class NoPci(FakeNova):
        _live_migration_monitor = ZedLibvirtDriver._live_migration_monitor
    cls = hooked(NoPci)
    assert '_get_pci_passthrough_devices: expected (), found no such method' in \
        cls._migpilot_stock
    assert '_live_migration_monitor' not in cls._migpilot_stock


def test_source_signatures_read_nova_master_without_importing(tmp_path):
    path = tmp_path / 'driver.py'
    path.write_text(inspect.getsource(MasterLibvirtDriver).replace(
        'class MasterLibvirtDriver(FakeNova)', 'class LibvirtDriver(driver.ComputeDriver)'))
    found = novacompat.source_signatures(str(path))
    assert tuple(found['_live_migration_monitor'].parameters) == \
        MONITOR_PARAMS[:8] + ('future',) + MONITOR_PARAMS[9:]
    assert novacompat.mismatch(found) == hooked(MasterLibvirtDriver)._migpilot_stock
    path.write_text('class Other:\n    pass\n')
    with pytest.raises(ValueError, match='defines no class LibvirtDriver'):
        novacompat.source_signatures(str(path))


# -- eventlet or native threads ------------------------------------------------------------

def test_zed_not_monkey_patched_runs_the_listing_directly(conf, tpool_calls):
    # nova up to 2025.1 has no threading mode: unpatched (as here), nothing to offload to
    assert not hasattr(nova_utils, 'concurrency_mode_threading')
    assert not eventlet.patcher.is_monkey_patched('thread')
    conf.set_override('resource_audit_in_thread', True, group='migpilot')
    d = hooked(ZedLibvirtDriver)()
    assert d._get_pci_passthrough_devices() == '[]'
    assert d.calls == [('pci', threading.get_ident())] and tpool_calls == []


@pytest.mark.parametrize('modules', [('thread', 'socket'), ('socket',)])
def test_zed_monkey_patched_offloads_to_tpool(conf, monkeypatch, tpool_calls, modules):
    # ('socket',): nova's remote debugger patches all but thread; still the eventlet hub
    patched(monkeypatch, *modules)
    conf.set_override('resource_audit_in_thread', True, group='migpilot')
    d = hooked(ZedLibvirtDriver)()
    assert d._get_pci_passthrough_devices() == '[]'
    assert len(tpool_calls) == 1 and tpool_calls[0].__func__ is \
        ZedLibvirtDriver._get_pci_passthrough_devices
    assert len(d.calls) == 1
    conf.set_override('resource_audit_in_thread', False, group='migpilot')
    d._get_pci_passthrough_devices()
    assert len(tpool_calls) == 1 and len(d.calls) == 2


@pytest.mark.parametrize('threading_mode,offloaded', [(True, False), (False, True)])
def test_nova_threading_mode_decides(conf, monkeypatch, tpool_calls, threading_mode,
                                     offloaded):
    # nova 2025.2 and later say themselves (nova.utils.concurrency_mode_threading), whatever
    # eventlet's state; here eventlet claims to be patched, to show it is not what decides
    monkeypatch.setattr(nova_utils, 'concurrency_mode_threading', lambda: threading_mode,
                        raising=False)
    patched(monkeypatch, 'thread', 'socket')
    conf.set_override('resource_audit_in_thread', True, group='migpilot')
    d = hooked(ZedLibvirtDriver)()
    assert d._get_pci_passthrough_devices() == '[]'
    assert len(tpool_calls) == (1 if offloaded else 0)
    assert d.calls == [('pci', threading.get_ident())]


def test_threading_mode_needs_no_eventlet():
    """nova in threading mode refuses to import eventlet (nova/monkey_patch.py
    poison_eventlet): the driver imports and lists PCI devices without it."""
    script = textwrap.dedent("""
        import sys
        import nova.conf, nova.utils, nova.virt.libvirt.driver  # Zed's need eventlet
        import eventlet
        # as nova master's poison_eventlet(), for what is not imported yet
        for name in [m for m in sys.modules if m.startswith('eventlet.tpool')]:
            del sys.modules[name]
        del eventlet.tpool

        class Poison:
            def find_spec(self, fullname, path, target=None):
                if fullname.startswith('eventlet'):
                    raise ImportError('threading mode: no eventlet')
        sys.meta_path.insert(0, Poison())
        nova.utils.concurrency_mode_threading = lambda: True

        from nova_hooks import driver

        class Parent:
            def _parse_migration_flags(self):
                pass
            def _get_pci_passthrough_devices(self):
                return 'listed'
            def _live_migration_monitor(self, context, instance, guest, dest, post_method,
                                        recover_method, block_migration, migrate_data,
                                        finish_event, disk_paths):
                pass

        cls = type('D', (driver.LibvirtDriverHooks, Parent), {})
        print(cls._migpilot_stock, cls()._get_pci_passthrough_devices(),
              'eventlet.tpool' in sys.modules)
        """)
    p = subprocess.run(['/usr/bin/python3', '-c', script], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ['None', 'listed', 'False'], p.stdout
