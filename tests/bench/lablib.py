"""Shared pieces of the lab benchmarks: the peers (virsh itself; nova's monitor emulated on
libvirt directly), one measured migration, the guest's heartbeats, the agent's log."""
import datetime
import re
import subprocess
import time

import libvirt

from tests.lab import lab as lablib
from tests.lab.events import EventRecorder
from tests.bench.model.sim import nova_schedule

# the agent's log: "<date> <time>.<ms> <pid> <LEVEL> [instance: <uuid>] <message>"
LOG_RE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ (\w+) '
                    r'(?:\[instance: ([0-9a-f-]{36})\] )?(.*)$', re.M)
PASS_RE = re.compile(r'^pass (\d+) started$')
DOWNTIME_MS = 300           # QEMU's default downtime-limit
SWITCH_RE = re.compile(r'^switched to post-copy at pass (\d+), (-?\d+) ms after the pass '
                       r'began \(rule ([\w-]+)\): (.*)$')
NOSWITCH_RE = re.compile(r'^pass 2: no switch: (.*)$')


# ---- policies on libvirt directly (what each tool does to the job) ----------------------

class Controller:
    """Drives one running migration like a given tool; run() returns when it is over."""
    flags = 0
    tick = 0.05
    limit_s = 0.0

    def __init__(self, limit_s=0.0):
        self.limit_s = limit_s
        self.rule = ''

    def step(self, m, rec, elapsed):
        return None

    def run(self, m, rec):
        t0 = m.started
        while not m.done.wait(self.tick):
            elapsed = time.monotonic() - t0
            act = self.step(m, rec, elapsed)
            if act is None and self.limit_s and elapsed >= self.limit_s:
                self.rule, act = 'max-time', 'abort'
            try:
                if act == 'switch':
                    m.start_postcopy()
                    self.act_at = elapsed
                    return self._idle(m)
                if act == 'abort':
                    self.last_stats = m.stats()
                    m.abort()
                    self.act_at = elapsed
                    return m.wait(timeout=120, check=False)
            except libvirt.libvirtError as e:
                self.error = str(e)
                return m.wait(timeout=120, check=False)
        return True

    def _idle(self, m):
        return m.wait(timeout=120, check=False)


class Agent(Controller):
    """migpilot: the agent (started by the caller) does everything; only a safety net."""
    flags = libvirt.VIR_MIGRATE_POSTCOPY


class Virsh(Controller):
    """virsh itself: `virsh migrate --live --p2p --persistent --postcopy
    --postcopy-after-precopy`, which switches on the MIGRATION_ITERATION 2 event. The bench
    only watches; measure() starts the migration with the command (VirshMigration)."""
    flags = libvirt.VIR_MIGRATE_POSTCOPY
    command = True

    def step(self, m, rec, elapsed):
        if rec.max_iteration() >= 2 and not self.rule:
            self.rule = 'pass-2'
        return None


class VirshMigration(lablib.Migration):
    """A lab migration run by the virsh binary against the source's libvirtd, with the
    same cap for pre-copy and post-copy as the other peers."""

    def __init__(self, src, dst, name, bandwidth_mibs, timeout=300):
        super().__init__(src, dst, name, 0, {})
        self.argv = ['virsh', '-q', '-c', src.uri, 'migrate', '--live', '--p2p',
                     '--persistent', '--postcopy', '--postcopy-after-precopy',
                     '--bandwidth', str(int(bandwidth_mibs)),
                     '--postcopy-bandwidth', str(int(bandwidth_mibs)),
                     name, dst.tcp_uri]
        self.timeout = timeout

    def _run(self):
        try:
            r = subprocess.run(self.argv, capture_output=True, text=True,
                               timeout=self.timeout)
            if r.returncode != 0:
                self.error = lablib.LabError('virsh migrate: exit %d: %s' % (
                    r.returncode, (r.stderr or r.stdout).strip()[:300]))
        except (OSError, subprocess.TimeoutExpired) as e:
            self.error = e
        finally:
            self.finished = time.monotonic()
            try:
                self._mig_conn.close()
            except libvirt.libvirtError:
                pass
            self.done.set()


class PreCopy(Controller):
    """Pure pre-copy (QEMU's default 300 ms max downtime), aborted after limit_s."""
    tick = 0.25


class AutoConverge(PreCopy):
    """QEMU's auto-converge (CPU throttling), aborted after limit_s."""
    flags = libvirt.VIR_MIGRATE_AUTO_CONVERGE


class Nova(Controller):
    """nova Zed's monitor, time-compressed by `scale`: polls every 0.5 s, sets the downtime
    steps with virDomainMigrateSetMaxDowntime, and at the completion timeout forces
    post-copy (at the next poll, as nova's queued force-complete task) or aborts."""
    tick = 0.5

    def __init__(self, action, ram_bytes, scale):
        super().__init__()
        self.action = action
        self.flags = libvirt.VIR_MIGRATE_POSTCOPY if action == 'force_complete' else 0
        self.sched, self.timeout = nova_schedule(ram_bytes, scale=scale)
        self.step_i = -1
        self.forced = False

    def step(self, m, rec, elapsed):
        if self.forced:
            self.rule = 'completion-timeout'
            return 'switch'
        if elapsed > self.timeout:
            if self.action == 'force_complete':
                self.forced = True
            else:
                self.rule = 'completion-timeout'
                return 'abort'
        i = max(j for j, (t, _) in enumerate(self.sched) if elapsed > t or j == 0)
        if i != self.step_i:
            try:
                m.dom.migrateSetMaxDowntime(self.sched[i][1], 0)
                self.step_i = i
            except libvirt.libvirtError:
                pass
        return None


# ---- one measured migration ---------------------------------------------------------------

def heartbeat_seq(lab, name):
    seqs = [hb.seq for h in lab.hosts for hb in lab.heartbeats(h, name)]
    return max(seqs, default=0)


def stall_ms(lab, name, seq_before, seq_after):
    """The largest guest-visible pause the guest's own heartbeats saw during the migration
    (both hosts' consoles: the guest beats on the source, then on the destination)."""
    gaps = [hb.maxgap_ms for h in lab.hosts for hb in lab.heartbeats(h, name)
            if seq_before < hb.seq <= seq_after + 1]
    return max(gaps, default=None)


def measure(lab, src, dst, name, ctl, bandwidth_mibs, healthy_beats=1):
    """Migrates name src -> dst under controller ctl; returns the figures of the run."""
    rec = EventRecorder(src)
    seq0 = heartbeat_seq(lab, name)
    # the same rules for every peer: QEMU's default max downtime at the start (nova's
    # steps, set on the source QEMU, outlive an aborted migration of nova's runs)
    lab.host(src).domain(name).migrateSetMaxDowntime(DOWNTIME_MS, 0)
    params = {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: int(bandwidth_mibs)}
    try:
        if getattr(ctl, 'command', False):
            m = VirshMigration(lab.host(src), lab.host(dst), name, bandwidth_mibs).start()
        else:
            m = lab.migrate(src, dst, name, bandwidth_mibs=bandwidth_mibs, wait=False,
                            extra_flags=ctl.flags | libvirt.VIR_MIGRATE_PERSIST_DEST,
                            params=params)
        first = {}
        while not first and not m.done.is_set():
            first = m.stats()
        ctl.run(m, rec)
        m.wait(timeout=180, check=False)
        ok = m.error is None
        sw = rec.switch_info()
    finally:
        rec.close()
    cs = m.completed_stats() if ok else {}
    last = getattr(ctl, 'last_stats', {}) or {}
    where = lab.find_guest(name)
    healthy, why = False, ''
    try:
        if where is None:
            raise lablib.GuestUnhealthy('guest %s runs nowhere' % name)
        lab.check_guest_healthy(where, name, beats=healthy_beats)
        healthy = True
    except lablib.GuestUnhealthy as e:
        why = str(e)[:300]
    seq1 = heartbeat_seq(lab, name)
    run = {
        'outcome': 'completed' if ok else ('aborted' if getattr(ctl, 'act_at', None) is not None
                                           else 'failed'),
        'mode': ('post-copy' if sw else 'pre-copy') if ok else 'none',
        'time_s': (cs.get('time_elapsed') / 1000.0 if cs.get('time_elapsed') else
                   (last.get('time_elapsed', 0) / 1000.0 or m.elapsed)),
        'wall_s': round(m.elapsed, 3),
        'downtime_ms': cs.get('downtime') if ok else None,
        'bytes': cs.get('data_processed', cs.get('memory_processed')) if ok else
        last.get('data_processed'),
        'passes': cs.get('memory_iteration') if ok else last.get('memory_iteration'),
        'switch_pass': sw[0] if sw else None,
        'switch_latency_events_ms': round(sw[1] * 1000, 1) if sw else None,
        'postcopy_requests': cs.get('memory_postcopy_requests'),
        'stall_ms': stall_ms(lab, name, seq0, seq1),
        'healthy': healthy, 'where': where.name if where else None,
        'rule': ctl.rule, 'error': str(m.error)[:200] if m.error else None,
    }
    if not healthy:
        run['unhealthy'] = why
    return run


def parse_agent_log(text):
    """Switch decisions in an agent log: for each 'switched to post-copy at pass N, X ms
    after the pass began', the agent's X and the log-stamp gap from its 'pass N started'
    (debug) line of the same instance, which also covers the virDomainMigrateStartPostCopy
    round trip (the switched line is written after the call returned); its rule and
    explanation, and for a switch after pass 2 why pass 2 was not switched."""
    started = {}
    pass2 = {}      # why pass 2 was not switched, by instance, until its switch
    out = []
    for m in LOG_RE.finditer(text):
        stamp, level, inst, msg = m.groups()
        when = datetime.datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S.%f').timestamp()
        p = PASS_RE.match(msg)
        if p and inst:
            started[(inst, int(p.group(1)))] = when
            continue
        n = NOSWITCH_RE.match(msg)
        if n and inst:
            pass2[inst] = n.group(1)
            continue
        s = SWITCH_RE.match(msg)
        if s and inst:
            k = int(s.group(1))
            t0 = started.get((inst, k))
            out.append({'instance': inst, 'pass': k, 'agent_ms': int(s.group(2)),
                        'log_ms': round((when - t0) * 1000, 1) if t0 is not None else None,
                        'rule': s.group(3), 'explanation': s.group(4),
                        'pass2': pass2.pop(inst, None) if k > 2 else None})
    return out
