"""A migpilot-agent process for tests: config written to a temp dir, started and stopped
by PID, its log kept for assertions."""
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PR_SET_PDEATHSIG = 1   # <linux/prctl.h>
AGENT = os.environ.get('MIGPILOT_AGENT', os.path.join(REPO, 'build', 'migpilot-agent'))
# e.g. "valgrind --error-exitcode=99 ...": every Agent of a suite runs under it
WRAPPER = shlex.split(os.environ.get('MIGPILOT_AGENT_WRAPPER', ''))


def _die_with_parent():
    # pytest killed by its timeout ends without fixture teardown: the agent must not outlive it
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class AgentError(AssertionError):
    pass


class Agent:
    """migpilot-agent --foreground with a generated config.

    `wrapper` runs the agent under another command (valgrind), `policy` and `extra` add
    keys: extra = {'section': {'key': 'value'}}.
    """

    def __init__(self, libvirt_uri, transport_url, host='lab-a', policy=None, extra=None,
                 state_dir=None, wrapper=None, binary=None):
        self.dir = tempfile.mkdtemp(prefix='mpagent-')
        self.state_dir = state_dir or os.path.join(self.dir, 'state')
        self.config = os.path.join(self.dir, 'migpilot.conf')
        self.log_path = os.path.join(self.dir, 'agent.log')
        self.binary = binary or AGENT
        self.wrapper = list(wrapper or WRAPPER)
        self.proc = None
        self._log = None
        sections = {
            'DEFAULT': {'host': host, 'state_dir': self.state_dir, 'log_level': 'debug',
                        'progress_interval_ms': '1000'},
            'amqp': {'transport_url': transport_url, 'reconnect_min_ms': '200',
                     'reconnect_max_ms': '1000', 'heartbeat_s': '10'},
            'libvirt': {'uri': libvirt_uri, 'reconnect_interval_ms': '500',
                        'discovery_interval_ms': '1000'},
            'logs': {'nova_compute_log': ''},
            'policy': dict(policy or {}),
        }
        for section, keys in (extra or {}).items():
            sections.setdefault(section, {}).update(keys)
        with open(self.config, 'w') as f:
            for section, keys in sections.items():
                f.write('[%s]\n' % section)
                for key, value in keys.items():
                    f.write('%s = %s\n' % (key, value))

    def start(self, timeout=20):
        if not os.access(self.binary, os.X_OK):
            raise AgentError('%s is not built (run make)' % self.binary)
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            self.wrapper + [self.binary, '--foreground', '--config', self.config],
            stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.wait_log(r'libvirt: connected to', timeout=timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_log(self, pattern, timeout=30, count=1):
        """Waits until pattern (a regex) appears `count` times in the log; returns the
        matches. Fails early if the agent died."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = rx.findall(self.log())
            if len(found) >= count:
                return found
            if self.proc and self.proc.poll() is not None:
                raise AgentError('agent exited with %s while waiting for %r; log:\n%s'
                                 % (self.proc.returncode, pattern, self.log()[-3000:]))
            if time.monotonic() > deadline:
                raise AgentError('%r not in the agent log within %ss; log:\n%s'
                                 % (pattern, timeout, self.log()[-3000:]))
            time.sleep(0.1)

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def rewrite_policy(self, policy):
        """Replaces the [policy] section of the config file with `policy`, atomically (the
        agent reads it at its next SIGHUP)."""
        with open(self.config) as f:
            text = f.read()
        body = ''.join('%s = %s\n' % kv for kv in policy.items())
        new, n = re.subn(r'(?ms)^\[policy\]\n.*?(?=^\[|\Z)',
                         lambda _m: '[policy]\n' + body, text)
        if n != 1:
            raise AgentError('no single [policy] section in %s' % self.config)
        with open(self.config + '.new', 'w') as f:
            f.write(new)
        os.replace(self.config + '.new', self.config)

    def reload_policy(self, policy, timeout=10):
        """rewrite_policy, SIGHUP, and waits for the agent to say it took the new mode."""
        said = (r'SIGHUP: \[policy\] reloaded from \S+ \(mode %s\)'
                % re.escape(policy.get('mode', 'auto')))
        before = len(re.findall(said, self.log()))
        self.rewrite_policy(policy)
        self.send_signal(signal.SIGHUP)
        self.wait_log(said, timeout=timeout, count=before + 1)

    def stop(self, timeout=20, sig=signal.SIGTERM):
        """Stops the agent by PID; returns its exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        rc = self.proc.returncode
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def kill(self):
        return self.stop(sig=signal.SIGKILL)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
