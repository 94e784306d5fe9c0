"""The agent measures its guests' memory dirtying (libvirt's dirty-rate calc) on the lab:
periodically before a migration, and what it has when the migration starts; a calc that
libvirt refuses, or a guest that vanishes mid-measurement, is said once and the agent goes
on. Findings behind these tests: docs/reference/dirty-rate.md."""
import re
import time
import uuid

import libvirt
import pytest


WSS_MIB = 64
# Each page rewritten 4 times a second: saturates a 1 s window. Not flat out: page sampling
# compares page hashes, and the dirtier's one-byte counter written a multiple of 256 times
# in a window looks clean (seen: 26 MiB/s over 1 s for this set written flat out).
SATURATED = dict(mem_mib=256, dirty_mib=WSS_MIB, dirty_rate=4 * WSS_MIB)
IDLE = dict(mem_mib=256, dirty_mib=16, dirty_rate=0)
MEASURED = r'dirty rate of %s: (\d+) MiB/s over 1000 ms, (\d+) MiB/s over 2000 ms'


@pytest.fixture
def guest(lab):
    names = []

    def make(params):
        name = 'dr-%s' % uuid.uuid4().hex[:8]
        names.append(name)
        lab.start_guest(lab.hosts[0], name, **params)
        return name

    yield make
    for name in names:
        lab.destroy_guest(name)


def _dirty_agent(agent_factory, interval_ms):
    return agent_factory(extra={'dirtyrate': {'interval_ms': str(interval_ms),
                                              'windows_s': '1,2'}})


def test_guest_measured_before_and_at_migration_start(lab, agent_factory, guest):
    """A saturated working set: the 1 s window sees it whole, the 2 s one half as fast.
    A migration starting afterwards is told the latest measurement; the agent never
    starts a calc during the migration (libvirt would hold it 30 s for the job's lock)."""
    a, b = lab.hosts
    name = guest(SATURATED)
    agent = _dirty_agent(agent_factory, 8000)
    found = agent.wait_log(MEASURED % re.escape(name), timeout=40)
    short, long_ = (int(x) for x in found[0])
    # page sampling (512 pages/GiB) measured 64-72 MiB/s for this guest over 1 s
    assert WSS_MIB * 0.6 <= short <= WSS_MIB * 1.5, found
    # a longer window never finds fewer pages (2 x long_ >= short), within the sampling
    # error of 32 sampled pages (3 sigma, about 30 MiB here)
    assert 2 * long_ >= short - 30, found
    # Saturation (the same pages in twice the time) read 2.0-2.1 on an idle machine, but
    # 1.5 under load and 40 vs 34 MiB/s on QEMU 10.0: how fast a TCG guest rewrites its set
    # depends on the machine, so it is not asserted; the range above and this are.

    m = lab.migrate(a, b, name, bandwidth_mibs=48, postcopy=True, wait=False)
    agent.wait_log(r'watching outgoing migration of %s' % re.escape(name), timeout=30)
    at_start = agent.wait_log(
        r'dirty rate of %s(: measuring as its migration starts| at migration start: '
        r'measured (\d+) ms ago: (\d+) MiB/s over 1000 ms)' % re.escape(name), timeout=10)
    if at_start[0][1]:
        # the measurement is at most one interval (+ its windows) old
        assert int(at_start[0][1]) < 8000 + 4000, at_start
    m.wait_pass(2, timeout=120)
    m.start_postcopy()
    m.wait(timeout=120)
    log = agent.log()
    assert 'cannot acquire state change lock' not in log
    assert not re.search(r'dirty rate of %s not measured' % re.escape(name), log), log[-3000:]
    lab.check_guest_healthy(b, name)


def test_refused_calc_said_once(lab, agent_factory, guest):
    """Someone else's calc running (QEMU refuses a second one) is reported once per
    outage, however many attempts fail; the agent keeps measuring the other guests."""
    a = lab.hosts[0]
    busy = guest(IDLE)
    other = guest(SATURATED)
    # an operator's 60 s calc holds QEMU's dirty-rate measurement of `busy`
    a.conn().lookupByName(busy).startDirtyRateCalc(60, 0)
    agent = _dirty_agent(agent_factory, 2500)
    agent.wait_log(MEASURED % re.escape(other), timeout=30, count=2)
    log = agent.log()
    # two rounds of periodic attempts at least, one warning
    refused = r'dirty rate of %s not measured: a dirty-rate calc is already running on it' \
        % re.escape(busy)
    assert len(re.findall(r'WARNING \[instance: [0-9a-f-]+\] ' + refused, log)) == 1, log[-3000:]
    # ... and the later attempts failed the same way, quietly
    assert len(re.findall(r'DEBUG \[instance: [0-9a-f-]+\] ' + refused, log)) >= 1, log[-3000:]
    assert agent.proc.poll() is None


def test_guest_vanishing_mid_measurement(lab, agent_factory, guest):
    """A guest destroyed while its windows run gives one clean error; the agent goes on."""
    other = guest(IDLE)
    doomed = guest(SATURATED)
    # an 8 s second window: the destroy lands inside the measurement, however slow
    agent = agent_factory(extra={'dirtyrate': {'interval_ms': '3000', 'windows_s': '1,8'}})
    agent.wait_log(r'measuring the dirty rate of %s' % re.escape(doomed), timeout=30)
    lab.destroy_guest(doomed)
    agent.wait_log(r'WARNING \[instance: [0-9a-f-]+\] dirty rate of %s not measured: '
                   % re.escape(doomed), timeout=30)
    assert not re.search(r'INFO .*dirty rate of %s: ' % re.escape(doomed), agent.log())
    # still alive and measuring
    measured = r'dirty rate of %s: \d+ MiB/s over 1000 ms' % re.escape(other)
    n = len(re.findall(measured, agent.log()))
    agent.wait_log(measured, timeout=40, count=n + 1)
    assert agent.proc.poll() is None


def test_dirtyrate_disabled_measures_nothing(lab, agent_factory, guest):
    name = guest(IDLE)
    agent = agent_factory(extra={'dirtyrate': {'enabled': 'false', 'interval_ms': '1000'}})
    time.sleep(4)
    log = agent.log()
    assert 'dirty rate of' not in log, log[-3000:]
    conn = lab.hosts[0].conn()
    st = conn.domainListGetStats([conn.lookupByName(name)], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
    assert st[0][1]['dirtyrate.calc_status'] == libvirt.VIR_DOMAIN_DIRTYRATE_UNSTARTED, st


def test_guest_measured_soon_after_it_boots_or_arrives(lab, agent_factory):
    """A guest that boots here, arrives by migration, or stays after its migration failed is
    measured about 10 s later, not at the next periodic round (here 10 min away): libvirt
    refuses a calc once a migration runs, so a guest sent on again before that round would
    leave unmeasured."""
    a, b = lab.hosts
    agent = _dirty_agent(agent_factory, 600000)
    time.sleep(11)      # the first periodic round (10 s after start) is over, with no guest
    names = []
    try:
        booted = 'dr-%s' % uuid.uuid4().hex[:8]
        names.append(booted)
        lab.start_guest(a, booted, **IDLE)
        came = 'dr-%s' % uuid.uuid4().hex[:8]
        names.append(came)
        lab.start_guest(b, came, **IDLE)
        lab.migrate(b, a, came, bandwidth_mibs=64)
        for name in (booted, came):
            agent.wait_log(r'measuring the dirty rate of %s \(arrived on this host\)'
                           % re.escape(name), timeout=30)
            agent.wait_log(MEASURED % re.escape(name), timeout=20)
        # a migration that fails leaves the guest here: measured again for the next try
        m = lab.migrate(a, b, came, bandwidth_mibs=8, wait=False)
        m.wait_pass(1, timeout=60)
        m.abort()
        m.wait(timeout=60, check=False)
        agent.wait_log(r'measuring the dirty rate of %s \(stayed after a failed migration\)'
                       % re.escape(came), timeout=40)
        log = agent.log()
        assert not re.search(r'measuring the dirty rate of %s \(periodic\)' % re.escape(came),
                             log), log[-3000:]
        assert not re.search(r'dirty rate of (%s|%s) not measured' % (booted, came), log), \
            log[-3000:]
    finally:
        for name in names:
            lab.destroy_guest(name)
