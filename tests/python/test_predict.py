"""`migpilot predict`: the measurement through a fake libvirt connection (the stats keys of
libvirt's VIR_DOMAIN_STATS_DIRTYRATE), the link rate and downtime it picks, the table and
--json, and its one-line errors."""
import json
import re

import libvirt
import pytest

from nova_hooks import cli
from nova_hooks import cmd_predict

MIB = 1024 * 1024
UUID = '0d6b7a2e-4c1f-4a39-9f35-6b2f5c1d2e3f'


class FakeDomain:
    """A running guest and QEMU's calc-dirty-rate: a calc of `period` s started at the
    fake clock's t shows MEASURED once t + period + lag has passed."""

    def __init__(self, clock, rates, ram_mib=256, max_speed=8796093022207, downtime=300,
                 job=libvirt.VIR_DOMAIN_JOB_NONE, lag=0.0, active=True, refuse=False,
                 rss_mib=None):
        self.clock = clock
        self.rates = rates          # {period_s: MiB/s}
        self.ram_mib = ram_mib
        self.max_speed = max_speed
        self.downtime = downtime
        self.job = job
        self.lag = lag
        self.active = active
        self.refuse = refuse
        self.rss_mib = rss_mib
        # what an earlier calc left: a 1 s window measured long ago
        self.calc = {'start': 5, 'period': 1, 'rate': 999, 'done': True}
        self.started = []

    def name(self):
        return 'instance-0000002a'

    def UUIDString(self):
        return UUID

    def isActive(self):
        return self.active

    def jobInfo(self):
        return [self.job, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

    def maxMemory(self):
        return self.ram_mib * 1024

    def memoryStats(self):
        out = {'actual': self.ram_mib * 1024}
        if self.rss_mib is not None:
            out['rss'] = self.rss_mib * 1024
        return out

    def migrateGetMaxSpeed(self, flags):
        return self.max_speed

    def migrateGetMaxDowntime(self, flags):
        return self.downtime

    def startDirtyRateCalc(self, seconds, flags):
        assert flags == libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING
        if self.refuse:
            raise libvirt.libvirtError('refused')
        self.started.append(seconds)
        self.calc = {'start': 100 + int(self.clock[0]), 'period': seconds,
                     'rate': self.rates[seconds], 'done': False,
                     'end': self.clock[0] + seconds + self.lag}

    def stats(self):
        c = self.calc
        done = c['done'] or self.clock[0] >= c['end']
        out = {'dirtyrate.calc_status': libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED if done
               else libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING,
               'dirtyrate.calc_start_time': c['start'],
               'dirtyrate.calc_period': c['period'],
               'dirtyrate.calc_mode': 'page-sampling'}
        if done:
            out['dirtyrate.megabytes_per_second'] = c['rate']
        return out


class FakeConn:
    def __init__(self, dom):
        self.dom = dom

    def lookupByUUIDString(self, uuid):
        if uuid != UUID:
            raise libvirt.libvirtError('no domain with matching uuid')
        return self.dom

    def lookupByName(self, name):
        if name != self.dom.name():
            raise libvirt.libvirtError('no domain with matching name')
        return self.dom

    def domainListGetStats(self, doms, stats):
        assert stats == libvirt.VIR_DOMAIN_STATS_DIRTYRATE
        return [(d, d.stats()) for d in doms]


def make_guest(monkeypatch, **kwargs):
    clock = [0.0]
    dom = FakeDomain(clock, kwargs.pop('rates', {1: 64, 4: 16}), **kwargs)

    def sleep(s):
        clock[0] += s
    conn = FakeConn(dom)
    monkeypatch.setattr(cmd_predict, 'open_connection', lambda uri: conn)
    monkeypatch.setattr(cmd_predict.time, 'sleep', sleep)
    return dom, clock


def run(monkeypatch, capsys, argv, **kwargs):
    dom, clock = make_guest(monkeypatch, **kwargs)
    parser = cli.build_parser()
    args = parser.parse_args(['predict', '--migpilot-conf', '/nonexistent'] + argv)
    rc = cmd_predict.run(args, sleep=cmd_predict.time.sleep)
    out, err = capsys.readouterr()
    return rc, out, err, dom, clock


def test_parse_stats_real_keys():
    st = cmd_predict.parse_stats({'dirtyrate.calc_status': 2,
                                  'dirtyrate.calc_start_time': 1234,
                                  'dirtyrate.calc_period': 4,
                                  'dirtyrate.megabytes_per_second': 13,
                                  'dirtyrate.calc_mode': 'page-sampling'})
    assert st == {'status': 2, 'start_time': 1234, 'period': 4, 'rate': 13,
                  'mode': 'page-sampling'}
    # measuring: no rate yet
    assert cmd_predict.parse_stats({'dirtyrate.calc_status': 1})['rate'] is None
    with pytest.raises(cmd_predict.PredictError, match='no dirtyrate.calc_status'):
        cmd_predict.parse_stats({})
    with pytest.raises(cmd_predict.PredictError, match='megabytes_per_second = -1'):
        cmd_predict.parse_stats({'dirtyrate.calc_status': 2,
                                 'dirtyrate.megabytes_per_second': -1})


def test_measure_windows_in_order_and_newer_than_before(monkeypatch):
    # the result appears 0.7 s late: the old 1 s result (rate 999) must not be taken
    dom, clock = make_guest(monkeypatch, lag=0.7, rates={1: 40, 4: 12})
    m = cmd_predict.measure(FakeConn(dom), dom, sleep=cmd_predict.time.sleep)
    assert dom.started == [1, 4]
    assert m == {'windows': [(1000, 40), (4000, 12)], 'memory_bytes': 256 * MIB,
                 'age_ms': 0}
    assert clock[0] >= 1 + 0.7 + 4 + 0.7


def test_measure_times_out(monkeypatch):
    dom, _ = make_guest(monkeypatch, lag=60)
    with pytest.raises(cmd_predict.PredictError,
                       match='no result of the 1 s dirty-rate window of instance-0000002a'):
        cmd_predict.measure(FakeConn(dom), dom, sleep=cmd_predict.time.sleep)


def test_table_saturated_guest(monkeypatch, capsys):
    rc, out, err, dom, _ = run(monkeypatch, capsys, [UUID, '--bandwidth', '48'])
    assert rc == 0, err
    rows = dict(re.split(r'\s{2,}', line, maxsplit=1) for line in out.splitlines())
    assert rows['forecast'] == 'post-copy (working-set-exceeds-downtime)'
    assert rows['link rate'] == '48.0 MiB/s (--bandwidth)'
    assert rows['working set'] == '64.0 MiB' and rows['write rate'] == '64.0 MiB/s'
    assert rows['post-copy'] == 'at pass 2 after 5333 ms, fetching 64.0 MiB'
    assert rows['time'] == '6667 ms'
    assert rows['bytes'] == '320.0 MiB'
    assert rows['guest RAM'] == '256.0 MiB (256.0 MiB touched: sent by pass 1)'
    assert 'max downtime' in out and "300 ms (the guest's)" in out
    assert err == ''


def test_json_by_name_with_max_speed(monkeypatch, capsys):
    rc, out, err, _, _ = run(monkeypatch, capsys, ['instance-0000002a', '--json'],
                             rates={1: 16, 4: 16}, max_speed=64, downtime=500)
    assert rc == 0, err
    fc = json.loads(out)
    assert fc['instance_id'] == UUID and fc['name'] == 'instance-0000002a'
    assert fc['bandwidth_bps'] == 64 * MIB
    assert fc['bandwidth_from'] == "the guest's migration max speed"
    assert fc['max_downtime_ms'] == 500
    assert fc['measurement'] == {'windows': [{'window_ms': 1000, 'rate_mibs': 16},
                                             {'window_ms': 4000, 'rate_mibs': 16}],
                                 'memory_bytes': 256 * MIB}
    # 16 MiB/s over 64 MiB at 64 MiB/s, 32 MiB fit in 500 ms: pass 1 4 s resends 64 MiB,
    # pass 2 1 s resends 16 MiB: 5.25 s
    assert (fc['status'], fc['postcopy'], fc['time_ms'], fc['passes']) == \
        ('pre-copy', False, 5250, 3)


def test_resident_set_bounds_pass_1(monkeypatch, capsys):
    # 128 of 256 MiB resident: pass 1 2 s, 32 MiB resent, 0.5 s, 8 MiB: 2.625 s
    rc, out, err, _, _ = run(monkeypatch, capsys, [UUID, '--bandwidth', '64', '--json'],
                             rates={1: 16, 4: 16}, rss_mib=128)
    assert rc == 0, err
    fc = json.loads(out)
    assert (fc['first_pass_bytes'], fc['time_ms'], fc['bytes']) == \
        (128 * MIB, 2625, 168 * MIB)


def test_downtime_option_and_policy_conf(monkeypatch, capsys, tmp_path):
    conf = tmp_path / 'migpilot.conf'
    conf.write_text('[policy]\nmin_pass = 3\n')
    dom, _ = make_guest(monkeypatch)
    args = cli.build_parser().parse_args(['predict', UUID, '--bandwidth', '48',
                                          '--downtime-ms', '100', '--json',
                                          '--migpilot-conf', str(conf)])
    assert cmd_predict.run(args, sleep=cmd_predict.time.sleep) == 0
    fc = json.loads(capsys.readouterr().out)
    assert fc['max_downtime_ms'] == 100 and fc['max_downtime_from'] == '--downtime-ms'
    assert fc['switch_pass'] == 3


def test_no_bandwidth_is_one_line_exit_2(monkeypatch, capsys):
    rc, out, err, dom, _ = run(monkeypatch, capsys, [UUID])
    assert rc == 2 and out == ''
    assert err == ('migpilot predict: no link rate: the guest has no migration max speed '
                   'set; give --bandwidth MiB/s\n')
    assert dom.started == []        # nothing measured for nothing


@pytest.mark.parametrize('kwargs, argv, message', [
    ({}, ['nosuch', '--bandwidth', '32'], "no domain with UUID or name 'nosuch'"),
    ({'active': False}, [UUID, '--bandwidth', '32'],
     'instance-0000002a is not running: nothing to measure'),
    ({'job': libvirt.VIR_DOMAIN_JOB_UNBOUNDED}, [UUID, '--bandwidth', '32'],
     'a libvirt job (a migration?) runs on instance-0000002a: measure it before it '
     'migrates'),
    ({'refuse': True}, [UUID, '--bandwidth', '32'],
     'dirty-rate calc of 1 s refused on instance-0000002a: '),
])
def test_cannot_measure_is_one_line_exit_1(monkeypatch, capsys, kwargs, argv, message):
    rc, out, err, _, _ = run(monkeypatch, capsys, argv, **kwargs)
    assert rc == 1 and out == ''
    assert err.startswith('migpilot predict: ' + message)
    assert err.count('\n') == 1


@pytest.mark.parametrize('argv', [
    ['predict'],
    ['predict', UUID, '--bandwidth', '0'],
    ['predict', UUID, '--bandwidth', 'fast'],
    ['predict', UUID, '--downtime-ms', '-5'],
    ['predict', UUID, '--downtime-ms', '1.5'],
])
def test_bad_arguments_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'error:' in err
