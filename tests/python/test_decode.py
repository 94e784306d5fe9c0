"""The oslo codec through _migpilot and the `migpilot decode` command.

Run as `/usr/bin/python3 -m pytest tests/python` with the built extension on PYTHONPATH
(`make` puts _migpilot*.so in the repo root). Nothing here skips: a missing extension or
a missing Debian package fails with the reason.
"""
import datetime
import glob
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, 'tests', 'data', 'fixtures', 'nova-notifications')
SEQUENCES = os.path.join(FIXTURES, 'sequences')
# uuid5(NAMESPACE_URL, "urn:migpilot:oslo-message-id"), see mposlo.h
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, 'urn:migpilot:oslo-message-id')

try:
    import _migpilot
except ImportError as exc:  # fail every test, saying why, rather than skip
    _migpilot = None
    IMPORT_ERROR = 'cannot import _migpilot (build it with make; PYTHONPATH=%s): %s' % (
        os.environ.get('PYTHONPATH', ''), exc)
else:
    IMPORT_ERROR = None


@pytest.fixture(autouse=True)
def _need_extension():
    if IMPORT_ERROR:
        pytest.fail(IMPORT_ERROR)


def _truth():
    cases = []
    for seq in sorted(glob.glob(os.path.join(SEQUENCES, '*', 'sequence.json'))):
        with open(seq) as fp:
            data = json.load(fp)
        for m in data['messages']:
            cases.append(pytest.param(os.path.join(os.path.dirname(seq), m['file']), m,
                                      id='%s/%s' % (data['scenario'], m['file'])))
    return cases


TRUTH = _truth()
DESIGN = sorted(glob.glob(os.path.join(FIXTURES, '*.wire.json')))


def _env():
    # The CLI must use the same extension as this process, not whatever sits in the cwd.
    env = dict(os.environ)
    paths = [REPO]
    if _migpilot is not None:
        paths.insert(0, os.path.dirname(os.path.abspath(_migpilot.__file__)))
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['PYTHONSAFEPATH'] = '1'
    return env


def run_cli(*args, stdin=None):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, '-m', 'nova_hooks', 'decode'] + list(args),
                          input=stdin, capture_output=True, cwd=REPO, env=_env(),
                          timeout=30)
    return proc, time.monotonic() - start


def parse_plain(stdout):
    fields = {}
    for line in stdout.decode().splitlines():
        label, _, value = line.partition(':')
        fields[label] = value.strip()
    return fields


# ---- the genuine messages ------------------------------------------------------------

def test_fixture_count():
    assert len(TRUTH) == 56, 'expected the 4 captured sequences (56 messages)'
    assert len(DESIGN) == 3


@pytest.mark.parametrize('path,truth', TRUTH)
def test_extension_decodes_fixture(path, truth):
    with open(path, 'rb') as fp:
        body = fp.read()
    assert len(body) == truth['body_bytes']
    info = _migpilot.notification_info(body)
    for key in ('event_type', 'publisher_id', 'priority', 'instance_uuid', 'message_id',
                'timestamp', 'request_id', 'format'):
        assert info[key] == truth[key], key
    assert info['envelope_version'] == '2.0'
    assert info['publisher_host'] == truth['publisher_id'].replace(':', '.').split('.', 1)[1]
    ts = datetime.datetime.strptime(truth['timestamp'], '%Y-%m-%d %H:%M:%S.%f').replace(
        tzinfo=datetime.timezone.utc)
    assert info['timestamp_ms'] == int(ts.timestamp() * 1000)
    assert info['live_migration_event'] is not None
    # the decoded message is exactly what Python's json makes of the envelope
    assert _migpilot.decode(body) == json.loads(json.loads(body)['oslo.message'])


@pytest.mark.parametrize('path,truth', TRUTH)
def test_cli_on_fixture(path, truth):
    proc, _ = run_cli(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b''
    out = parse_plain(proc.stdout)
    assert out['event type'] == truth['event_type']
    assert out['publisher'] == truth['publisher_id']
    assert out['priority'] == truth['priority']
    assert out['timestamp'] == truth['timestamp']
    assert out['instance uuid'] == truth['instance_uuid']
    assert out['format'] == truth['format']
    assert out['message id'] == truth['message_id']
    assert out['request id'] == truth['request_id']


@pytest.mark.parametrize('path', DESIGN, ids=os.path.basename)
def test_cli_json_on_design_capture(path):
    proc, _ = run_cli('--json', path)
    assert proc.returncode == 0, proc.stderr
    with open(path.replace('.wire.json', '.inner.json')) as fp:
        inner = json.load(fp)
    assert json.loads(proc.stdout) == inner
    # the same through standard input
    with open(path, 'rb') as fp:
        proc2, _ = run_cli('--json', '-', stdin=fp.read())
    assert proc2.returncode == 0 and proc2.stdout == proc.stdout


def test_bare_message_is_version_1():
    with open(os.path.join(FIXTURES, 'instance.live_migration_pre.start.inner.json'), 'rb') as fp:
        info = _migpilot.notification_info(fp.read())
    assert info['envelope_version'] == '1.0'
    assert info['format'] == 'versioned'
    assert info['live_migration_event'] == 'pre.start'


# ---- hostile input -------------------------------------------------------------------

def _envelope(inner):
    return json.dumps({'oslo.version': '2.0', 'oslo.message': inner}).encode()


with open(os.path.join(SEQUENCES, 'success',
                       '02_instance.live_migration_pre.start.wire.json'), 'rb') as _fp:
    GOOD = _fp.read()
GOOD_INNER = json.loads(GOOD)['oslo.message']

HOSTILE = [
    ('truncated', GOOD[:len(GOOD) // 2], 'AMQP body is not valid JSON'),
    ('truncated inner', _envelope(GOOD_INNER[:500]), 'oslo.message is not valid JSON'),
    ('empty', b'', 'AMQP body is empty'),
    ('message not a string',
     json.dumps({'oslo.version': '2.0', 'oslo.message': json.loads(GOOD_INNER)}).encode(),
     'oslo.message is not a string (it is an object)'),
    ('unknown version', GOOD.replace(b'"oslo.version": "2.0"', b'"oslo.version": "3.1"'),
     'unsupported oslo envelope version "3.1"'),
    ('raw NUL', GOOD[:100] + b'\0' + GOOD[100:], 'AMQP body contains a NUL byte at offset 100'),
    ('escaped NUL', _envelope(GOOD_INNER.replace('INFO', 'IN\0FO')),
     'contains a NUL character'),
    ('non-UTF-8', GOOD.replace(b'cmp-b07', b'cmp-\xff07'), 'AMQP body is not valid UTF-8'),
    ('latin-1', '{"event_type": "caf\u00e9", "payload": {}}'.encode('latin-1'),
     'AMQP body is not valid UTF-8 at offset 19'),
    ('5 MB garbage', bytes(range(1, 256)) * (5 * 1024 * 1024 // 255),
     'is larger than the limit of 1048576 bytes'),
    ('10000-deep nesting', b'[' * 10000 + b']' * 10000, 'nests deeper than 64 levels'),
    ('10000-deep inner', _envelope('{"event_type": "x", "payload": ' + '{"a": ' * 10000 +
                                   '1' + '}' * 10001),
     'oslo.message nests deeper than 64 levels'),
    ('not an object', b'[1, 2, 3]', 'AMQP body is not a JSON object (it is an array)'),
    ('event_type number', _envelope(GOOD_INNER.replace(
        '"instance.live_migration_pre.start"', '17')),
     'event_type is not a string (it is an integer)'),
    ('no event_type', _envelope('{"payload": {}}'), 'notification has no event_type'),
    ('payload list', _envelope('{"event_type": "x", "payload": []}'),
     'payload is not an object (it is an array)'),
    ('nova_object.data string', _envelope(GOOD_INNER.replace(
        '"nova_object.data": {', '"nova_object.data": "x", "other": {')),
     'payload."nova_object.data" is not an object (it is a string)'),
    ('uuid number', _envelope(GOOD_INNER.replace(
        '"0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a21"', '42')),
     'instance uuid payload."nova_object.data".uuid is not a string (it is an integer)'),
    ('uuid garbage', _envelope(GOOD_INNER.replace(
        '"0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a21"', '"\\u001b[2J; rm -rf /"')),
     'is not a uuid'),
    ('duplicate key', _envelope(GOOD_INNER.replace('"priority": "INFO"',
                                                   '"priority": "INFO", "priority": "X"')),
     'duplicate object key'),
    ('integer beyond int64', _envelope('{"event_type": "x", "payload": {"n": 1' + '0' * 30 + '}}'),
     'too big integer'),
]


@pytest.mark.parametrize('body,expected', [pytest.param(b, e, id=n) for n, b, e in HOSTILE])
def test_extension_rejects(body, expected):
    with pytest.raises(_migpilot.Error) as exc:
        _migpilot.decode(body)
    assert expected in str(exc.value)
    assert isinstance(exc.value, ValueError)
    with pytest.raises(_migpilot.Error):
        _migpilot.notification_info(body)


@pytest.mark.parametrize('body,expected', [pytest.param(b, e, id=n) for n, b, e in HOSTILE])
def test_cli_rejects(tmp_path, body, expected):
    path = tmp_path / 'body'
    path.write_bytes(body)
    for args, stdin in (((str(path),), None), (('--json', '-'), body)):
        proc, elapsed = run_cli(*args, stdin=stdin)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert proc.stdout == b''
        lines = proc.stderr.decode('utf-8').splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith('migpilot decode: ')
        assert expected in lines[0]
        assert b'Traceback' not in proc.stderr
        assert elapsed < 1.0, '%s took %.2fs' % (args, elapsed)


def test_cli_max_options(tmp_path):
    path = tmp_path / 'body'
    path.write_bytes(GOOD)
    proc, _ = run_cli('--max-bytes', '100', str(path))
    assert proc.returncode == 1
    assert proc.stderr.decode() == ('migpilot decode: AMQP body of 101 bytes is larger than '
                                    'the limit of 100 bytes\n')
    # message, payload, nova_object.data, ip_addresses, IpPayload, its data, meta: 7 levels
    proc, _ = run_cli('--max-depth', '6', str(path))
    assert proc.returncode == 1 and b'nests deeper than 6 levels' in proc.stderr
    proc, _ = run_cli('--max-depth', '7', str(path))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize('args', [
    pytest.param(('/nonexistent/body.json',), id='missing file'),
    pytest.param((REPO,), id='directory'),
    pytest.param((), id='no file'),
    pytest.param(('a', 'b'), id='two files'),
    pytest.param(('--max-bytes', 'x', 'f'), id='bad max-bytes'),
    pytest.param(('--max-depth', '-1', 'f'), id='negative max-depth'),
    pytest.param(('--bogus', 'f'), id='unknown option'),
])
def test_cli_usage_errors(args):
    proc, _ = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, proc.stderr
    # argparse's own errors name the program ("migpilot: error: ..." for stray arguments)
    assert lines[0].startswith('migpilot')
    assert b'Traceback' not in proc.stderr


def test_cli_escapes_control_characters():
    body = _envelope('{"event_type": "x\\u001b[31m\\nforged: line", "payload": {}}')
    proc, _ = run_cli('-', stdin=body)
    assert proc.returncode == 0, proc.stderr
    assert b'\x1b' not in proc.stdout
    assert parse_plain(proc.stdout)['event type'] == 'x\\x1b[31m\\nforged: line'


# ---- encoding --------------------------------------------------------------------------

METRICS = {
    'instance_id': '178b0921-8f85-4257-88b6-2e743b5a975c',
    'project_id': '6f70656e737461636b20342065766572',
    'user_id': '9f3b7a0c2e4d4c6f8a1b3d5e7f9a0b1c',
    'migration_id': '4f3d0e1a-7d1b-4a53-9e0b-2f4c8b5e1a77',
    'source_host': 'cmp-a01', 'dest_host': 'cmp-b07',
    'mode': 'post-copy', 'postcopy_switch_ms': 30012,
    'migration_time_ms': 41873, 'downtime_ms': 187,
    'bytes_transferred': 9126805504,            # > 2**31
    'memory_total_bytes': 2 ** 62,
    'ratio': 0.25, 'outcome': 'completed', 'decided_by': None, 'passes': [1, 2, 3],
    'note': 'caf\u00e9 \u2603 \U0001f600',
}
MESSAGE_ID = _migpilot.message_id_from_name(
    '178b0921-8f85-4257-88b6-2e743b5a975c/1795252360118/compute.live_migration.metrics') \
    if _migpilot else None


def _encode_metrics(**extra):
    kwargs = dict(event_type='compute.live_migration.metrics', publisher_id='migpilot.cmp-a01',
                  payload=METRICS, message_id=MESSAGE_ID, timestamp_ms=1795252360118)
    kwargs.update(extra)
    return _migpilot.encode(**kwargs)


def test_message_id_is_uuid5():
    name = 'abc/1/compute.live_migration.metrics'
    assert _migpilot.message_id_from_name(name) == str(uuid.uuid5(NAMESPACE, name))
    assert _migpilot.message_id_from_name(name.encode()) == str(uuid.uuid5(NAMESPACE, name))


def test_encode_round_trip():
    body = _encode_metrics(context={'request_id': 'req-1', 'is_admin': True})
    assert isinstance(body, bytes)
    body.decode('ascii')  # ensure_ascii, like Python's json.dumps
    outer = json.loads(body)
    assert list(outer) == ['oslo.version', 'oslo.message']
    inner = json.loads(outer['oslo.message'])
    assert list(inner) == ['message_id', 'publisher_id', 'event_type', 'priority', 'payload',
                           'timestamp', '_unique_id', '_context_request_id',
                           '_context_is_admin']
    assert inner['payload'] == METRICS
    assert inner['timestamp'] == '2026-11-21 09:12:40.118000'
    assert inner['priority'] == 'INFO'
    assert inner['_unique_id'] == uuid.uuid5(NAMESPACE, 'unique:' + MESSAGE_ID).hex
    assert _migpilot.decode(body) == inner
    info = _migpilot.notification_info(body)
    assert info['format'] == 'other'
    assert info['live_migration_event'] is None
    assert info['instance_uuid'] == METRICS['instance_id']
    assert info['tenant_id'] == METRICS['project_id']
    assert info['publisher_host'] == 'cmp-a01'
    assert info['request_id'] == 'req-1'
    assert info['timestamp_ms'] == 1795252360118
    # re-sending the same record gives the same bytes
    assert _encode_metrics(context={'request_id': 'req-1', 'is_admin': True}) == body


@pytest.mark.parametrize('extra,expected', [
    pytest.param({'payload': {'n': 2 ** 63}}, 'outside the 64-bit range', id='int > int64'),
    pytest.param({'payload': {'n': -2 ** 63 - 1}}, 'outside the 64-bit range', id='int < int64'),
    pytest.param({'payload': {'n': float('inf')}}, 'has no JSON form', id='inf'),
    pytest.param({'payload': {1: 'x'}}, 'is not a str', id='int key'),
    pytest.param({'payload': {'s': {1, 2}}}, 'cannot encode set', id='set'),
    pytest.param({'payload': {'s': '\ud800'}}, 'lone surrogate', id='surrogate'),
    pytest.param({'payload': {'s': 'a\0b'}}, 'NUL character', id='NUL'),
    pytest.param({'payload': {'instance_id': 'nope'}}, 'is not a uuid', id='bad instance id'),
    pytest.param({'message_id': 'not-a-uuid'}, 'message_id "not-a-uuid" is not a uuid',
                 id='message id'),
    pytest.param({'priority': 'LOUD'}, 'priority "LOUD" is not one of', id='priority'),
    pytest.param({'event_type': ''}, 'event_type is missing or empty', id='empty event'),
    pytest.param({'timestamp_ms': 10 ** 15}, 'outside years 1..9999', id='year 33658'),
    pytest.param({'timestamp_ms': 2 ** 64}, 'outside the 64-bit range', id='huge timestamp'),
])
def test_encode_rejects(extra, expected):
    with pytest.raises(_migpilot.Error) as exc:
        _encode_metrics(**extra)
    assert expected in str(exc.value)


def test_encode_rejects_cycles_and_depth():
    cyclic = {}
    cyclic['self'] = cyclic
    with pytest.raises(_migpilot.Error, match='nests deeper than 63 levels'):
        _encode_metrics(payload=cyclic)
    deep = inner = {}
    for _ in range(62):
        inner['d'] = {}
        inner = inner['d']
    assert _migpilot.decode(_encode_metrics(payload=deep))['payload'] == deep
    inner['d'] = {}
    with pytest.raises(_migpilot.Error, match='nests deeper than 63 levels'):
        _encode_metrics(payload=deep)


def test_encode_argument_types():
    with pytest.raises(TypeError):
        _encode_metrics(payload=[1])
    with pytest.raises(TypeError):
        _encode_metrics(timestamp_ms=1.5)
    with pytest.raises(TypeError):
        _migpilot.decode('a str, not bytes')
    with pytest.raises(ValueError):
        _migpilot.decode(GOOD, max_bytes=0)


# ---- wire compatibility with Debian's oslo.messaging (no broker) --------------------

def _oslo():
    try:
        from oslo_config import cfg
        import oslo_messaging
        from oslo_messaging._drivers import amqp as rpc_amqp
        from oslo_messaging._drivers import common as rpc_common
        from oslo_messaging.notify import _impl_test
        from oslo_utils import timeutils
    except ImportError as exc:
        pytest.fail('Debian python3-oslo.messaging is needed (make deps): %s' % exc)
    return cfg, oslo_messaging, rpc_amqp, rpc_common, _impl_test, timeutils


def test_oslo_reads_what_migpilot_sends():
    _, _, _, rpc_common, _, timeutils = _oslo()
    body = _encode_metrics(context={'request_id': 'req-9', 'user_id': None})
    # a consumer: kombu json-decodes the body, the driver unwraps the envelope
    msg = rpc_common.deserialize_msg(json.loads(body))
    assert msg['event_type'] == 'compute.live_migration.metrics'
    assert msg['publisher_id'] == 'migpilot.cmp-a01'
    assert msg['priority'] == 'INFO'
    assert msg['message_id'] == MESSAGE_ID
    assert msg['payload'] == METRICS
    assert msg['_context_request_id'] == 'req-9'
    assert msg['_context_user_id'] is None
    assert len(msg['_unique_id']) == 32 and int(msg['_unique_id'], 16) >= 0
    # Ceilometer takes the sample time from the oslo timestamp with parse_isotime
    when = timeutils.parse_isotime(msg['timestamp'])
    assert when.replace(tzinfo=datetime.timezone.utc).timestamp() == 1795252360.118
    assert msg == _migpilot.decode(body)


def _oslo_wire(ctxt, payload, event_type='instance.live_migration_pre.start',
               publisher_id='nova-compute:cmp-b07', topic='versioned_notifications'):
    """(inner message, priority, body) as oslo.messaging's rabbit driver publishes them."""
    cfg, oslo_messaging, rpc_amqp, rpc_common, _impl_test, _ = _oslo()
    conf = cfg.ConfigOpts()
    conf([])
    transport = oslo_messaging.get_notification_transport(conf, url='fake:')
    notifier = oslo_messaging.Notifier(transport, publisher_id=publisher_id,
                                       driver='test', topics=[topic])
    _impl_test.reset()
    notifier.info(ctxt, event_type, payload)
    (sent_ctxt, msg, priority, _), = _impl_test.NOTIFICATIONS
    # what AMQPDriverBase._send does before publishing (amqpdriver.py, see the design notes)
    rpc_amqp._add_unique_id(msg)
    rpc_amqp.pack_context(msg, sent_ctxt)
    return msg, priority, json.dumps(rpc_common.serialize_msg(msg)).encode()


def _versioned_payload(request_id=None):
    data = {'uuid': '0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a21', 'tenant_id': 't1',
            'user_id': 'u1', 'host': 'cmp-a01', 'node': 'cmp-a01', 'bytes': 2 ** 40}
    if request_id:
        data['request_id'] = request_id
    return {'nova_object.name': 'InstanceActionPayload', 'nova_object.namespace': 'nova',
            'nova_object.version': '1.8', 'nova_object.data': data}


def test_migpilot_reads_what_oslo_sends():
    _, _, _, rpc_common, _, _ = _oslo()
    from oslo_context import context
    # nova passes a RequestContext; oslo.messaging 16 sends its redacted copy, 14 all of it
    ctxt = context.RequestContext(request_id='req-2', project_id='t1', roles=['admin'],
                                  is_admin=True, auth_token='never-on-the-bus')
    msg, priority, wire = _oslo_wire(ctxt, _versioned_payload())
    assert msg['_context_request_id'] == 'req-2'
    sent_ctxt = {k[len('_context_'):]: v for k, v in msg.items() if k.startswith('_context_')}

    assert _migpilot.decode(wire) == msg
    info = _migpilot.notification_info(wire)
    assert info['envelope_version'] == '2.0'
    assert info['format'] == 'versioned'
    assert info['live_migration_event'] == 'pre.start'
    assert info['event_type'] == 'instance.live_migration_pre.start'
    assert info['priority'] == priority == 'INFO'
    assert info['publisher_id'] == 'nova-compute:cmp-b07'
    assert info['publisher_host'] == 'cmp-b07'
    assert info['message_id'] == msg['message_id']
    assert info['timestamp'] == msg['timestamp']
    assert info['instance_uuid'] == '0e6d3b2a-5f4c-4a1e-9b8d-7c6f5e4d3a21'
    assert info['request_id'] == 'req-2'
    assert (info['tenant_id'], info['user_id'], info['host']) == ('t1', 'u1', 'cmp-a01')
    ts = datetime.datetime.strptime(msg['timestamp'].ljust(26, '.')[:19],
                                    '%Y-%m-%d %H:%M:%S').replace(tzinfo=datetime.timezone.utc)
    assert info['timestamp_ms'] // 1000 == int(ts.timestamp())

    # the same message re-encoded by migpilot reads back identically through oslo
    again = _migpilot.encode(msg['event_type'], msg['publisher_id'], msg['payload'],
                             msg['message_id'], info['timestamp_ms'], priority=msg['priority'],
                             context=sent_ctxt)
    back = rpc_common.deserialize_msg(json.loads(again))
    for key in ('message_id', 'publisher_id', 'event_type', 'priority', 'payload'):
        assert back[key] == msg[key], key
    assert {k: v for k, v in back.items() if k.startswith('_context_')} == \
        {k: v for k, v in msg.items() if k.startswith('_context_')}


def test_migpilot_reads_the_request_of_a_dict_context():
    # oslo.messaging 16 drops a context passed as a dict (14 packs it): the request id
    # then comes from nova's versioned payload, on either version
    msg, _, wire = _oslo_wire({'request_id': 'req-3', 'project_id': 't1'},
                              _versioned_payload(request_id='req-3'))
    assert msg.get('_context_request_id') in ('req-3', None)
    info = _migpilot.notification_info(wire)
    assert info['request_id'] == 'req-3'
    assert info['tenant_id'] == 't1'
