"""Runs `migpilot logs --json` and the regex baseline on the same file, the same number of
times, interleaved (C, baseline, C, baseline, ...); each is reported by its median run.

    /usr/bin/python3 tests/bench/logs/bench.py FILE SMALL_FILE RESULTS_JSON
"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..')))
from tests.bench import stamp  # noqa: E402

RUNS = 3

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))


def measure(cmd, env, out_path):
    """Wall time, CPU time (user + system), peak RSS (KiB) of one child; its output goes to
    out_path. Outputs are read only after every run: a child's peak RSS counts its parent's
    at fork time (the kernel keeps the high-water mark across exec), so this process must
    stay smaller than what it measures."""
    start = time.perf_counter()
    with open(os.devnull, 'wb') as devnull, open(out_path, 'wb') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=devnull, env=env, cwd='/')
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit('bench: %s failed with status %d' % (cmd, status))
    return wall, usage.ru_maxrss, out_path, usage.ru_utime + usage.ru_stime


def count(out_path):
    with open(out_path) as f:
        return len(json.load(f))


def main():
    path, small, results = sys.argv[1:4]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in [os.environ.get('MIGPILOT_PYTHONPATH'), REPO]
                                        if p)
    size = os.path.getsize(path)
    subprocess.run(['cat', path], stdout=subprocess.DEVNULL, check=True)   # warm the cache
    c_cmd = ['/usr/bin/python3', '-m', 'nova_hooks', 'logs', '--json', '--tz', 'UTC']
    outs = os.path.join(os.path.dirname(os.path.abspath(path)), 'out')   # run.sh's temp dir
    b_cmd = ['/usr/bin/python3', os.path.join(HERE, 'baseline.py'), path]
    st = stamp.Stamp(['tests/bench/logs/run.sh'] + sys.argv[1:])
    c_runs, b_runs = [], []
    for _ in range(RUNS):
        c_runs.append(measure(c_cmd + [path], env, outs + '.c'))
        b_runs.append(measure(b_cmd, env, outs + '.baseline'))
    c_wall = statistics.median(r[0] for r in c_runs)
    c_cpu = statistics.median(r[3] for r in c_runs)
    c_rss = max(r[1] for r in c_runs)
    b_wall = statistics.median(r[0] for r in b_runs)
    b_cpu = statistics.median(r[3] for r in b_runs)
    b_rss = max(r[1] for r in b_runs)
    small_size = os.path.getsize(small)
    s_wall, s_rss, _, _ = measure(c_cmd + [small], env, outs + '.small')
    migrations = count(outs + '.c')
    b_migrations = count(outs + '.baseline')
    for suffix in ('.c', '.small', '.baseline'):
        os.unlink(outs + suffix)
    mb = size / 1e6
    res = {
        'file_bytes': size,
        'migrations': migrations,
        'baseline_migrations': b_migrations,
        'c': {'command': ' '.join(c_cmd + ['FILE']), 'seconds': round(c_wall, 3),
              'mb_per_s': round(mb / c_wall, 1), 'cpu_seconds': round(c_cpu, 3),
              'mb_per_cpu_s': round(mb / c_cpu, 1), 'peak_rss_kib': c_rss,
              'runs_seconds': [round(r[0], 3) for r in c_runs]},
        'c_small_file': {'file_bytes': small_size, 'seconds': round(s_wall, 3),
                         'peak_rss_kib': s_rss},
        'runs': RUNS, 'statistic': 'median of the runs, interleaved C / baseline',
        'baseline': {'command': 'python3 tests/bench/logs/baseline.py FILE',
                     'runs_seconds': [round(r[0], 3) for r in b_runs],
                     'seconds': round(b_wall, 3), 'mb_per_s': round(mb / b_wall, 1),
                     'cpu_seconds': round(b_cpu, 3), 'mb_per_cpu_s': round(mb / b_cpu, 1),
                     'peak_rss_kib': b_rss},
        'speedup': round(b_wall / c_wall, 1),
        'speedup_cpu': round(b_cpu / c_cpu, 1),
        'load_average': open('/proc/loadavg').read().split()[:3],
        'targets': {'mb_per_s': 400, 'speedup': 20},
        'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'cpu': next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
                     if l.startswith('model name')), None),
    }
    res['stamp'] = st.finish()
    os.makedirs(os.path.dirname(results), exist_ok=True)
    with open(results, 'w') as f:
        json.dump(res, f, indent=1)
        f.write('\n')
    print(json.dumps(res, indent=1))
    # Targets are judged on CPU time (one core): wall time on a shared machine includes
    # other processes' load; both are recorded.
    ok = res['c']['mb_per_cpu_s'] >= 400 and res['speedup_cpu'] >= 20
    print('logs bench: C %.0f MB/s wall, %.0f MB/CPU-s; regex baseline %.1f MB/s wall, '
          '%.1f MB/CPU-s; speedup %.1fx wall, %.1fx CPU; peak RSS %d KiB (%d KiB on a %d MB '
          'file) -> %s' % (res['c']['mb_per_s'], res['c']['mb_per_cpu_s'],
                           res['baseline']['mb_per_s'], res['baseline']['mb_per_cpu_s'],
                           res['speedup'], res['speedup_cpu'], c_rss, s_rss,
                           small_size // 10**6, 'targets met' if ok else 'TARGETS MISSED'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
