"""Bad bus input: every kind of malformed message the issue lists is published to the
exchange the agent listens on. Each must be rejected with one log line carrying a bounded
excerpt, counted, acked (the agent's queue empties), and the agent must go on to handle a
real migration with nova's identity read from a good message sent after the garbage."""
import json
import re
import time
import uuid

import amqp
import pytest

from tests.integration import bus
from tests.integration.agentproc import Agent
from tests.integration.test_agent import BANDWIDTH_MIBS, CONVERGING

MAX_BYTES = 65536
# an envelope around a given oslo.message text
ENV = '{"oslo.version": "2.0", "oslo.message": %s}'


def _env(message_text):
    return (ENV % json.dumps(message_text)).encode()


def bad_messages():
    """(kind, body) of every malformed message kind in the issue."""
    good_inner = json.dumps({'event_type': 'instance.live_migration_pre.start',
                             'priority': 'INFO', 'publisher_id': 'nova-compute:lab-b',
                             'message_id': str(uuid.uuid4()),
                             'timestamp': '2024-01-01 00:00:00.000000',
                             'payload': {'instance_id': str(uuid.uuid4())}})
    return [
        ('truncated JSON', _env(good_inner)[:57]),
        ('oslo.message not a string', b'{"oslo.version": "2.0", "oslo.message": {"a": 1}}'),
        ('oslo.message not JSON', _env('{"event_type": "x", "payload": {')),
        ('oslo.message a JSON list', _env('[1, 2, 3]')),
        ('missing event_type', _env(json.dumps({'payload': {}}))),
        ('missing payload', _env(json.dumps({'event_type': 'x.y'}))),
        ('event_type wrongly typed', _env(json.dumps({'event_type': 42, 'payload': {}}))),
        ('payload wrongly typed', _env(json.dumps({'event_type': 'x.y', 'payload': 'p'}))),
        ('instance uuid wrongly typed', _env(json.dumps(
            {'event_type': 'instance.live_migration_pre.start',
             'payload': {'nova_object.data': {'uuid': 12345}}}))),
        ('instance uuid not a uuid', _env(json.dumps(
            {'event_type': 'compute.instance.live_migration.pre.start',
             'payload': {'instance_id': "x'; DROP TABLE"}}))),
        ('unknown envelope version',
         b'{"oslo.version": "3.1", "oslo.message": "{\\"event_type\\": \\"x\\"}"}'),
        ('envelope not an object', b'"just a string"'),
        ('empty body', b''),
        ('megabytes of garbage', bytes(range(256)) * (3 * 4096)),
        ('over the size limit', _env(json.dumps({'event_type': 'x.y',
                                                 'payload': {'pad': 'a' * MAX_BYTES}}))),
        ('raw NUL byte', b'{"oslo.version": "2.0",\x00 "oslo.message": "{}"}'),
        ('escaped NUL in oslo.message', _env('{"event_type": "a\\u0000b", "payload": {}}')),
        ('deeply nested oslo.message', _env('{"event_type": "x", "payload": ' +
                                            '[' * 5000 + ']' * 5000 + '}')),
        ('deeply nested envelope', b'{"a": ' + b'[' * 100000 + b']' * 100000 + b'}'),
        ('non-UTF-8', b'{"oslo.version": "2.0", "oslo.message": "\xff\xfe\xc3\x28"}'),
        ('non-UTF-8 inside oslo.message', _env('{"event_type": "x.y", "payload": {}}')
         .replace(b'x.y', b'x\\u00ff\xe9y')),
    ]


class Publisher:
    def __init__(self, port):
        self.conn = amqp.Connection('127.0.0.1:%d' % port, userid='guest', password='guest',
                                    connect_timeout=5)
        self.conn.connect()
        self.ch = self.conn.channel()

    def publish(self, body, key='versioned_notifications.info'):
        # only the agent's queue is bound to this key in these tests
        self.ch.basic_publish(amqp.Message(body, content_type='application/json'),
                              exchange='nova', routing_key=key)

    def depth(self, queue):
        _, count, consumers = self.ch.queue_declare(queue, passive=True)
        return count, consumers

    def close(self):
        self.conn.close()


@pytest.fixture
def agent(lab, rabbit):
    a = Agent(lab.hosts[0].uri, rabbit.url, host=lab.hosts[0].name,
              extra={'amqp': {'max_message_bytes': str(MAX_BYTES),
                              'max_message_depth': '32'}})
    a.start()
    a.wait_log(r'amqp: connected', timeout=30)
    yield a
    rc = a.stop()
    log = a.log()
    a.cleanup()
    # None: the test stopped it itself (and checked its status)
    assert rc in (0, None), 'agent exit status %s; log:\n%s' % (rc, log[-3000:])
    assert 'AddressSanitizer' not in log and 'runtime error' not in log, log[-3000:]


def test_each_bad_message_is_rejected_counted_acked(lab, rabbit, agent):
    msgs = bad_messages()
    pub = Publisher(rabbit.port)
    try:
        for kind, body in msgs:
            pub.publish(body)
        lines = agent.wait_log(r'WARNING rejected bus message [^\n]*', count=len(msgs),
                               timeout=60)
        deadline = time.monotonic() + 15
        while pub.depth('migpilot.%s' % lab.hosts[0].name)[0] and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        depth, consumers = pub.depth('migpilot.%s' % lab.hosts[0].name)
    finally:
        pub.close()
    assert depth == 0 and consumers == 1, (depth, consumers)
    assert len(lines) == len(msgs), '\n'.join(lines)
    for i, line in enumerate(lines):
        # one line each, bounded whatever the size of the message, counted
        assert len(line) < 700, line
        assert '%d rejected so far' % (i + 1) in line, line
        assert re.search(r'; starts: [ -~]{0,80}$', line), line
    log = agent.log()
    # the reasons are specific, not a generic "bad message"
    for reason in ('larger than the limit', 'not valid JSON', 'is not a string',
                   'unsupported oslo envelope version', 'NUL', 'nests deeper',
                   'not valid UTF-8', 'has no event_type', 'has no payload', 'is not a uuid',
                   'AMQP body is empty'):
        assert reason in log, 'no rejection says %r' % reason
    assert '\x00' not in log


def test_agent_handles_a_real_migration_after_garbage(lab, rabbit, agent):
    a, b = lab.hosts
    name = 'mpb-%s' % uuid.uuid4().hex[:8]
    collector = bus.Collector(rabbit.url).start()
    pub = Publisher(rabbit.port)
    try:
        for kind, body in bad_messages():
            pub.publish(body)
        inst = lab.start_guest(a, name, persistent=True, **CONVERGING).UUIDString()
        project, user, req = uuid.uuid4().hex, uuid.uuid4().hex, bus.new_request_id()
        bus.publish_nova_pre_live_migration(rabbit.url, inst, source=a.name, dest=b.name,
                                            project=project, user=user, request_id=req)
        agent.wait_log(r'nova: instance.live_migration_pre.start', timeout=60)
        lab.migrate(a, b, name, bandwidth_mibs=BANDWIDTH_MIBS, postcopy=True, timeout=180)
        found = collector.wait_for('compute.live_migration.metrics', inst, timeout=90)
        assert len(found) == 1
        p = found[0]['payload']
        assert p['outcome'] == 'completed'
        assert (p['project_id'], p['user_id'], p['request_id'], p['dest_host']) == (
            project, user, req, b.name)
        lab.check_guest_healthy(b, name)
    finally:
        pub.close()
        collector.stop()
        lab.destroy_guest(name)
    # the counters are reported at the stop
    assert agent.stop() == 0
    m = re.search(r'stopped: (\d+) bus messages read, (\d+) rejected', agent.log())
    assert m and int(m.group(2)) == len(bad_messages()), agent.log()[-2000:]
    assert int(m.group(1)) >= len(bad_messages()) + 2
