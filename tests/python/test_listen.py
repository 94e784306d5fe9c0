"""_migpilot.Listener and `migpilot listen` / `migpilot watch` against a private RabbitMQ.

Uses the lab's `rabbit` fixture; run with MPLAB_PREFIX / MPLAB_RABBIT_PORT set so the node
does not collide with other labs. nova's notifications are sent through Debian's
oslo.messaging (tests/integration/bus.py), migpilot's and malformed bodies with py-amqp.
Nothing here skips: a missing extension or package fails with the reason.
"""
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import _migpilot
except ImportError as exc:  # fail every test, saying why, rather than skip
    _migpilot = None
    IMPORT_ERROR = 'cannot import _migpilot (build it with make; PYTHONPATH=%s): %s' % (
        os.environ.get('PYTHONPATH', ''), exc)
else:
    IMPORT_ERROR = None

UNREACHABLE = 'rabbit://guest:guest@127.0.0.1:1/'


@pytest.fixture(autouse=True)
def _need_extension():
    if IMPORT_ERROR:
        pytest.fail(IMPORT_ERROR)


def _env():
    env = dict(os.environ)
    paths = [REPO]
    if _migpilot is not None:
        paths.insert(0, os.path.dirname(os.path.abspath(_migpilot.__file__)))
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['PYTHONSAFEPATH'] = '1'
    return env


def _publish_raw(rabbit, routing_key, body, exchange='nova'):
    import amqp
    conn = amqp.Connection('127.0.0.1:%d' % rabbit.port, userid='guest', password='guest',
                           connect_timeout=5)
    conn.connect()
    try:
        ch = conn.channel()
        ch.basic_publish(amqp.Message(body, content_type='application/json',
                                      content_encoding='utf-8', delivery_mode=2),
                         exchange=exchange, routing_key=routing_key)
    finally:
        conn.close()


def _migpilot_body(kind, instance, payload):
    base = {'instance_id': instance, 'project_id': 'p1', 'user_id': 'u1',
            'request_id': 'req-1', 'source_host': 'cmp-a01', 'dest_host': 'cmp-a02'}
    base.update(payload)
    return _migpilot.encode('compute.live_migration.%s' % kind, 'migpilot.cmp-a01', base,
                            str(uuid.uuid4()), int(time.time() * 1000))


def _progress(instance):
    return _migpilot_body('progress', instance, {
        'elapsed_ms': 5000, 'pass': 3, 'memory_total_bytes': 4 << 30,
        'memory_processed_bytes': 3 << 30, 'memory_remaining_bytes': 1 << 30,
        'bandwidth_bps': 100 << 20, 'dirty_rate_bps': 30 << 20, 'prediction': 'converging',
        'predicted_finish_ms': 12000})


def _metrics(instance):
    return _migpilot_body('metrics', instance, {
        'outcome': 'completed', 'mode': 'pre-copy', 'migration_time_ms': 14000,
        'downtime_ms': 45, 'bytes_transferred': 5 << 30, 'memory_total_bytes': 4 << 30,
        'passes': 5, 'postcopy_switch_ms': None, 'postcopy_requests': None,
        'nova_time_ms': None, 'switch_reason': None, 'decided_by': 'none'})


def _publish_all(rabbit, instance):
    """nova's versioned and legacy pre.start, a migpilot metrics and a malformed body."""
    from tests.integration import bus
    bus.publish_nova_pre_live_migration(rabbit.url, instance, 'cmp-a01', 'cmp-a02',
                                        'proj-1', 'user-1', bus.new_request_id())
    _publish_raw(rabbit, 'notifications.info', _metrics(instance))
    _publish_raw(rabbit, 'notifications.info', b'{"oslo.version": "2.0", "oslo.mess')


def _queues(rabbit):
    res = rabbit.ctl('list_queues', '-q', 'name')
    assert res.returncode == 0, res.stdout
    return {line.split()[0] for line in res.stdout.splitlines()
            if line.strip() and line.split()[0] != 'name'}


def _wait_new_queue(rabbit, before, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, 'the command exited early: %s' % proc.communicate()[1]
        new = {q for q in _queues(rabbit) - before if q.startswith('migpilot-listen.')}
        if new:
            return new.pop()
        time.sleep(0.2)
    raise AssertionError('no migpilot-listen.* queue appeared within %ss' % timeout)


def _reader(stream):
    lines = queue.Queue()

    def pump():
        for line in iter(stream.readline, b''):
            lines.put(line.decode())
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_lines(lines, count, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        got.append(line)
    return got


def _spawn(*args):
    return subprocess.Popen(['/usr/bin/python3', '-m', 'nova_hooks'] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env=_env())


# ---- the extension ----------------------------------------------------------------------

def test_listener_decodes_nova_migpilot_and_malformed(rabbit):
    instance = str(uuid.uuid4())
    with _migpilot.Listener(rabbit.url) as listener:
        assert listener.queue.startswith('migpilot-listen.')
        assert listener.get(timeout=0.2) is None
        _publish_all(rabbit, instance)
        entries = []
        for _ in range(4):
            entry = listener.get(timeout=15)
            assert entry is not None, 'only %d of 4 messages arrived: %r' % (
                len(entries), entries)
            entries.append(entry)
        assert listener.get(timeout=0.3) is None
    assert listener.closed

    good = [e for e in entries if 'info' in e]
    bad = [e for e in entries if 'error' in e]
    assert len(good) == 3 and len(bad) == 1
    by_type = {e['info']['event_type']: e for e in good}
    versioned = by_type['instance.live_migration_pre.start']
    assert versioned['routing_key'] == 'versioned_notifications.info'
    assert versioned['info']['format'] == 'versioned'
    assert versioned['info']['live_migration_event'] == 'pre.start'
    assert versioned['info']['instance_uuid'] == instance
    assert versioned['info']['publisher_id'] == 'nova-compute:cmp-a02'
    assert versioned['message']['payload']['nova_object.data']['uuid'] == instance
    legacy = by_type['compute.instance.live_migration.pre.start']
    assert legacy['routing_key'] == 'notifications.info'
    assert legacy['info']['format'] == 'legacy'
    assert legacy['info']['instance_uuid'] == instance
    metrics = by_type['compute.live_migration.metrics']
    assert metrics['info']['publisher_id'] == 'migpilot.cmp-a01'
    assert metrics['message']['payload']['outcome'] == 'completed'
    assert metrics['message']['payload']['downtime_ms'] == 45
    # the info dict is notification_info()'s
    assert set(metrics['info']) == set(_migpilot.notification_info(_metrics(instance)))
    assert bad[0]['routing_key'] == 'notifications.info'
    assert bad[0]['size'] == len(b'{"oslo.version": "2.0", "oslo.mess')
    assert bad[0]['error'] and '\n' not in bad[0]['error']


def test_listener_queue_is_private_and_gone_after_close(rabbit):
    listener = _migpilot.Listener(rabbit.url, binding_keys=['notifications.info'])
    name = listener.queue
    assert name in _queues(rabbit)
    listener.close()
    listener.close()   # idempotent
    assert name not in _queues(rabbit)
    with pytest.raises(ValueError):
        listener.get(timeout=0)
    assert list(listener) == []


def test_listener_named_queue_and_arguments(rabbit):
    name = 'migpilot-listen.test-%s' % uuid.uuid4().hex[:6]
    with _migpilot.Listener(rabbit.url, queue=name, max_bytes=64) as listener:
        assert listener.queue == name
        _publish_raw(rabbit, 'notifications.info', _metrics(str(uuid.uuid4())))
        entry = listener.get(timeout=15)
        assert entry is not None and 'error' in entry and entry['size'] > 64
    with pytest.raises(TypeError):
        _migpilot.Listener(rabbit.url, binding_keys='notifications.info')
    with pytest.raises(ValueError):
        _migpilot.Listener(rabbit.url, max_depth=0)


def test_listener_iterates(rabbit):
    instance = str(uuid.uuid4())
    with _migpilot.Listener(rabbit.url) as listener:
        _publish_raw(rabbit, 'notifications.info', _progress(instance))
        entry = next(iter(listener))
        assert entry['info']['event_type'] == 'compute.live_migration.progress'


def test_listener_get_releases_the_gil(rabbit):
    with _migpilot.Listener(rabbit.url) as listener:
        ticks = []
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.01)
        t = threading.Thread(target=tick)
        t.start()
        try:
            assert listener.get(timeout=1.0) is None
        finally:
            stop.set()
            t.join()
        assert len(ticks) > 20


def test_listener_unreachable_and_bad_url():
    start = time.monotonic()
    with pytest.raises(ConnectionError, match='127.0.0.1:1'):
        _migpilot.Listener(UNREACHABLE)
    assert time.monotonic() - start < 10
    with pytest.raises(_migpilot.Error):
        _migpilot.Listener('http://127.0.0.1/')


# ---- the commands -------------------------------------------------------------------------

def test_listen_json_prints_messages_until_sigint(rabbit):
    instance = str(uuid.uuid4())
    before = _queues(rabbit)
    proc = _spawn('listen', '--url', rabbit.url, '--json')
    try:
        queue_name = _wait_new_queue(rabbit, before, proc)
        out = _reader(proc.stdout)
        err = _reader(proc.stderr)
        _publish_all(rabbit, instance)
        # unrelated notification: not shown without --all
        _publish_raw(rabbit, 'notifications.info', _migpilot.encode(
            'compute.instance.update', 'compute.cmp-a01', {'instance_id': instance},
            str(uuid.uuid4()), int(time.time() * 1000)))
        lines = _read_lines(out, 3)
        errors = _read_lines(err, 1)
        assert len(lines) == 3, lines
        entries = [json.loads(line) for line in lines]
        assert sorted(e['info']['event_type'] for e in entries) == [
            'compute.instance.live_migration.pre.start', 'compute.live_migration.metrics',
            'instance.live_migration_pre.start']
        assert all(e['info']['instance_uuid'] == instance for e in entries)
        assert len(errors) == 1 and 'malformed' in errors[0], errors
        assert _read_lines(out, 1, timeout=1.5) == []
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert queue_name not in _queues(rabbit)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_listen_plain_lines(rabbit):
    instance = str(uuid.uuid4())
    before = _queues(rabbit)
    proc = _spawn('listen', '--url', rabbit.url)
    try:
        _wait_new_queue(rabbit, before, proc)
        out = _reader(proc.stdout)
        _publish_raw(rabbit, 'notifications.info', _progress(instance))
        lines = _read_lines(out, 1)
        assert len(lines) == 1, lines
        line = lines[0]
        assert 'compute.live_migration.progress' in line and instance in line
        assert 'migpilot.cmp-a01' in line and 'pass=3' in line and 'converging' in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_plain_progress_and_outcome(rabbit):
    instance = str(uuid.uuid4())
    before = _queues(rabbit)
    proc = _spawn('watch', '--url', rabbit.url, '--once')
    try:
        _wait_new_queue(rabbit, before, proc)
        out = _reader(proc.stdout)
        _publish_raw(rabbit, 'notifications.info', _progress(instance))
        _publish_raw(rabbit, 'notifications.info', _metrics(instance))
        assert proc.wait(timeout=30) == 0
        lines = _read_lines(out, 2)
        assert len(lines) == 2, lines
        assert instance[:8] in lines[0] and '[' in lines[0] and '75%' in lines[0]
        assert 'pass 3' in lines[0] and 'converging' in lines[0]
        assert '\x1b' not in ''.join(lines)
        assert instance[:8] in lines[1] and 'completed' in lines[1] and '45 ms' in lines[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize('command', ['listen', 'watch'])
def test_unreachable_broker_exits_2(command):
    proc = subprocess.run(['/usr/bin/python3', '-m', 'nova_hooks', command, '--url', UNREACHABLE],
                          capture_output=True, cwd=REPO, env=_env(), timeout=30)
    assert proc.returncode == 2
    err = proc.stderr.decode().splitlines()
    assert len(err) == 1 and 'migpilot %s' % command in err[0] and '127.0.0.1:1' in err[0], err
    assert proc.stdout == b''


# ---- TLS (the lab's rabbit_tls node: a TLS listener with its own CA) ----------------------

def _nova_pre_start(url, instance):
    from tests.integration import bus
    # sent by Debian's oslo.messaging on the node's plain port; the listener reads over TLS
    bus.publish_nova_pre_live_migration(url, instance, 'cmp-a01', 'cmp-a02', 'proj-1',
                                        'user-1', bus.new_request_id())


def _tls_url(rabbit_tls):
    # the node's certificate names localhost (rabbitmq-c checks DNS names, not IP addresses)
    return rabbit_tls.tls_url.replace('@127.0.0.1:', '@localhost:')


def test_listener_tls_verifies_the_broker(rabbit_tls):
    instance = str(uuid.uuid4())
    tls_url = _tls_url(rabbit_tls)
    # verified against the lab's CA (the URL's ?ssl=1 asks for TLS, as oslo's does)
    with _migpilot.Listener(tls_url, ssl_ca_file=rabbit_tls.ca_file) as listener:
        _nova_pre_start(rabbit_tls.url, instance)
        got = [listener.get(timeout=15) for _ in range(2)]
    assert all(g is not None for g in got), got
    assert {g['info']['event_type'] for g in got} == {
        'instance.live_migration_pre.start', 'compute.instance.live_migration.pre.start'}
    assert all(g['info']['instance_uuid'] == instance for g in got)

    # ssl=True turns TLS on for a URL that does not ask for it
    plain_url = tls_url.replace('/?ssl=1', '/')
    with _migpilot.Listener(plain_url, ssl=True, ssl_ca_file=rabbit_tls.ca_file) as listener:
        _nova_pre_start(rabbit_tls.url, instance)
        assert listener.get(timeout=15) is not None

    # the lab's CA is not the system's: verification fails unless asked not to verify
    with pytest.raises(ConnectionError):
        _migpilot.Listener(tls_url)
    with _migpilot.Listener(rabbit_tls.tls_url, ssl_verify=False) as listener:
        assert listener.get(timeout=0.2) is None
    # TLS against the plain AMQP port fails instead of falling back to plain text
    with pytest.raises(ConnectionError):
        _migpilot.Listener(rabbit_tls.url, ssl=True, ssl_verify=False)
    with pytest.raises(ValueError, match='go together'):
        _migpilot.Listener(tls_url, ssl_cert_file=rabbit_tls.ca_file)
    with pytest.raises(ConnectionError):
        _migpilot.Listener(tls_url, ssl_ca_file='/nonexistent/ca.pem')


def test_listen_cli_over_tls(rabbit_tls):
    instance = str(uuid.uuid4())
    before = _queues(rabbit_tls)
    proc = _spawn('listen', '--url', _tls_url(rabbit_tls), '--ssl-ca-file',
                  rabbit_tls.ca_file, '--json')
    try:
        _wait_new_queue(rabbit_tls, before, proc)
        out = _reader(proc.stdout)
        _nova_pre_start(rabbit_tls.url, instance)
        lines = _read_lines(out, 2)
        assert len(lines) == 2, lines
        assert all(json.loads(line)['info']['instance_uuid'] == instance for line in lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # without the CA the broker's certificate is refused: one line, status 2
    res = subprocess.run(['/usr/bin/python3', '-m', 'nova_hooks', 'listen', '--url',
                          _tls_url(rabbit_tls)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=REPO, env=_env(), timeout=60)
    assert res.returncode == 2
    err = res.stderr.decode().strip()
    assert err.startswith('migpilot listen: cannot listen on the bus') and '\n' not in err


@pytest.mark.parametrize('migpilot,nova,durable', [
    ('', '', False),
    ('', '[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n', True),
    ('', '[oslo_messaging_rabbit]\namqp_durable_queues = True\n', True),
    ('', '[oslo_messaging_rabbit]\nrabbit_quorum_queue = false\n', False),
    ('queue_type = quorum\n', '', True),
    ('durable = false\n', '[oslo_messaging_rabbit]\namqp_durable_queues = true\n', False),
    ('durable = yes\n', '', True),
    ('durable = auto\n', '[oslo_messaging_rabbit]\nrabbit_quorum_queue = 1\n', True),
])
def test_bus_settings_durable_follows_the_agent(tmp_path, migpilot, nova, durable):
    from nova_hooks import cmd_listen
    (tmp_path / 'nova.conf').write_text(
        '[DEFAULT]\ntransport_url = rabbit://n:p@ctl:5672/\n' + nova)
    (tmp_path / 'migpilot.conf').write_text(
        '[amqp]\nnova_conf = %s/nova.conf\nexchange = nova\n%s' % (tmp_path, migpilot))
    assert cmd_listen.bus_settings(str(tmp_path / 'migpilot.conf')) == (
        'rabbit://n:p@ctl:5672/', 'nova', durable)


@pytest.mark.parametrize('migpilot,nova,want', [
    ('', '[DEFAULT]\ntransport_url = rabbit://d/\n', 'rabbit://d/'),
    # nova's notification transport wins over [DEFAULT], as oslo.messaging and the agent pick
    ('', '[DEFAULT]\ntransport_url = rabbit://d/\n'
         '[oslo_messaging_notifications]\ntransport_url = rabbit://n/\n', 'rabbit://n/'),
    ('', '[oslo_messaging_notifications]\ntransport_url = \n'
         '[DEFAULT]\ntransport_url = rabbit://d/\n', 'rabbit://d/'),
    ('transport_url = rabbit://a/\n', '[oslo_messaging_notifications]\n'
                                      'transport_url = rabbit://n/\n', 'rabbit://a/'),
    ('', '', None),
])
def test_bus_settings_url_as_the_agent_picks_it(tmp_path, migpilot, nova, want):
    from nova_hooks import cmd_listen
    (tmp_path / 'nova.conf').write_text(nova)
    (tmp_path / 'migpilot.conf').write_text(
        '[amqp]\nnova_conf = %s/nova.conf\n%s' % (tmp_path, migpilot))
    assert cmd_listen.bus_settings(str(tmp_path / 'migpilot.conf'))[0] == want


def test_resolve_transport_url():
    assert _migpilot.resolve_transport_url('rabbit://a/', 'rabbit://n/', None) == \
        ('rabbit://a/', '[amqp]')
    assert _migpilot.resolve_transport_url(None, 'rabbit://n/', 'rabbit://d/') == \
        ('rabbit://n/', '[oslo_messaging_notifications]')
    assert _migpilot.resolve_transport_url('', '', 'rabbit://d/') == ('rabbit://d/', '[DEFAULT]')
    assert _migpilot.resolve_transport_url(None, None, None) == (None, None)
