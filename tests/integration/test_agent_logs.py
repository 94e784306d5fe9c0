"""migpilot-agent follows nova-compute's log: the metrics of a real migration on the lab
carry nova's own duration (nova_time_ms) and switch times, read from a log file written
during the migration with nova's line formats; without such lines the metrics are not held
back for longer than [logs] wait_ms."""
import calendar
import os
import time
import uuid

import pytest

from tests.integration import bus
from tests.integration.agentproc import Agent

MEM_MIB = 256
BANDWIDTH_MIBS = 32
CONVERGING = dict(mem_mib=MEM_MIB, dirty_mib=64, dirty_rate=4)
PREFIX = ('{ts} 4242 {level} {logger} [None {req} 9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c '
          '8d1f5e6b9a0c4b2e8f3a7c6d5e4b3a21 - - - -] ')
SUFFIX = ' _live_migration_monitor /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10472'


class NovaLog:
    """Appends nova-compute lines (reference section 3: oslo.log's default format, nova
    Zed's messages) stamped with the current UTC time; remembers each stamp in epoch ms."""

    def __init__(self, path):
        self.path = path

    def write(self, text):
        with open(self.path, 'a') as f:
            f.write(text)

    def line(self, message, level='INFO', logger='nova.virt.libvirt.driver', req=None,
             instance=None, partial=False):
        now = time.time()
        ms = int(now * 1000) % 1000
        ts = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now)) + '.%03d' % ms
        stamp = calendar.timegm(time.strptime(ts[:19], '%Y-%m-%d %H:%M:%S')) * 1000 + ms
        if req is None:
            text = '%s 4242 %s %s [-] ' % (ts, level, logger)
        else:
            text = PREFIX.format(ts=ts, level=level, logger=logger, req=req)
        if instance:
            text += '[instance: %s] ' % instance
        text += message + (SUFFIX if level == 'DEBUG' else '') + '\n'
        if partial:
            # nova's writes may reach the file in pieces: the follower waits for the newline
            cut = len(text) // 2
            self.write(text[:cut])
            time.sleep(0.3)
            self.write(text[cut:])
        else:
            self.write(text)
        return stamp


@pytest.fixture
def guest(lab):
    names = []

    def make(params):
        name = 'mp-%s' % uuid.uuid4().hex[:8]
        names.append(name)
        dom = lab.start_guest(lab.hosts[0], name, **params)
        return name, dom.UUIDString()

    yield make
    for name in names:
        lab.destroy_guest(name)


@pytest.mark.timeout(240)
def test_metrics_carry_nova_time_from_its_log(lab, rabbit, guest, tmp_path):
    collector = bus.Collector(rabbit.url).start()
    # the directory and the file do not exist when the agent starts
    log_path = tmp_path / 'nova' / 'nova-compute.log'
    agent = Agent(lab.hosts[0].uri, rabbit.url, host=lab.hosts[0].name,
                  extra={'logs': {'nova_compute_log': str(log_path), 'timezone': 'UTC',
                                  'wait_ms': '3000'}})
    a, b = lab.hosts
    try:
        agent.start()
        name, inst = guest(CONVERGING)
        other, other_inst = guest(CONVERGING)
        os.mkdir(log_path.parent)
        nova = NovaLog(str(log_path))
        req = bus.new_request_id()
        nova.line('Running periodic task ComputeManager._poll_rebooting_instances',
                  level='DEBUG', logger='oslo_service.periodic_task', req=req)
        nova.line('live_migration data is LibvirtLiveMigrateData(...)', level='DEBUG',
                  logger='nova.compute.manager', req=req)

        m = lab.migrate(a, b, name, bandwidth_mibs=BANDWIDTH_MIBS, postcopy=True, wait=False)
        started = nova.line('Starting monitoring of live migration', level='DEBUG', req=req,
                            instance=inst)
        nova.line('Migration running for 0 secs, memory 100% remaining (bytes processed=0, '
                  'remaining=268435456, total=268435456); disk 100% remaining (bytes '
                  'processed=0, remaining=0, total=0).', req=req, instance=inst)
        time.sleep(1.0)
        switched = nova.line('Switching to post-copy migration mode',
                             logger='nova.virt.libvirt.migration', req=req, instance=inst)
        lifecycle = nova.line('VM Postcopy started (Lifecycle Event)',
                              logger='nova.compute.manager', instance=inst)
        m.wait()
        # nova's monitor notices the end up to 0.5 s after libvirt: the agent waits for it
        time.sleep(0.5)
        completed = nova.line('Migration operation has completed', req=req, instance=inst,
                              partial=True)
        nova.line('_post_live_migration() is started..', logger='nova.compute.manager',
                  req=req, instance=inst)

        found = collector.wait_for('compute.live_migration.metrics', inst, timeout=60)
        assert len(found) == 1
        p = found[0]['payload']
        assert p['outcome'] == 'completed'
        assert p['nova_time_ms'] == completed - started
        assert p['nova_switch_at_ms'] == switched
        assert p['nova_postcopy_started_at_ms'] == lifecycle
        agent.wait_log(r"nova's log: migration completed in %d ms \(request %s\)"
                       % (completed - started, req))

        # a migration nova's log never shows: published with null once the wait is over
        m2 = lab.migrate(a, b, other, bandwidth_mibs=BANDWIDTH_MIBS, postcopy=True,
                         wait=False)
        m2.wait()
        ended = time.monotonic()
        found = collector.wait_for('compute.live_migration.metrics', other_inst, timeout=30)
        waited = time.monotonic() - ended
        assert len(found) == 1
        p = found[0]['payload']
        assert p['outcome'] == 'completed'
        assert p['nova_time_ms'] is None and p['nova_switch_at_ms'] is None
        assert waited < 3.0 + 5.0, 'metrics held back %.1f s' % waited
        assert "nova's log has not shown the migration's end" in agent.log()
    finally:
        rc = agent.stop()
        log = agent.log()
        agent.cleanup()
        collector.stop()
    assert rc == 0, log[-3000:]
    assert 'ERROR: AddressSanitizer' not in log, log[-3000:]
