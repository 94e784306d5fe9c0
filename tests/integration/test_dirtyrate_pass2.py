"""The agent measures a guest's dirtying before its migration and, with the measurement,
switches stalled regimes at pass 2 and leaves a converging one alone, on the lab.

None is the 384 MiB / 256 MiB / 32 MiB/s point of test_agent.py: a quarter of RAM rewritten
4 times a second at a 48 MiB/s cap, half of RAM written at twice a 32 MiB/s cap (recorded:
tests/data/traces/dirtyrate/wss192_rate64_bw32_stalled), and half of RAM written well under
a 64 MiB/s cap (recorded: wss128_rate16_bw64_converging). The agent measures with the
recorder's windows (1, 2, 4 s).

Writers are rate-limited: page sampling compares page hashes, and the dirtier's one-byte
counter rewritten a multiple of 256 times in a window looks clean, so a flat-out writer can
read far below its rate (tests/integration/test_dirtyrate.py). Seen here with 64 MiB written
flat out at 48 MiB/s (wss64_flatout_bw48_stalled): 36 MiB/s over 1 s in one run of two
(70 in the other), so the policy predicted convergence and switched at pass 4."""
import re
import uuid

import pytest

from tests.lab import trace

# (RAM MiB, working set MiB, write rate MiB/s, cap MiB/s)
REGIMES = {
    'wss64_rate256_bw48_stalled': (256, 64, 256, 48),
    'wss192_rate64_bw32_stalled': trace.DIRTY_SCENARIOS['wss192_rate64_bw32_stalled'][:4],
    'wss128_rate16_bw64_converging':
        trace.DIRTY_SCENARIOS['wss128_rate16_bw64_converging'][:4],
}
STALLED = ('wss64_rate256_bw48_stalled', 'wss192_rate64_bw32_stalled')
CONVERGING = ('wss128_rate16_bw64_converging',)
WINDOWS_S = ','.join(str(w) for w in trace.DIRTY_WINDOWS_S)
# The first periodic round comes 10 s after the agent starts (or interval_ms, if shorter);
# the next one only after the migration is over, so that none is under way when it starts
# and the migration is told the round's result at once (a calc started before a migration
# is only read when its windows end).
INTERVAL_MS = 60000
RULE = 'working-set-exceeds-downtime'


@pytest.fixture
def guest(lab):
    names = []

    def make(mem_mib, dirty_mib, dirty_rate):
        name = 'dp-%s' % uuid.uuid4().hex[:8]
        names.append(name)
        dom = lab.start_guest(lab.hosts[0], name, mem_mib=mem_mib, dirty_mib=dirty_mib,
                              dirty_rate=dirty_rate)
        return name, dom.UUIDString()

    yield make
    for name in names:
        lab.destroy_guest(name)


def _measured_then_migrate(lab, agent_factory, guest, scenario):
    """Boots the regime's guest, starts an agent measuring it, waits for the measurement
    and starts the migration (post-copy permitted) at once. Returns (agent, name, uuid,
    migration, the measurement's figures in MiB/s)."""
    mem, wss, rate, bw = REGIMES[scenario]
    name, inst = guest(mem, wss, rate)
    agent = agent_factory(extra={'dirtyrate': {'interval_ms': str(INTERVAL_MS),
                                               'windows_s': WINDOWS_S}})
    rates = r', '.join(r'(\d+) MiB/s over %d ms' % (w * 1000) for w in trace.DIRTY_WINDOWS_S)
    found = agent.wait_log(r'INFO \[instance: %s\] dirty rate of %s: %s' % (
        inst, re.escape(name), rates), timeout=60)
    measured = [int(x) for x in found[0]]
    print('\n%s: measured %s MiB/s over %s s' % (scenario, measured, WINDOWS_S))
    a, b = lab.hosts
    m = lab.migrate(a, b, name, bandwidth_mibs=bw, postcopy=True, wait=False)
    return agent, name, inst, m, measured


def _fed_before_pass2(agent, name, inst):
    """The measurement reached the migration's policy before pass 2 (so the decision at
    pass 2 could rest on it), and the migration was told it at its start."""
    log = agent.log()
    assert re.search(r'dirty rate of %s at migration start: measured \d+ ms ago: '
                     % re.escape(name), log), log[-3000:]
    fed = re.findall(r'\[instance: %s\] dirty-rate measurement of %s \((\d+) ms old\) given '
                     r'to the policy \(pass (\d+)\)' % (inst, re.escape(name)), log)
    assert fed and int(fed[0][1]) <= 1, (fed, log[-3000:])
    # fresh: the round ended just before the migration started
    assert int(fed[0][0]) < 5000, fed


@pytest.mark.parametrize('scenario', STALLED)
def test_stalled_regime_switched_at_pass_two(lab, agent_factory, guest, collector, scenario):
    agent, name, inst, m, _ = _measured_then_migrate(lab, agent_factory, guest, scenario)
    m.wait(timeout=240)
    assert m.ok
    switch = collector.wait_for('compute.live_migration.switch', inst, timeout=60)
    metrics = collector.wait_for('compute.live_migration.metrics', inst, timeout=90)
    assert len(switch) == 1 and len(metrics) == 1, (switch, metrics)
    s = switch[0]['payload']
    print('%s: switch at pass %s (%s): %s' % (scenario, s['pass'], s['reason'],
                                              s['explanation']))
    _fed_before_pass2(agent, name, inst)
    assert s['pass'] == 2 and s['acted'] is True and s['decided_by'] == 'migpilot', s
    # the measured rule, not the samples' estimate: the working set the measurement gave
    # cannot be sent within the downtime in force
    assert s['reason'] == RULE, s
    assert re.search(r'measured W [\d.]+ MiB, r [\d.]+ MiB/s: pass 3 resends [\d.]+ MiB, '
                     r'passes stop shrinking above', s['explanation']), s['explanation']
    assert s['figures']['prediction'] == 'not-converging', s
    assert re.search(r'\[instance: %s\] switched to post-copy at pass 2, \d+ ms after the '
                     r'pass began \(rule %s\)' % (inst, RULE), agent.log()), agent.log()[-3000:]
    p = metrics[0]['payload']
    assert p['outcome'] == 'completed' and p['mode'] == 'post-copy', p
    assert p['decided_by'] == 'migpilot' and p['switch_reason'] == RULE, p
    lab.check_guest_healthy(lab.hosts[1], name)


@pytest.mark.parametrize('scenario', CONVERGING)
def test_converging_regime_left_alone(lab, agent_factory, guest, collector, scenario):
    agent, name, inst, m, _ = _measured_then_migrate(lab, agent_factory, guest, scenario)
    m.wait(timeout=240)
    assert m.ok
    metrics = collector.wait_for('compute.live_migration.metrics', inst, timeout=90)
    assert len(metrics) == 1, metrics
    p = metrics[0]['payload']
    print('%s: %s in %s passes, %s ms, downtime %s ms, decided_by %s' % (
        scenario, p['outcome'], p['passes'], p['migration_time_ms'], p['downtime_ms'],
        p['decided_by']))
    _fed_before_pass2(agent, name, inst)
    # pass 2 came, so the measured prediction was made, and said converging
    assert p['passes'] >= 2, p
    assert p['outcome'] == 'completed' and p['mode'] == 'pre-copy', p
    assert p['decided_by'] == 'none' and p['switch_reason'] is None, p
    assert collector.of('compute.live_migration.switch', inst) == []
    assert not re.search(r'(switched|would switch) to post-copy', agent.log()), \
        agent.log()[-3000:]
    lab.check_guest_healthy(lab.hosts[1], name)
