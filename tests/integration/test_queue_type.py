"""The agent's own queue follows the site's queue type: with nova.conf's
[oslo_messaging_rabbit] rabbit_quorum_queue = true it is a durable quorum queue, nova's
exchange is durable as oslo declares it, and nova's notifications still reach the agent.

Only the broker matters here, so the agent watches libvirt's test driver. Each test has a
vhost of its own: a queue or exchange declared with other flags by another suite on the
shared node could not be redeclared. Nothing depends on the RabbitMQ version (3.8 and
later have quorum queues; 4.x deprecates transient non-exclusive ones).
"""
import json
import re
import uuid

import pytest

from tests.integration import bus
from tests.integration.agentproc import Agent

HOST = 'cmp-q01'
QUEUE = 'migpilot.%s' % HOST


@pytest.fixture
def vhost(rabbit):
    name = 'mp-%s' % uuid.uuid4().hex[:8]
    for args in (('add_vhost', name),
                 ('set_permissions', '-p', name, 'guest', '.*', '.*', '.*')):
        r = rabbit.ctl(*args)
        assert r.returncode == 0, r.stdout
    yield name
    rabbit.ctl('delete_vhost', name)


def _json_rows(out):
    """The JSON array rabbitmqctl --formatter json prints; notices or Erlang warnings
    (such as a cwd the rabbitmq user cannot read) may come first."""
    m = re.search(r'^\[(\s*$|\{|\])', out, re.M)
    assert m, out
    return json.loads(out[m.start():])


def _queues(rabbit, vhost):
    """{name: row} of rabbitmqctl list_queues name type durable auto_delete exclusive
    arguments."""
    r = rabbit.ctl('list_queues', '-p', vhost, '--formatter', 'json',
                   'name', 'type', 'durable', 'auto_delete', 'exclusive', 'arguments')
    assert r.returncode == 0, r.stdout
    return {row['name']: row for row in _json_rows(r.stdout)}


def _arguments(row):
    # [{"x-expires": 3600000}, ...] or [["x-expires", 3600000], ...] depending on version
    args = row['arguments']
    if isinstance(args, dict):
        return args
    out = {}
    for a in args:
        if isinstance(a, dict):
            out.update(a)
        else:
            out[a[0]] = a[-1]
    return out


def _exchange_durable(rabbit, vhost, name):
    r = rabbit.ctl('list_exchanges', '-p', vhost, '--formatter', 'json', 'name', 'durable')
    assert r.returncode == 0, r.stdout
    return {row['name']: row['durable'] for row in _json_rows(r.stdout)}[name]


def _start(rabbit, vhost, tmp_path, nova_rabbit):
    url = 'rabbit://guest:guest@127.0.0.1:%d/%s' % (rabbit.port, vhost)
    nova_conf = tmp_path / 'nova.conf'
    nova_conf.write_text('[DEFAULT]\ntransport_url = %s\n[oslo_messaging_rabbit]\n%s'
                         % (url, nova_rabbit))
    agent = Agent('test:///default', url, host=HOST,
                  extra={'amqp': {'nova_conf': str(nova_conf)}}).start()
    agent.wait_log(r'amqp: connected to .* consuming queue %s' % re.escape(QUEUE))
    return agent, url, str(nova_conf)


def _feed(agent, url, nova_conf):
    """nova's pre.start, published by oslo.messaging configured by nova.conf, must reach
    the agent's queue."""
    inst = str(uuid.uuid4())
    bus.publish_nova_pre_live_migration(url, inst, source=HOST, dest='cmp-q02',
                                        project=uuid.uuid4().hex, user=uuid.uuid4().hex,
                                        request_id=bus.new_request_id(),
                                        config_file=nova_conf)
    agent.wait_log(r'nova: instance.live_migration_pre.start from nova-compute:cmp-q02',
                   timeout=30)


def _stop(agent):
    rc = agent.stop()
    log = agent.log()
    agent.cleanup()
    assert rc == 0, log[-3000:]
    assert ' ERROR ' not in log, log[-3000:]
    return log


def test_quorum_site_gets_a_durable_quorum_queue(rabbit, vhost, tmp_path):
    agent, url, nova_conf = _start(rabbit, vhost, tmp_path, 'rabbit_quorum_queue = true\n')
    try:
        row = _queues(rabbit, vhost)[QUEUE]
        assert row['type'] == 'quorum', row
        assert row['durable'] is True and row['auto_delete'] is False, row
        # rabbitmqctl shows false, or nothing for a queue type that cannot be exclusive
        assert row['exclusive'] in (False, ''), row
        args = _arguments(row)
        assert args.get('x-queue-type') == 'quorum', row
        # an idle queue of a host whose agent is gone expires
        assert args.get('x-expires') == 3600000, row
        assert args.get('x-max-length') == 10000, row
        # as oslo declares it on a quorum site
        assert _exchange_durable(rabbit, vhost, 'nova') is True
        _feed(agent, url, nova_conf)
        # oslo's own notification queues on this site are quorum queues too: the same
        # broker feature, so the comparison holds on any version
        assert _queues(rabbit, vhost)['versioned_notifications.info']['type'] == 'quorum'
    finally:
        log = _stop(agent)
    assert re.search(r'amqp: queue %s: quorum queue \(queue_type = auto, nova_conf '
                     r'rabbit_quorum_queue = true\), exchange and queue durable'
                     % re.escape(QUEUE), log), log[-3000:]
    # not auto-deleted: it stays (until x-expires) for the next start of the agent
    assert _queues(rabbit, vhost)[QUEUE]['type'] == 'quorum'


def test_site_without_queue_options_keeps_a_classic_queue(rabbit, vhost, tmp_path):
    agent, url, nova_conf = _start(rabbit, vhost, tmp_path, '')
    try:
        row = _queues(rabbit, vhost)[QUEUE]
        assert row['type'] == 'classic', row
        assert row['durable'] is False and row['auto_delete'] is False, row
        # declared without x-queue-type; RabbitMQ 4 lists the default it applied
        assert _arguments(row).get('x-queue-type', 'classic') == 'classic', row
        assert _arguments(row).get('x-expires') == 3600000, row
        assert _exchange_durable(rabbit, vhost, 'nova') is False
        _feed(agent, url, nova_conf)
    finally:
        log = _stop(agent)
    assert 'amqp: queue %s: classic queue' % QUEUE in log
