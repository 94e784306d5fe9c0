#!/usr/bin/python3
"""A private RabbitMQ node for the lab, on 127.0.0.1 only.

    r = Rabbit(port=5673).start()     # ready when a real AMQP login as guest succeeds
    r.url                             # rabbit://guest:guest@127.0.0.1:5673/
    r.stop()                          # by PID (and the epmd it started, if no node is left)

Own node name (<prefix>-<port>@localhost), dist port (port + 20000), mnesia/log/pid dirs
and HOME with its own .erlang.cookie, all under /tmp/<prefix>-rabbit-<port>/ (removed by
stop()); runs as user rabbitmq from /usr/lib/rabbitmq/bin/rabbitmq-server -detached.
tls=True adds a TLS listener on tls_port (default port + 1) with a CA and a server
certificate generated into the node dir (r.ca_file, r.tls_url).
"""
import atexit
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

RABBIT_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
EPMD_PORT = 4369


class RabbitError(RuntimeError):
    pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _kill(pid, timeout):
    if not pid or not _pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return
        time.sleep(0.05)


def _cmd_has(pid, word):
    """True if the process' command line mentions word: a PID from a stale file may have
    been reused by an unrelated process, which must not be killed."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return word.encode() in f.read()
    except OSError:
        return False


def _port_open(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that is free right now (for nodes that need no fixed port)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _epmd_bin():
    for d in sorted(os.listdir('/usr/lib/erlang')):
        if d.startswith('erts-'):
            p = os.path.join('/usr/lib/erlang', d, 'bin', 'epmd')
            if os.path.exists(p):
                return p
    p = shutil.which('epmd')
    if p:
        return p
    raise RabbitError('epmd not found (is erlang-base installed?)')


class Rabbit:
    def __init__(self, port=5673, prefix='mplab', dist_port=None, tls=False, tls_port=None,
                 root=None):
        self.port = int(port)
        self.prefix = prefix
        self.dist_port = int(dist_port or self.port + 20000)
        self.tls = tls
        self.tls_port = int(tls_port or self.port + 1)
        self.nodename = '%s-%d@localhost' % (prefix, self.port)
        self.dir = os.path.join(root or os.environ.get('MPLAB_STATE_ROOT', '/tmp'),
                                '%s-rabbit-%d' % (prefix, self.port))
        self.home = os.path.join(self.dir, 'home')
        self.pid_file = os.path.join(self.dir, 'node.pid')
        # shared by every node of this prefix: the epmd one of them started
        self.epmd_pid_file = os.path.join(os.path.dirname(self.dir), '%s-epmd.pid' % prefix)
        self.log_dir = os.path.join(self.dir, 'log')
        self.ca_file = os.path.join(self.dir, 'tls', 'ca.pem')
        self.pid = None
        self.epmd_pid = None
        self.startup_s = None
        self._atexit = False

    @property
    def url(self):
        return 'rabbit://guest:guest@127.0.0.1:%d/' % self.port

    @property
    def tls_url(self):
        return 'rabbit://guest:guest@127.0.0.1:%d/?ssl=1' % self.tls_port

    def env(self):
        """The environment rabbitmq-server / rabbitmqctl need for this node."""
        return {
            'PATH': '/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
            'HOME': self.home,
            'RABBITMQ_NODENAME': self.nodename,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.dir, 'mnesia'),
            'RABBITMQ_LOG_BASE': self.log_dir,
            'RABBITMQ_PID_FILE': self.pid_file,
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(self.dir, 'etc', 'enabled_plugins'),
            'RABBITMQ_CONFIG_FILE': os.path.join(self.dir, 'etc', 'rabbitmq.conf'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(self.dir, 'etc', 'advanced.config'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(self.dir, 'etc', 'rabbitmq-env.conf'),
            # Erlang distribution on loopback only
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': '-kernel inet_dist_use_interface {127,0,0,1}',
            'ERL_EPMD_ADDRESS': '127.0.0.1',
        }

    def ctl(self, *args, timeout=60):
        """Runs rabbitmqctl against this node (as user rabbitmq); returns CompletedProcess."""
        return subprocess.run(['runuser', '-u', 'rabbitmq', '--', '/usr/bin/env', '-i']
                              + ['%s=%s' % kv for kv in self.env().items()]
                              + ['/usr/lib/rabbitmq/bin/rabbitmqctl', '-n', self.nodename]
                              + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)

    # -- files ---------------------------------------------------------------------------

    def _prepare(self):
        pw = pwd.getpwnam('rabbitmq')
        uid, gid = pw.pw_uid, grp.getgrnam('rabbitmq').gr_gid
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in (self.dir, self.home, self.log_dir, os.path.join(self.dir, 'mnesia'),
                  os.path.join(self.dir, 'etc')):
            os.makedirs(d, exist_ok=True)
        conf = ['listeners.tcp.1 = 127.0.0.1:%d' % self.port,
                'loopback_users.guest = true',
                'log.file.level = info',
                'log.console = false']
        if self.tls:
            self._make_certs()
            tls = os.path.join(self.dir, 'tls')
            conf += ['listeners.ssl.1 = 127.0.0.1:%d' % self.tls_port,
                     'ssl_options.cacertfile = %s/ca.pem' % tls,
                     'ssl_options.certfile = %s/server.pem' % tls,
                     'ssl_options.keyfile = %s/server.key' % tls,
                     'ssl_options.verify = verify_none',
                     'ssl_options.fail_if_no_peer_cert = false']
        files = {
            'etc/rabbitmq.conf': '\n'.join(conf) + '\n',
            'etc/enabled_plugins': '[].\n',
            'etc/advanced.config': '[].\n',
            'etc/rabbitmq-env.conf': '',
        }
        for rel, text in files.items():
            with open(os.path.join(self.dir, rel), 'w') as f:
                f.write(text)
        cookie = os.path.join(self.home, '.erlang.cookie')
        with open(cookie, 'w') as f:
            f.write(secrets.token_hex(10).upper())
        for root, dirs, fs in os.walk(self.dir):
            for n in dirs + fs:
                os.chown(os.path.join(root, n), uid, gid)
        os.chown(self.dir, uid, gid)
        os.chmod(cookie, 0o400)

    def _make_certs(self):
        tls = os.path.join(self.dir, 'tls')
        os.makedirs(tls, exist_ok=True)

        def ossl(*args):
            p = subprocess.run(['openssl'] + list(args), cwd=tls, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                raise RabbitError('openssl %s failed: %s' % (args[0], p.stdout))

        ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj',
             '/CN=migpilot lab CA', '-keyout', 'ca.key', '-out', 'ca.pem')
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout',
             'server.key', '-out', 'server.csr')
        with open(os.path.join(tls, 'ext.cnf'), 'w') as f:
            f.write('subjectAltName = DNS:localhost, IP:127.0.0.1\n')
        ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
             '-CAcreateserial', '-days', '30', '-extfile', 'ext.cnf', '-out', 'server.pem')
        for n in ('server.key', 'ca.key'):
            os.chmod(os.path.join(tls, n), 0o640)

    # -- lifecycle -----------------------------------------------------------------------

    def _start_epmd(self):
        """Starts a loopback-only epmd in the foreground of its own session (so we know its
        PID), unless one already answers on 127.0.0.1:4369 (then it is not ours)."""
        if _port_open(EPMD_PORT):
            return
        pw = pwd.getpwnam('rabbitmq')
        p = subprocess.Popen([_epmd_bin(), '-address', '127.0.0.1,::1'],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True,
                             user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                             env={'HOME': self.home, 'PATH': '/usr/bin:/bin'})
        self.epmd_pid = p.pid
        with open(self.epmd_pid_file, 'w') as f:
            f.write('%d\n' % p.pid)
        deadline = time.monotonic() + 10
        while not _port_open(EPMD_PORT):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RabbitError('epmd did not start (rc %s)' % p.poll())
            time.sleep(0.05)

    def start(self, timeout=60):
        """Starts the node; returns self once an AMQP login as guest succeeds. Raises
        RabbitError (after stopping what it started) if not ready within timeout."""
        t0 = time.monotonic()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        self.cleanup_stale()
        if _port_open(self.port):
            raise RabbitError('127.0.0.1:%d is already in use by something else' % self.port)
        try:
            self._prepare()
            self._start_epmd()
            pw = pwd.getpwnam('rabbitmq')
            out = open(os.path.join(self.dir, 'start.out'), 'wb')
            p = subprocess.run([RABBIT_SERVER, '-detached'], cwd=self.dir, env=self.env(),
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], timeout=60)
            out.close()
            if p.returncode != 0:
                raise RabbitError('rabbitmq-server -detached failed (rc %d): %s'
                                  % (p.returncode, self._tail('start.out')))
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline):
        import amqp
        last = 'no attempt'
        while time.monotonic() < deadline:
            if self.pid is None:
                from_file = self._read_pid()
                if from_file and _pid_alive(from_file):
                    self.pid = from_file
            elif not _pid_alive(self.pid):
                raise RabbitError('RabbitMQ node %s (pid %d) died during startup; log: %s'
                                  % (self.nodename, self.pid, self._log_tail()))
            try:
                c = amqp.Connection('127.0.0.1:%d' % self.port, userid='guest',
                                    password='guest', connect_timeout=1)
                c.connect()
                c.close()
                # RabbitMQ 4 opens its TLS listener a moment after the plain one
                if self.tls and not _port_open(self.tls_port):
                    raise RabbitError('TLS listener on %d not open yet' % self.tls_port)
                if self.pid is None:
                    self.pid = self._read_pid()
                return
            except Exception as e:  # noqa: BLE001 - any failure: not ready yet
                last = '%s: %s' % (type(e).__name__, e)
            time.sleep(0.1)
        raise RabbitError('RabbitMQ node %s not ready on 127.0.0.1:%d (last AMQP login: %s); '
                          'log: %s' % (self.nodename, self.port, last, self._log_tail()))

    def _read_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _tail(self, rel, n=800):
        try:
            with open(os.path.join(self.dir, rel), errors='replace') as f:
                return f.read()[-n:]
        except OSError:
            return '(none)'

    def _log_tail(self):
        try:
            logs = [f for f in os.listdir(self.log_dir) if f.endswith('.log')]
        except OSError:
            logs = []
        return ' | '.join('%s: %s' % (f, self._tail(os.path.join('log', f), 600)) for f in logs) \
            or '(no log)'

    def stop(self):
        """Stops the node by PID (SIGTERM, then SIGKILL after 20 s), then the epmd this
        object started if no node is registered with it any more; removes the node dir.
        Idempotent."""
        pid = self.pid or self._read_pid()
        if pid and _cmd_has(pid, 'beam'):
            _kill(pid, 20)
        self.pid = None
        epmd = self.epmd_pid
        if epmd is None:
            try:
                with open(self.epmd_pid_file) as f:
                    epmd = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                epmd = None
        if epmd and _pid_alive(epmd) and _cmd_has(epmd, 'epmd'):
            if not self._epmd_has_names():
                _kill(epmd, 5)
        if not epmd or not _pid_alive(epmd) or not _cmd_has(epmd, 'epmd'):
            try:
                os.unlink(self.epmd_pid_file)
            except OSError:
                pass
        self.epmd_pid = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def _epmd_has_names(self):
        try:
            p = subprocess.run([_epmd_bin(), '-names'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=10,
                               env={'PATH': '/usr/bin:/bin'})
        except (OSError, subprocess.TimeoutExpired, RabbitError):
            return True
        return any(line.startswith('name ') for line in p.stdout.splitlines())

    def cleanup_stale(self):
        """Stops a node (and epmd) a crashed earlier run left in this node dir."""
        if os.path.isdir(self.dir):
            self.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def cleanup(prefix='mplab', root=None):
    """Stops every node a lab with this prefix left (any port) and removes its dir, then
    the epmd one of them started if no node is registered with it."""
    root = root or os.environ.get('MPLAB_STATE_ROOT', '/tmp')
    done = []
    for d in sorted(os.listdir(root)):
        if d.startswith(prefix + '-rabbit-') and d.rsplit('-', 1)[1].isdigit():
            r = Rabbit(port=int(d.rsplit('-', 1)[1]), prefix=prefix, root=root)
            r.stop()
            done.append('stopped RabbitMQ node dir %s' % os.path.join(root, d))
    if os.path.exists(os.path.join(root, '%s-epmd.pid' % prefix)):
        Rabbit(port=0, prefix=prefix, root=root).stop()
        done.append('checked the lab epmd')
    return done
