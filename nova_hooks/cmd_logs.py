"""`migpilot logs`: live-migration timelines from nova-compute log files.

    migpilot logs FILE... [--json] [--tz ZONE] [--instance UUID] [--summary] [--peer FILE]

FILEs are read in the order given, as one stream (rotated files oldest first:
nova-compute.log.1 nova-compute.log). The scanning is done by the C core
(_migpilot.scan_logs); this module only formats. Records are streamed: each is printed (JSON)
or reduced to its table row as soon as the core hands it over, so memory does not grow with
the size of the logs.

--tz ZONE: the IANA zone the log's local timestamps are in (default: this host's zone).
--peer FILE: the source host's log(s); a destination log alone can not tell an operator's
abort from a failure (both roll back with the same lines), the source's records can.

JSON output (--json): a list, one object per migration, in order of first line. Mapping to the
fields of the fixtures' truth records (tests/data/fixtures/nova-compute/README.md):
  * every truth timestamp X = {"local": L, "epoch_ms": E} becomes X = L (as printed in the
    log, or null) and X_ms = E (epoch ms in --tz; null when X is null);
  * last_progress = {"at": {...}, level, secs, ...} becomes last_progress = {"at": L,
    "at_ms": E, "level", "secs", "memory_remaining_pct", "processed_bytes",
    "remaining_bytes", "total_bytes"} (or null);
  * outcome and true_outcome: null (the end is not in the files) becomes "unknown";
  * every other field is copied as is (instance_uuid, request_id, global_request_id, role,
    completion_timeout_s, completed_message, duration_ms, dest_host, source_host,
    progress_lines, memory_mb, complete_in_file, state_at_end_of_file).
Line counts by level go to stderr as one line; with --summary they are printed instead as a
summary (with --json: the output becomes {"live_migrations": [...], "summary": {...}}).

Exit status: 0, or 2 with one line on stderr for bad arguments and unreadable files.
"""
import json
import os
import sys

import _migpilot

_SUMMARY_KEYS = ('total_lines', 'line_counts_by_level', 'lines_without_log_prefix',
                 'traceback_continuation_lines', 'unknown_lines', 'long_lines_skipped')


def register(subparsers):
    parser = subparsers.add_parser(
        'logs', help='live-migration timelines from nova-compute logs',
        description='Live-migration timelines from nova-compute log files '
                    '(rotated files oldest first).')
    parser.add_argument('files', nargs='+', metavar='FILE', help='nova-compute log file')
    parser.add_argument('--json', action='store_true', help='print JSON')
    parser.add_argument('--tz', metavar='ZONE', default=None,
                        help="IANA zone of the log's local time (default: this host's)")
    parser.add_argument('--instance', metavar='UUID', action='append', default=None,
                        help='only this instance (repeatable)')
    parser.add_argument('--summary', action='store_true',
                        help='print line counts as a summary instead of on stderr')
    parser.add_argument('--peer', metavar='FILE', action='append', default=None,
                        help="the source host's log, to tell a cancelled incoming "
                             "migration from a failed one")
    parser.set_defaults(func=run)


def _stamp(rec, out, key):
    st = rec.get(key)
    out[key] = st['local'] if st else None
    out[key + '_ms'] = st['epoch_ms'] if st else None


def flatten(rec):
    """A core record (truth shape) to the CLI's JSON object (see the module docstring)."""
    out = {}
    for key, val in rec.items():
        if key == 'last_progress':
            if val is None:
                out[key] = None
            else:
                lp = {k: v for k, v in val.items() if k != 'at'}
                lp['at'] = val['at']['local']
                lp['at_ms'] = val['at']['epoch_ms']
                out[key] = lp
        elif key in ('outcome', 'true_outcome'):
            out[key] = val if val is not None else 'unknown'
        elif isinstance(val, dict) and set(val) == {'local', 'epoch_ms'}:
            _stamp(rec, out, key)
        elif val is None and key.endswith('_at'):
            out[key] = None
            out[key + '_ms'] = None
        else:
            out[key] = val
    return out


def summary(result):
    out = {k: result.get(k) for k in _SUMMARY_KEYS}
    out['first_line_at'] = (result.get('first_line_at') or {}).get('local')
    out['last_line_at'] = (result.get('last_line_at') or {}).get('local')
    out['migrations'] = len(result['live_migrations'])
    return out


def _fail(message):
    sys.stderr.write('migpilot logs: %s\n' % message)
    return 2


def _fmt_duration(ms):
    if ms is None:
        return '-'
    secs = ms / 1000.0
    if secs < 120:
        return '%.1fs' % secs
    return '%dm%02ds' % (secs // 60, secs % 60)


def _table_row(r):
    """The table's cells of one flattened record (all that is kept of it)."""
    lp = r.get('last_progress')
    peer = r.get('dest_host') if r['role'] == 'source' else r.get('source_host')
    started = r.get('started_at') or r.get('pre_live_migration_at') or r.get('first_seen_at')
    return (
        r.get('instance_uuid') or '-',
        r['role'],
        r['outcome'],
        started or '-',
        _fmt_duration(r.get('duration_ms')),
        (r.get('switched_to_postcopy_at') or '-')[11:] or '-',
        peer or '-',
        '%d lines' % r['progress_lines']['total'],
        ('%ds %d%%' % (lp['secs'], lp['memory_remaining_pct'])) if lp else '-',
    )


def _table(cells):
    headers = ('INSTANCE', 'ROLE', 'OUTCOME', 'STARTED', 'DURATION', 'POST-COPY AT',
               'PEER HOST', 'PROGRESS', 'LAST')
    lines = [headers] + cells
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(headers))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in lines)


def _indented(doc, prefix):
    """json.dumps(doc, indent=1) as it reads nested under prefix (strings hold no newline)."""
    return json.dumps(doc, indent=1).replace('\n', '\n' + prefix)


class _JsonList:
    """Writes a JSON list item by item, byte for byte as json.dump(list, indent=1) nested
    at the given depth would."""

    def __init__(self, out, depth):
        self.out = out
        self.inner = ' ' * (depth + 1)
        self.outer = ' ' * depth
        self.count = 0

    def add(self, item):
        self.out.write(('[\n' if self.count == 0 else ',\n') + self.inner +
                       _indented(item, self.inner))
        self.count += 1

    def close(self):
        self.out.write('\n%s]' % self.outer if self.count else '[]')


def run(args):
    for path in list(args.files) + list(args.peer or []):
        if os.path.isdir(path):
            return _fail('cannot read %s: is a directory' % path)
    wanted = {u.lower() for u in args.instance} if args.instance else None
    out = sys.stdout
    cells = []
    seen = [0]
    writer = None
    if args.json:
        if args.summary:
            out.write('{\n "live_migrations": ')
        writer = _JsonList(out, 1 if args.summary else 0)

    def on_record(rec):
        seen[0] += 1
        row = flatten(rec)
        if wanted is not None and (row.get('instance_uuid') or '').lower() not in wanted:
            return
        if writer is not None:
            writer.add(row)
        else:
            cells.append(_table_row(row))

    try:
        # every file is opened before anything is read: an unreadable one fails here, before
        # any output
        result = _migpilot.scan_logs(args.files, args.tz, peers=args.peer,
                                     on_record=on_record)
    except OSError as exc:
        return _fail('cannot read %s: %s' % (exc.filename, exc.strerror or exc))
    except _migpilot.Error as exc:
        return _fail(str(exc))
    result['live_migrations'] = ()
    summ = summary(result)
    summ['migrations'] = seen[0]
    if writer is not None:
        writer.close()
        if args.summary:
            out.write(',\n "summary": %s\n}' % _indented(summ, ' '))
        out.write('\n')
    else:
        out.write(_table(cells) + '\n')
        if args.summary:
            out.write('\n' + '\n'.join('%s: %s' % (k, v) for k, v in summ.items()) + '\n')
    if not args.summary:
        counts = ' '.join('%s=%d' % kv for kv in sorted(summ['line_counts_by_level'].items()))
        sys.stderr.write('lines: %d total, %s, %d without prefix, %d unknown\n'
                         % (summ['total_lines'], counts or 'none',
                            summ['lines_without_log_prefix'], summ['unknown_lines']))
    return 0
