"""`migpilot decode FILE|- [--json]`: decode one AMQP message body with the C codec.

Prints the notification's event type, publisher, priority, timestamp and instance uuid
(with `--json`, the decoded inner oslo message). A body the codec rejects gives one line
on stderr and exit status 1; an unreadable file or bad arguments give one line and 2.
"""
import argparse
import json
import sys

import _migpilot

PROG = 'migpilot decode'

# Printed in this order; None shows as "-".
FIELDS = (
    ('event_type', 'event type'),
    ('publisher_id', 'publisher'),
    ('priority', 'priority'),
    ('timestamp', 'timestamp'),
    ('instance_uuid', 'instance uuid'),
    ('format', 'format'),
    ('live_migration_event', 'live migration'),
    ('message_id', 'message id'),
    ('request_id', 'request id'),
)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an integer' % text)
    if value <= 0:
        raise argparse.ArgumentTypeError('%r is not positive' % text)
    return value


def register(subparsers):
    parser = subparsers.add_parser(
        'decode', help='decode one oslo.messaging AMQP body (envelope 2.0 or bare 1.0)',
        description='Decode one AMQP message body as nova and oslo.messaging send it.')
    parser.add_argument('file', metavar='FILE|-',
                        help='file holding the AMQP body, or - for standard input')
    parser.add_argument('--json', action='store_true',
                        help='print the decoded inner message as JSON')
    parser.add_argument('--max-bytes', type=_positive_int,
                        default=_migpilot.DEFAULT_MAX_BYTES,
                        help='reject bodies larger than this (default %(default)s)')
    parser.add_argument('--max-depth', type=_positive_int,
                        default=_migpilot.DEFAULT_MAX_DEPTH,
                        help='reject deeper JSON nesting (default %(default)s)')
    parser.set_defaults(func=run)


def _fail(status, message):
    # One line whatever the message holds.
    text = _clean(' '.join(str(message).split()))
    sys.stderr.write('%s: %s\n' % (PROG, text))
    return status


def _clean(value):
    # Bus input may hold terminal escapes or newlines: show them, do not obey them.
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def _write(text):
    sys.stdout.buffer.write(text.encode('utf-8'))
    sys.stdout.flush()


def _read(path, limit):
    # One byte past the limit is enough for the codec to say the body is too large,
    # without reading a huge file whole.
    if path == '-':
        return sys.stdin.buffer.read(limit + 1)
    with open(path, 'rb') as fp:
        return fp.read(limit + 1)


def run(args):
    try:
        body = _read(args.file, args.max_bytes)
    except OSError as exc:
        what = 'standard input' if args.file == '-' else args.file
        return _fail(2, 'cannot read %s: %s' % (what, exc.strerror or exc))
    try:
        if args.json:
            message = _migpilot.decode(body, max_bytes=args.max_bytes,
                                       max_depth=args.max_depth)
        else:
            info = _migpilot.notification_info(body, max_bytes=args.max_bytes,
                                               max_depth=args.max_depth)
    except _migpilot.Error as exc:
        return _fail(1, exc)
    except (MemoryError, RecursionError) as exc:
        return _fail(1, 'cannot decode: %s' % type(exc).__name__)

    if args.json:
        _write(json.dumps(message, indent=2, ensure_ascii=False) + '\n')
        return 0
    width = max(len(label) for _, label in FIELDS) + 1
    lines = []
    for key, label in FIELDS:
        value = info.get(key)
        lines.append('%-*s %s\n' % (width, label + ':', '-' if value is None else _clean(value)))
    _write(''.join(lines))
    return 0
