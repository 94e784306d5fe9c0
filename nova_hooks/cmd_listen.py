"""`migpilot listen [--url URL] [--json] [--all]`: show notifications as they pass on the bus.

Declares a private, auto-deleted queue (it never takes messages from anyone else's) bound to
nova's notification topics and prints nova's live-migration notifications and migpilot's own
(`compute.live_migration.*`), one line each, or every notification with `--all`. `--json`
prints one JSON object per message instead: {"routing_key", "info", "message"}.
A malformed body gives one line on stderr and listening goes on. Ctrl-C exits 0; an
unreachable broker or no transport URL gives one line and exit status 2.
"""
import configparser
import datetime
import json
import sys

import _migpilot

PROG = 'migpilot listen'
MIGPILOT_CONF = '/etc/migpilot/migpilot.conf'
NOVA_CONF = '/etc/nova/nova.conf'
MIGPILOT_PREFIX = 'compute.live_migration.'
BINDING_KEYS = ('versioned_notifications.info', 'notifications.info')


def _read_conf(path):
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path)
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser


def _conf_get(parser, section, key):
    if parser is None:
        return None
    try:
        value = parser.get(section, key)
    except (configparser.NoSectionError, configparser.NoOptionError):
        return None
    return value.strip() or None


def bus_settings(migpilot_conf=MIGPILOT_CONF, nova_conf=NOVA_CONF):
    """(transport_url or None, exchange, durable) as the agent would use them: migpilot.conf
    [amqp], the URL falling back to nova.conf's [oslo_messaging_notifications], then its
    [DEFAULT] transport_url; durable (nova's exchange) as [amqp] durable resolves it, auto
    following nova.conf's [oslo_messaging_rabbit] amqp_durable_queues or
    rabbit_quorum_queue as oslo does."""
    conf = _read_conf(migpilot_conf)
    url = _conf_get(conf, 'amqp', 'transport_url')
    exchange = _conf_get(conf, 'amqp', 'exchange') or 'nova'
    nova = _read_conf(_conf_get(conf, 'amqp', 'nova_conf') or nova_conf)
    durable = (_conf_get(conf, 'amqp', 'durable') or 'auto').lower()
    if durable == 'auto':
        quorum = (_conf_get(conf, 'amqp', 'queue_type') or 'auto').lower() == 'quorum'
        durable = quorum or any(
            _truth(_conf_get(nova, 'oslo_messaging_rabbit', key), False)
            for key in ('amqp_durable_queues', 'rabbit_quorum_queue'))
    else:
        durable = _truth(durable, False)
    # the agent's own choice (mpTransportUrlResolve): nova's notification transport first
    url = _migpilot.resolve_transport_url(
        url, _conf_get(nova, 'oslo_messaging_notifications', 'transport_url'),
        _conf_get(nova, 'DEFAULT', 'transport_url'))[0]
    return url, exchange, durable


def _truth(value, default):
    if value is None:
        return default
    # the agent's own reading (the core's mpParseBool); not a boolean counts as false
    return bool(_migpilot.parse_bool(value))


def tls_settings(migpilot_conf=MIGPILOT_CONF):
    """The agent's [amqp] ssl* options as Listener keyword arguments."""
    conf = _read_conf(migpilot_conf)
    return {
        'ssl': _truth(_conf_get(conf, 'amqp', 'ssl'), False),
        'ssl_ca_file': _conf_get(conf, 'amqp', 'ssl_ca_file'),
        'ssl_cert_file': _conf_get(conf, 'amqp', 'ssl_cert_file'),
        'ssl_key_file': _conf_get(conf, 'amqp', 'ssl_key_file'),
        'ssl_verify': _truth(_conf_get(conf, 'amqp', 'ssl_verify'), True),
    }


def add_bus_arguments(parser):
    parser.add_argument('--url', metavar='URL',
                        help='oslo transport URL (default: [amqp] transport_url of %s, else '
                             'transport_url of %s)' % (MIGPILOT_CONF, NOVA_CONF))
    parser.add_argument('--exchange', help='exchange (default: [amqp] exchange, else nova)')
    # TLS, as the agent's [amqp] ssl* options (which are the defaults); amqps:// URLs use
    # TLS anyway
    parser.add_argument('--ssl', action='store_true', default=None,
                        help='TLS even for an amqp:// URL (default: [amqp] ssl)')
    parser.add_argument('--ssl-ca-file', metavar='FILE',
                        help="CA certificates to verify the broker's (default: [amqp] "
                             "ssl_ca_file)")
    parser.add_argument('--ssl-cert-file', metavar='FILE',
                        help='client certificate (default: [amqp] ssl_cert_file)')
    parser.add_argument('--ssl-key-file', metavar='FILE',
                        help="client certificate's key (default: [amqp] ssl_key_file)")
    parser.add_argument('--no-ssl-verify', dest='ssl_verify', action='store_false',
                        default=None,
                        help="do not verify the broker's certificate and host name "
                             "(default: [amqp] ssl_verify, else verify)")


def one_line(text):
    return ' '.join(str(text).split())


def fail(prog, status, message):
    sys.stderr.write('%s: %s\n' % (prog, one_line(message)))
    return status


def open_listener(prog, args, binding_keys=BINDING_KEYS):
    """A connected Listener, or an int exit status after one line on stderr."""
    url, exchange, durable = bus_settings()
    url = args.url or url
    exchange = args.exchange or exchange
    if not url:
        return fail(prog, 2, 'no transport URL: give --url, or set [amqp] transport_url in %s '
                    'or transport_url in %s' % (MIGPILOT_CONF, NOVA_CONF))
    tls = tls_settings()
    for key in tls:
        given = getattr(args, key, None)
        if given is not None:
            tls[key] = given
    try:
        return _migpilot.Listener(url, exchange=exchange, binding_keys=binding_keys,
                                  durable=durable, **tls)
    except (OSError, ValueError) as exc:   # ConnectionError, _migpilot.Error
        return fail(prog, 2, 'cannot listen on the bus: %s' % exc)


def register(subparsers):
    parser = subparsers.add_parser(
        'listen', help="print nova's live-migration notifications and migpilot's as they pass",
        description="Print nova's live-migration notifications and migpilot's own "
                    "(compute.live_migration.*) as they pass on the bus, from a private "
                    "queue that takes nothing from other consumers.")
    add_bus_arguments(parser)
    parser.add_argument('--json', action='store_true',
                        help='one JSON object per message: routing_key, info, message')
    parser.add_argument('--all', action='store_true', help='every notification, not only '
                        'live-migration ones')
    parser.set_defaults(func=run)


def wanted(info, everything=False):
    return everything or bool(info.get('live_migration_event')) or \
        (info.get('event_type') or '').startswith(MIGPILOT_PREFIX)


def _size(n):
    if n is None:
        return '-'
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024


def _rate(bps):
    return '-' if bps is None else '%s/s' % _size(bps)


def _ms(ms):
    if ms is None:
        return '-'
    return '%d ms' % ms if ms < 10000 else '%.1f s' % (ms / 1000.0)


def figures(event_type, payload):
    """The key figures of a notification, as 'k=v' words."""
    if not isinstance(payload, dict):
        return ''
    if event_type == MIGPILOT_PREFIX + 'progress':
        return 'pass=%s remaining=%s send=%s dirty=%s prediction=%s' % (
            payload.get('pass'), _size(payload.get('memory_remaining_bytes')),
            _rate(payload.get('bandwidth_bps')), _rate(payload.get('dirty_rate_bps')),
            payload.get('prediction'))
    if event_type == MIGPILOT_PREFIX + 'switch':
        return 'pass=%s reason=%s decided_by=%s acted=%s' % (
            payload.get('pass'), payload.get('reason'), payload.get('decided_by'),
            payload.get('acted'))
    if event_type == MIGPILOT_PREFIX + 'metrics':
        return 'outcome=%s mode=%s time=%s downtime=%s bytes=%s passes=%s' % (
            payload.get('outcome'), payload.get('mode'),
            _ms(payload.get('migration_time_ms')), _ms(payload.get('downtime_ms')),
            _size(payload.get('bytes_transferred')), payload.get('passes'))
    data = payload.get('nova_object.data', payload)
    if isinstance(data, dict):
        words = []
        for key in ('host', 'node', 'task_state', 'state'):
            if isinstance(data.get(key), str):
                words.append('%s=%s' % (key, data[key]))
        return ' '.join(words)
    return ''


def format_line(entry):
    info = entry['info']
    message = entry.get('message') or {}
    when = info.get('timestamp_ms')
    if when is not None:
        stamp = datetime.datetime.fromtimestamp(when / 1000.0, datetime.timezone.utc) \
            .strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]
    else:
        stamp = info.get('timestamp') or '-'
    payload = message.get('payload') if isinstance(message, dict) else None
    instance = info.get('instance_uuid') or \
        (payload.get('instance_id') if isinstance(payload, dict) else None) or '-'
    return one_line('%s %s %s %s %s' % (stamp, info.get('event_type'),
                                        info.get('publisher_id') or '-', instance,
                                        figures(info.get('event_type'), payload)))


def run(args):
    listener = open_listener(PROG, args)
    if isinstance(listener, int):
        return listener
    if sys.stderr.isatty():
        sys.stderr.write('%s: listening (queue %s); Ctrl-C to stop\n' % (PROG, listener.queue))
    try:
        with listener:
            for entry in listener:
                if 'error' in entry:
                    sys.stderr.write('%s: malformed message (%d bytes, routing key %s): %s\n'
                                     % (PROG, entry['size'], entry['routing_key'],
                                        one_line(entry['error'])))
                    sys.stderr.flush()
                    continue
                if not wanted(entry['info'], args.all):
                    continue
                if args.json:
                    line = json.dumps(entry, sort_keys=True)
                else:
                    line = format_line(entry)
                sys.stdout.write(line + '\n')
                sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return fail(PROG, 2, 'lost the bus: %s' % exc)
    return 0
