"""_migpilot.Policy: the C convergence policy through the extension.

The policy's behaviour is tested in C (tests/unit/test_policy.c); this checks the binding:
config in and out, sample dicts, decision dicts, errors and reference counting.
"""
import gc
import glob
import json
import os
import sys

import pytest

import _migpilot

MIB = 1024 * 1024


def lab_samples(stalled):
    """Samples and events shaped like the lab's runs (libvirt-lab.md): 512 MiB guest,
    32 MiB/s, pass 1 ~10 s; stalled = every pass starts again with ~248 MiB."""
    bw = 32 * MIB
    starts = [0, 10200, 17950, 25700] if stalled else [0, 10200, 13100, 14000]
    rems = [512 * MIB, 248 * MIB, 249 * MIB, 247 * MIB] if stalled else \
        [512 * MIB, 102 * MIB, 38 * MIB, 18 * MIB]
    out = []
    p = 1
    dirty_pps = 0
    for t in range(0, starts[-1] + 2000, 250):
        while p < len(starts) and starts[p] <= t:
            out.append(('event', p + 1, starts[p]))
            dirty_pps = int(rems[p] / 4096 / ((starts[p] - starts[p - 1]) / 1000))
            p += 1
        sent = (t - starts[p - 1]) / 1000 * bw * (1.65 if p == 1 else 1)
        rem = max(int(rems[p - 1] - sent), 9 * MIB)
        sample = {'elapsed_ms': t, 'pass': p, 'memory_total': 512 * MIB,
                  'memory_processed': int(t / 1000 * bw), 'memory_remaining': rem}
        if t:
            sample.update(memory_bps=bw, dirty_rate_pps=dirty_pps, page_size=4096,
                          expected_downtime_ms=int(rem / bw * 1000), max_downtime_ms=300)
        out.append(('sample', sample))
    return out


def replay(policy, items):
    decisions = []
    for item in items:
        if item[0] == 'event':
            decisions.append(policy.feed_iteration(item[1], item[2]))
        else:
            decisions.append(policy.feed_sample(item[1]))
    return decisions


def test_default_config():
    cfg = _migpilot.Policy().config
    assert cfg['mode'] == 'auto'
    assert cfg['min_pass'] == 2
    assert cfg['max_passes'] == 8
    assert cfg['rho_max'] == pytest.approx(0.9)
    assert cfg['shrink_min'] == pytest.approx(0.1)
    assert cfg['shrink_passes'] == 1
    assert cfg['deadline_ms'] == 0
    assert cfg['downtime_ms'] == 300
    assert isinstance(cfg['min_pass'], int)
    assert isinstance(cfg['rho_max'], float)


def test_config_keywords():
    p = _migpilot.Policy(mode='observe', min_pass=3, rho_max=0.95, deadline_ms='600000')
    cfg = p.config
    assert cfg['mode'] == 'observe'
    assert cfg['min_pass'] == 3
    assert cfg['rho_max'] == pytest.approx(0.95)
    assert cfg['deadline_ms'] == 600000


@pytest.mark.parametrize('kwargs,needle', [
    ({'min_pass': 1}, 'min_pass'),
    ({'mode': 'yes'}, 'mode'),
    ({'no_such_key': 1}, "unknown key 'no_such_key'"),
    ({'rho_max': 2.0}, 'rho_max'),
    ({'rho_max': float('nan')}, 'rho_max'),
    ({'deadline_ms': -5}, 'deadline_ms'),
    ({'max_passes': True}, 'max_passes'),
    ({'max_passes': [3]}, 'max_passes'),
])
def test_bad_config_raises_error_naming_key(kwargs, needle):
    with pytest.raises(_migpilot.Error) as exc:
        _migpilot.Policy(**kwargs)
    assert needle in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_positional_rejected():
    with pytest.raises(TypeError):
        _migpilot.Policy('auto')


def test_stalled_switches_at_pass2():
    p = _migpilot.Policy()
    decisions = replay(p, lab_samples(stalled=True))
    switches = [d for d in decisions if d['action'] == 'switch']
    assert len(switches) == 1
    d = switches[0]
    assert d['pass'] == 2
    assert d['elapsed_ms'] <= 10200 + 1000
    assert d['rule'] == 'not-converging'
    assert d['prediction'] == 'not-converging'
    assert d['rho_reported'] < 1.0
    assert d['remaining_at_pass_start_bytes'] > 240 * MIB
    assert d['switch_cost_ms'] > 0
    assert d['switch_decided'] and d['acted_on'] and d['evaluated']
    assert 'not converging' in d['explanation']
    # idempotent afterwards
    after = decisions[decisions.index(d) + 1:]
    assert all(x['action'] == 'none' and x['switch_decided'] for x in after)


def test_converging_never_switches():
    p = _migpilot.Policy()
    decisions = replay(p, lab_samples(stalled=False))
    assert all(d['action'] == 'none' for d in decisions)
    assert all(d['rule'] == 'none' for d in decisions)
    pass2 = [d for d in decisions if d['evaluated'] and d['pass'] == 2][0]
    assert pass2['prediction'] == 'converging'
    assert pass2['predicted_finish_ms'] is not None
    assert pass2['predicted_passes'] <= 4
    assert pass2['remaining_at_previous_pass_start_bytes'] is None


def test_observe_mode_not_acted_on():
    p = _migpilot.Policy(mode='observe')
    decisions = replay(p, lab_samples(stalled=True))
    assert all(d['action'] == 'none' for d in decisions)
    decided = [d for d in decisions if d['switch_decided']]
    assert decided and not decided[0]['acted_on']
    assert 'not acted on' in decided[0]['explanation']


def test_postcopy_not_permitted_said_once():
    p = _migpilot.Policy()
    items = lab_samples(stalled=True)
    for item in items:
        if item[0] == 'sample':
            item[1]['postcopy_permitted'] = False
    decisions = replay(p, items)
    assert all(d['action'] == 'none' for d in decisions)
    said = [d for d in decisions if d['rule'] == 'postcopy-not-permitted']
    assert len(said) == 1
    assert said[0]['pass'] == 2


def test_in_postcopy():
    p = _migpilot.Policy()
    d = p.feed_sample({'elapsed_ms': 100, 'pass': 2, 'in_postcopy': True})
    assert d['rule'] == 'in-postcopy'
    assert d['action'] == 'none'


def test_trace_line_dict_accepted():
    p = _migpilot.Policy()
    d = p.feed_sample({'kind': 'sample', 't_ms': 5, 'time_elapsed_ms': 0, 'pass': 1,
                       'memory_total': 1, 'memory_bps': None})
    assert d['pass'] == 1
    assert d['rho'] is None


@pytest.mark.parametrize('sample,needle', [
    ({'pass': 1}, 'elapsed_ms is required'),
    ({'elapsed_ms': -1}, 'elapsed_ms'),
    ({'elapsed_ms': 1, 'memory_bps': 'fast'}, 'memory_bps'),
    ({'elapsed_ms': 1, 'memory_bps': float('inf')}, 'memory_bps'),
    ({'elapsed_ms': 1, 'pass': 2 ** 40}, 'pass'),
    ({'elapsed_ms': 1, 'in_postcopy': 1}, 'in_postcopy'),
    ({'elapsed_ms': 1, 'bogus': 1}, "unknown key 'bogus'"),
    ({'elapsed_ms': 1, 3: 1}, 'keys must be strings'),
])
def test_bad_sample_raises(sample, needle):
    p = _migpilot.Policy()
    with pytest.raises(_migpilot.Error) as exc:
        p.feed_sample(sample)
    assert needle in str(exc.value)


def test_time_going_backwards_raises():
    p = _migpilot.Policy()
    p.feed_sample({'elapsed_ms': 1000, 'pass': 1})
    with pytest.raises(_migpilot.Error, match='older'):
        p.feed_sample({'elapsed_ms': 500, 'pass': 1})
    # the policy is still usable
    assert p.feed_sample({'elapsed_ms': 1500, 'pass': 1})['action'] == 'none'


def test_feed_iteration_args():
    p = _migpilot.Policy()
    d = p.feed_iteration(1, 0)
    assert d['pass'] == 1
    with pytest.raises(_migpilot.Error):
        p.feed_iteration(-1, 0)
    with pytest.raises(TypeError):
        p.feed_iteration(1)
    with pytest.raises(TypeError):
        p.feed_sample([('elapsed_ms', 1)])


def test_uninitialised_policy():
    p = _migpilot.Policy.__new__(_migpilot.Policy)
    with pytest.raises(_migpilot.Error):
        p.feed_sample({'elapsed_ms': 1})
    with pytest.raises(_migpilot.Error):
        p.config


def test_reference_counts_stable():
    items = lab_samples(stalled=True)
    sample = items[5][1]
    keys = list(sample)
    for _ in range(2):      # warm up caches (interned strings, small ints)
        replay(_migpilot.Policy(mode='observe'), items)
    gc.collect()
    before_sample = sys.getrefcount(sample)
    before_key = [sys.getrefcount(k) for k in keys]
    before_none = sys.getrefcount(None)
    for _ in range(20):
        p = _migpilot.Policy(mode='observe')
        replay(p, items)        # decisions carry None for unknown figures
        _ = p.config
        del p, _
        try:
            _migpilot.Policy().feed_sample({'elapsed_ms': 1, 'bogus': 1})
        except _migpilot.Error:
            pass
        try:
            _migpilot.Policy(rho_max='x')
        except _migpilot.Error:
            pass
    gc.collect()
    assert sys.getrefcount(sample) == before_sample
    assert [sys.getrefcount(k) for k in keys] == before_key
    # thousands of Nones handed out: a missing or extra reference would show
    assert abs(sys.getrefcount(None) - before_none) < 20


TRACES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'traces')
# The recorded traces (tests/data/traces/README.md) and what their scenario promises.
TRACE_STALLED = {'converging.jsonl': False, 'idle.jsonl': False, 'stalled_abort.jsonl': True,
                 'stalled_postcopy.jsonl': True, 'wss256_flatout.jsonl': True}


def _scenario_stalled(scenario):
    """True for a stalled scenario, False for one that converges; fails on any other."""
    if any(w in scenario for w in ('stall', 'flatout')):
        return True
    if any(w in scenario for w in ('idle', 'conv')):
        return False
    pytest.fail('trace scenario %r is neither stalled nor converging: say what it '
                'promises here' % scenario)


def test_trace_sample_lines_fed_as_they_are():
    """The lab's trace lines go in unchanged (samples only: pass starts from the samples).
    Stalled scenarios switch at pass 2, the others never; the whole judgement, with events
    and flags, is in tests/unit/test_policy.c."""
    paths = sorted(glob.glob(os.path.join(TRACES, '*.jsonl')))
    assert sorted(os.path.basename(p) for p in paths) == sorted(TRACE_STALLED), paths
    for path in paths:
        with open(path) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        assert lines[0]['kind'] == 'meta', path
        stalled = _scenario_stalled(lines[0]['scenario'])
        assert stalled == TRACE_STALLED[os.path.basename(path)], (path, lines[0])
        p = _migpilot.Policy()
        switches = []
        nsamples = 0
        for x in lines:
            if x['kind'] == 'sample':
                nsamples += 1
                d = p.feed_sample(x)
                if d['action'] == 'switch':
                    switches.append(d)
        assert nsamples > 0, path
        assert len(switches) == (1 if stalled else 0), (path, switches)
        if stalled:
            assert switches[0]['pass'] == 2, (path, switches[0]['explanation'])


@pytest.mark.parametrize('scenario', ['migrate', 'lab_test', ''])
def test_trace_of_unknown_scenario_fails(scenario):
    with pytest.raises(pytest.fail.Exception, match='neither stalled nor converging'):
        _scenario_stalled(scenario)


# ---- the measured dirtying: Policy.set_dirty() ----

STALLED_DIRTY = {'windows': [(1000, 90), (4000, 62)], 'memory_bytes': 512 * MIB, 'age_ms': 0}
CONVERGING_DIRTY = {'windows': [(1000, 10), (4000, 10)], 'memory_bytes': 512 * MIB}
DIRTY_KEYS = ('dirty_status', 'dirty_fallback', 'dirty_wss_bytes', 'dirty_write_bps',
              'dirty_age_ms', 'predicted_remaining')


def first_eval(decisions, pass_=2):
    return [d for d in decisions if d['evaluated'] and d['pass'] == pass_][0]


def test_decisions_carry_dirty_fields():
    d = _migpilot.Policy().feed_sample({'elapsed_ms': 0, 'pass': 1})
    for key in DIRTY_KEYS:
        assert key in d
    assert d['dirty_status'] == 'missing'
    assert d['dirty_fallback'] is False
    assert d['dirty_wss_bytes'] is None and d['predicted_remaining'] is None
    assert _migpilot.Policy().config['dirty_max_age_ms'] == 600000


def test_set_dirty_switches_by_working_set():
    p = _migpilot.Policy()
    assert p.set_dirty(STALLED_DIRTY) is None
    decisions = replay(p, lab_samples(stalled=True))
    switches = [d for d in decisions if d['action'] == 'switch']
    assert len(switches) == 1
    d = switches[0]
    assert d['pass'] == 2
    assert d['rule'] == 'working-set-exceeds-downtime'
    assert d['dirty_status'] == 'used'
    assert d['dirty_fallback'] is False
    assert d['dirty_wss_bytes'] == 248 * MIB
    assert d['dirty_write_bps'] == 90 * MIB
    assert d['predicted_remaining'] == 248 * MIB
    assert d['dirty_age_ms'] == d['elapsed_ms']     # fed before the first sample
    assert 'switch (working-set-exceeds-downtime)' in d['explanation']
    assert 'measured W 248.0 MiB' in d['explanation']


def test_set_dirty_converging_left_alone():
    p = _migpilot.Policy()
    p.set_dirty(CONVERGING_DIRTY)
    decisions = replay(p, lab_samples(stalled=False))
    assert all(d['action'] == 'none' for d in decisions)
    e = first_eval(decisions)
    assert e['dirty_status'] == 'used'
    assert e['prediction'] == 'converging'
    assert e['dirty_age_ms'] is not None and e['dirty_age_ms'] >= 10000
    assert e['predicted_remaining'] < e['remaining_at_pass_start_bytes']


def test_missing_and_withdrawn_measurement_is_todays_policy():
    ref = replay(_migpilot.Policy(), lab_samples(stalled=True))
    p = _migpilot.Policy()
    p.set_dirty(STALLED_DIRTY)
    p.set_dirty(None)                   # withdrawn before the migration
    assert replay(p, lab_samples(stalled=True)) == ref
    p = _migpilot.Policy()
    p.set_dirty({'windows': [], 'memory_bytes': 512 * MIB})
    assert replay(p, lab_samples(stalled=True)) == ref
    said = [d for d in ref if d['dirty_fallback']]
    assert len(said) == 1
    assert 'dirty-rate measurement missing; per-pass rules: ' in said[0]['explanation']
    assert ref[ref.index(said[0])]['rule'] == 'not-converging'


def test_stale_measurement_falls_back_once():
    p = _migpilot.Policy(dirty_max_age_ms=60000)
    p.set_dirty(dict(STALLED_DIRTY, age_ms=55000))   # 65 s old at pass 2
    decisions = replay(p, lab_samples(stalled=True))
    said = [d for d in decisions if d['dirty_fallback']]
    assert len(said) == 1
    assert said[0]['dirty_status'] == 'stale'
    assert 'dirty-rate measurement stale: 65.' in said[0]['explanation']
    switch = [d for d in decisions if d['action'] == 'switch'][0]
    assert switch['rule'] == 'not-converging'
    with pytest.raises(_migpilot.Error, match='dirty_max_age_ms = 0: out of range'):
        _migpilot.Policy(dirty_max_age_ms=0)


@pytest.mark.parametrize('measurement,needle', [
    ({'windows': [(1000, 10)]}, 'windows and memory_bytes are required'),
    ({'memory_bytes': 1}, 'windows and memory_bytes are required'),
    ({'windows': [(1000, 10)] * 5, 'memory_bytes': 1}, '5 windows, at most 4'),
    ({'windows': 3, 'memory_bytes': 1}, 'windows must be a list'),
    ({'windows': [1000], 'memory_bytes': 1}, '(window_ms, rate_mibs) pair'),
    ({'windows': [(1000, 10, 3)], 'memory_bytes': 1}, '(window_ms, rate_mibs) pair'),
    ({'windows': [(1000, -1)], 'memory_bytes': 1}, 'rate_mibs must be a non-negative'),
    ({'windows': [(1000.5, 1)], 'memory_bytes': 1}, 'window_ms must be a non-negative'),
    ({'windows': [], 'memory_bytes': True}, 'memory_bytes must be a non-negative'),
    ({'windows': [], 'memory_bytes': 1, 'age_ms': '3'}, 'age_ms must be a non-negative'),
    ({'windows': [], 'memory_bytes': 1, 'rate': 3}, "unknown key 'rate'"),
    ({'windows': [], 'memory_bytes': 1, 5: 3}, 'keys must be strings'),
])
def test_bad_measurement_raises(measurement, needle):
    p = _migpilot.Policy()
    with pytest.raises(_migpilot.Error) as exc:
        p.set_dirty(measurement)
    assert needle in str(exc.value)
    assert '\n' not in str(exc.value)
    with pytest.raises(TypeError):
        p.set_dirty([('windows', [])])


def test_inconsistent_measurement_said_in_decision():
    p = _migpilot.Policy()
    p.set_dirty({'windows': [(1000, 10), (4000, 90)], 'memory_bytes': 512 * MIB})
    decisions = replay(p, lab_samples(stalled=True))
    e = first_eval(decisions)
    assert e['dirty_status'] == 'inconsistent'
    assert e['dirty_fallback'] is True
    assert '90 MiB/s over 4000 ms > 10 MiB/s over 1000 ms' in e['explanation']


def test_set_dirty_reference_counts_stable():
    windows = [(1000, 90), (4000, 62)]
    m = {'windows': windows, 'memory_bytes': 512 * MIB}
    for _ in range(2):
        _migpilot.Policy().set_dirty(m)
    gc.collect()
    before = (sys.getrefcount(m), sys.getrefcount(windows), sys.getrefcount(windows[0]))
    for _ in range(50):
        p = _migpilot.Policy()
        p.set_dirty(m)
        p.set_dirty(None)
        try:
            p.set_dirty({'windows': [(1000, -1)], 'memory_bytes': 1})
        except _migpilot.Error:
            pass
    gc.collect()
    assert (sys.getrefcount(m), sys.getrefcount(windows), sys.getrefcount(windows[0])) == before


# ---- the lab traces with the measurement (tests/data/traces/dirtyrate/) ----

DIRTY_TRACES = os.path.join(TRACES, 'dirtyrate')
# Each recorded regime and the pass its name promises a switch at (None: never). A known
# gap is a stalled regime today's policy does not switch at pass 2 (why: the same entry in
# tests/unit/test_policy.c, dirtyTraces): asserted as missed, so that a fix shows here.
DIRTY_TRACE_SWITCH = {
    'wss128_rate16_bw64_converging.jsonl': None,
    'wss16_flatout_bw24_stalled.jsonl': 2,
    'wss192_rate64_bw32_stalled.jsonl': 2,
    'wss224_flatout_bw96_stalled.jsonl': 2,
    'wss64_flatout_bw48_stalled.jsonl': 2,
    'wss64_rate8_bw24_converging.jsonl': None,
}
DIRTY_TRACE_KNOWN_GAP = {'wss16_flatout_bw24_stalled.jsonl'}


def _meta_measurement(meta):
    """The meta line's "dirty" object as Policy.set_dirty() takes it."""
    d = meta['dirty']
    return {'windows': [(w['window_ms'], w['rate_mibs']) for w in d['windows']],
            'memory_bytes': d['memory_bytes'], 'age_ms': d['age_ms']}


def test_dirty_traces_are_the_listed_ones():
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DIRTY_TRACES, '*')))
    assert names == sorted(DIRTY_TRACE_SWITCH)
    for name, want in DIRTY_TRACE_SWITCH.items():
        assert _scenario_stalled(name) == (want == 2), name
    assert DIRTY_TRACE_KNOWN_GAP <= {n for n, w in DIRTY_TRACE_SWITCH.items() if w}


@pytest.mark.parametrize('name', sorted(DIRTY_TRACE_SWITCH))
def test_dirty_trace_switch_pass(name):
    """The measurement made before the migration, then the trace's sample lines as they
    are: stalled regimes switch at pass 2 by the working-set rule, converging ones never;
    the decision at pass 2 rests on the measurement."""
    with open(os.path.join(DIRTY_TRACES, name)) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    meta = lines[0]
    assert meta['kind'] == 'meta' and meta['scenario'] + '.jsonl' == name
    p = _migpilot.Policy()
    p.set_dirty(_meta_measurement(meta))
    decisions = [p.feed_sample(x) for x in lines if x['kind'] == 'sample']
    at2 = first_eval(decisions)
    assert at2['dirty_status'] == 'used' and not at2['dirty_fallback'], at2['explanation']
    switches = [d for d in decisions if d['action'] == 'switch']
    want = DIRTY_TRACE_SWITCH[name]
    if name in DIRTY_TRACE_KNOWN_GAP:
        assert not (switches and switches[0]['pass'] == 2), (
            'now switches at pass 2: remove it from DIRTY_TRACE_KNOWN_GAP',
            switches[0]['explanation'])
        return
    if want is None:
        assert switches == [], [d['explanation'] for d in switches]
        assert all(d['rule'] == 'none' for d in decisions)
        assert at2['prediction'] == 'converging', at2['explanation']
        return
    assert len(switches) == 1, [d['explanation'] for d in switches]
    s = switches[0]
    assert s['pass'] == want, s['explanation']
    assert s['rule'] == 'working-set-exceeds-downtime', s['explanation']
    assert s['dirty_status'] == 'used' and s is at2
    # W as measured (the longest window's pages, MiB) beyond what the downtime moves
    assert s['dirty_wss_bytes'] > s['threshold_bytes'] > 0
    assert s['predicted_remaining'] > s['threshold_bytes']


def test_decision_keys_are_the_notifications():
    # one rendering in the core: the figures carry the switch notification's key names
    d = _migpilot.Policy().feed_sample({'elapsed_ms': 1000, 'pass': 1})
    figures = {'prediction', 'rho', 'rho_reported', 'remaining_at_pass_start_bytes',
               'remaining_at_previous_pass_start_bytes', 'threshold_bytes', 'bandwidth_bps',
               'predicted_passes', 'predicted_finish_ms', 'switch_cost_ms'}
    rest = {'action', 'rule', 'switch_decided', 'acted_on', 'evaluated', 'pass', 'elapsed_ms',
            'dirty_status', 'dirty_fallback', 'dirty_wss_bytes', 'dirty_write_bps',
            'dirty_age_ms', 'predicted_remaining', 'explanation'}
    assert set(d) == figures | rest
    assert d['action'] == 'none' and d['pass'] == 1 and d['elapsed_ms'] == 1000
    assert d['remaining_at_pass_start_bytes'] is None and isinstance(d['explanation'], str)
