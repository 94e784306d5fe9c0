#!/usr/bin/python3
"""Records a live migration's libvirt job stats and events as JSON lines.

Format (read by the policy's unit tests; one JSON object per line):

  {"kind":"meta","guest_mem_mib":512,"dirty_mib":256,"dirty_rate_mibs":100,"bandwidth_mibs":32,
   "max_downtime_ms":300,"flags":<virDomainMigrateFlags>,"scenario":"...",
   "dirty":{"mode":"page-sampling","memory_bytes":..,"age_ms":..,
            "windows":[{"window_ms":1000,"rate_mibs":..},...]}}
        "dirty" (traces recorded since the dirty-rate work): the guest's dirtying measured
        with virDomainStartDirtyRateCalc just before the migration, windows one after the
        other, shortest first (the fields of mpDirtyMeasurement, agent/core/mpdirty.h);
        age_ms = from the end of the last window to the migration start.
  {"kind":"sample","t_ms":..,"time_elapsed_ms":..,"pass":..,"memory_total":..,
   "memory_processed":..,"memory_remaining":..,"memory_bps":..,"dirty_rate_pps":..,
   "page_size":..,"expected_downtime_ms":..,"postcopy_requests":..}
        every poll of the source's jobStats() (<= 250 ms apart); keys libvirt did not give
        are omitted. t_ms = ms since the migration was started (monotonic clock).
  {"kind":"event","t_ms":..,"event":"iteration","pass":N}          MIGRATION_ITERATION
  {"kind":"event","t_ms":..,"event":"postcopy_switch"}              the caller switched
  {"kind":"event","t_ms":..,"event":"lifecycle","detail":"SUSPENDED/POSTCOPY"}  (source)
  {"kind":"completed","t_ms":..,<every key of the JOB_COMPLETED event's stats, or of
        jobStats(COMPLETED) if no event came>}   always last. A failed/aborted migration
        gets no JOB_COMPLETED and libvirt keeps no stats for it: {"kind":"completed",
        "t_ms":..,"type":0,"error":"operation aborted: job 'migration out' canceled by client"}

Use from a test:

    rec = TraceRecorder(path, src_host, 'g1', meta={...}).start()   # just before migrating
    m = lab.migrate(a, b, 'g1', ..., wait=False)
    ...; rec.postcopy_switch(); m.start_postcopy()
    m.wait(); rec.finish()

Record the stored traces (tests/data/traces/):

    /usr/bin/python3 -m tests.lab.trace [--out DIR] [SCENARIO ...]     (default: all)
"""
import argparse
import json
import os
import sys
import threading
import time

import libvirt

SAMPLE_KEYS = (
    ('time_elapsed', 'time_elapsed_ms'),
    ('memory_iteration', 'pass'),
    ('memory_total', 'memory_total'),
    ('memory_processed', 'memory_processed'),
    ('memory_remaining', 'memory_remaining'),
    ('memory_bps', 'memory_bps'),
    ('memory_dirty_rate', 'dirty_rate_pps'),
    ('memory_page_size', 'page_size'),
    ('downtime', 'expected_downtime_ms'),
    ('memory_postcopy_requests', 'postcopy_requests'),
)

_EVENT_TYPES = ('DEFINED', 'UNDEFINED', 'STARTED', 'SUSPENDED', 'RESUMED', 'STOPPED',
                'SHUTDOWN', 'PMSUSPENDED', 'CRASHED')


def lifecycle_name(event, detail):
    """'SUSPENDED/POSTCOPY' from libvirt's numeric lifecycle event and detail."""
    ename = _EVENT_TYPES[event] if 0 <= event < len(_EVENT_TYPES) else str(event)
    prefix = 'VIR_DOMAIN_EVENT_%s_' % ename
    for k in dir(libvirt):
        if k.startswith(prefix) and getattr(libvirt, k) == detail:
            return '%s/%s' % (ename, k[len(prefix):])
    return '%s/%d' % (ename, detail)


class TraceRecorder:
    """Polls the source's jobStats() every `interval` s and records the domain's events on
    the source connection, writing the trace to `path`."""

    def __init__(self, path, src, name, meta, interval=0.2):
        from .lab import ensure_event_loop
        ensure_event_loop()
        self.path = path
        self.src = src
        self.name = name
        self.meta = dict(meta)
        self.interval = interval
        self.conn = src.open()            # own connection: its callbacks are ours alone
        self.dom = self.conn.lookupByName(name)
        self.lock = threading.Lock()
        self.f = None
        self.t0 = None
        self.callbacks = []
        self.completed = None
        self.completed_event = threading.Event()
        self.stop_polling = threading.Event()
        self.thread = None
        self.lines = []

    def _t_ms(self):
        return int(round((time.monotonic() - self.t0) * 1000))

    def _write(self, obj):
        with self.lock:
            if self.f is None:
                return
            line = json.dumps(obj, separators=(',', ':'))
            self.f.write(line + '\n')
            self.f.flush()
            self.lines.append(obj)

    def start(self):
        """Writes the meta line, registers the callbacks and starts polling. Call just
        before starting the migration: t_ms counts from here."""
        if 'max_downtime_ms' not in self.meta:
            try:
                self.meta['max_downtime_ms'] = self.dom.migrateGetMaxDowntime(0)
            except libvirt.libvirtError:
                pass
        meta = {'kind': 'meta'}
        for k in ('guest_mem_mib', 'dirty_mib', 'dirty_rate_mibs', 'bandwidth_mibs',
                  'max_downtime_ms', 'flags', 'scenario'):
            if k in self.meta:
                meta[k] = self.meta[k]
        for k, v in self.meta.items():
            meta.setdefault(k, v)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.f = open(self.path, 'w')
        self.t0 = time.monotonic()
        self._write(meta)
        c = self.conn
        self.callbacks.append(c.domainEventRegisterAny(
            self.dom, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, self._on_iteration, None))
        self.callbacks.append(c.domainEventRegisterAny(
            self.dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
        self.callbacks.append(c.domainEventRegisterAny(
            self.dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_completed, None))
        self.thread = threading.Thread(target=self._poll, name='trace-poll', daemon=True)
        self.thread.start()
        return self

    def _on_iteration(self, conn, dom, iteration, opaque):
        self._write({'kind': 'event', 't_ms': self._t_ms(), 'event': 'iteration',
                     'pass': iteration})

    def _on_lifecycle(self, conn, dom, event, detail, opaque):
        self._write({'kind': 'event', 't_ms': self._t_ms(), 'event': 'lifecycle',
                     'detail': lifecycle_name(event, detail)})

    def _on_completed(self, conn, dom, params, opaque):
        self.completed = (self._t_ms(), dict(params))
        self.completed_event.set()

    def postcopy_switch(self):
        """Records that the caller is switching to post-copy (call right before
        migrateStartPostCopy)."""
        self._write({'kind': 'event', 't_ms': self._t_ms(), 'event': 'postcopy_switch'})

    def _poll(self):
        seen_job = False
        while not self.stop_polling.is_set():
            t = time.monotonic()
            try:
                s = self.dom.jobStats()
            except libvirt.libvirtError:
                s = {}
            if s.get('type', 0) not in (0, None) and s.get('operation', 0) not in (4,):
                seen_job = True
                sample = {'kind': 'sample', 't_ms': self._t_ms()}
                for src, dst in SAMPLE_KEYS:
                    if src in s:
                        sample[dst] = s[src]
                self._write(sample)
            elif seen_job:
                break   # the job is over
            self.stop_polling.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def finish(self, timeout=10, error=None):
        """Stops polling, waits up to `timeout` s for JOB_COMPLETED, falls back to
        jobStats(COMPLETED) on the source, writes the completed line and closes.
        error: the migration's error, if it failed: libvirt emits no JOB_COMPLETED then
        (so there is no wait) and keeps no completed stats ({"type": 0}); the message is
        added to the completed line as "error"."""
        if error is None:
            self.completed_event.wait(timeout)
        self.stop_polling.set()
        if self.thread is not None:
            self.thread.join(5)
        if self.completed is not None:
            t_ms, stats = self.completed
        else:
            t_ms, stats = self._t_ms(), {}
            try:
                stats = self.dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            except libvirt.libvirtError:
                pass
        line = {'kind': 'completed', 't_ms': t_ms}
        line.update(stats)
        if error is not None:
            line['error'] = str(error)
        self._write(line)
        for cb in self.callbacks:
            try:
                self.conn.domainEventDeregisterAny(cb)
            except libvirt.libvirtError:
                pass
        self.callbacks = []
        with self.lock:
            self.f.close()
            self.f = None
        try:
            self.conn.close()
        except libvirt.libvirtError:
            pass
        return self.lines


def load(path):
    """The trace at path as a list of dicts."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_structure(lines):
    """Asserts the trace format (used by the lab tests). Returns the samples."""
    assert lines, 'empty trace'
    assert lines[0]['kind'] == 'meta', lines[0]
    for k in ('guest_mem_mib', 'dirty_mib', 'dirty_rate_mibs', 'bandwidth_mibs', 'flags',
              'scenario'):
        assert k in lines[0], 'meta lacks %s' % k
    assert lines[-1]['kind'] == 'completed', lines[-1]
    assert sum(1 for x in lines if x['kind'] == 'completed') == 1
    samples = [x for x in lines if x['kind'] == 'sample']
    assert samples, 'no samples'
    allowed = {'kind', 't_ms'} | {dst for _, dst in SAMPLE_KEYS}
    last = -1
    for x in lines[1:-1]:
        assert x['kind'] in ('sample', 'event'), x
        assert isinstance(x['t_ms'], int) and x['t_ms'] >= 0, x
        if x['kind'] == 'sample':
            assert set(x) <= allowed, set(x) - allowed
            assert x['t_ms'] >= last, 'samples out of order'
            last = x['t_ms']
        else:
            assert x['event'] in ('iteration', 'postcopy_switch', 'lifecycle'), x
            if x['event'] == 'iteration':
                assert isinstance(x['pass'], int)
            if x['event'] == 'lifecycle':
                assert '/' in x['detail'], x
    gaps = [b['t_ms'] - a['t_ms'] for a, b in zip(samples, samples[1:])]
    # a poll is due every 200 ms but jobStats() blocks while QEMU syncs the dirty bitmap
    # (the big lock is held for a few hundred ms at each pass start under TCG)
    assert not gaps or max(gaps) <= 1500, 'samples too far apart: %d ms' % max(gaps)
    return samples


# ---------------------------------------------------------------------------------------------
# the stored scenarios

SCENARIOS = {
    # name: (mem, dirty_mib, dirty_rate, bandwidth, action)
    'idle': (512, 256, 0, 32, ('precopy',)),
    'converging': (512, 256, 10, 32, ('precopy',)),
    'stalled_abort': (512, 256, 100, 32, ('abort_after_pass', 3)),
    'stalled_postcopy': (512, 256, 100, 32, ('postcopy_at_pass', 2)),
    'wss256_flatout': (512, 256, -1, 32, ('abort_after_pass', 3)),
}


# Regimes with the guest's dirty rate measured first (tests/data/traces/dirtyrate/): working
# sets from 16 MiB to ~60 % of RAM, flat-out and rate-limited writers, caps 24-96 MiB/s,
# converging and stalled. Each run < 1 min.
DIRTY_SCENARIOS = {
    'wss16_flatout_bw24_stalled': (256, 16, -1, 24, ('abort_after_pass', 3)),
    'wss64_flatout_bw48_stalled': (256, 64, -1, 48, ('abort_after_pass', 3)),
    'wss224_flatout_bw96_stalled': (384, 224, -1, 96, ('abort_after_pass', 3)),
    'wss192_rate64_bw32_stalled': (384, 192, 64, 32, ('abort_after_pass', 3)),
    'wss128_rate16_bw64_converging': (256, 128, 16, 64, ('precopy',)),
    'wss64_rate8_bw24_converging': (256, 64, 8, 24, ('precopy',)),
}

DIRTY_WINDOWS_S = (1, 2, 4)


def measure_dirty(host, name, windows=DIRTY_WINDOWS_S, margin=0.2, timeout=10):
    """The guest's dirtying as the agent measures it: one page-sampling calc per window,
    one after the other (QEMU runs one at a time). Returns the trace's "dirty" dict; its
    age_ms is set by the caller."""
    conn = host.conn()
    dom = conn.lookupByName(name)
    out = {'mode': 'page-sampling', 'memory_bytes': dom.maxMemory() * 1024, 'windows': []}
    for seconds in windows:
        prev = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1]
        dom.startDirtyRateCalc(seconds, 0)
        time.sleep(seconds + margin)
        deadline = time.monotonic() + timeout
        while True:
            st = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1]
            if (st.get('dirtyrate.calc_status') == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED and
                    st.get('dirtyrate.calc_period') == seconds and
                    st.get('dirtyrate.calc_start_time', 0) >
                    prev.get('dirtyrate.calc_start_time', -1)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError('no dirty-rate result for the %d s window: %s' % (seconds, st))
            time.sleep(0.1)
        out['windows'].append({'window_ms': seconds * 1000,
                               'rate_mibs': st['dirtyrate.megabytes_per_second']})
    return out


def record_scenario(lab, scenario, out_dir, src=0, dst=1, verbose=True):
    mem, dmib, rate, bw, action = {**SCENARIOS, **DIRTY_SCENARIOS}[scenario]
    a, b = lab.host(src), lab.host(dst)
    name = 'tr-' + scenario.replace('_', '-')
    lab.destroy_guest(name)
    lab.start_guest(a, name, mem_mib=mem, dirty_mib=dmib, dirty_rate=rate)
    time.sleep(3)   # let the dirtier reach its rate
    postcopy = action[0] == 'postcopy_at_pass'
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    if postcopy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    path = os.path.join(out_dir, scenario + '.jsonl')
    dirty = measure_dirty(a, name)
    measured = time.monotonic()
    rec = TraceRecorder(path, a, name, meta={
        'guest_mem_mib': mem, 'dirty_mib': dmib, 'dirty_rate_mibs': rate,
        'bandwidth_mibs': bw, 'flags': flags, 'scenario': scenario,
        'dirty': dirty})
    dirty['age_ms'] = int((time.monotonic() - measured) * 1000)
    rec.start()
    m = lab.migrate(a, b, name, bandwidth_mibs=bw, flags=flags, wait=False)
    outcome = 'completed'
    try:
        if action[0] == 'abort_after_pass':
            m.wait_pass(action[1] + 1, timeout=180)
            m.abort()
            m.wait(120, check=False)
            outcome = 'aborted' if m.error else 'completed before the abort'
        elif postcopy:
            m.wait_pass(action[1], timeout=180)
            rec.postcopy_switch()
            t = time.monotonic()
            m.start_postcopy()
            if verbose:
                print('%s: migrateStartPostCopy returned in %.2f s'
                      % (scenario, time.monotonic() - t), flush=True)
            m.wait(180)
        else:
            m.wait(300)
    finally:
        lines = rec.finish(error=m.error if m.done.is_set() else 'not finished')
    host = b if m.ok else a
    lab.check_guest_healthy(host, name)
    lab.destroy_guest(name)
    check_structure(lines)
    if verbose:
        passes = max([x.get('pass', 0) for x in lines if x['kind'] == 'sample'] + [0])
        print('%s: %s in %.1f s, %d passes, %d lines -> %s'
              % (scenario, outcome, m.elapsed, passes, len(lines), path), flush=True)
    return path


def main(argv=None):
    from .lab import Lab
    ap = argparse.ArgumentParser(description='record the stored migration traces')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  '..', 'data', 'traces'))
    ap.add_argument('--dirty', action='store_true',
                    help='the dirty-rate regimes (default out: tests/data/traces/dirtyrate)')
    ap.add_argument('scenarios', nargs='*')
    args = ap.parse_args(argv)
    known = DIRTY_SCENARIOS if args.dirty else SCENARIOS
    scenarios = args.scenarios or list(known)
    for s in scenarios:
        if s not in known:
            ap.error('unknown scenario %s (known: %s)' % (s, ', '.join(known)))
    out = os.path.normpath(args.out)
    if args.dirty and out == os.path.normpath(ap.get_default('out')):
        out = os.path.join(out, 'dirtyrate')
    os.makedirs(out, exist_ok=True)
    with Lab(hosts=2, prefix=os.environ.get('MPLAB_PREFIX', 'mplab'), verbose=True) as lab:
        for s in scenarios:
            record_scenario(lab, s, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
