"""A migration predicted before it starts, then run, on the lab: `migpilot predict`
(libvirt's dirty-rate calc read by the CLI itself) and the agent's
compute.live_migration.forecast, compared with the outcome the agent's metrics record
carries beside the forecast. One stalled and one converging regime of
tests/data/traces/dirtyrate/ (README there). docs/reference/forecast.md."""
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from tests.integration import bus
from tests.integration.agentproc import Agent

MIB = 1024 * 1024
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
# Not asserted: predicted time and bytes within 15 % of the outcome. Measured here
# over two runs (libvirt 9.0, QEMU 7.2, TCG): stalled +117/+135 % time, +63/+73 % bytes;
# converging +52/+61 % time, +53/+65 % bytes. The lab's guests are half zero pages, which pass 1 sends as a few bytes,
# and QEMU's resident set (245 of 256 MiB) does not tell them: docs/reference/forecast.md.
REGIMES = {
    # 64 MiB rewritten 4 times a second (not flat out: page sampling reads a page written
    # a multiple of 256 times as clean, tests/integration/test_dirtyrate.py) at 48 MiB/s:
    # stalls above the 14.4 MiB 300 ms move, switched at pass 2
    'stalled': dict(guest=dict(mem_mib=256, dirty_mib=64, dirty_rate=256), bandwidth=48,
                    postcopy=True),
    # wss64_rate8_bw24_converging: 8 MiB/s over 64 MiB at 24 MiB/s converges
    'converging': dict(guest=dict(mem_mib=256, dirty_mib=64, dirty_rate=8), bandwidth=24,
                       postcopy=False),
}


@pytest.fixture
def collector(rabbit):
    c = bus.Collector(rabbit.url).start()
    yield c
    c.stop()


def _predict(uri, name, bandwidth):
    p = subprocess.run([sys.executable, '-m', 'nova_hooks', 'predict', name, '--json',
                        '--bandwidth', str(bandwidth), '--libvirt-uri', uri,
                        '--migpilot-conf', '/nonexistent'],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _error(predicted, actual):
    return (predicted - actual) / actual


@pytest.mark.parametrize('regime', sorted(REGIMES))
def test_forecast_against_outcome(lab, rabbit, collector, regime):
    r = REGIMES[regime]
    a, b = lab.hosts
    name = 'mpfc-%s' % uuid.uuid4().hex[:8]
    dom = lab.start_guest(a, name, **r['guest'])
    inst = dom.UUIDString()
    agent = None
    try:
        # the CLI first: QEMU runs one calc per guest at a time
        cli = _predict(a.uri, name, r['bandwidth'])
        agent = Agent(a.uri, rabbit.url, host=a.name,
                      extra={'dirtyrate': {'interval_ms': '3000', 'windows_s': '1,4'}})
        agent.start()
        agent.wait_log(r'dirty rate of %s: \d+ MiB/s over 1000 ms' % re.escape(name),
                       timeout=40)
        # the agent's link rate: the migration's max speed
        dom.migrateSetMaxSpeed(r['bandwidth'], 0)
        m = lab.migrate(a, b, name, bandwidth_mibs=r['bandwidth'], postcopy=r['postcopy'],
                        timeout=240)
        assert m.ok
        metrics = collector.wait_for('compute.live_migration.metrics', inst,
                                     timeout=90)[0]['payload']
        forecast = collector.wait_for('compute.live_migration.forecast', inst,
                                      timeout=10)[0]['payload']
    finally:
        if agent is not None:
            rc = agent.stop()
            log = agent.log()
            agent.cleanup()
            assert rc == 0, log[-3000:]
        lab.destroy_guest(name)

    t, nbytes = metrics['migration_time_ms'], metrics['bytes_transferred']
    report = '%s: outcome %s %d ms %.1f MiB %d passes; agent forecast %s %s ms %.1f MiB ' \
             '(%s); CLI forecast %s %s ms %.1f MiB' % (
                 regime, metrics['mode'], t, nbytes / MIB, metrics['passes'],
                 forecast['status'], forecast['time_ms'], (forecast['bytes'] or 0) / MIB,
                 forecast['explanation'], cli['status'], cli['time_ms'],
                 (cli['bytes'] or 0) / MIB)
    print(report)
    assert metrics['outcome'] == 'completed', report
    assert forecast['status'] == ('post-copy' if regime == 'stalled' else 'pre-copy'), report
    # the CLI's own measurement, through the same core: a forecast or its reason
    assert cli['status'] in ('unknown', forecast['status']), report
    assert cli['explanation'], report
    f = metrics['forecast']
    assert f['postcopy_correct'] is True, report
    assert f['status'] == forecast['status'] and f['time_ms'] == forecast['time_ms']
    # the record's errors are the forecast's against the outcome
    assert f['time_error'] == pytest.approx(_error(forecast['time_ms'], t), abs=1e-9)
    assert f['bytes_error'] == pytest.approx(_error(forecast['bytes'], nbytes), abs=1e-9)
    # the forecast errs on the long side (zero pages counted as sent), never short
    assert f['time_error'] > 0 and f['bytes_error'] > 0, report
