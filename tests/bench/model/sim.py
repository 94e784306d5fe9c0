"""A first-principles model of a live migration, pass by pass, under several switch policies.

Physics (bytes and seconds; one link of goodput B):
- Pass 1 sends the guest's used memory U (zero pages cost next to nothing); each later pass
  sends what the previous bitmap sync found dirty.
- The guest rewrites a working set W sequentially at D bytes/s, so the pages dirtied in a
  window of dt seconds are min(W, D * dt) (this is how the lab's dirtier and the `stress`
  tool of the published runs behave).
- A pass ends with a bitmap sync once it has sent its pages (QEMU syncs when less than
  one rate-limit chunk is left; the model neglects that chunk); QEMU completes when what
  the sync finds fits under the threshold B x max-downtime: the guest then stops for
  (remaining / B + a fixed switch-over).
- QEMU's reported dirty rate is (pages found at a sync) / (time since the previous sync),
  so it saturates at W / pass time: the trap that makes rho look < 1 while pre-copy stalls.
- A switch to post-copy stops the source for the device state (switch-over cost), then the
  destination runs while the rest, (what the current pass had not sent) + (dirtied since its
  sync), capped by the working set, comes over at the post-copy bandwidth. That time is the
  risk window: a failure of either host or the link then loses the guest.

Policies (each a small state machine fed by the simulator):
- `migpilot`: the real C policy through `_migpilot.Policy`, fed what the agent feeds it:
  a MIGRATION_ITERATION event at each sync, a fresh job-stats sample right after it, and
  samples every 250 ms; and the guest's measured dirtying (QEMU calc-dirty-rate, page
  sampling, see `dirty_measurement`): the agent's last periodic measurement when the
  migration starts, and the one it starts at once, when its longest window is over.
- `nova-force` / `nova-abort`: nova Zed's monitor: polls every 0.5 s, raises max downtime in
  `downtime_steps` (10 steps, 75 s per GiB of data_gb apart, to live_migration_downtime),
  and at live_migration_completion_timeout (800 s per GiB, data_gb = max(2, RAM GiB))
  forces post-copy (switch at the next poll) or aborts.
- `virsh`: `virsh migrate --postcopy-after-precopy`: switch when pass 2 starts.
- `precopy`: pure pre-copy, aborted after a maximum time.
"""
import math
from dataclasses import dataclass, field

GiB = float(1 << 30)
MiB = float(1 << 20)
PAGE = 4096


@dataclass
class Workload:
    ram: float                  # guest RAM, bytes (memory_total)
    used: float                 # bytes pass 1 really sends (non-zero pages), >= wss
    wss: float                  # writable working set, bytes
    dirty_rate: float           # bytes/s written sequentially over the working set
    bandwidth: float            # link goodput during pre-copy, bytes/s
    downtime_ms: float = 300.0  # max downtime (QEMU's default 300 ms; nova ramps its own)
    postcopy_bw: float = 0.0    # bytes/s in post-copy; 0 = the link (bandwidth)
    switchover_s: float = 0.05  # device state + handshake when the source stops
    overhead_s: float = 0.0     # fixed set-up time before pass 1 (nova, libvirt, QEMU)
    max_time_s: float = 0.0     # simulation horizon for policies without their own limit
    label: dict = field(default_factory=dict)

    @property
    def bound_s(self):
        """The hybrid bound: pass 1 plus the working set once, at link speed."""
        return self.overhead_s + (self.used + self.wss) / self.bandwidth

    @property
    def pc_bw(self):
        return self.postcopy_bw or self.bandwidth


@dataclass
class Result:
    policy: str
    outcome: str                # completed | aborted | timeout (never finished)
    mode: str                   # pre-copy | post-copy | none
    total_s: float              # start to end (or to the abort)
    bytes: float
    passes: int
    downtime_s: float = 0.0
    postcopy_s: float = 0.0     # risk window
    switch_s: float = -1.0      # when the switch happened (-1: none)
    switch_pass: int = 0
    rule: str = ''

    def as_dict(self):
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


# ---------------------------------------------------------------------------------------
# policies: on_start(w), on_pass(k, t) -> action, on_tick(t, state) -> action
# actions: None, 'switch', 'abort'; set_downtime(ms) via self.downtime_ms

class Policy:
    name = 'base'
    postcopy = True             # started with VIR_MIGRATE_POSTCOPY
    tick = 0.0                  # period of on_tick calls (0 = never)
    skip_ok = True              # the simulator may jump over identical passes

    def start(self, w):
        self.w = w
        self.downtime_ms = w.downtime_ms
        self.rule = ''

    def on_pass(self, k, t, st):
        return None

    def on_tick(self, t, st):
        return None

    def next_event(self, t):
        """Next time at which this policy may change its mind without a new pass."""
        return math.inf


class PreCopy(Policy):
    """Pure pre-copy; aborted at max_time_s (0: never)."""
    name = 'precopy'
    postcopy = False
    tick = 0.5                  # the controller that enforces the limit

    def __init__(self, max_time_s=None, name=None):
        self.max_time_s = max_time_s
        if name:
            self.name = name

    def start(self, w):
        super().start(w)
        self.limit = self.max_time_s if self.max_time_s is not None else w.max_time_s

    def on_tick(self, t, st):
        if self.limit and t >= self.limit:
            self.rule = 'max-time'
            return 'abort'
        return None

    def next_event(self, t):
        return self.limit if self.limit and self.limit > t else math.inf


class Virsh(Policy):
    """virsh migrate --postcopy-after-precopy: switch on the MIGRATION_ITERATION 2 event."""
    name = 'virsh'

    def on_pass(self, k, t, st):
        if k >= 2:
            self.rule = 'pass-2'
            return 'switch'
        return None


def nova_schedule(ram_bytes, downtime_ms=500, steps=10, delay_per_gib=75.0,
                  timeout_per_gib=800.0, scale=1.0):
    """nova Zed's downtime steps [(t_s, ms)] and completion timeout (s) for a guest with no
    copied disk; scale < 1 compresses the time axis (the lab runs nova's logic faster)."""
    data_gb = max(2.0, ram_bytes / GiB)
    delay = int(delay_per_gib * data_gb) * scale
    base = downtime_ms / steps
    offset = (downtime_ms - base) / steps
    sched = [(delay * i, int(base + offset * i)) for i in range(steps + 1)]
    return sched, int(timeout_per_gib * data_gb) * scale


class Nova(Policy):
    """nova Zed's monitor loop (0.5 s poll): downtime steps, then at the completion
    timeout force_complete (post-copy at the next poll) or abort."""
    tick = 0.5

    def __init__(self, action='force_complete', schedule=None, timeout_s=None,
                 final_downtime_ms=None, name=None):
        self.action = action
        self.name = name or ('nova-force' if action == 'force_complete' else 'nova-abort')
        self.postcopy = action == 'force_complete'
        self._sched, self._timeout = schedule, timeout_s
        self.final_downtime_ms = final_downtime_ms

    def start(self, w):
        super().start(w)
        final = self.final_downtime_ms or w.downtime_ms
        sched, timeout = nova_schedule(w.ram, downtime_ms=final)
        self.sched = self._sched if self._sched is not None else sched
        self.timeout = self._timeout if self._timeout is not None else timeout
        self.step = 0
        self.forced_at = None
        self.downtime_ms = self.sched[0][1]   # applied at the first poll (elapsed > 0)

    def on_tick(self, t, st):
        # nova: run_tasks (the queued force-complete), then the timeout, then the downtime
        if self.forced_at is not None and t > self.forced_at:
            self.rule = 'completion-timeout'
            return 'switch'
        if self.timeout and t > self.timeout and self.forced_at is None:
            if self.action == 'force_complete':
                self.forced_at = t
            else:
                self.rule = 'completion-timeout'
                return 'abort'
        while self.step + 1 < len(self.sched) and t > self.sched[self.step + 1][0]:
            self.step += 1
            self.downtime_ms = self.sched[self.step][1]
        return None

    def next_event(self, t):
        nxt = [self.sched[self.step + 1][0]] if self.step + 1 < len(self.sched) else []
        if self.timeout:
            nxt.append(self.timeout)
        if self.forced_at is not None:
            nxt.append(self.forced_at)
        # the poll after an event acts on it
        polls = [(math.floor(x / self.tick) + 1) * self.tick for x in nxt]
        polls = [x for x in polls if x > t]
        return min(polls) if polls else math.inf


SAMPLE_PAGES_PER_GIB = 512     # QEMU calc-dirty-rate's default sample-pages


def dirty_measurement(w, windows_ms=(1000, 4000), seed=None, age_ms=0):
    """What QEMU's calc-dirty-rate (page sampling) reports for the guest of w, one
    measurement per window: the distinct pages written in T seconds, min(W, D x T), over T,
    in whole MiB/s. With a seed, the sampling error: QEMU hashes sample-pages random pages
    per GiB before and after the window and scales the share found changed to the RAM, so
    the count found is binomial (normal approximation, clipped); the same seed and workload
    give the same figures."""
    import random
    rng = random.Random('%s:%s' % (seed, sorted(w.label.items()))) if seed is not None \
        else None
    n = max(1, int(SAMPLE_PAGES_PER_GIB * w.ram / GiB))
    out = []
    for t_ms in windows_ms:
        pages = min(w.wss, w.dirty_rate * t_ms / 1000.0)
        if rng is not None:
            p = min(1.0, pages / w.ram)
            found = rng.gauss(n * p, math.sqrt(n * p * (1 - p)))
            pages = min(max(0.0, round(found)), n) / n * w.ram
        out.append((int(t_ms), int(round(pages / (t_ms / 1000.0) / MiB))))
    return {'windows': out, 'memory_bytes': int(w.ram), 'age_ms': int(age_ms)}


class Migpilot(Policy):
    """The real policy (agent/core/mppolicy.c) through _migpilot.Policy.

    dirty: None (no measurement: the policy of samples alone), or a dict with
    windows_ms (calc-dirty-rate windows, shortest first), seed (sampling noise; None: exact)
    and periodic_age_ms (age of the agent's periodic measurement when the migration starts;
    None: there is none). Whatever the periodic one, the agent measures at once when the
    migration starts: fed when its longest window is over."""
    name = 'migpilot'
    tick = 0.25                 # the agent's job-stats poll
    latency_s = 0.005           # event -> fresh sample -> virDomainMigrateStartPostCopy

    def __init__(self, dirty=None, **config):
        import _migpilot        # the extension built by `make python`
        self._mk = lambda: _migpilot.Policy(**config)
        self.config = config
        self.dirty = dirty

    def start(self, w):
        super().start(w)
        self.p = self._mk()
        self.decided = None
        self.samples_in_pass = 0
        self.last_ms = -1
        self.fresh_at = math.inf
        if self.dirty is not None:
            wins = tuple(self.dirty.get('windows_ms', (1000, 4000)))
            seed = self.dirty.get('seed')
            age = self.dirty.get('periodic_age_ms')
            if age is not None:
                # the guest did the same then: a different draw of the sampling error
                self.p.set_dirty(dirty_measurement(w, wins, None if seed is None else
                                                   '%s-periodic' % seed, age))
            self.fresh = dirty_measurement(w, wins, seed, 0)
            self.fresh_at = max(wins) / 1000.0

    @property
    def skip_ok(self):
        # once the policy has judged a few passes the same way, more identical passes
        # change nothing (no deadline is configured by default)
        return self.decided is None and self.passes_seen > 12

    def _sample(self, t, st):
        self.last_ms = int(t * 1000)
        s = {'elapsed_ms': int(t * 1000), 'pass': st.k,
             'memory_total': int(self.w.ram),
             'memory_processed': int(st.sent_at(t)),
             'memory_remaining': int(st.remaining_at(t)),
             'max_downtime_ms': int(self.downtime_ms),
             'postcopy_permitted': True}
        if t > 0.2:
            s['memory_bps'] = int(self.w.bandwidth)
        if st.reported_dirty is not None:
            s['dirty_rate_pps'] = int(st.reported_dirty / PAGE)
            s['page_size'] = PAGE
        return s

    def _judge(self, d, t):
        if d['action'] == 'switch' and self.decided is None:
            self.decided = d
            self.rule = d['rule']
            return 'switch'
        return None

    passes_seen = 0

    def on_pass(self, k, t, st):
        self.passes_seen = k
        self.samples_in_pass = 0
        if self.decided:
            return None
        a = self._judge(self.p.feed_iteration(k, int(t * 1000)), t)
        if a:
            return a
        # the agent polls at once on the event: the decision point is the pass start
        return self._judge(self.p.feed_sample(self._sample(t + self.latency_s, st)), t)

    def next_event(self, t):
        return self.fresh_at if self.fresh_at > t else math.inf

    def on_tick(self, t, st):
        if self.decided:
            return None
        if t >= self.fresh_at:
            self.p.set_dirty(self.fresh)
            self.fresh_at = math.inf
        self.samples_in_pass += 1
        if self.samples_in_pass > 12 and st.k >= 2:
            return None         # the policy only judges pass starts; spare the CPU
        if int(t * 1000) < self.last_ms:
            return None         # the fresh poll after a pass event came later
        return self._judge(self.p.feed_sample(self._sample(t, st)), t)


# ---------------------------------------------------------------------------------------

class _State:
    """The migration as the policies see it (what libvirt's job stats would say)."""

    def __init__(self, w):
        self.w = w
        self.k = 1
        self.t_pass = 0.0           # when the current pass started (its sync)
        self.r_pass = w.ram         # bitmap at the pass start, bytes (pass 1: all pages)
        self.send_pass = w.used     # bytes the pass sends before the next sync
        self.left_end = 0.0         # bitmap left (unsent) when the pass syncs
        self.sent_before = 0.0      # bytes sent by earlier passes
        self.reported_dirty = None

    def sent_at(self, t):
        return self.sent_before + min(self.send_pass,
                                      self.w.bandwidth * max(0.0, t - self.t_pass))

    def remaining_at(self, t):
        done = min(1.0, self.w.bandwidth * max(0.0, t - self.t_pass) / self.send_pass) \
            if self.send_pass > 0 else 1.0
        return self.r_pass - (self.r_pass - self.left_end) * done


def simulate(w, policy, horizon_s=None):
    """Runs one migration of workload w under policy; returns a Result."""
    policy.start(w)
    B = w.bandwidth
    horizon = horizon_s or 1e7
    st = _State(w)
    t0 = w.overhead_s
    t = 0.0                      # job time (the fixed overhead is added to the results)
    latency = getattr(policy, 'latency_s', 0.0)
    thr = B * policy.downtime_ms / 1000.0
    st.send_pass = w.used       # pass 1: the used memory (zero pages cost ~nothing)
    last_sync = 0.0
    next_tick = policy.tick if policy.tick else math.inf
    action = policy.on_pass(1, 0.0, st)

    def dirtied_since_sync(ts):
        return min(w.wss, w.dirty_rate * (ts - last_sync))

    def union(unsent, dirtied, cap):
        # pages dirtied again may be among the unsent ones: at most the working set
        # (pass 1: at most the used memory) is dirty at once
        return min(unsent + dirtied, max(cap, unsent))

    def postcopy(ts):
        sent_pass = min(st.send_pass, B * max(0.0, ts - st.t_pass))
        unsent = st.send_pass - sent_pass + st.left_end
        rest = union(unsent, dirtied_since_sync(ts), w.used if st.k == 1 else w.wss)
        pc = rest / w.pc_bw
        return Result(policy.name, 'completed', 'post-copy',
                      t0 + ts + w.switchover_s + pc, st.sent_before + sent_pass + rest,
                      st.k, downtime_s=w.switchover_s, postcopy_s=pc, switch_s=t0 + ts,
                      switch_pass=st.k, rule=policy.rule)

    def stopped(ta, outcome, rule):
        return Result(policy.name, outcome, 'none', t0 + ta, st.sent_at(ta), st.k,
                      rule=rule)

    while True:
        if action == 'switch':
            return postcopy(t + latency)
        if action == 'abort':
            return stopped(t, 'aborted', policy.rule)
        pass_end = st.t_pass + st.send_pass / B
        if next_tick <= pass_end:
            # a poll inside this pass: the policy may change downtime, switch or abort
            t = next_tick
            if t > horizon:
                return stopped(t, 'timeout', 'horizon')
            next_tick += policy.tick
            action = policy.on_tick(t, st)
            thr = B * policy.downtime_ms / 1000.0
            continue
        # the bitmap sync at the end of the pass
        t = pass_end
        if t > horizon:
            return stopped(t, 'timeout', 'horizon')
        dirtied = dirtied_since_sync(t)
        r_new = dirtied
        st.reported_dirty = dirtied / max(1e-9, t - last_sync)
        st.sent_before += st.send_pass
        last_sync = t
        if r_new < thr:
            # under the threshold: QEMU stops the guest and sends the rest
            down = r_new / B + w.switchover_s
            return Result(policy.name, 'completed', 'pre-copy', t0 + t + down,
                          st.sent_before + r_new, st.k + 1, downtime_s=down,
                          rule=policy.rule)
        prev = (st.r_pass, st.send_pass)
        st.k += 1
        st.t_pass = t
        st.r_pass = r_new
        st.send_pass = r_new
        # a stationary cycle: identical passes until the policy's next event; jump them
        if policy.skip_ok and st.k > 3 and abs(prev[0] - r_new) < 1.0 and \
                abs(prev[1] - st.send_pass) < 1.0 and st.send_pass > 0:
            period = st.send_pass / B
            until = min(policy.next_event(t), horizon)
            n = int((until - t) / period) - 1 if until < math.inf else 0
            if n > 0:
                st.k += n
                st.sent_before += n * st.send_pass
                t += n * period
                st.t_pass = t
                last_sync = t
                if policy.tick:
                    next_tick = (math.floor(t / policy.tick) + 1) * policy.tick
        action = policy.on_pass(st.k, t, st)


def converges(w):
    """Whether pure pre-copy with w.downtime_ms converges at all (no time limit), and when."""
    r = simulate(w, PreCopy(max_time_s=0, name='precopy-unlimited'), horizon_s=1e7)
    return r.outcome == 'completed', r
