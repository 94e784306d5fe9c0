"""The lab traces of tests/data/traces/dirtyrate/ (recorded by tests/lab/trace.py --dirty)
are what their names say: a dirty-rate measurement before the migration, shortest window
first, and a stalled or converging migration. The policy's tests build on that."""
import glob
import os

import pytest

from tests.lab import trace

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'traces',
                   'dirtyrate')
PATHS = sorted(glob.glob(os.path.join(DIR, '*.jsonl')))
MIB = 1 << 20


def test_the_regimes_are_recorded():
    names = [os.path.basename(p)[:-len('.jsonl')] for p in PATHS]
    assert sorted(names) == sorted(trace.DIRTY_SCENARIOS), names


def _pass_starts(samples):
    starts = {}
    for s in samples:
        if s.get('pass', 0) >= 1 and s.get('memory_remaining') and s['pass'] not in starts:
            starts[s['pass']] = s['memory_remaining']
    return starts


@pytest.mark.parametrize('path', PATHS, ids=os.path.basename)
def test_trace_matches_its_name(path):
    lines = trace.load(path)
    samples = trace.check_structure(lines)
    meta = lines[0]
    mem, wss, rate, bw, _ = trace.DIRTY_SCENARIOS[meta['scenario']]
    assert (meta['guest_mem_mib'], meta['dirty_mib'], meta['dirty_rate_mibs'],
            meta['bandwidth_mibs']) == (mem, wss, rate, bw)
    dirty = meta['dirty']
    assert dirty['mode'] == 'page-sampling'
    assert dirty['memory_bytes'] == mem * MIB
    assert [w['window_ms'] for w in dirty['windows']] == [1000, 2000, 4000]
    assert all(isinstance(w['rate_mibs'], int) and w['rate_mibs'] >= 0
               for w in dirty['windows'])
    assert 0 <= dirty['age_ms'] < 1000
    # what 300 ms of downtime moves at the cap
    fits = bw * MIB * meta['max_downtime_ms'] / 1000
    starts = _pass_starts(samples)
    last = lines[-1]
    if meta['scenario'].endswith('_stalled'):
        assert 'operation aborted' in last['error']
        # passes 2 and 3 seen, and each began with more than the downtime can move
        assert {2, 3} <= set(starts), starts
        assert all(starts[p] > fits for p in starts), starts
    else:
        assert meta['scenario'].endswith('_converging')
        assert last['memory_iteration'] >= 2 and last['downtime'] <= meta['max_downtime_ms']
