"""nova_hooks.driver's plumbing, without a hypervisor: nova's job-stats polls in, nova's
force-complete queued out. (The real thing runs in tests/integration/test_nova_e2e.py.)"""
import libvirt
import pytest

import _migpilot
from nova_hooks import driver

MIB = 1024 * 1024
UNBOUNDED = libvirt.VIR_DOMAIN_JOB_UNBOUNDED


def stalled_polls(step_ms=500):
    """libvirt jobStats dicts every 0.5 s, as nova's monitor reads them, of a guest that
    rewrites 256 MiB flat out at a 32 MiB/s cap: pass 1 ~12 s, then ~260 MiB per pass."""
    bw = 32 * MIB
    starts = [0, 12000, 20000, 28000]
    rems = [384 * MIB, 262 * MIB, 266 * MIB, 264 * MIB]
    out = []
    for t in range(0, 30000, step_ms):
        p = max(i for i, s in enumerate(starts) if s <= t)
        rem = max(rems[p] - int((t - starts[p]) / 1000 * bw), 4 * MIB)
        out.append({'type': UNBOUNDED, 'time_elapsed': t, 'memory_iteration': p + 1,
                    'memory_total': 384 * MIB, 'memory_processed': int(t / 1000 * bw),
                    'memory_remaining': rem, 'memory_bps': bw if t else 0,
                    'memory_dirty_rate': 4800 if p else 0, 'memory_page_size': 4096,
                    'downtime': int(rem / bw * 1000)})
    return out


class Migration:
    status = 'running'


def make_pilot(mode='auto', enabled=True, **policy):
    calls = []
    cfg = {'mode': 'observe' if mode == 'observe' else 'auto'}
    cfg.update(policy)
    pilot = driver.MigrationPilot('u-1', Migration(), enabled, cfg, act=(mode == 'auto'),
                                  force_complete=lambda: calls.append(1))
    return pilot, calls


def test_stalled_switch_queued_once_at_pass_two():
    pilot, calls = make_pilot()
    pilot.on_max_downtime(50)            # nova's first downtime step
    decisions = [pilot.on_stats(s) for s in stalled_polls()]
    assert calls == [1]
    switch = [d for d in decisions if d and d['action'] == 'switch']
    assert len(switch) == 1 and switch[0]['pass'] == 2
    assert switch[0]['elapsed_ms'] <= 12000 + 500
    assert 'pass 2' in pilot.summary() and 'not acted on' not in pilot.summary()


def test_observe_mode_never_queues():
    pilot, calls = make_pilot(mode='observe')
    pilot.on_max_downtime(50)
    for s in stalled_polls():
        pilot.on_stats(s)
    assert calls == []
    assert pilot.switch is not None and 'not acted on' in pilot.summary()


def test_postcopy_not_permitted_never_queues(caplog):
    # nova's force-complete would pause the guest: never ask for it
    pilot, calls = make_pilot(enabled=False)
    pilot.on_max_downtime(50)
    with caplog.at_level('WARNING'):
        for s in stalled_polls():
            pilot.on_stats(s)
    assert calls == []
    assert 'live_migration_permit_post_copy = True' in caplog.text


def test_already_in_postcopy_not_queued_again():
    pilot, calls = make_pilot()
    pilot.on_max_downtime(50)
    pilot.migration.status = 'running (post-copy)'     # switched by an operator
    for s in stalled_polls():
        pilot.on_stats(s)
    assert calls == []


def test_other_job_types_ignored_and_bad_samples_stop_the_policy(caplog):
    pilot, calls = make_pilot()
    assert pilot.on_stats({'type': libvirt.VIR_DOMAIN_JOB_NONE}) is None
    assert pilot.on_stats({'type': libvirt.VIR_DOMAIN_JOB_COMPLETED}) is None
    polls = stalled_polls()
    pilot.on_stats(polls[10])
    with caplog.at_level('WARNING'):
        assert pilot.on_stats(polls[5]) is None          # back in time: refused by the core
    assert 'policy stopped' in caplog.text
    assert pilot.on_stats(polls[30]) is None and calls == []


def test_sample_mapping():
    s = driver.sample_from_stats(stalled_polls()[30], True, False, 50)
    assert s['pass'] == 2 and s['elapsed_ms'] == 15000
    # the core's conversion (as the agent's): pages/s x page size
    assert s['dirty_rate_bps'] == 4800 * 4096
    assert s['max_downtime_ms'] == 50 and s['postcopy_permitted'] is True
    assert driver.sample_from_stats({'type': UNBOUNDED}, True, False)['pass'] is None
    # pass 0 (setup, or the job is over) is passed on: the core declines to judge it
    assert driver.sample_from_stats({'type': UNBOUNDED, 'memory_iteration': 0},
                                    True, False)['pass'] == 0
    s = driver.sample_from_stats({'type': UNBOUNDED, 'memory_dirty_rate': 10,
                                  'memory_page_size': 65536, 'downtime': 7}, False, True)
    assert s['dirty_rate_bps'] == 655360 and s['expected_downtime_ms'] == 7
    assert s['elapsed_ms'] == 0 and s['memory_total'] is None and s['in_postcopy'] is True
    s = driver.sample_from_stats({'type': UNBOUNDED, 'memory_dirty_rate': 10}, True, False)
    assert s['dirty_rate_bps'] == 40960          # no page size: 4096
    with pytest.raises(_migpilot.Error, match='job stats: memory_total must be a non-negative'):
        driver.sample_from_stats({'memory_total': -1}, True, False)


class FakeDomain:
    def __init__(self):
        self.calls = []

    def jobStats(self, flags=0):
        self.calls.append(('jobStats', flags))
        return {'type': UNBOUNDED, 'time_elapsed': 1}

    def migrateSetMaxDowntime(self, ms, flags=0):
        self.calls.append(('migrateSetMaxDowntime', ms))
        return 0

    def abortJob(self):
        self.calls.append(('abortJob',))
        return 0


class Recorder:
    def __init__(self):
        self.stats, self.downtimes = [], []

    def on_stats(self, s):
        self.stats.append(s)

    def on_max_downtime(self, ms):
        self.downtimes.append(ms)


def test_tap_passes_everything_through():
    dom, rec = FakeDomain(), Recorder()
    tap = driver._JobStatsTap(dom, rec)
    assert tap.jobStats() == {'type': UNBOUNDED, 'time_elapsed': 1}
    tap.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)   # not the current job: not fed
    assert tap.migrateSetMaxDowntime(50) == 0
    assert tap.abortJob() == 0
    assert dom.calls == [('jobStats', 0), ('jobStats', libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED),
                         ('migrateSetMaxDowntime', 50),
                         ('abortJob',)]
    assert len(rec.stats) == 1 and rec.downtimes == [50]


@pytest.mark.parametrize('mode', ['auto', 'observe'])
def test_policy_config_from_nova_conf(mode):
    from oslo_config import cfg
    from nova_hooks import conf
    c = cfg.ConfigOpts()
    conf.register_opts(c)
    c([], default_config_files=[])
    c.set_override('mode', mode, group='migpilot')
    c.set_override('deadline', 600, group='migpilot')
    kw = conf.policy_config(c)
    import _migpilot
    p = _migpilot.Policy(**kw)
    assert p.config['mode'] == mode and p.config['deadline_ms'] == 600000
