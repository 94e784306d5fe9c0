"""The broker's traffic blackholed (packets dropped, not refused) during a stalled migration:
no broker state may delay the post-copy switch (migpilot issue 13), and once the traffic
flows again every record (switch, metrics) reaches the bus exactly once.

The blackhole is a pair of iptables DROP rules of the test's own on the loopback interface,
matching only TCP to and from the lab RabbitMQ's port, inserted and deleted by the test."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tests.integration.test_agent import BANDWIDTH_MIBS, STALLED, SWITCH_WITHIN_S
from tests.integration.test_faults import DurableListener, spool_files
from tests.lab.events import POSTCOPY, EventRecorder

PREFIX = os.environ.get('MPLAB_PREFIX', 'mplab')
RECORDS = ('compute.live_migration.switch', 'compute.live_migration.metrics',
           'compute.live_migration.forecast')


class Blackhole:
    """Drops every TCP segment to or from 127.0.0.1:port on lo (both directions, so that
    neither end sees a reset: connects time out, established links stall)."""

    def __init__(self, port):
        self.comment = '%s-blackhole-%d' % (PREFIX, port)
        self.rules = [['INPUT', '-i', 'lo', '-p', 'tcp', direction, str(port),
                       '-m', 'comment', '--comment', self.comment, '-j', 'DROP']
                      for direction in ('--dport', '--sport')]
        self.on = False

    def _iptables(self, op, rule, check=True):
        return subprocess.run(['iptables', '-w', op] + rule, check=check,
                              capture_output=True, text=True)

    def start(self):
        for rule in self.rules:
            self._iptables('-I', rule)
        self.on = True

    def stop(self):
        for rule in self.rules:
            # every copy, should one have been inserted twice
            while self._iptables('-C', rule, check=False).returncode == 0:
                self._iptables('-D', rule)
        self.on = False


@pytest.fixture
def blackhole(rabbit):
    b = Blackhole(rabbit.port)
    yield b
    b.stop()


@pytest.fixture
def guest(lab):
    names = []

    def make(params):
        name = 'mpbh-%s' % uuid.uuid4().hex[:8]
        names.append(name)
        dom = lab.start_guest(lab.hosts[0], name, persistent=True, **params)
        return name, dom.UUIDString()

    yield make
    for name in names:
        lab.destroy_guest(name)


def spooled_kinds(agent, inst):
    """The event types of the spooled records of instance inst."""
    kinds = []
    for f in spool_files(agent):
        with open(os.path.join(agent.state_dir, 'spool', f)) as fp:
            msg = json.loads(json.loads(fp.read().split('\n', 1)[1])['oslo.message'])
        if msg['payload'].get('instance_id') == inst:
            kinds.append(msg['event_type'])
    return sorted(kinds)


def _connect_times_out(port):
    """True if a TCP connect to the broker neither succeeds nor is refused within 1 s."""
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(('127.0.0.1', port))
    except socket.timeout:
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False


def test_blackholed_broker_delays_neither_switch_nor_records(lab, rabbit, agent_factory,
                                                             guest, blackhole):
    exchange = 'mpblackhole-%s' % uuid.uuid4().hex[:6]
    # a queue of the test's own that outlives the outage: read with fresh connections
    # after it, so the listener itself needs no reconnection through the blackhole
    listener = DurableListener(rabbit.port, exchange)
    # reconnection attempts back to back (50 ms apart): an agent whose event loop waited
    # for the broker would be busy with it nearly all the time the traffic is dropped
    agent = agent_factory(extra={'amqp': {'exchange': exchange, 'durable': 'true',
                                          'queue': '%s.agent' % exchange,
                                          'reconnect_min_ms': '50',
                                          'reconnect_max_ms': '50'}})
    a, b = lab.hosts
    name, inst = guest(STALLED)
    rec = EventRecorder(a)
    try:
        agent.wait_log(r'amqp: connected to', timeout=30)
        m = lab.migrate(a, b, name, bandwidth_mibs=BANDWIDTH_MIBS, postcopy=True,
                        wait=False)
        m.wait_pass(1, timeout=60)
        agent.wait_log(r'watching outgoing migration of %s' % name, timeout=30)
        blackhole.start()
        blacked = time.monotonic()
        assert _connect_times_out(rabbit.port), 'the blackhole does not drop connects'
        assert rec.max_iteration(inst) == 1, 'blackholed too late: pass 2 already began'
        m.wait(240)
        agent.wait_log(r'compute.live_migration.metrics \S+ spooled', timeout=60)
        log = agent.log()
        pass2 = rec.first('iteration', 2, inst)
        postcopy = rec.first('lifecycle', POSTCOPY, inst)
        spooled = spooled_kinds(agent, inst)
        # the forecast too when the agent made one after the traffic was cut (it does when
        # its dirty-rate round had measured the guest before pass 2)
        assert [k for k in spooled if not k.endswith('.forecast')] == [
            'compute.live_migration.metrics', 'compute.live_migration.switch'], spooled
        blackhole.stop()
        restored = time.monotonic()
        agent.wait_log(r'published spooled record', count=len(spooled), timeout=60)
        deadline = time.monotonic() + 10
        while spool_files(agent) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spool_files(agent) == []
        time.sleep(1)   # a duplicate would arrive right behind
        msgs = listener.drain()
    finally:
        blackhole.stop()
        print('--- agent log (last 6000 chars):\n%s' % agent.log()[-6000:])
        rec.close()
        listener.delete('%s.agent' % exchange)
    assert pass2 is not None and postcopy is not None, (pass2, postcopy)
    print('blackholed %.1f s before pass 2; switched %.3f s after pass 2 began; '
          'traffic restored %.1f s later' % (pass2 - blacked, postcopy - pass2,
                                             restored - pass2))
    # the agent was cut off from the broker (and trying to reconnect) when it switched
    switch_line = re.search(r'switched to post-copy at pass (\d+), (\d+) ms after the pass '
                            r'began', log)
    assert switch_line, log[-3000:]
    assert re.search(r'did not confirm a publish within \d+ s', log[:switch_line.start()]), \
        log[-3000:]
    # at the pass it would have switched at without the outage, as promptly (test_agent)
    assert switch_line.group(1) == '2'
    assert 0 <= postcopy - pass2 < SWITCH_WITHIN_S, 'switched %.3f s after pass 2 began' % (
        postcopy - pass2)
    # records, not the best-effort notifications (progress, dirty-rate gauges)
    mine = [x for x in msgs if x['payload'].get('instance_id') == inst and
            x['event_type'] in RECORDS]
    kinds = sorted(x['event_type'] for x in mine)
    # each record exactly once: switch and metrics, and the forecast if the agent made one
    made = ['compute.live_migration.forecast'] if re.search(
        r'compute\.live_migration\.forecast \S+ (?:spooled|published)|published '
        r'compute\.live_migration\.forecast', log + agent.log()) else []
    assert kinds == sorted(made + ['compute.live_migration.metrics',
                                   'compute.live_migration.switch']), kinds
    s = [x for x in mine if x['event_type'] == 'compute.live_migration.switch'][0]['payload']
    assert s['pass'] == 2 and s['acted'] is True and s['decided_by'] == 'migpilot', s
    assert 0 <= s['figures']['decision_latency_ms'] < SWITCH_WITHIN_S * 1000, s['figures']
    p = [x for x in mine if x['event_type'] == 'compute.live_migration.metrics'][0]['payload']
    assert p['outcome'] == 'completed' and p['mode'] == 'post-copy', p
    assert p['decided_by'] == 'migpilot' and p['switch_reason'] == s['reason'], p
    lab.check_guest_healthy(b, name)


def test_blackholed_broker_does_not_hold_the_agent_at_stop(rabbit, agent_factory, blackhole):
    """SIGTERM while the link thread waits on a connect the broker never answers: the
    agent still stops promptly, cleanly (the fixture checks its exit status and
    sanitizer reports), with no publish left unaccounted for."""
    # reconnection attempts back to back: the link thread is nearly always in a connect
    agent = agent_factory(extra={'amqp': {'reconnect_min_ms': '50', 'reconnect_max_ms': '50'}})
    agent.wait_log(r'amqp: connected to', timeout=30)
    blackhole.start()
    assert _connect_times_out(rabbit.port), 'the blackhole does not drop connects'
    # a progress notification waits for its confirm up to 5 s, then connects time out (3 s)
    agent.wait_log(r'cannot connect to 127\.0\.0\.1:%d' % rabbit.port, timeout=30)
    time.sleep(1)
    t = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    rc = agent.proc.wait(20)    # the fixture then checks the same exit status
    took = time.monotonic() - t
    log = agent.log()
    assert rc == 0, log[-3000:]
    # at most the rest of one TCP connect (3 s timeout): a connect in progress is the only
    # step that cannot be cut short
    print('stopped %.2f s after SIGTERM' % took)
    assert took < 3.5, 'stopped %.1f s after SIGTERM' % took
    assert re.search(r'stopped: \d+ bus messages read', log), log[-3000:]
