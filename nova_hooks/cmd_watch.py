"""`migpilot watch [--url URL] [--once]`: progress of the running live migrations.

Reads migpilot's own notifications (compute.live_migration.progress/switch/metrics) from a
private queue and shows one progress bar per running migration: pass, memory remaining, send
rate, dirty rate and the agent's prediction. On a terminal the bars are redrawn in place;
otherwise each update is appended as a plain line. A finished migration prints its outcome
line. `--once` exits after the first outcome once no other migration is running.
Ctrl-C exits 0; an unreachable broker gives one line and exit status 2.
"""
import sys

from nova_hooks import cmd_listen
from nova_hooks.cmd_listen import _ms, _rate, _size

PROG = 'migpilot watch'
EVENTS = ('progress', 'switch', 'metrics')
BAR = 30


def register(subparsers):
    parser = subparsers.add_parser(
        'watch', help='progress bars of the running live migrations (from migpilot agents)',
        description="Show the progress of running live migrations from migpilot's "
                    "compute.live_migration.* notifications.")
    cmd_listen.add_bus_arguments(parser)
    parser.add_argument('--once', action='store_true',
                        help='exit after a migration finished and none is running')
    parser.set_defaults(func=run)


def _short(uuid):
    return (uuid or '?')[:8]


def progress_line(state):
    p = state['progress']
    total = p.get('memory_total_bytes') or 0
    remaining = p.get('memory_remaining_bytes')
    if total and remaining is not None:
        done = min(max(1.0 - float(remaining) / total, 0.0), 1.0)
    else:
        done = 0.0
    fill = int(round(done * BAR))
    line = '%s %s->%s [%s%s] %3d%% pass %s remaining %s send %s dirty %s %s' % (
        _short(state['instance']), p.get('source_host') or '?', p.get('dest_host') or '?',
        '#' * fill, '-' * (BAR - fill), int(done * 100), p.get('pass'), _size(remaining),
        _rate(p.get('bandwidth_bps')), _rate(p.get('dirty_rate_bps')),
        p.get('prediction') or 'unknown')
    if p.get('predicted_finish_ms') is not None:
        line += ' (finish in %s)' % _ms(p['predicted_finish_ms'])
    if state.get('switch'):
        line += ' post-copy (%s)' % (state['switch'].get('reason') or '?')
    return line


def outcome_line(payload):
    line = '%s %s %s in %s, downtime %s, %s in %s passes' % (
        _short(payload.get('instance_id')), payload.get('outcome'), payload.get('mode'),
        _ms(payload.get('migration_time_ms')), _ms(payload.get('downtime_ms')),
        _size(payload.get('bytes_transferred')), payload.get('passes'))
    if payload.get('switch_reason'):
        line += ', switched: %s (%s)' % (payload['switch_reason'], payload.get('decided_by'))
    if payload.get('error'):
        line += ', error: %s' % cmd_listen.one_line(payload['error'])
    return line


class Screen:
    """Bars redrawn in place on a terminal, appended lines otherwise."""

    def __init__(self, out):
        self.out = out
        self.tty = out.isatty()
        self.drawn = 0

    def update(self, running, changed=None, finished=()):
        if not self.tty:
            for line in finished:
                self.out.write(line + '\n')
            if changed is not None:
                self.out.write(progress_line(changed) + '\n')
        else:
            if self.drawn:
                self.out.write('\x1b[%dA\x1b[J' % self.drawn)
            for line in finished:
                self.out.write(line + '\n')
            for state in running.values():
                self.out.write(progress_line(state) + '\n')
            self.drawn = len(running)
        self.out.flush()


def run(args):
    listener = cmd_listen.open_listener(PROG, args, binding_keys=('notifications.info',))
    if isinstance(listener, int):
        return listener
    screen = Screen(sys.stdout)
    running = {}
    try:
        with listener:
            for entry in listener:
                if 'error' in entry:
                    continue
                event = entry['info'].get('event_type') or ''
                if not event.startswith(cmd_listen.MIGPILOT_PREFIX) or \
                        event[len(cmd_listen.MIGPILOT_PREFIX):] not in EVENTS:
                    continue
                payload = (entry.get('message') or {}).get('payload')
                if not isinstance(payload, dict):
                    continue
                uuid = payload.get('instance_id') or entry['info'].get('instance_uuid') or '?'
                kind = event[len(cmd_listen.MIGPILOT_PREFIX):]
                if kind == 'metrics':
                    running.pop(uuid, None)
                    screen.update(running, finished=[outcome_line(payload)])
                    if args.once and not running:
                        return 0
                    continue
                state = running.setdefault(uuid, {'instance': uuid, 'progress': {}})
                if kind == 'progress':
                    state['progress'] = payload
                else:
                    state['switch'] = payload
                    if not state['progress']:
                        state['progress'] = payload
                screen.update(running, changed=state)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return cmd_listen.fail(PROG, 2, 'lost the bus: %s' % exc)
    return 0
