#!/usr/bin/python3
"""The migpilot lab: N libvirt "hosts" in namespaces on this machine, TCG guests, RabbitMQ.

    from tests.lab.lab import Lab, Rabbit
    with Lab(hosts=2) as lab:
        a, b = lab.hosts
        lab.start_guest(a, 'g1', mem_mib=512, dirty_mib=64, dirty_rate=0)
        lab.migrate(a, b, 'g1')                       # blocks; raises on failure
        lab.check_guest_healthy(b, 'g1')

See tests/lab/README.md for the whole API, the network layout and how to cut links.
Run with /usr/bin/python3 (Debian's), as root.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import namedtuple

import libvirt

from . import build
from .rabbit import Rabbit, RabbitError  # noqa: F401  (re-exported: tests.lab.lab.Rabbit)

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = build.CACHE_DIR
DEFAULT_PREFIX = 'mplab'
SUBNET = '192.0.2'
LIBVIRTD = '/usr/sbin/libvirtd'
# libvirt's dirs that each host gets privately (bind-mounted in its own mount namespace)
PRIVATE_DIRS = (('etc', '/etc/libvirt'), ('run', '/run/libvirt'), ('lib', '/var/lib/libvirt'),
                ('log', '/var/log/libvirt'), ('cache', '/var/cache/libvirt'))
# what a guest kernel prints when it breaks ("panic=-1" on the command line is not one)
BAD_CONSOLE = re.compile(r'BUG[: ]|Oops|Kernel panic|\bpanic\b(?!=)|Call Trace')
HB_RE = re.compile(r'^HB (\d+) up=(\d+) dirtied=(\d+) maxgap_ms=(\d+)', re.M)

Heartbeat = namedtuple('Heartbeat', 'seq up dirtied maxgap_ms')


class LabError(RuntimeError):
    """The lab could not do what was asked (setup, daemon, guest boot, migration)."""


class GuestUnhealthy(AssertionError):
    """A guest is not running, not beating or its console shows a kernel crash."""


# ---------------------------------------------------------------------------------------------
# helpers

def _run(cmd, check=True, timeout=60):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise LabError('%s failed (rc %d): %s' % (' '.join(cmd), p.returncode, p.stdout.strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_pid(pid, timeout=10.0, sig=signal.SIGTERM):
    """SIGTERM (or sig) one process by PID, SIGKILL after timeout; True if it is gone."""
    if not pid or not _pid_alive(pid):
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _netns_inode(name):
    try:
        return os.stat('/run/netns/%s' % name).st_ino
    except OSError:
        return None


def pids_in_netns(name):
    """PIDs of the processes whose network namespace is /run/netns/<name>."""
    ino = _netns_inode(name)
    if ino is None:
        return []
    want = 'net:[%d]' % ino
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            if os.readlink('/proc/%s/ns/net' % d) == want:
                pids.append(int(d))
        except OSError:
            pass
    return pids


def list_netns():
    p = _run(['ip', 'netns', 'list'], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def lab_netns(prefix):
    """The network namespaces of the lab with this prefix: <prefix>-<letter>, <prefix>-sw
    (exactly: a lab with prefix 'mplab-x' is not part of lab 'mplab')."""
    pat = re.compile(r'^%s-([a-z]|sw)$' % re.escape(prefix))
    return [n for n in list_netns() if pat.match(n)]


_event_lock = threading.Lock()
_event_thread = None


def ensure_event_loop():
    """Registers libvirt's default event loop and runs it in a daemon thread (once per
    process). Must happen before connections are opened for their events to arrive; every
    connection the lab opens calls this first."""
    global _event_thread
    with _event_lock:
        if _event_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        # libvirt prints every error on stderr by default; the exceptions carry them anyway
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def loop():
            while True:
                libvirt.virEventRunDefaultImpl()

        _event_thread = threading.Thread(target=loop, name='libvirt-events', daemon=True)
        _event_thread.start()


def state_dir(prefix=DEFAULT_PREFIX):
    return os.path.join(os.environ.get('MPLAB_STATE_ROOT', '/tmp'), prefix)


def cleanup(prefix=DEFAULT_PREFIX, verbose=False):
    """Removes everything a lab with this prefix may have left, also after a crash:
    processes (by their PID files and by membership of the lab's network namespaces),
    network namespaces (with their veths and bridge) and the state dir. Idempotent.
    Returns a list of what it did."""
    done = []
    base = state_dir(prefix)
    namespaces = lab_netns(prefix)
    pids = []

    def from_file(path, word):
        # a PID from a stale file may belong to an unrelated process by now
        pid = _read_pid(path)
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                if word.encode() in f.read():
                    pids.append(pid)
        except (OSError, TypeError):
            pass

    # QEMU first (their PID files), then whatever else lives in the namespaces, then libvirtd
    if os.path.isdir(base):
        for host in sorted(os.listdir(base)):
            qdir = os.path.join(base, host, 'run', 'qemu')
            if os.path.isdir(qdir):
                for f in os.listdir(qdir):
                    if f.endswith('.pid'):
                        from_file(os.path.join(qdir, f), 'qemu')
    for ns in namespaces:
        pids.extend(pids_in_netns(ns))
    if os.path.isdir(base):
        for host in sorted(os.listdir(base)):
            from_file(os.path.join(base, host, 'libvirtd.pid'), 'libvirtd')
    seen = set()
    for pid in pids:
        if pid and pid not in seen and pid != os.getpid():
            seen.add(pid)
            if _pid_alive(pid):
                try:
                    with open('/proc/%d/cmdline' % pid, 'rb') as f:
                        what = f.read().split(b'\0')[0].decode(errors='replace')
                except OSError:
                    what = '?'
                kill_pid(pid, timeout=10)
                done.append('killed pid %d (%s)' % (pid, os.path.basename(what)))
    for ns in namespaces:
        _run(['ip', 'netns', 'del', ns], check=False)
        done.append('deleted netns %s' % ns)
    if os.path.isdir(base):
        shutil.rmtree(base, ignore_errors=True)
        done.append('removed %s' % base)
    if verbose:
        for line in done:
            print('cleanup: ' + line)
    return done


# ---------------------------------------------------------------------------------------------

class Host:
    """One libvirt "host": a network + mount + UTS namespace with its own libvirtd."""

    def __init__(self, lab, index):
        self.lab = lab
        self.index = index
        letter = chr(ord('a') + index)
        self.letter = letter
        self.name = 'lab-%s' % letter                       # hostname inside its UTS ns
        self.addr = '%s.%d' % (SUBNET, index + 1)
        self.netns = '%s-%s' % (lab.prefix, letter)
        self.port = 'port-%s' % letter                      # its veth end on the switch
        self.dir = os.path.join(lab.base, self.name)
        self.etc_dir = os.path.join(self.dir, 'etc')
        self.run_dir = os.path.join(self.dir, 'run')
        self.lib_dir = os.path.join(self.dir, 'lib')
        self.log_dir = os.path.join(self.dir, 'log')
        # kept between lab ups: libvirt's QEMU capability probe costs ~8-28 s per host.
        # One per prefix and host, so that labs of different prefixes never share one.
        self.cache_dir = os.path.join(lab.libvirt_cache, '%s-%s' % (lab.prefix, self.name))
        self.uri = 'qemu+unix:///system?socket=%s/libvirt-sock' % self.run_dir
        self.tcp_uri = 'qemu+tcp://%s/system' % self.addr
        self.host_uuid = '00000000-0000-4000-8000-%012d' % (index + 1)
        self.pid = None
        self.pid_file = os.path.join(self.dir, 'libvirtd.pid')
        self.daemon_log = os.path.join(self.log_dir, 'libvirtd.log')
        self._conn = None
        self._conn_lock = threading.Lock()
        self._popen = None

    def __repr__(self):
        return '<Host %s %s pid=%s>' % (self.name, self.addr, self.pid)

    def serial_log(self, guest):
        """The guest's serial console file as seen from the root namespace."""
        return os.path.join(self.log_dir, 'qemu', '%s-serial.log' % guest)

    def qemu_log(self, guest):
        return os.path.join(self.log_dir, 'qemu', '%s.log' % guest)

    def conn(self):
        """A cached read-write connection to this host's libvirtd (through its unix socket)."""
        with self._conn_lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._close_locked()
            self._conn = self.open()
            return self._conn

    def open(self):
        """A new connection (the caller closes it)."""
        ensure_event_loop()
        c = libvirt.open(self.uri)
        try:
            c.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            pass
        return c

    def _close_locked(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None

    def close(self):
        with self._conn_lock:
            self._close_locked()

    def domain(self, name):
        return self.conn().lookupByName(name)

    def has_domain(self, name, active=True):
        try:
            d = self.conn().lookupByName(name)
        except libvirt.libvirtError:
            return False
        return d.isActive() == 1 if active else True

    def exec(self, *cmd, check=True, timeout=60):
        """Runs a command in this host's network namespace."""
        return _run(['ip', 'netns', 'exec', self.netns] + list(cmd), check=check,
                    timeout=timeout)


class Migration:
    """A migration running in a background thread (see Lab.migrate)."""

    def __init__(self, src, dst, name, flags, params):
        self.src, self.dst, self.name = src, dst, name
        self.flags, self.params = flags, params
        # migrateToURI3 blocks for the whole migration on a connection of its own (as nova's
        # would); stats, post-copy switch and abort go through the host's shared connection.
        # (With both on one connection, migrateStartPostCopy was seen to stall ~5 s.)
        self._mig_conn = src.open()
        self._mig_dom = self._mig_conn.lookupByName(name)
        self.dom = src.domain(name)
        self.error = None
        self.started = None
        self.finished = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name='migrate-%s' % name, daemon=True)

    def start(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def _run(self):
        try:
            self._mig_dom.migrateToURI3(self.dst.tcp_uri, self.params, self.flags)
        except libvirt.libvirtError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001 - reported through .error
            self.error = e
        finally:
            self.finished = time.monotonic()
            try:
                self._mig_conn.close()
            except libvirt.libvirtError:
                pass
            self.done.set()

    @property
    def elapsed(self):
        """Wall seconds from start to end (or to now while running)."""
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    @property
    def ok(self):
        return self.done.is_set() and self.error is None

    def wait(self, timeout=300, check=True):
        """Waits for the end; raises LabError on timeout, or on failure when check."""
        if not self.done.wait(timeout):
            raise LabError('migration of %s %s -> %s still running after %ss'
                           % (self.name, self.src.name, self.dst.name, timeout))
        if check and self.error is not None:
            raise LabError('migration of %s %s -> %s failed: %s'
                           % (self.name, self.src.name, self.dst.name, self.error))
        return self.error is None

    def stats(self):
        """The source's jobStats() now ({} once the job is gone)."""
        try:
            s = self.dom.jobStats()
        except libvirt.libvirtError:
            return {}
        return s if s.get('type', 0) != libvirt.VIR_DOMAIN_JOB_NONE else {}

    def completed_stats(self):
        """jobStats(COMPLETED) on the source (kept only if the domain still exists there)."""
        try:
            return self.dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError:
            return {}

    def wait_for(self, pred, timeout=120, interval=0.1):
        """Polls stats() until pred(stats) is true; returns those stats. Raises LabError if
        the migration ends or the timeout passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stats()
            if s and pred(s):
                return s
            if self.done.is_set():
                raise LabError('migration of %s ended (%s) before the awaited condition'
                               % (self.name, self.error or 'completed'))
            time.sleep(interval)
        raise LabError('condition not reached within %ss (last stats %r)' % (timeout, s))

    def wait_pass(self, n, timeout=120):
        """Waits until memory_iteration >= n."""
        return self.wait_for(lambda s: s.get('memory_iteration', 0) >= n, timeout)

    def start_postcopy(self):
        self.dom.migrateStartPostCopy(0)

    def abort(self):
        self.dom.abortJob()


class Lab:
    """N libvirt hosts. Use as a context manager, or up() / down()."""

    def __init__(self, hosts=2, prefix=DEFAULT_PREFIX, libvirt_cache=None, verbose=False,
                 log_filters=None):
        if not 1 <= hosts <= 26:
            raise ValueError('hosts must be 1..26')
        if os.geteuid() != 0:
            raise LabError('the lab needs root (namespaces, libvirtd, QEMU as root)')
        self.prefix = prefix
        self.base = state_dir(prefix)
        self.libvirt_cache = libvirt_cache or os.path.join(CACHE_DIR, 'libvirt')
        self.switch_ns = '%s-sw' % prefix
        self.verbose = verbose
        self.log_filters = log_filters   # libvirtd.conf log_filters, e.g. '1:qemu 1:conf'
        self.hosts = [Host(self, i) for i in range(hosts)]
        self.images = None
        self.timings = {}
        self._up = False
        self._atexit = False
        self._t0 = time.monotonic()

    @classmethod
    def attach(cls, prefix=DEFAULT_PREFIX):
        """A Lab object for a lab that is already up (e.g. by `labctl up`), from its state
        file. Its down() still tears the lab down; nothing is registered with atexit."""
        path = os.path.join(state_dir(prefix), 'lab.json')
        try:
            with open(path) as f:
                state = json.load(f)
        except OSError:
            raise LabError('no lab with prefix %s is up (%s missing)' % (prefix, path))
        lab = cls(hosts=len(state['hosts']), prefix=prefix)
        for h, s in zip(lab.hosts, state['hosts']):
            h.pid = s['pid']
            if not h.pid or not _pid_alive(h.pid):
                raise LabError('libvirtd of %s (pid %s) is not running' % (h.name, h.pid))
        lab.images = build.ensure()
        lab._up = True
        lab._t0 = time.monotonic()
        return lab

    # -- helpers -------------------------------------------------------------------------

    def _log(self, msg):
        if self.verbose:
            print('[lab %6.1fs] %s' % (time.monotonic() - self._t0, msg), flush=True)

    def host(self, h):
        """A Host from a Host, an index, a name ('lab-b') or a letter ('b')."""
        if isinstance(h, Host):
            return h
        if isinstance(h, int):
            return self.hosts[h]
        for x in self.hosts:
            if h in (x.name, x.letter, x.addr, x.netns):
                return x
        raise KeyError('no lab host %r' % (h,))

    def __getitem__(self, h):
        return self.host(h)

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    # -- up / down -----------------------------------------------------------------------

    def up(self):
        """Cleans leftovers of an earlier run with the same prefix, builds the guest if
        needed, creates the network and starts every libvirtd. Raises LabError with the
        reason if anything fails (and cleans up what it started)."""
        self._t0 = time.monotonic()
        if not self._atexit:
            atexit.register(self.down)
            self._atexit = True
        cleanup(self.prefix)
        try:
            self.images = build.ensure()
            self.timings['build_s'] = time.monotonic() - self._t0
            self._log('guest images ready')
            os.makedirs(self.base)
            self._setup_network()
            self._log('network ready')
            for h in self.hosts:
                self._prepare_host(h)
                self._start_libvirtd(h)
            for h in self.hosts:
                self._wait_libvirtd(h)
            self._log('libvirtd up on %d hosts' % len(self.hosts))
            self._warm_capabilities()
            self._log('QEMU capabilities probed')
            self._write_state()
            self._up = True
        except BaseException:
            self.down()
            raise
        self.timings['up_s'] = time.monotonic() - self._t0
        return self

    def down(self):
        """Stops everything (guests, libvirtds, namespaces, state dir). Idempotent."""
        for h in self.hosts:
            h.close()
        cleanup(self.prefix)
        self._up = False

    def _setup_network(self):
        # A "switch" namespace holding a bridge, and one veth per host: port-<x> on the
        # bridge, eth0 in the host's namespace. Cutting a host = setting its port down.
        sw = self.switch_ns
        _run(['ip', 'netns', 'add', sw])
        _run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge'])
        _run(['ip', '-n', sw, 'link', 'set', 'br0', 'up'])
        for h in self.hosts:
            _run(['ip', 'netns', 'add', h.netns])
            _run(['ip', '-n', sw, 'link', 'add', h.port, 'type', 'veth', 'peer', 'name', 'eth0',
                  'netns', h.netns])
            _run(['ip', '-n', sw, 'link', 'set', h.port, 'master', 'br0'])
            _run(['ip', '-n', sw, 'link', 'set', h.port, 'up'])
            _run(['ip', '-n', h.netns, 'link', 'set', 'lo', 'up'])
            _run(['ip', '-n', h.netns, 'addr', 'add', h.addr + '/24', 'dev', 'eth0'])
            _run(['ip', '-n', h.netns, 'link', 'set', 'eth0', 'up'])

    def _prepare_host(self, h):
        for sub in ('etc', 'run', 'lib', 'log'):
            os.makedirs(os.path.join(h.dir, sub), exist_ok=True)
        os.makedirs(os.path.join(h.log_dir, 'qemu'), exist_ok=True)
        if not os.path.isdir(h.cache_dir):
            self._seed_cache(h.cache_dir)
        # Debian's /etc/libvirt as a base (nwfilters, ...), minus any network definitions:
        # no default NAT network (no virbr0, no 192.168.122.0/24) on lab hosts.
        shutil.copytree('/etc/libvirt', h.etc_dir, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(os.path.join(h.etc_dir, 'qemu', 'networks'), ignore_errors=True)
        os.makedirs(os.path.join(h.etc_dir, 'qemu', 'networks', 'autostart'))
        with open(os.path.join(h.etc_dir, 'libvirtd.conf'), 'w') as f:
            f.write('\n'.join([
                '# lab host %s (generated by tests/lab/lab.py)' % h.name,
                'listen_tls = 0',
                'listen_tcp = 1',
                'listen_addr = "%s"' % h.addr,
                'auth_tcp = "none"',
                'auth_unix_ro = "none"',
                'auth_unix_rw = "none"',
                'unix_sock_group = "root"',
                'unix_sock_ro_perms = "0777"',
                'unix_sock_rw_perms = "0770"',
                'host_uuid = "%s"' % h.host_uuid,
                'log_outputs = "%d:file:%s"' % (1 if self.log_filters else 3, h.daemon_log),
                ('log_filters = "%s"' % self.log_filters) if self.log_filters else '',
                '']))
        with open(os.path.join(h.etc_dir, 'qemu.conf'), 'w') as f:
            f.write('\n'.join([
                '# lab host %s (generated by tests/lab/lab.py)' % h.name,
                '# QEMU as root: post-copy needs userfaultfd (vm.unprivileged_userfaultfd=0)',
                'user = "root"',
                'group = "root"',
                'dynamic_ownership = 0',
                'remember_owner = 0',
                'security_driver = "none"',
                'namespaces = [ ]',
                'cgroup_controllers = [ ]',
                'stdio_handler = "file"',
                'migration_address = "%s"' % h.addr,
                'migration_host = "%s"' % h.addr,
                '']))

    def _seed_cache(self, cache_dir):
        # The probed QEMU capabilities only describe this machine's QEMU binaries and CPU,
        # the same for every lab host: a new cache starts from a copy of an existing one
        # (libvirt re-probes by itself if a binary changed).
        os.makedirs(os.path.join(cache_dir, 'qemu', 'capabilities'))
        try:
            siblings = sorted(os.listdir(self.libvirt_cache))
        except OSError:
            siblings = []
        for sib in siblings:
            caps = os.path.join(self.libvirt_cache, sib, 'qemu', 'capabilities')
            if os.path.join(self.libvirt_cache, sib) == cache_dir or not os.path.isdir(caps):
                continue
            files = [f for f in os.listdir(caps) if f.endswith('.xml')]
            if files:
                for f in files:
                    shutil.copy2(os.path.join(caps, f),
                                 os.path.join(cache_dir, 'qemu', 'capabilities', f))
                return

    def _start_libvirtd(self, h):
        script = ['set -e']
        for sub, target in PRIVATE_DIRS:
            src = h.cache_dir if sub == 'cache' else os.path.join(h.dir, sub)
            script.append('mkdir -p %s' % target)
            script.append('mount --bind %s %s' % (src, target))
        script.append('hostname %s' % h.name)
        script.append('exec %s --listen --pid-file %s' % (LIBVIRTD, h.pid_file))
        out = open(os.path.join(h.log_dir, 'libvirtd.stdout'), 'ab')
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C', 'HOME': '/root'}
        # ip netns exec and unshare exec (no fork), so Popen's pid is libvirtd's pid
        p = subprocess.Popen(['ip', 'netns', 'exec', h.netns, 'unshare', '--mount', '--uts',
                              '--propagation', 'private', '/bin/sh', '-c', '\n'.join(script)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True, close_fds=True)
        out.close()
        h.pid = p.pid
        h._popen = p

    def _wait_libvirtd(self, h, timeout=60):
        deadline = time.monotonic() + timeout
        sock = os.path.join(h.run_dir, 'libvirt-sock')
        last = None
        while time.monotonic() < deadline:
            if h._popen is not None and h._popen.poll() is not None:
                raise LabError('libvirtd of %s exited with rc %s; see %s and %s'
                               % (h.name, h._popen.returncode, h.daemon_log,
                                  os.path.join(h.log_dir, 'libvirtd.stdout')))
            if os.path.exists(sock):
                try:
                    c = h.conn()
                    c.getHostname()
                    # and the TCP listener the peers migrate to
                    p = h.exec('ss', '-Hltn', 'sport = :16509', check=False)
                    if h.addr + ':16509' in p.stdout:
                        return
                    last = 'no TCP listener on %s:16509 yet' % h.addr
                except libvirt.libvirtError as e:
                    last = str(e)
                    h.close()
            time.sleep(0.1)
        raise LabError('libvirtd of %s not ready after %ss (%s); see %s'
                       % (h.name, timeout, last, h.daemon_log))

    def _warm_capabilities(self):
        # libvirt probes each emulator binary once (~28 s under TCG) and caches the result in
        # /var/cache/libvirt, which is kept between lab ups. Probe all hosts in parallel.
        errors = []

        def probe(h):
            t = time.monotonic()
            try:
                h.open().getDomainCapabilities(self.images['emulator'], 'x86_64', None,
                                               'qemu', 0)
            except libvirt.libvirtError as e:
                errors.append('%s: %s' % (h.name, e))
            self.timings['caps_%s_s' % h.name] = time.monotonic() - t

        threads = [threading.Thread(target=probe, args=(h,)) for h in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise LabError('QEMU capability probe failed: ' + '; '.join(errors))

    def _write_state(self):
        state = {'prefix': self.prefix, 'switch_ns': self.switch_ns,
                 'hosts': [{'name': h.name, 'addr': h.addr, 'netns': h.netns, 'pid': h.pid,
                            'uri': h.uri, 'tcp_uri': h.tcp_uri, 'log_dir': h.log_dir}
                           for h in self.hosts]}
        with open(os.path.join(self.base, 'lab.json'), 'w') as f:
            json.dump(state, f, indent=1)

    # -- daemons -------------------------------------------------------------------------

    def stop_libvirtd(self, host, timeout=15):
        """Stops a host's libvirtd by PID (its guests keep running)."""
        h = self.host(host)
        h.close()
        if h.pid and not kill_pid(h.pid, timeout=timeout):
            raise LabError('libvirtd %d of %s would not die' % (h.pid, h.name))
        if h._popen is not None:
            h._popen.poll()
        h.pid = None

    def start_libvirtd(self, host):
        h = self.host(host)
        if h.pid and _pid_alive(h.pid):
            raise LabError('libvirtd of %s already running (pid %d)' % (h.name, h.pid))
        self._start_libvirtd(h)
        self._wait_libvirtd(h)
        self._write_state()

    def restart_libvirtd(self, host):
        """Stops and starts a host's libvirtd; running guests are kept (libvirt reconnects)."""
        self.stop_libvirtd(host)
        self.start_libvirtd(host)

    # -- network -------------------------------------------------------------------------

    def cut_link(self, host, kill_sockets=False):
        """Cuts a host off the lab network: its switch port goes down, so its eth0 loses
        carrier and packets to and from it are dropped. TCP connections stay open and stall
        (as with a pulled cable). kill_sockets=True also aborts the host's TCP connections
        to 192.0.2.0/24 at once (ss -K), for tests that want an immediate error."""
        h = self.host(host)
        if kill_sockets:
            # before the link goes down, so that the resets still reach the peers
            h.exec('ss', '-K', 'dst', SUBNET + '.0/24', check=False)
        _run(['ip', '-n', self.switch_ns, 'link', 'set', h.port, 'down'])

    def restore_link(self, host, timeout=5):
        """Brings the host's switch port back up and waits for carrier on its eth0."""
        h = self.host(host)
        _run(['ip', '-n', self.switch_ns, 'link', 'set', h.port, 'up'])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = _run(['ip', '-n', h.netns, '-o', 'link', 'show', 'eth0'], check=False)
            if 'NO-CARRIER' not in p.stdout and 'state UP' in p.stdout:
                return
            time.sleep(0.05)
        raise LabError('eth0 of %s has no carrier %ss after restore' % (h.name, timeout))

    def link_is_up(self, host):
        h = self.host(host)
        p = _run(['ip', '-n', self.switch_ns, '-o', 'link', 'show', h.port], check=False)
        return 'state UP' in p.stdout

    # -- guests --------------------------------------------------------------------------

    def domain_xml(self, name, mem_mib=512, dirty_mib=64, dirty_rate=0):
        """The lab's domain XML: TCG, direct kernel boot, 1 vCPU, no disk/NIC/balloon,
        serial console into the host's log dir, QEMU through the RAM-size wrapper."""
        if self.images is None:
            self.images = build.ensure()
        rate = ('%g' % dirty_rate) if dirty_rate is not None else '0'
        return """<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet loglevel=4 panic=-1 dirt_mib={dmib} dirt_rate={rate}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/{name}-serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='/var/log/libvirt/qemu/{name}-serial.log' append='on'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
""".format(name=name, uuid=uuid.uuid4(), mem=int(mem_mib), kernel=self.images['kernel'],
           initrd=self.images['initrd'], dmib=int(dirty_mib), rate=rate,
           emulator=self.images['emulator'])

    def start_guest(self, host, name, mem_mib=512, dirty_mib=64, dirty_rate=0,
                    persistent=False, wait=True, timeout=120):
        """Starts a guest on a host and (wait=True) waits for its first heartbeat.
        dirty_rate in MiB/s: 0 idle, <0 flat out. Returns the virDomain (on host's
        connection). Serial logs of an earlier guest with this name are removed first."""
        h = self.host(host)
        for x in self.hosts:
            for path in (x.serial_log(name), x.qemu_log(name)):
                if os.path.exists(path):
                    os.unlink(path)
        xml = self.domain_xml(name, mem_mib, dirty_mib, dirty_rate)
        t = time.monotonic()
        c = h.conn()
        try:
            if persistent:
                dom = c.defineXML(xml)
                dom.create()
            else:
                dom = c.createXML(xml, 0)
        except libvirt.libvirtError as e:
            raise LabError('starting guest %s on %s failed: %s (see %s)'
                           % (name, h.name, e, h.qemu_log(name)))
        if wait:
            self.wait_heartbeat(h, name, timeout=timeout)
            self.timings['boot_%s_s' % name] = time.monotonic() - t
        return dom

    def destroy_guest(self, name, undefine=True):
        """Destroys (and undefines) the guest wherever it exists. Idempotent."""
        for h in self.hosts:
            try:
                d = h.conn().lookupByName(name)
            except libvirt.libvirtError:
                continue
            try:
                if d.isActive():
                    d.destroy()
            except libvirt.libvirtError:
                pass
            if undefine:
                try:
                    d.undefine()
                except libvirt.libvirtError:
                    pass

    def find_guest(self, name):
        """The host where the guest is active (None if nowhere)."""
        for h in self.hosts:
            if h.has_domain(name):
                return h
        return None

    def serial(self, host, name):
        try:
            with open(self.host(host).serial_log(name), errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def heartbeats(self, host, name):
        """The heartbeats in the guest's serial log on that host, oldest first."""
        return [Heartbeat(*map(int, m.groups()))
                for m in HB_RE.finditer(self.serial(host, name).replace('\r', ''))]

    def wait_heartbeat(self, host, name, after_seq=0, timeout=60):
        """Waits for a heartbeat with seq > after_seq in that host's serial log."""
        h = self.host(host)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hbs = self.heartbeats(h, name)
            if hbs and hbs[-1].seq > after_seq:
                return hbs[-1]
            bad = self.console_problems(name)
            if bad:
                raise GuestUnhealthy('guest %s crashed: %s' % (name, bad))
            if not h.has_domain(name):
                raise GuestUnhealthy('guest %s is not running on %s (qemu log: %s)'
                                     % (name, h.name, self._tail(h.qemu_log(name))))
            time.sleep(0.1)
        raise GuestUnhealthy('no heartbeat from %s on %s after seq %d within %ss; console tail: %s'
                             % (name, h.name, after_seq, timeout,
                                self.serial(h, name)[-500:]))

    def console_problems(self, name):
        """Lines of the guest's serial logs (every host) that show a kernel crash."""
        bad = []
        for h in self.hosts:
            for line in self.serial(h, name).splitlines():
                if BAD_CONSOLE.search(line):
                    bad.append('%s: %s' % (h.name, line.strip()))
        return bad

    def check_guest_healthy(self, host, name, beats=2, timeout=30):
        """Asserts that the guest runs on host, that `beats` new heartbeats (seq beyond the
        last one seen now) appear in that host's serial log, and that no serial log of it
        shows BUG/Oops/panic. Returns the last heartbeat. Raises GuestUnhealthy."""
        h = self.host(host)
        try:
            d = h.domain(name)
            state, reason = d.state()
        except libvirt.libvirtError as e:
            raise GuestUnhealthy('guest %s not found on %s: %s' % (name, h.name, e))
        if state != libvirt.VIR_DOMAIN_RUNNING:
            raise GuestUnhealthy('guest %s on %s is in state %d (reason %d), not running'
                                 % (name, h.name, state, reason))
        hbs = self.heartbeats(h, name)
        seq = hbs[-1].seq if hbs else 0
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(beats):
            last = self.wait_heartbeat(h, name, after_seq=seq,
                                       timeout=max(0.1, deadline - time.monotonic()))
            seq = last.seq
        bad = self.console_problems(name)
        if bad:
            raise GuestUnhealthy('guest %s crashed: %s' % (name, bad))
        return last

    @staticmethod
    def _tail(path, n=400):
        try:
            with open(path, errors='replace') as f:
                return f.read()[-n:]
        except OSError:
            return '(none)'

    # -- migrations ----------------------------------------------------------------------

    def migrate(self, src, dst, name, bandwidth_mibs=None, postcopy=False, flags=None,
                extra_flags=0, params=None, wait=True, timeout=300):
        """Peer-to-peer live migration src -> dst through the source's libvirtd:
        dom.migrateToURI3(dst.tcp_uri, params, flags), with flags LIVE|PEER2PEER
        (|POSTCOPY when postcopy) unless given, and params {bandwidth: bandwidth_mibs}.
        wait=True: blocks, raises LabError on failure, returns the Migration.
        wait=False: returns the running Migration (wait(), stats(), wait_pass(n),
        start_postcopy(), abort())."""
        s, d = self.host(src), self.host(dst)
        if flags is None:
            flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
            if postcopy:
                flags |= libvirt.VIR_MIGRATE_POSTCOPY
        flags |= extra_flags
        p = dict(params or {})
        if bandwidth_mibs:
            p[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(bandwidth_mibs)
        m = Migration(s, d, name, flags, p).start()
        if wait:
            m.wait(timeout)
        return m


def _self_test():
    """/usr/bin/python3 -m tests.lab.lab: up, boot, migrate A->B->A, down, with timings."""
    with Lab(verbose=True) as lab:
        a, b = lab.hosts
        lab.start_guest(a, 'selftest', mem_mib=256, dirty_mib=32, dirty_rate=0)
        lab._log('guest booted')
        m = lab.migrate(a, b, 'selftest')
        lab._log('A->B %.1fs' % m.elapsed)
        print(lab.check_guest_healthy(b, 'selftest'))
        m = lab.migrate(b, a, 'selftest')
        lab._log('B->A %.1fs' % m.elapsed)
        print(lab.check_guest_healthy(a, 'selftest'))
        print(lab.timings)


if __name__ == '__main__':
    _self_test()
