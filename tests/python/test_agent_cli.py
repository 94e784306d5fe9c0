"""migpilot-agent's command line and configuration checks, and the operator files."""
import os
import re
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
AGENT = os.path.join(REPO, 'build', 'migpilot-agent')
CONF = os.path.join(REPO, 'etc', 'migpilot', 'migpilot.conf')


def run(*args, timeout=10):
    return subprocess.run([AGENT] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_help():
    r = run('--version')
    assert r.returncode == 0 and re.match(r'migpilot-agent \d+\.\d+\.\d+$', r.stdout.strip())
    r = run('--help')
    assert r.returncode == 0 and '--check-config' in r.stdout


def test_bad_arguments_exit_64_with_usage():
    r = run('--no-such-option')
    assert r.returncode == 64 and 'Usage:' in r.stderr
    r = run('stray')
    assert r.returncode == 64 and "unexpected argument 'stray'" in r.stderr


@pytest.mark.parametrize('text,message', [
    ('[libvirt]\npoll_interval_ms = 1000\n',
     ':6: [libvirt] poll_interval_ms: expected a whole number from 20 to 250'),
    ('[amqp]\nnope = 1\n', ':6: [amqp] nope: unknown key'),
    ('[policy]\nmode = fast\n', ':6: [policy] mode = fast'),
    ('[policy]\nmin_pass = 1\n', ':6: [policy] min_pass = 1'),
    ('[DEFAULT]\nstate_dir = rel\n', 'state_dir: must be an absolute path'),
    ('[amqp]\ntransport_url = kafka://h/\n',
     "[amqp] transport_url: unsupported scheme 'kafka'"),
    ('[amqp]\ntransport_url = rabbit://u:p@h:99999/\n', "bad port '99999'"),
    ('[amqp]\nmax_message_bytes = 10\n',
     ':6: [amqp] max_message_bytes: expected a whole number from 1024 to 67108864'),
    ('[amqp]\nmax_message_depth = -1\n', ':6: [amqp] max_message_depth: expected a whole'),
    ('[amqp]\nssl = maybe\n', ":6: [amqp] ssl: expected true or false, got 'maybe'"),
    ('[amqp]\nqueue_type = stream\n',
     ":6: [amqp] queue_type: expected auto, classic or quorum, got 'stream'"),
    ('[amqp]\ndurable = sometimes\n',
     ":6: [amqp] durable: expected auto, true or false, got 'sometimes'"),
    ('[amqp]\nqueue_type = quorum\ndurable = no\n',
     '[amqp] durable: false, but queue_type is quorum'),
    ('[amqp]\nssl_cert_file = /c.pem\n', 'ssl_cert_file and ssl_key_file: set both'),
    ('[amqp]\nreconnect_min_ms = 5000\nreconnect_max_ms = 1000\n',
     'reconnect_min_ms: 5000 is larger than reconnect_max_ms'),
    ('[amqp]\nheartbeat_s = 1e3\n', ":6: [amqp] heartbeat_s: expected a whole number"),
    ('[DEFAULT]\nlog_level = loud\n', ':6: [DEFAULT] log_level: expected debug, info'),
    ('[DEFAULT]\nhost = cmp-2\n', ':6: [DEFAULT] host: set twice'),
    ('[recovery]\npostcopy_recovery = perhaps\n',
     ':6: [recovery] postcopy_recovery: expected true or false'),
    ('[recovery]\nretry_interval_ms = 50\n',
     ':6: [recovery] retry_interval_ms: expected a whole number from 100 to 600000'),
    ('[recovery]\nalert_after_ms = soon\n', ':6: [recovery] alert_after_ms: expected'),
    ('[recovery]\ndestination_uri = qemu+tcp://cmp-b/system\n',
     '[recovery] destination_uri: expected one %s'),
    ('[recovery]\ndestination_uri = qemu+tcp://%s/system?x=%n\n',
     '[recovery] destination_uri: expected one %s'),
    ('[recovery]\ndestination_uri = %s%s\n', '[recovery] destination_uri: expected one %s'),
    ('[recovery]\ndestination_addresses = cmp-b\n',
     "[recovery] destination_addresses: expected host=address, got 'cmp-b'"),
    ('[recovery]\ndestination_addresses = cmp-b=10.0.0.2, =10.0.0.3\n',
     "[recovery] destination_addresses: expected host=address, got '=10.0.0.3'"),
    ('[recovery]\ndestination_addresses = cmp-b=h/x@y\n',
     '[recovery] destination_addresses: expected host=address'),
    ('[recovery]\nnope = 1\n', ':6: [recovery] nope: unknown key'),
    ('[nosuch]\nkey = 1\n', ':6: [nosuch]: unknown section'),
    ('[libvirt]\nuri = qemu:///system\nuri = qemu:///session\n', ':7: [libvirt] uri: set twice'),
    ('not an ini line\n', ':5: not an INI line'),
])
def test_bad_config_exit_78_one_line(tmp_path, text, message):
    conf = tmp_path / 'migpilot.conf'
    # four lines before the case's own: its line 2 is the file's line 6
    conf.write_text('[DEFAULT]\nhost = cmp-1\n[amqp]\nnova_conf = %s\n' % (tmp_path / 'none'))
    with open(conf, 'a') as f:
        f.write(text)
    r = run('--check-config', '--config', str(conf))
    assert r.returncode == 78, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_missing_transport_url_names_nova_conf(tmp_path):
    conf = tmp_path / 'migpilot.conf'
    conf.write_text('[amqp]\nnova_conf = %s/nova.conf\n' % tmp_path)
    r = run('--check-config', '--config', str(conf))
    assert r.returncode == 78
    assert 'transport_url: not set, and %s/nova.conf cannot be read' % tmp_path in r.stderr


def test_transport_url_read_from_nova_conf(tmp_path):
    (tmp_path / 'nova.conf').write_text(
        '[DEFAULT]\ntransport_url = rabbit://nova:secret@ctl:5672/\n')
    conf = tmp_path / 'migpilot.conf'
    conf.write_text('[DEFAULT]\nhost = cmp-1\n[amqp]\nnova_conf = %s/nova.conf\n' % tmp_path)
    r = run('--check-config', '--config', str(conf))
    assert r.returncode == 0, r.stderr
    assert 'configuration OK (host cmp-1, policy auto)' in r.stdout
    assert 'secret' not in r.stdout + r.stderr


@pytest.mark.parametrize('nova,amqp,message', [
    ('rabbit_quorum_queue = ture\n', '',
     "nova.conf: [oslo_messaging_rabbit] rabbit_quorum_queue: expected true or false, "
     "got 'ture'"),
    ('amqp_durable_queues = 2\n', '',
     "[oslo_messaging_rabbit] amqp_durable_queues: expected true or false, got '2'"),
    ('rabbit_quorum_queue = true\n', 'durable = false\n',
     '[amqp] durable: false, but %(dir)s/nova.conf sets [oslo_messaging_rabbit] '
     'rabbit_quorum_queue = true'),
])
def test_bad_queue_settings_in_nova_conf_exit_78(tmp_path, nova, amqp, message):
    (tmp_path / 'nova.conf').write_text(
        '[DEFAULT]\ntransport_url = rabbit://nova:secret@ctl:5672/\n'
        '[oslo_messaging_rabbit]\n' + nova)
    conf = tmp_path / 'migpilot.conf'
    conf.write_text('[DEFAULT]\nhost = cmp-1\n[amqp]\nnova_conf = %s/nova.conf\n%s'
                    % (tmp_path, amqp))
    r = run('--check-config', '--config', str(conf))
    assert r.returncode == 78, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message % {'dir': tmp_path} in lines[0], lines


def test_documented_config_is_complete_and_valid():
    """etc/migpilot/migpilot.conf documents every option with its real default."""
    with open(CONF) as f:
        documented = f.read()
    described = run('--describe').stdout
    for line in described.splitlines():
        if line.startswith('#') and ' = ' in line and not line.startswith('# '):
            assert line in documented, 'not documented: %s' % line
    import _migpilot
    policy = _migpilot.Policy()
    for key in policy.config:
        assert re.search(r'^#%s = ' % re.escape(key), documented, re.M), key
    # uncommenting every default must give a valid file
    text = re.sub(r'^#([a-z_]+ = ?.*)$', r'\1', documented, flags=re.M)
    text = re.sub(r'^(transport_url|host|queue|ssl_\w+|password_file|timezone) = ?$\n', '',
                  text, flags=re.M)
    text = text.replace('[amqp]\n', '[amqp]\ntransport_url = rabbit://g:g@localhost/\n')
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'mp-documented-%d.conf' % os.getpid())
    with open(path, 'w') as f:
        f.write(text)
    try:
        r = run('--check-config', '--config', path)
    finally:
        os.unlink(path)
    assert r.returncode == 0, r.stderr
