"""Security: bus input never acts on a domain; TLS to the broker with certificate
verification; a world-readable password file refused; the systemd unit's hardening."""
import configparser
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import amqp
import libvirt
import pytest

from tests.integration import bus
from tests.integration.agentproc import AGENT, REPO, Agent
from tests.integration.test_agent import BANDWIDTH_MIBS, CONVERGING

SEQUENCES = os.path.join(bus.FIXTURES, 'sequences')
FIXTURE_UUID = '9b4d7e1f-3a6c-4b2e-8f0d-5c7a9e1b3d46'
FIXTURE_HOST = 'cmp-a03'
UNIT = os.path.join(REPO, 'etc', 'systemd', 'migpilot-agent.service')


def forged(sequence, instance, host):
    """The captured wire messages of a nova sequence, re-targeted at instance and host."""
    d = os.path.join(SEQUENCES, sequence)
    out = []
    for f in sorted(os.listdir(d)):
        if f.endswith('.wire.json'):
            with open(os.path.join(d, f)) as fh:
                body = fh.read().replace(FIXTURE_UUID, instance).replace(FIXTURE_HOST, host)
            out.append(('versioned_notifications.info' if '/instance.' in '/' + f.split('_', 1)[1]
                        else 'notifications.info', body.encode()))
    assert out, 'no fixtures in %s' % d
    return out


def publish_raw(port, messages):
    conn = amqp.Connection('127.0.0.1:%d' % port, userid='guest', password='guest',
                           connect_timeout=5)
    conn.connect()
    try:
        ch = conn.channel()
        for key, body in messages:
            ch.basic_publish(amqp.Message(body, content_type='application/json'),
                             exchange='nova', routing_key=key)
    finally:
        conn.close()


def run_agent(args, timeout=30):
    return subprocess.run([AGENT] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


@pytest.fixture
def agent_cleanup():
    made = []
    yield made
    for a in made:
        a.stop()
        a.cleanup()


def test_forged_messages_do_nothing_to_any_domain(lab, rabbit, agent_cleanup):
    a, b = lab.hosts
    agent = Agent(a.uri, rabbit.url, host=a.name)
    agent_cleanup.append(agent)
    agent.start()
    idle, moving = 'mps-idle-%s' % uuid.uuid4().hex[:6], 'mps-mig-%s' % uuid.uuid4().hex[:6]
    collector = bus.Collector(rabbit.url).start()
    try:
        idle_uuid = lab.start_guest(a, idle, **dict(CONVERGING, dirty_rate=0)).UUIDString()
        mig_uuid = lab.start_guest(a, moving, persistent=True, **CONVERGING).UUIDString()
        fake_uuid = str(uuid.uuid4())
        forgeries = (
            # an operator's force-complete and abort, for a converging migration and for
            # a guest that is not migrating at all
            forged('force_complete', mig_uuid, a.name) + forged('abort', mig_uuid, a.name)
            + forged('force_complete', idle_uuid, a.name)
            # instances that do not exist, hosts that do not exist
            + forged('force_complete', fake_uuid, 'evil-host')
            + forged('rollback', fake_uuid, a.name)
            + forged('success', idle_uuid, 'evil-host'))
        m = lab.migrate(a, b, moving, bandwidth_mibs=BANDWIDTH_MIBS, postcopy=True, wait=False)
        agent.wait_log(r'watching outgoing migration of %s' % moving, timeout=60)
        publish_raw(rabbit.port, forgeries)
        agent.wait_log(r'nova: instance.live_migration_force_complete.start', count=3,
                       timeout=30)
        m.wait(180)
        found = collector.wait_for('compute.live_migration.metrics', mig_uuid, timeout=90)
        time.sleep(1)
    finally:
        collector.stop()
    p = found[0]['payload']
    # the forged force-complete did not switch it, the forged abort did not cancel it
    assert p['outcome'] == 'completed' and p['mode'] == 'pre-copy', p
    assert p['decided_by'] == 'none' and p['postcopy_switch_ms'] is None
    # (per instance: the shared notifications.info queue may still hold other tests' records)
    for inst in (mig_uuid, idle_uuid, fake_uuid):
        assert collector.of('compute.live_migration.switch', inst) == [], inst
    # the idle guest: still running, untouched, never watched, no job
    dom = a.domain(idle)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE
    log = agent.log()
    assert 'watching outgoing migration of %s' % idle not in log
    for act in ('switched to post-copy', 'resuming the post-copy', 'cannot resume'):
        assert act not in log, act
    assert len(collector.of('compute.live_migration.metrics', mig_uuid)) == 1
    assert collector.of('compute.live_migration.metrics', idle_uuid) == []
    assert collector.of('compute.live_migration.metrics', fake_uuid) == []
    lab.check_guest_healthy(a, idle)
    lab.check_guest_healthy(b, moving)
    lab.destroy_guest(idle)
    lab.destroy_guest(moving)


def _tls_agent(lab, rabbit_tls, ca_file, **extra_amqp):
    a = lab.hosts[0]
    url = 'amqps://guest:guest@localhost:%d/' % rabbit_tls.tls_port
    amqp_keys = {'ssl_ca_file': ca_file}
    amqp_keys.update(extra_amqp)
    return Agent(a.uri, url, host=a.name, extra={'amqp': amqp_keys})


def test_amqps_with_verified_certificate(lab, rabbit_tls, agent_cleanup):
    agent = _tls_agent(lab, rabbit_tls, rabbit_tls.ca_file)
    agent_cleanup.append(agent)
    agent.start()
    agent.wait_log(r'amqp: connected to localhost:%d' % rabbit_tls.tls_port, timeout=30)
    # the agent really consumes over TLS: a nova notification reaches it
    inst = str(uuid.uuid4())
    url = 'rabbit://guest:guest@127.0.0.1:%d/' % rabbit_tls.port
    bus.publish_nova_pre_live_migration(url, inst, 'lab-a', 'lab-b', 'p', 'u',
                                        bus.new_request_id())
    agent.wait_log(r'\[instance: %s\] nova: instance.live_migration_pre.start' % inst,
                   timeout=30)


def test_amqps_with_a_wrong_ca_is_refused(lab, rabbit_tls, agent_cleanup, tmp_path):
    ca = str(tmp_path / 'other-ca.pem')
    p = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days',
                        '1', '-subj', '/CN=not the lab CA', '-keyout', str(tmp_path / 'k'),
                        '-out', ca], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    assert p.returncode == 0, p.stdout
    agent = _tls_agent(lab, rabbit_tls, ca)
    agent_cleanup.append(agent)
    agent.start()
    lines = agent.wait_log(r'ERROR [^\n]*(?:certificate|SSL|ssl|TLS|verif)[^\n]*', timeout=30)
    time.sleep(1)
    assert 'amqp: connected' not in agent.log()
    assert len(lines[0]) < 400, lines[0]


@pytest.fixture
def conf_dir():
    d = tempfile.mkdtemp(prefix='mpsec-')
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _write_conf(d, password_file, url='rabbit://guest:wrong@127.0.0.1:5672/'):
    path = os.path.join(d, 'migpilot.conf')
    with open(path, 'w') as f:
        f.write('[DEFAULT]\nhost = lab-a\nstate_dir = %s\n[amqp]\ntransport_url = %s\n'
                'password_file = %s\n[logs]\nnova_compute_log =\n'
                % (os.path.join(d, 'state'), url, password_file))
    return path


def test_world_readable_password_file_is_refused(conf_dir):
    pw = os.path.join(conf_dir, 'password')
    with open(pw, 'w') as f:
        f.write('guest\n')
    os.chmod(pw, 0o644)
    conf = _write_conf(conf_dir, pw)
    for args in (['--check-config'], ['--foreground']):
        r = run_agent(args + ['--config', conf])
        assert r.returncode == 78, r.stdout
        lines = r.stdout.strip().splitlines()
        assert len(lines) == 1 and 'world-readable' in lines[0] and pw in lines[0], r.stdout
    os.chmod(pw, 0o640)
    r = run_agent(['--check-config', '--config', conf])
    assert r.returncode == 0, r.stdout


def test_password_file_overrides_the_url_password(rabbit, conf_dir):
    pw = os.path.join(conf_dir, 'password')
    with open(pw, 'w') as f:
        f.write('guest\n')
    os.chmod(pw, 0o600)
    conf = _write_conf(conf_dir, pw, url='rabbit://guest:wrong@127.0.0.1:%d/' % rabbit.port)
    log_path = os.path.join(conf_dir, 'agent.log')
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen([AGENT, '--foreground', '--config', conf], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        text = ''
        while 'amqp: connected' not in text and time.monotonic() < deadline:
            time.sleep(0.1)
            with open(log_path) as f:
                text = f.read()
        assert 'amqp: connected' in text, text[-2000:]
    finally:
        proc.terminate()
        proc.wait(20)


def _unit():
    cp = configparser.ConfigParser(strict=False, interpolation=None,
                                   empty_lines_in_values=False)
    cp.optionxform = str
    with open(UNIT) as f:
        cp.read_file(f)
    return cp


def test_systemd_unit_is_hardened():
    s = _unit()['Service']
    assert s.get('User') not in (None, '', 'root', '0')
    assert 'libvirt' in s.get('SupplementaryGroups', '').split()
    assert s.get('NoNewPrivileges') == 'yes'
    assert s.get('ProtectSystem') == 'strict'
    assert s.get('ProtectHome') == 'yes'
    assert s.get('PrivateTmp') == 'yes'
    assert s.get('CapabilityBoundingSet', None) == ''
    # writes only to its state dir (ProtectSystem=strict makes everything else read-only)
    assert s.get('StateDirectory') == 'migpilot'
    assert s.get('ReadWritePaths', '/var/lib/migpilot').split() == ['/var/lib/migpilot']
    for key in ('ReadWriteDirectories', 'LogsDirectory', 'CacheDirectory',
                'RuntimeDirectory', 'ConfigurationDirectory'):
        assert key not in s, key
    # the agent's default state_dir is that directory
    r = run_agent(['--describe'])
    assert re.search(r'^#?state_dir = /var/lib/migpilot$', r.stdout, re.M), r.stdout[:2000]


def test_systemd_unit_verifies(tmp_path):
    """systemd-analyze verify (Debian's systemd), on the unit with the agent binary where
    this tree built it (verify checks that ExecStart is executable)."""
    tool = shutil.which('systemd-analyze')
    assert tool, 'systemd-analyze is missing (Debian package systemd)'
    with open(UNIT) as f:
        text = f.read().replace('/usr/sbin/migpilot-agent', AGENT)
    unit = tmp_path / 'migpilot-agent.service'
    unit.write_text(text)
    r = subprocess.run([tool, 'verify', '--man=no', str(unit)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    # warnings about this machine (no such user/group, no unit dependencies running in a
    # container) are not problems of the unit file itself
    problems = [l for l in r.stdout.splitlines() if l.strip() and
                not re.search(r'(?i)user|group|network-online|libvirtd|virtqemud|rabbitmq|'
                              r'not found|No such file', l)]
    assert r.returncode == 0 or not problems, r.stdout
    assert problems == [], r.stdout
