"""`migpilot check` on real nova.conf files (good and bad), a real libvirtd (the lab's) and a
real RabbitMQ (the lab's), plus the operator files it looks for, loaded by Debian's
Ceilometer code, and `make install` putting them in place."""
import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from nova_hooks import cli
from nova_hooks import cmd_check

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
METERS = ('compute.instance.live_migration.time', 'compute.instance.live_migration.downtime',
          'compute.instance.live_migration.bytes')
# optional (libvirt's downtime_net): not one `migpilot check` requires
DOWNTIME_NET = 'compute.instance.live_migration.downtime_net'
# from compute.live_migration.dirty_rate
DIRTY_METERS = ('compute.instance.memory.dirty_rate', 'compute.instance.memory.working_set')
LINE = re.compile(r'^(Success|Warning|Failure)  (.+?)  +(.*)$')


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def host(tmp_path):
    """What a compute host provides besides nova.conf: qemu.conf, the userfaultfd sysctl,
    Ceilometer's directory (with migpilot's meters), nova's package dir (with the shim, and
    the installed nova's libvirt driver)."""
    h = tmp_path
    write(str(h / 'qemu.conf'), '# libvirt\nuser = "root"\ngroup = "root"\n')
    write(str(h / 'sysctl'), '0\n')
    os.makedirs(str(h / 'ceilometer' / 'meters.d'))
    shutil.copy(os.path.join(REPO, 'etc', 'ceilometer', 'meters.d', 'migpilot.yaml'),
                str(h / 'ceilometer' / 'meters.d'))
    shim = h / 'nova' / 'virt' / 'migpilot'
    os.makedirs(str(shim))
    for name in ('__init__.py', 'driver.py'):
        shutil.copy(os.path.join(REPO, 'nova_shim', 'nova', 'virt', 'migpilot', name),
                    str(shim))
    import importlib.util
    nova = importlib.util.find_spec('nova')
    assert nova is not None, 'nova is not installed for %s (python3-nova)' % sys.executable
    os.symlink(os.path.join(list(nova.submodule_search_locations)[0], 'virt', 'libvirt'),
               str(h / 'nova' / 'virt' / 'libvirt'))
    write(str(h / 'migpilot.conf'), '[DEFAULT]\nhost = cmp1\n')
    return h


def run_check(capsys, host, nova_conf, *extra):
    argv = ['check', '--nova-conf', nova_conf, '--migpilot-conf', str(host / 'migpilot.conf'),
            '--qemu-conf', str(host / 'qemu.conf'),
            '--ceilometer-dir', str(host / 'ceilometer'),
            '--userfaultfd-sysctl', str(host / 'sysctl'),
            '--nova-package-dir', str(host / 'nova')] + list(extra)
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    results = {}
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, 'not a check line: %r' % line
        results[m.group(2).strip()] = (m.group(1), m.group(3))
    assert re.match(r'^\d+ checks: \d+ failure\(s\), \d+ warning\(s\)$', lines[-1]), lines[-1]
    return rc, results, err


def nova_conf(path, transport_url, libvirt_uri, driver='migpilot.driver.LibvirtDriver',
              extra=''):
    return write(str(path), textwrap.dedent("""
        [DEFAULT]
        compute_driver = %s
        transport_url = %s

        [libvirt]
        virt_type = qemu
        connection_uri = %s
        live_migration_permit_post_copy = True
        %s

        [notifications]
        notification_format = both

        [oslo_messaging_notifications]
        driver = messagingv2
        """) % (driver, transport_url, libvirt_uri, extra))


def test_good_driver_mode(capsys, host, lab, rabbit):
    conf = nova_conf(host / 'nova.conf', rabbit.url, lab.hosts[0].uri)
    rc, r, err = run_check(capsys, host, conf)
    assert all(status == 'Success' for status, _ in r.values()), r
    assert rc == 0 and err == ''
    assert len(r) == 9
    assert 'nova switches' in r['switching mode'][1]
    assert r['post-copy permitted'][1] == '[libvirt] live_migration_permit_post_copy = True'
    assert 'QEMU runs as root' in r['userfaultfd'][1]
    # the figures of the real libvirtd
    assert re.search(r'libvirt \d+\.\d+\.\d+, QEMU \d+\.\d+\.\d+', r['libvirt and QEMU versions'][1])
    assert 'reachable' in r['bus'][1]
    assert 'migpilot.yaml' in r['Ceilometer meters'][1]
    assert r['Ceilometer meters'][1].startswith('the 5 meters are defined in ')


def _ceilometer_check(tmp_path, meters_yaml):
    args = argparse.Namespace(nova_conf=write(str(tmp_path / 'nova.conf'), '[DEFAULT]\n'),
                              migpilot_conf=str(tmp_path / 'none.conf'),
                              qemu_conf=None, ceilometer_dir=str(tmp_path / 'ceilometer'),
                              userfaultfd_sysctl=None, libvirt_uri=None,
                              nova_package_dir=None)
    if meters_yaml is not None:
        write(str(tmp_path / 'ceilometer' / 'meters.d' / 'migpilot.yaml'), meters_yaml)
    checker = cmd_check.Checker(args)
    checker.check_ceilometer()
    assert len(checker.results) == 1
    return checker.results[0]


def test_check_wants_the_dirty_rate_meters(tmp_path):
    with open(os.path.join(REPO, 'etc', 'ceilometer', 'meters.d', 'migpilot.yaml')) as f:
        ours = f.read()
    status, _, detail = _ceilometer_check(tmp_path, ours)
    assert status == 'Success' and detail.startswith('the 5 meters are defined in ')
    # the file of an earlier release: the migration meters only
    doc = yaml.safe_load(ours)
    doc['metric'] = [m for m in doc['metric'] if m['name'] not in DIRTY_METERS]
    status, _, detail = _ceilometer_check(tmp_path, yaml.safe_dump(doc))
    assert status == 'Warning'
    assert detail.startswith(', '.join(DIRTY_METERS) + ' not defined in ')
    # a dirty-rate meter on the wrong event does not count
    doc = yaml.safe_load(ours)
    for m in doc['metric']:
        if m['name'] == DIRTY_METERS[1]:
            m['event_type'] = 'compute.live_migration.metrics'
    status, _, detail = _ceilometer_check(tmp_path, yaml.safe_dump(doc))
    assert status == 'Warning' and detail.startswith(DIRTY_METERS[1] + ' not defined')


def test_good_agent_mode_with_sysctl(capsys, host, lab, rabbit):
    write(str(host / 'qemu.conf'), 'user = "libvirt-qemu"\n')
    write(str(host / 'sysctl'), '1\n')
    # the agent's own transport_url wins over nova's
    write(str(host / 'migpilot.conf'), '[amqp]\ntransport_url = %s\n' % rabbit.url)
    conf = nova_conf(host / 'nova.conf', 'rabbit://guest:guest@127.0.0.1:1/',
                     lab.hosts[0].uri, driver='libvirt.LibvirtDriver',
                     extra='live_migration_completion_timeout = 0')
    rc, r, _ = run_check(capsys, host, conf)
    assert rc == 0, r
    assert 'the agent switches' in r['switching mode'][1]
    assert r['userfaultfd'] == ('Success', 'vm.unprivileged_userfaultfd = 1')
    assert 'live_migration_completion_timeout = 0' in r['timeout action'][1]
    assert 'migpilot.conf [amqp] transport_url' in r['bus'][1]


def test_warnings_only_exit_1(capsys, host, lab, rabbit):
    # stock driver, nova's timeout set to force_complete: harmless but noisy
    conf = nova_conf(host / 'nova.conf', rabbit.url, lab.hosts[0].uri,
                     driver='libvirt.LibvirtDriver',
                     extra='live_migration_timeout_action = force_complete')
    os.unlink(str(host / 'ceilometer' / 'meters.d' / 'migpilot.yaml'))
    rc, r, _ = run_check(capsys, host, conf)
    assert rc == 1, r
    assert r['timeout action'][0] == 'Warning'
    assert 'set live_migration_completion_timeout = 0' in r['timeout action'][1]
    assert r['Ceilometer meters'][0] == 'Warning'
    assert 'install etc/ceilometer/meters.d/migpilot.yaml' in r['Ceilometer meters'][1]
    assert not [k for k, (s, _) in r.items() if s == 'Failure']


def test_bad_nova_conf_fails_and_says_what_to_change(capsys, host, tmp_path):
    # what Debian ships, roughly: no post-copy, no notifications, nova's abort timeout with
    # the agent switching behind nova's back, a broker that is not there
    conf = write(str(tmp_path / 'bad.conf'), """
        [DEFAULT]
        compute_driver = libvirt.LibvirtDriver
        transport_url = rabbit://guest:guest@127.0.0.1:1/

        [libvirt]
        connection_uri = qemu+unix:///system?socket=/nonexistent/libvirt-sock
        """)
    write(str(host / 'qemu.conf'), '#user = "root"\n')
    rc, r, _ = run_check(capsys, host, conf)
    assert rc == 2
    assert r['post-copy permitted'][0] == 'Failure'
    assert 'set [libvirt] live_migration_permit_post_copy = True' in r['post-copy permitted'][1]
    assert r['timeout action'][0] == 'Failure'
    assert 'set live_migration_completion_timeout = 0' in r['timeout action'][1]
    assert r['notifications'][0] == 'Failure'
    assert 'set driver = messagingv2' in r['notifications'][1]
    assert r['userfaultfd'][0] == 'Failure'
    assert 'vm.unprivileged_userfaultfd = 1' in r['userfaultfd'][1]
    assert r['libvirt and QEMU versions'][0] == 'Warning'
    assert 'cannot connect' in r['libvirt and QEMU versions'][1]
    assert r['bus'][0] == 'Failure' and 'cannot reach the broker' in r['bus'][1]


def test_driver_mode_without_shim(capsys, host, tmp_path):
    shutil.rmtree(str(host / 'nova' / 'virt' / 'migpilot'))
    conf = nova_conf(tmp_path / 'nova.conf', 'rabbit://guest:guest@127.0.0.1:1/',
                     'qemu+unix:///system?socket=/nonexistent/sock')
    rc, r, _ = run_check(capsys, host, conf)
    assert rc == 2
    assert r['switching mode'][0] == 'Failure'
    assert 'run `make install`' in r['switching mode'][1]


NO_LIBVIRT = 'qemu+unix:///system?socket=/nonexistent/sock'
UNREACHABLE = 'rabbit://guest:guest@127.0.0.1:1/'

# nova master of 2026-08-21 (commit 00a030403f672b975364c855b7d25b40ef83e757),
# nova/virt/libvirt/driver.py, the methods migpilot's driver overrides
NOVA_MASTER_DRIVER = """
from nova.virt import driver


class LibvirtDriver(driver.ComputeDriver):
    def _parse_migration_flags(self):
        pass

    def _get_pci_passthrough_devices(self):
        pass

    def _live_migration_monitor(self, context, instance, guest,
                                dest, post_method,
                                recover_method, block_migration,
                                migrate_data, future,
                                disk_paths):
        pass
"""


def nova_libvirt_driver(host, source):
    """Replace the host's nova libvirt driver by `source`."""
    link = host / 'nova' / 'virt' / 'libvirt'
    os.unlink(str(link))
    write(str(link / 'driver.py'), source)


def test_driver_signatures_of_installed_nova(capsys, host, tmp_path):
    conf = nova_conf(tmp_path / 'nova.conf', UNREACHABLE, NO_LIBVIRT)
    rc, r, _ = run_check(capsys, host, conf)
    status, detail = r['driver signatures']
    assert status == 'Success', detail
    assert detail == ('%s has the methods migpilot\'s driver overrides '
                      '(_live_migration_monitor, _get_pci_passthrough_devices, '
                      '_parse_migration_flags) with the '
                      'parameters it expects'
                      % (host / 'nova' / 'virt' / 'libvirt' / 'driver.py'))


def test_driver_signatures_of_nova_master(capsys, host, tmp_path):
    nova_libvirt_driver(host, NOVA_MASTER_DRIVER)
    conf = nova_conf(tmp_path / 'nova.conf', UNREACHABLE, NO_LIBVIRT)
    rc, r, _ = run_check(capsys, host, conf)
    status, detail = r['driver signatures']
    assert status == 'Warning'
    # the line the driver logs when nova loads it
    from nova_hooks import novacompat
    assert detail == novacompat.mismatch(novacompat.source_signatures(
        str(host / 'nova' / 'virt' / 'libvirt' / 'driver.py')))
    assert 'migrate_data, finish_event, disk_paths), found (context, ' in detail
    assert 'migrate_data, future, disk_paths)' in detail
    assert 'behaves exactly like nova\'s stock libvirt driver' in detail
    # with the stock driver configured it changes nothing
    conf = nova_conf(tmp_path / 'nova.conf', UNREACHABLE, NO_LIBVIRT,
                     driver='libvirt.LibvirtDriver',
                     extra='live_migration_completion_timeout = 0')
    rc, r, _ = run_check(capsys, host, conf)
    status, detail = r['driver signatures']
    assert status == 'Success'
    assert 'would behave like nova\'s stock libvirt driver' in detail
    assert 'found (context, instance, guest, dest, post_method, recover_method, ' \
        'block_migration, migrate_data, future, disk_paths)' in detail
    assert 'not in use here (compute_driver = libvirt.LibvirtDriver)' in detail


@pytest.mark.parametrize('source,needle', [
    ('class LibvirtDriver(:\n', 'cannot read nova\'s libvirt driver: '),
    ('class ComputeDriver:\n    pass\n', 'defines no class LibvirtDriver'),
])
def test_driver_signatures_unreadable(capsys, host, tmp_path, source, needle):
    nova_libvirt_driver(host, source)
    conf = nova_conf(tmp_path / 'nova.conf', UNREACHABLE, NO_LIBVIRT)
    rc, r, _ = run_check(capsys, host, conf)
    status, detail = r['driver signatures']
    assert status == 'Warning' and needle in detail, detail
    assert str(host / 'nova' / 'virt' / 'libvirt') in detail or 'line 1' in detail, detail


def test_observe_mode_is_a_warning(capsys, host, tmp_path):
    conf = nova_conf(tmp_path / 'nova.conf', 'rabbit://guest:guest@127.0.0.1:1/',
                     'qemu+unix:///system?socket=/nonexistent/sock',
                     extra='\n[migpilot]\nmode = observe\n')
    rc, r, _ = run_check(capsys, host, conf)
    assert r['switching mode'][0] == 'Warning'
    assert 'set [migpilot] mode = auto' in r['switching mode'][1]


@pytest.mark.parametrize('content,needle', [
    (None, 'no such file'),
    ('[libvirt]\nlive_migration_permit_post_copy = maybe\n',
     "[libvirt] live_migration_permit_post_copy = 'maybe' is not a boolean"),
    ('[libvirt\nx = 1\n', 'is not a valid INI file'),
])
def test_unusable_nova_conf_one_line_exit_255(capsys, host, tmp_path, content, needle):
    path = str(tmp_path / 'nova.conf')
    if content is not None:
        write(path, content)
    rc = cli.main(['check', '--nova-conf', path, '--migpilot-conf', str(host / 'none'),
                   '--ceilometer-dir', str(host / 'ceilometer')])
    out, err = capsys.readouterr()
    assert rc == 255
    assert out == ''
    assert len(err.splitlines()) == 1 and needle in err, err


# -- the operator files -------------------------------------------------------------------

METRICS_MESSAGE = {
    'ctxt': {}, 'publisher_id': 'migpilot.lab-a', 'event_type': 'compute.live_migration.metrics',
    'metadata': {'message_id': '5b2b44cc-43b5-4fc5-8b38-9ff7d1c4e0a1',
                 'timestamp': '2026-11-22 11:00:50.555914'},
    'payload': {'instance_id': '178b0921-8f85-4257-88b6-2e743b5a975c', 'project_id': 'p1',
                'user_id': 'u1', 'request_id': 'req-1', 'source_host': 'lab-a',
                'dest_host': 'lab-b', 'outcome': 'completed', 'mode': 'post-copy',
                'migration_time_ms': 23677, 'downtime_ms': 51, 'bytes_transferred': 883221986,
                'memory_total_bytes': 403439616, 'passes': 3, 'postcopy_switch_ms': 15271,
                'switch_reason': 'external', 'decided_by': 'other'},
}


def _ceilometer_conf(meters_dir):
    from ceilometer import service
    conf = service.prepare_service([], [])
    conf.set_override('meter_definitions_dirs', [meters_dir], group='meter')
    return conf


def test_meter_definitions_load_in_ceilometer():
    """Debian's Ceilometer turns a metrics notification into exactly the three samples,
    and its stock meters (memory, vcpus, ...) stay silent on it."""
    import ceilometer
    from ceilometer.meter import notifications
    stock = os.path.join(os.path.dirname(ceilometer.__file__), 'data', 'meters.d')
    conf = _ceilometer_conf(os.path.join(REPO, 'etc', 'ceilometer', 'meters.d'))
    conf.set_override('meter_definitions_dirs',
                      [os.path.join(REPO, 'etc', 'ceilometer', 'meters.d'), stock],
                      group='meter')
    handler = notifications.ProcessMeterNotifications(conf, None)
    samples = list(handler.build_sample(METRICS_MESSAGE))
    by_name = {s.name: s for s in samples}
    assert sorted(by_name) == sorted(METERS + (DOWNTIME_NET,))
    p = METRICS_MESSAGE['payload']
    assert by_name[METERS[0]].volume == p['migration_time_ms']
    assert by_name[METERS[1]].volume == p['downtime_ms']
    assert by_name[METERS[2]].volume == p['bytes_transferred']
    # an optional key (newer libvirt): absent here, no volume
    assert 'downtime_net_ms' not in p and by_name[DOWNTIME_NET].volume is None
    with_net = copy.deepcopy(METRICS_MESSAGE)
    with_net['payload']['downtime_net_ms'] = 12
    by_name = {s.name: s for s in handler.build_sample(with_net)}
    assert by_name[DOWNTIME_NET].volume == 12 and by_name[DOWNTIME_NET].unit == 'ms'
    for s in samples:
        assert s.type == 'gauge' and s.resource_id == p['instance_id']
        assert s.project_id == 'p1' and s.user_id == 'u1'
        assert s.resource_metadata['mode'] == 'post-copy'
        assert s.resource_metadata['host'] == 'lab-b'


DIRTY_RATE_MESSAGE = {
    'ctxt': {}, 'publisher_id': 'migpilot.lab-a',
    'event_type': 'compute.live_migration.dirty_rate',
    'metadata': {'message_id': '9d0c3a52-3e0f-4d1e-9a55-0c2b8f2e6b11',
                 'timestamp': '2026-11-22 11:05:00.000000'},
    'payload': {'instance_id': '178b0921-8f85-4257-88b6-2e743b5a975c', 'project_id': 'p1',
                'user_id': 'u1', 'request_id': None, 'source_host': 'lab-a',
                'dest_host': None, 'name': 'instance-0000002a', 'status': 'measured',
                'wss_bytes': 67108864, 'dirty_rate_bps': 67108864,
                'rate_is_lower_bound': True, 'memory_bytes': 268435456,
                'windows': [{'window_ms': 1000, 'rate_mibs': 64},
                            {'window_ms': 4000, 'rate_mibs': 16}],
                'measured_at_ms': 1795345500000},
}


def test_dirty_rate_meters_load_in_ceilometer():
    """A dirty_rate notification gives exactly the two gauges per instance, and no stock
    meter (its event type is outside compute.instance.*)."""
    import ceilometer
    from ceilometer.meter import notifications
    stock = os.path.join(os.path.dirname(ceilometer.__file__), 'data', 'meters.d')
    conf = _ceilometer_conf(os.path.join(REPO, 'etc', 'ceilometer', 'meters.d'))
    conf.set_override('meter_definitions_dirs',
                      [os.path.join(REPO, 'etc', 'ceilometer', 'meters.d'), stock],
                      group='meter')
    handler = notifications.ProcessMeterNotifications(conf, None)
    by_name = {s.name: s for s in handler.build_sample(DIRTY_RATE_MESSAGE)}
    assert sorted(by_name) == sorted(DIRTY_METERS)
    p = DIRTY_RATE_MESSAGE['payload']
    rate, wss = by_name[DIRTY_METERS[0]], by_name[DIRTY_METERS[1]]
    assert (rate.volume, rate.unit) == (p['dirty_rate_bps'], 'Bps')
    assert (wss.volume, wss.unit) == (p['wss_bytes'], 'B')
    for s in (rate, wss):
        assert s.type == 'gauge' and s.resource_id == p['instance_id']
        assert s.project_id == 'p1' and s.user_id == 'u1'
        assert s.resource_metadata['host'] == 'lab-a'
        assert s.resource_metadata['rate_is_lower_bound'] is True
    # inconsistent windows: no figures, no volume
    bad = copy.deepcopy(DIRTY_RATE_MESSAGE)
    bad['payload'].update(wss_bytes=None, dirty_rate_bps=None, status='inconsistent: x')
    assert all(s.volume is None for s in handler.build_sample(bad))


def test_gnocchi_resources_list_every_meter():
    with open(os.path.join(REPO, 'etc', 'ceilometer', 'gnocchi_resources.migpilot.yaml')) as f:
        listed = [line.strip().rstrip(':') for line in f
                  if line.strip() and not line.lstrip().startswith('#')]
    assert sorted(listed) == sorted(METERS + (DOWNTIME_NET,) + DIRTY_METERS)


def test_event_definitions_load_in_ceilometer(tmp_path):
    import ceilometer
    from ceilometer.event import converter
    from ceilometer.event import trait_plugins  # noqa: F401  (plugins by entry point)
    with open(os.path.join(os.path.dirname(ceilometer.__file__), 'pipeline', 'data',
                           'event_definitions.yaml')) as f:
        stock = f.read()
    with open(os.path.join(REPO, 'etc', 'ceilometer', 'event_definitions.migpilot.yaml')) as f:
        ours = f.read()
    # the operator's step described in the file: append to the stock definitions
    path = write(str(tmp_path / 'event_definitions.yaml'),
                 stock.rstrip('\n') + '\n' + ours.replace('---\n', '', 1))
    conf = _ceilometer_conf(str(tmp_path))
    conf.set_override('definitions_cfg_file', path, group='event')
    conv = converter.setup_events(conf, None)
    msg = dict(METRICS_MESSAGE, priority='info')
    event = conv.to_event('info', msg)
    assert event.event_type == 'compute.live_migration.metrics'
    traits = {t.name: t.value for t in event.traits}
    assert traits['instance_id'] == METRICS_MESSAGE['payload']['instance_id']
    assert traits['host'] == 'lab-a' and traits['service'] == 'migpilot'
    assert traits['downtime_ms'] == 51 and traits['bytes_transferred'] == 883221986
    assert traits['mode'] == 'post-copy'
    event = conv.to_event('info', dict(DIRTY_RATE_MESSAGE, priority='info'))
    traits = {t.name: t.value for t in event.traits}
    assert event.event_type == 'compute.live_migration.dirty_rate'
    assert traits['wss_bytes'] == 67108864 and traits['dirty_rate_bps'] == 67108864
    assert traits['resource_id'] == DIRTY_RATE_MESSAGE['payload']['instance_id']
    forecast = dict(DIRTY_RATE_MESSAGE, event_type='compute.live_migration.forecast',
                    priority='info',
                    payload={'instance_id': 'i1', 'status': 'post-copy', 'postcopy': True,
                             'time_ms': 6667, 'bytes': 335544320, 'downtime_ms': None,
                             'switch_pass': 2, 'reason': 'working-set-exceeds-downtime'})
    traits = {t.name: t.value for t in conv.to_event('info', forecast).traits}
    assert traits['status'] == 'post-copy' and traits['time_ms'] == 6667
    assert traits['switch_pass'] == 2 and traits['bytes'] == 335544320


def test_nova_conf_snippet_is_what_check_wants(capsys, host, lab, rabbit, tmp_path):
    """etc/nova/nova.conf.migpilot, added to a minimal nova.conf, passes every check."""
    with open(os.path.join(REPO, 'etc', 'nova', 'nova.conf.migpilot')) as f:
        snippet = f.read()
    conf = write(str(tmp_path / 'nova.conf'),
                 '[DEFAULT]\ntransport_url = %s\n[libvirt]\nconnection_uri = %s\n%s'
                 % (rabbit.url, lab.hosts[0].uri, snippet))
    rc, r, _ = run_check(capsys, host, conf)
    assert rc == 0, r


def test_make_install_puts_operator_files_in_place(tmp_path):
    dest = str(tmp_path / 'root')
    nova_dir = '/usr/lib/python3/dist-packages/nova'
    p = subprocess.run(['make', '-s', 'install', 'DESTDIR=' + dest],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ, MIGPILOT_NOVA_DIR=nova_dir), timeout=280)
    assert p.returncode == 0, p.stdout[-3000:]
    for rel in ('etc/migpilot/migpilot.conf', 'usr/share/migpilot/nova/nova.conf.migpilot',
                'lib/systemd/system/migpilot-agent.service',
                'etc/ceilometer/meters.d/migpilot.yaml',
                'usr/share/migpilot/ceilometer/event_definitions.migpilot.yaml',
                'usr/share/migpilot/ceilometer/gnocchi_resources.migpilot.yaml',
                'usr/local/sbin/migpilot-agent',
                nova_dir.lstrip('/') + '/virt/migpilot/driver.py',
                nova_dir.lstrip('/') + '/virt/migpilot/__init__.py'):
        assert os.path.exists(os.path.join(dest, rel)), rel
    # the unit starts the agent where PREFIX put it
    with open(os.path.join(dest, 'lib/systemd/system/migpilot-agent.service')) as f:
        assert 'ExecStart=/usr/local/sbin/migpilot-agent --foreground' in f.read()
    with open(os.path.join(dest, nova_dir.lstrip('/'), 'virt', 'migpilot', 'driver.py')) as f:
        assert 'from nova_hooks.driver import LibvirtDriver' in f.read()


def test_driver_options_listed_for_oslo_config_generator():
    from nova_hooks import conf
    import _migpilot
    (group, opts), = conf.list_opts()
    assert group.name == 'migpilot'
    names = {o.name for o in opts}
    defaults = _migpilot.Policy().config
    # the driver's policy defaults are the C core's
    for key in ('min_pass', 'rho_max', 'max_passes', 'shrink_passes', 'shrink_min',
                'downtime_ms', 'min_bandwidth_samples'):
        assert key in names
        assert [o.default for o in opts if o.name == key][0] == defaults[key], key
    assert all(o.help for o in opts)
