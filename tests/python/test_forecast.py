"""_migpilot.forecast: the C forecast (tests/unit/test_forecast.c) through the extension,
and its verdicts on the lab traces of tests/data/traces/dirtyrate/."""
import glob
import json
import os
import sys

import pytest

import _migpilot

MIB = 1024 * 1024
DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'traces',
                   'dirtyrate')
KEYS = {'status', 'reason', 'explanation', 'postcopy', 'time_ms', 'bytes', 'downtime_ms',
        'passes', 'switch_pass', 'switch_at_ms', 'postcopy_bytes', 'memory_bytes',
        'first_pass_bytes',
        'bandwidth_bps', 'max_downtime_ms', 'wss_bytes', 'write_bps', 'measurement_age_ms'}


def measurement(rate1, rate4, ram_mib=256, age_ms=0):
    return {'windows': [(1000, rate1), (4000, rate4)], 'memory_bytes': ram_mib * MIB,
            'age_ms': age_ms}


def test_converging():
    # 16 MiB/s over 64 MiB, 256 MiB at 64 MiB/s: 4 s + 1 s + 0.25 s (the C test's case)
    f = _migpilot.forecast(measurement(16, 16), 256 * MIB, 64 * MIB, 300)
    assert set(f) == KEYS
    assert f['status'] == 'pre-copy' and f['postcopy'] is False
    assert (f['time_ms'], f['bytes'], f['downtime_ms'], f['passes']) == \
        (5250, 336 * MIB, 250, 3)
    assert f['switch_pass'] is None and f['postcopy_bytes'] is None
    assert '\n' not in f['explanation'] and f['explanation'].startswith('pre-copy converges')


def test_resident_bytes_bound_pass_1():
    # 128 of 256 MiB touched: pass 1 2 s, pass 2 0.5 s, 8 MiB stop-and-copy
    f = _migpilot.forecast(measurement(16, 16), 256 * MIB, 64 * MIB, 300,
                           resident_bytes=128 * MIB)
    assert (f['first_pass_bytes'], f['time_ms'], f['bytes']) == (128 * MIB, 2625, 168 * MIB)
    f = _migpilot.forecast(measurement(16, 16), 256 * MIB, 64 * MIB, 300,
                           resident_bytes=None)
    assert (f['first_pass_bytes'], f['time_ms']) == (256 * MIB, 5250)
    with pytest.raises(_migpilot.Error,
                       match='forecast: resident_bytes must be a non-negative integer'):
        _migpilot.forecast(measurement(16, 16), 256 * MIB, 64 * MIB, 300, resident_bytes=-1)


def test_saturated_switches_at_pass_2():
    f = _migpilot.forecast(measurement(64, 16), 256 * MIB, 48 * MIB, 300)
    assert f['status'] == 'post-copy' and f['postcopy'] is True
    assert f['reason'] == 'working-set-exceeds-downtime'
    assert (f['switch_pass'], f['switch_at_ms'], f['time_ms'], f['bytes']) == \
        (2, 5333, 6667, 320 * MIB)
    assert f['downtime_ms'] is None


def test_policy_keys_are_honoured():
    f = _migpilot.forecast(measurement(64, 16), 256 * MIB, 48 * MIB, 300,
                           policy={'min_pass': 3})
    assert (f['switch_pass'], f['time_ms']) == (3, 8000)
    f = _migpilot.forecast(measurement(16, 16), 256 * MIB, 64 * MIB, 300,
                           policy={'deadline_ms': '5000'})
    assert f['reason'] == 'deadline' and f['time_ms'] == 5000


@pytest.mark.parametrize('m, reason', [
    (None, 'missing'),
    ({'windows': [], 'memory_bytes': 256 * MIB}, 'missing'),
    (measurement(16, 16, age_ms=600001), 'stale: 600.0 s old, dirty_max_age_ms 600000'),
    ({'windows': [(1000, 16)], 'memory_bytes': 256 * MIB},
     'inconsistent: one window, rate and working set need two'),
])
def test_unknown(m, reason):
    f = _migpilot.forecast(m, 256 * MIB, 64 * MIB, 300)
    assert set(f) == KEYS
    assert f['status'] == 'unknown' and f['reason'] == reason
    assert f['postcopy'] is None and f['time_ms'] is None and f['bytes'] is None
    assert f['explanation'] == 'no forecast: dirty-rate measurement ' + reason


@pytest.mark.parametrize('args, kwargs, message', [
    ((measurement(16, 16), 256 * MIB, 0, 300), {},
     'forecast: the link rate must be positive'),
    ((measurement(16, 16), 0, 64 * MIB, 300), {},
     "forecast: the guest's RAM must be positive"),
    ((measurement(16, 16), 256 * MIB, 64 * MIB, 0), {},
     'forecast: the max downtime must be positive'),
    ((measurement(16, 16), -1, 64 * MIB, 300), {},
     'forecast: memory_bytes must be a non-negative integer'),
    ((measurement(16, 16), 256 * MIB, 64.5, 300), {},
     'forecast: bandwidth_bps must be a non-negative integer'),
    (({'windows': [(1000, 16)], 'ram': 1}, 256 * MIB, 64 * MIB, 300), {},
     "dirty measurement: unknown key 'ram'"),
    ((measurement(16, 16), 256 * MIB, 64 * MIB, 300), {'policy': {'min_pass': 1}},
     None),
])
def test_bad_input(args, kwargs, message):
    with pytest.raises(_migpilot.Error) as e:
        _migpilot.forecast(*args, **kwargs)
    if message is not None:
        assert str(e.value) == message
    else:
        assert 'min_pass' in str(e.value)


def test_no_reference_leak():
    m = measurement(64, 16)
    before = sys.gettotalrefcount() if hasattr(sys, 'gettotalrefcount') else None
    for _ in range(1000):
        _migpilot.forecast(m, 256 * MIB, 48 * MIB, 300)
    if before is not None:
        assert sys.gettotalrefcount() - before < 100
    assert sys.getrefcount(m) == 2


def trace_forecast(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    meta, last = lines[0], lines[-1]
    d = meta['dirty']
    m = {'windows': [(w['window_ms'], w['rate_mibs']) for w in d['windows']],
         'memory_bytes': d['memory_bytes'], 'age_ms': d['age_ms']}
    return meta, last, _migpilot.forecast(m, meta['guest_mem_mib'] * MIB,
                                          meta['bandwidth_mibs'] * MIB,
                                          meta['max_downtime_ms'])


# wss16_flatout_bw24_stalled: page sampling of a 16 MiB set in 256 MiB (~32 sampled
# pages) read 14 / 6 / 8 MiB/s, i.e. W 32 MiB at r 14 MiB/s: the forecast says pre-copy
# converges in 5 passes, the run stalled at 11-14 MiB (docs/reference/forecast.md).
VERDICTS = {
    'wss64_flatout_bw48_stalled': 'post-copy',
    'wss224_flatout_bw96_stalled': 'post-copy',
    'wss192_rate64_bw32_stalled': 'post-copy',
    'wss128_rate16_bw64_converging': 'pre-copy',
    'wss64_rate8_bw24_converging': 'pre-copy',
    'wss16_flatout_bw24_stalled': 'pre-copy',
}


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(DIR, '*.jsonl'))),
                         ids=os.path.basename)
def test_trace_verdicts(path):
    meta, last, f = trace_forecast(path)
    assert f['status'] == VERDICTS[meta['scenario']], f['explanation']
    if f['status'] == 'post-copy':
        # these runs were aborted after pass 3: each pass-start remaining stayed above the
        # downtime's bytes, as the forecast's switch at pass 2 says
        assert f['switch_pass'] == 2
    else:
        assert f['passes'] >= 2


def test_model_grid_matches_the_policy():
    """On the model's grid (tests/bench/model: 756 workloads, the real C policy deciding,
    the measurement exact), the forecast from that measurement and the used memory as the
    resident set predicts the regime and the switch pass of every migration it does not
    call unknown, the median time within 3 % and bytes within 0.2 % (measured 2.6 % and
    0.14 %; the tail is guests whose 4 s window does not see their whole working set,
    docs/reference/forecast.md)."""
    import statistics
    from tests.bench.model import run, sim
    errors_t, errors_b, unknown, later = [], [], [], []
    for w in run.grid(quick=False):
        r = sim.simulate(w, sim.Migpilot(dirty={'windows_ms': (1000, 4000), 'seed': None,
                                                'periodic_age_ms': 0}))
        f = _migpilot.forecast(sim.dirty_measurement(w), int(w.ram), int(w.bandwidth),
                               int(w.downtime_ms), resident_bytes=int(w.used))
        if f['status'] == 'unknown':
            unknown.append(f['reason'])
            continue
        assert f['postcopy'] == (r.mode == 'post-copy'), (w.label, f['explanation'])
        if f['postcopy'] and f['switch_pass'] != r.switch_pass:
            # the forecast, made before pass 1, cannot know what pass 1 will count: where
            # that count overrules the sampled rate the policy switches a pass later
            assert (f['switch_pass'], r.switch_pass) == (2, 3), (w.label, f['explanation'])
            later.append(w.label)
        errors_t.append(abs(f['time_ms'] / 1000.0 - r.total_s) / r.total_s)
        errors_b.append(abs(f['bytes'] - r.bytes) / r.bytes)
    assert len(errors_t) + len(unknown) == 756
    assert len(later) <= 3, later       # measured: 3 of 730
    # unknown only where the rate is a floor (the shortest window saturated)
    assert all(u.startswith('inconclusive') for u in unknown), set(unknown)
    assert len(unknown) <= 26
    assert statistics.median(errors_t) <= 0.03
    assert statistics.median(errors_b) <= 0.002
