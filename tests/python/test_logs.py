"""`migpilot logs` and _migpilot.scan_logs / parse_log_line on the nova-compute fixtures.

Run: PYTHONPATH=<dir of the built _migpilot>:. /usr/bin/python3 -m pytest tests/python/test_logs.py
"""
import json
import os
import subprocess
import sys

import pytest

import _migpilot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, 'tests', 'data', 'fixtures', 'nova-compute')
HOSTS = ('cmp-a01', 'cmp-a03', 'cmp-b07')
COUNTERS = ('total_lines', 'line_counts_by_level', 'lines_without_log_prefix',
            'traceback_continuation_lines', 'first_line_at', 'last_line_at')


def log(host):
    return os.path.join(FIXTURES, host, 'nova-compute.log')


def truth(host):
    with open(os.path.join(FIXTURES, host, 'nova-compute.log.truth.json')) as f:
        return json.load(f)


def cli(*args, cwd=None):
    """Runs `migpilot` as an operator would, with the same _migpilot as this test."""
    ext_dir = os.path.dirname(os.path.abspath(_migpilot.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ext_dir, REPO]))
    # cwd elsewhere than the repo: an in-place _migpilot there must not shadow ext_dir
    return subprocess.run(['/usr/bin/python3', '-m', 'nova_hooks', 'logs'] + list(args),
                          capture_output=True, text=True, env=env, cwd=cwd or '/')


def unflatten(row):
    """The CLI's JSON object back to the truth's shape (mapping: nova_hooks/cmd_logs.py)."""
    out = {}
    for key, val in row.items():
        if key.endswith('_ms') and key != 'duration_ms':
            continue
        if key == 'last_progress':
            if val is None:
                out[key] = None
            else:
                lp = {k: v for k, v in val.items() if k not in ('at', 'at_ms')}
                lp['at'] = {'local': val['at'], 'epoch_ms': val['at_ms']}
                out[key] = lp
        elif key in ('outcome', 'true_outcome'):
            out[key] = None if val == 'unknown' else val
        elif key + '_ms' in row:
            out[key] = None if val is None else {'local': val, 'epoch_ms': row[key + '_ms']}
        else:
            out[key] = val
    return out


@pytest.mark.parametrize('host', HOSTS)
def test_cli_json_reproduces_truth(host):
    args = ['--json', '--tz', 'UTC', log(host)]
    if host == 'cmp-b07':
        # a destination log alone can not tell an abort from a failure: the source's can
        args += ['--peer', log('cmp-a01')]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    want = truth(host)['live_migrations']
    assert [unflatten(r) for r in rows] == want
    # the fields the brief names, in their CLI form
    for row, rec in zip(rows, want):
        assert row['outcome'] in ('completed', 'failed', 'cancelled', 'unknown')
        assert row['started_at'] == (rec['started_at'] or {}).get('local')
        assert row['started_at_ms'] == (rec['started_at'] or {}).get('epoch_ms')
        assert row['progress_lines'] == rec['progress_lines']
    counts = res.stderr.strip().splitlines()
    assert len(counts) == 1 and counts[0].startswith('lines: %d total' % truth(host)['total_lines'])


def test_cli_destination_without_peer():
    res = cli('--json', '--tz', 'UTC', log('cmp-b07'))
    assert res.returncode == 0, res.stderr
    got = [unflatten(r) for r in json.loads(res.stdout)]
    want = truth('cmp-b07')['live_migrations']
    assert len(got) == len(want) > 0, (len(got), len(want))
    for g, w in zip(got, want):
        if w['instance_uuid'] == '000e05d0-1798-4d06-8397-a31dea9e7ab5':
            assert g['outcome'] == 'failed' and w['outcome'] == 'cancelled'
            g = dict(g, outcome=w['outcome'], true_outcome=w['true_outcome'])
        assert g == w


def test_cli_summary_json():
    res = cli('--json', '--summary', '--tz', 'UTC', log('cmp-a03'))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    t = truth('cmp-a03')
    assert doc['summary']['total_lines'] == t['total_lines']
    assert doc['summary']['line_counts_by_level'] == t['line_counts_by_level']
    assert doc['summary']['traceback_continuation_lines'] == t['traceback_continuation_lines']
    assert doc['summary']['first_line_at'] == t['first_line_at']['local']
    assert len(doc['live_migrations']) == 4
    assert res.stderr == ''


def test_cli_tz_shifts_epoch():
    utc = json.loads(cli('--json', '--tz', 'UTC', log('cmp-a01')).stdout)
    paris = json.loads(cli('--json', '--tz', 'Europe/Paris', log('cmp-a01')).stdout)
    tokyo = json.loads(cli('--json', '--tz', 'Asia/Tokyo', log('cmp-a01')).stdout)
    assert len(utc) == len(paris) == len(tokyo) == len(truth('cmp-a01')['live_migrations'])
    assert utc
    for u, p, t in zip(utc, paris, tokyo):
        assert p['started_at'] == u['started_at']          # as printed: unchanged
        assert p['started_at_ms'] == u['started_at_ms'] - 3600 * 1000   # CET in November
        assert t['started_at_ms'] == u['started_at_ms'] - 9 * 3600 * 1000
        assert p['duration_ms'] == u['duration_ms']


def test_cli_default_zone_is_the_hosts():
    ext_dir = os.path.dirname(os.path.abspath(_migpilot.__file__))
    env = dict(os.environ, TZ='America/New_York', PYTHONPATH=os.pathsep.join([ext_dir, REPO]))
    res = subprocess.run(['/usr/bin/python3', '-m', 'nova_hooks', 'logs', '--json', log('cmp-a01')],
                         capture_output=True, text=True, env=env, cwd='/')
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    want = truth('cmp-a01')['live_migrations']
    assert rows[0]['started_at_ms'] == want[0]['started_at']['epoch_ms'] + 5 * 3600 * 1000


def test_cli_instance_filter():
    uuid = 'c0099eba-cd73-4e00-81a0-ba056ce9da66'
    res = cli('--json', '--tz', 'UTC', '--instance', uuid.upper(), log('cmp-a01'))
    rows = json.loads(res.stdout)
    assert [r['instance_uuid'] for r in rows] == [uuid]
    assert rows[0]['switched_to_postcopy_at'] == '2026-11-21 07:19:10.813'
    res = cli('--json', '--instance', '00000000-0000-0000-0000-000000000000', log('cmp-a01'))
    assert json.loads(res.stdout) == []


def test_cli_rotated_files(tmp_path):
    with open(log('cmp-a01'), 'rb') as f:
        data = f.read()
    cut = data.index(b'\n', len(data) // 3) + 1      # inside the third migration
    (tmp_path / 'nova-compute.log.1').write_bytes(data[:cut])
    (tmp_path / 'nova-compute.log').write_bytes(data[cut:])
    res = cli('--json', '--tz', 'UTC', str(tmp_path / 'nova-compute.log.1'),
              str(tmp_path / 'nova-compute.log'))
    assert res.returncode == 0, res.stderr
    assert [unflatten(r) for r in json.loads(res.stdout)] == truth('cmp-a01')['live_migrations']


def test_cli_table():
    res = cli('--tz', 'UTC', log('cmp-a01'))
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ['INSTANCE', 'ROLE', 'OUTCOME']
    assert len(lines) == 7
    assert 'cancelled' in lines[6] and 'f38b2ffc' in lines[1]
    # aligned: every row's ROLE column starts where the header's does
    col = lines[0].index('ROLE')
    assert all(line[col:col + 6] == 'source' for line in lines[1:])


@pytest.mark.parametrize('args', [
    ['/nonexistent/nova-compute.log'],
    ['__DIR__'],
    ['--tz', 'Not/AZone', '__LOG__'],
    ['--peer', '/nonexistent/peer.log', '__LOG__'],
    ['--bogus', '__LOG__'],
    [],
])
def test_cli_errors_exit_2_with_one_line(args, tmp_path):
    args = [str(tmp_path) if a == '__DIR__' else log('cmp-a03') if a == '__LOG__' else a
            for a in args]
    res = cli(*args)
    assert res.returncode == 2
    assert res.stdout == ''
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    if args and args[0].startswith('/nonexistent'):
        assert '/nonexistent/nova-compute.log' in res.stderr


def test_cli_unreadable_file(tmp_path):
    path = tmp_path / 'secret.log'
    path.write_text('x\n')
    path.chmod(0)
    if os.geteuid() == 0:
        # root reads anything: use a path through a non-directory instead
        path = tmp_path / 'secret.log' / 'inside'
    res = cli(str(path))
    assert res.returncode == 2
    assert str(path) in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_hostile_file(tmp_path):
    hostile = tmp_path / 'hostile.log'
    with open(log('cmp-a01'), 'rb') as f:
        head = f.read(200000)
    blob = (b'\x00\xff\xfe garbage\r\n' + b'A' * (2 << 20) + b'\n' +
            b'2026-13-45 99:99:99.999 1 INFO x [-] bad date\n' +
            b'2026-02-30 00:00:00.000 1 INFO x [-] Feb 30\n' +
            b'2026-01-01 00:00:00.000 1 INFO d [None req-1 u] '
            b'[instance: 11111111-2222-3333-4444-555555555555] Migration running for '
            b'99999999999999999999999 secs, memory 1% remaining (bytes processed=1, '
            b'remaining=1, total=1)\n' + head[:-7] + b'\x00\x00\x00' + bytes(range(256)))
    hostile.write_bytes(blob)
    res = cli('--json', '--summary', str(hostile))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc['summary']['long_lines_skipped'] == 1
    assert doc['summary']['lines_without_log_prefix'] >= 3
    res = cli(str(hostile))
    assert res.returncode == 0


def test_scan_logs_direct():
    for host in HOSTS:
        res = _migpilot.scan_logs([log(host)], 'UTC',
                                  peers=[log('cmp-a01')] if host == 'cmp-b07' else None)
        t = truth(host)
        assert res['live_migrations'] == t['live_migrations']
        for key in COUNTERS:
            assert res[key] == t[key], key
    with pytest.raises(OSError) as exc:
        _migpilot.scan_logs([log('cmp-a01'), '/nonexistent.log'], 'UTC')
    assert exc.value.filename == '/nonexistent.log'
    with pytest.raises(_migpilot.Error):
        _migpilot.scan_logs([log('cmp-a01')], 'No/Such_Zone')
    assert issubclass(_migpilot.Error, ValueError)
    with pytest.raises(TypeError):
        _migpilot.scan_logs(log('cmp-a01'), 'UTC')
    empty = _migpilot.scan_logs([], None)
    assert empty['live_migrations'] == [] and empty['total_lines'] == 0


def test_parse_log_line():
    with open(log('cmp-a01'), 'rb') as f:
        lines = f.readlines()
    rec = _migpilot.parse_log_line(lines[822])
    assert rec['event'] == 'start_monitoring'
    assert rec['instance_uuid'] == 'f38b2ffc-80a4-4f5a-91c9-bc701e7ea419'
    assert rec['message'] == 'Starting monitoring of live migration'
    assert rec['debug_lineno'] == 10580
    assert rec['global_request_id'] is None
    assert rec['pid'] == 3187
    prog = [_migpilot.parse_log_line(l) for l in lines if b'Migration running for' in l][0]
    assert prog['event'] == 'progress' and prog['progress']['total_bytes'] > 0
    tb = _migpilot.parse_log_line(lines[6414].decode())
    assert tb['kind'] == 'continuation' and tb['message'] == 'Traceback (most recent call last):'
    assert _migpilot.parse_log_line(b'') is None
    assert _migpilot.parse_log_line(b'\x00\xff') is None
    assert _migpilot.parse_log_line('2026-02-30 00:00:00.000 1 INFO a [-] x') is None
    with pytest.raises(TypeError):
        _migpilot.parse_log_line(12)


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
