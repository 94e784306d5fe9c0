"""The baseline: nova-compute log → migration timelines in plain Python with regexes, the way
an operator would write it (one regex for the oslo prefix, one per message of interest).

    /usr/bin/python3 tests/bench/logs/baseline.py FILE...     (JSON list on stdout)

Same extraction as `migpilot logs --json` (role, outcome, start, switch, end, destination,
last progress, progress counts, line counts by level), simplified: UTC timestamps.
"""
import calendar
import json
import re
import sys
import time

PREFIX = re.compile(
    r'^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\.(\d{3}) (\d+) (DEBUG|INFO|WARNING|ERROR|CRITICAL|TRACE) '
    r'(\S+) (?:\[([^\]]*)\] )?(?:\[instance: ([0-9a-f-]{36})\] )?(.*)$')
PROGRESS = re.compile(
    r'Migration running for (\d+) secs, memory (\d+)% remaining \(bytes processed=(\d+), '
    r'remaining=(\d+), total=(\d+)\)')
TIMEOUT = re.compile(r'Live migration not completed after (\d+) sec$')
FINISHED = re.compile(r'Migrating instance to (\S+) finished successfully\.')
MOVED = re.compile(r'moved from host (\S+) to host (\S+)$')
DEBUG_SUFFIX = re.compile(r' \S+ \S+:\d+$')
ENDS = {'Migration operation has completed': 'completed',
        'Migration operation has aborted': 'failed',
        'Migration operation was cancelled': 'cancelled'}


def epoch_ms(ts, ms):
    return calendar.timegm(time.strptime(ts, '%Y-%m-%d %H:%M:%S')) * 1000 + int(ms)


def main(paths):
    counts = {}
    migrations = []
    current = {}        # instance -> record
    pending = {}        # request id -> record without instance yet
    for path in paths:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = PREFIX.match(line.rstrip('\n'))
                if not m:
                    continue
                ts, ms, pid, level, logger, ctx, inst, msg = m.groups()
                counts[level] = counts.get(level, 0) + 1
                if level == 'DEBUG':
                    msg = DEBUG_SUFFIX.sub('', msg)
                req = ctx.split(' ')[1] if ctx and ' ' in ctx else None
                if inst is None:
                    if msg.startswith('live_migration data is') or \
                            msg.startswith('pre_live_migration data is'):
                        rec = {'instance_uuid': None, 'request_id': req,
                               'role': 'source' if msg.startswith('live') else 'destination',
                               'outcome': 'unknown', 'started_at': None, 'started_at_ms': None,
                               'switched_to_postcopy_at': None, 'completed_at': None,
                               'duration_ms': None, 'dest_host': None, 'last_progress': None,
                               'progress_lines': {'total': 0, 'info': 0, 'debug': 0}}
                        migrations.append(rec)
                        pending[req] = rec
                    continue
                rec = pending.pop(req, None) if req in pending else None
                if rec is not None:
                    rec['instance_uuid'] = inst
                    current[inst] = rec
                rec = current.get(inst)
                if rec is None:
                    continue
                stamp = '%s.%s' % (ts, ms)
                if msg == 'Starting monitoring of live migration':
                    rec['started_at'] = stamp
                    rec['started_at_ms'] = epoch_ms(ts, ms)
                elif msg == 'Switching to post-copy migration mode':
                    rec['switched_to_postcopy_at'] = stamp
                elif msg in ENDS and rec['outcome'] == 'unknown':
                    rec['outcome'] = ENDS[msg]
                    rec['completed_at'] = stamp
                    if rec['started_at_ms'] is not None:
                        rec['duration_ms'] = epoch_ms(ts, ms) - rec['started_at_ms']
                elif msg == 'Post operation of migration started':
                    rec['outcome'] = 'completed'
                elif msg == 'Instance destroyed successfully.' and rec['outcome'] == 'unknown':
                    rec['outcome'] = 'failed'
                else:
                    p = PROGRESS.match(msg)
                    if p:
                        secs, pct, done, rem, total = map(int, p.groups())
                        rec['last_progress'] = {'secs': secs, 'memory_remaining_pct': pct,
                                                'processed_bytes': done, 'remaining_bytes': rem,
                                                'total_bytes': total}
                        rec['progress_lines']['total'] += 1
                        rec['progress_lines'][level.lower()] = \
                            rec['progress_lines'].get(level.lower(), 0) + 1
                        continue
                    f2 = FINISHED.match(msg)
                    if f2:
                        rec['dest_host'] = f2.group(1)
                        continue
                    mv = MOVED.search(msg)
                    if mv and rec['role'] == 'destination':
                        rec['dest_host'] = mv.group(2)
    json.dump(migrations, sys.stdout)
    sys.stdout.write('\n')
    sys.stderr.write('lines: %s\n' % counts)


if __name__ == '__main__':
    main(sys.argv[1:])
