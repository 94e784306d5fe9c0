#!/usr/bin/python3
"""The agent on the lab: switch latency, cost of a stalled migration with and without it,
and the agent's own RSS and CPU. Writes tests/bench/results/agent_lab.json.

  /usr/bin/python3 tests/bench/agent/run.py [--runs N] [--precopy-limit S]

Latency is measured outside the agent: from the MIGRATION_ITERATION 2 event to the
source's SUSPENDED/POSTCOPY lifecycle event, both seen by this script's own libvirt
connection; the agent's own figure (pass start to its switch call) is reported too.
"""
import argparse
import json
import os
import statistics
import sys
import time

import libvirt

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
sys.path.insert(0, REPO)

from tests.integration import bus  # noqa: E402
from tests.integration.agentproc import Agent  # noqa: E402
from tests.integration.test_agent import EventRecorder  # noqa: E402
from tests.lab.lab import Lab  # noqa: E402
from tests.lab.rabbit import Rabbit  # noqa: E402

GUEST = dict(mem_mib=384, dirty_mib=256, dirty_rate=-1)
BANDWIDTH = 32
CLK = os.sysconf('SC_CLK_TCK')


def proc_cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def run_with_agent(lab, agent, collector, name):
    a, b = lab.hosts
    dom = lab.start_guest(a, name, persistent=True, **GUEST)
    inst = dom.UUIDString()
    rec = EventRecorder(a)
    cpu0, t0 = proc_cpu_s(agent.pid), time.monotonic()
    rss = []
    try:
        m = lab.migrate(a, b, name, bandwidth_mibs=BANDWIDTH, postcopy=True, wait=False)
        while not m.done.wait(0.5):
            rss.append(proc_rss_kib(agent.pid))
        m.wait()
        metrics = collector.wait_for('compute.live_migration.metrics', inst)[0]['payload']
        switch = collector.wait_for('compute.live_migration.switch', inst)[0]['payload']
        pass2 = rec.first(inst, 'iteration', 2)
        post = rec.first(inst, 'lifecycle', (libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                             libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY))
    finally:
        rec.close()
    cpu1, t1 = proc_cpu_s(agent.pid), time.monotonic()
    lab.check_guest_healthy(b, name)
    lab.destroy_guest(name)
    return {
        'migration_time_ms': metrics['migration_time_ms'],
        'downtime_ms': metrics['downtime_ms'],
        'bytes_transferred': metrics['bytes_transferred'],
        'passes': metrics['passes'],
        'postcopy_switch_ms': metrics['postcopy_switch_ms'],
        'latency_events_ms': round((post - pass2) * 1000, 1) if pass2 and post else None,
        'latency_agent_ms': switch['figures'].get('decision_latency_ms'),
        'agent_cpu_pct': round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        'agent_rss_kib_max': max(rss) if rss else proc_rss_kib(agent.pid),
    }


def run_without_agent(lab, name, limit_s):
    """Pure pre-copy, as nova does without post-copy, given up after limit_s."""
    a, b = lab.hosts
    lab.start_guest(a, name, persistent=True, **GUEST)
    m = lab.migrate(a, b, name, bandwidth_mibs=BANDWIDTH, postcopy=False, wait=False)
    last = {}
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not m.done.is_set():
        s = m.stats()
        if s:
            last = s
        time.sleep(0.25)
    completed = m.done.is_set() and m.ok
    if not completed:
        m.abort()
        m.wait(check=False)
    lab.check_guest_healthy(b if completed else a, name)
    lab.destroy_guest(name)
    return {'completed': completed, 'gave_up_after_ms': last.get('time_elapsed'),
            'bytes_transferred': last.get('data_processed'),
            'passes': last.get('memory_iteration')}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--precopy-limit', type=float, default=60.0)
    args = ap.parse_args()
    out = os.path.join(REPO, 'tests', 'bench', 'results', 'agent_lab.json')
    prefix = os.environ.get('MPLAB_PREFIX', 'mpbench')
    port = int(os.environ.get('MPLAB_RABBIT_PORT', '5713'))
    with Lab(prefix=prefix) as lab, Rabbit(port=port, prefix=prefix) as rabbit:
        agent = Agent(lab.hosts[0].uri, rabbit.url, host=lab.hosts[0].name,
                      extra={'DEFAULT': {'log_level': 'info'}})
        collector = bus.Collector(rabbit.url).start()
        try:
            agent.start()
            time.sleep(2)
            cpu0, t0 = proc_cpu_s(agent.pid), time.monotonic()
            time.sleep(10)
            idle = {'cpu_pct': round(100 * (proc_cpu_s(agent.pid) - cpu0) /
                                     (time.monotonic() - t0), 3),
                    'rss_kib': proc_rss_kib(agent.pid)}
            runs = [run_with_agent(lab, agent, collector, 'bench%d' % i)
                    for i in range(args.runs)]
        finally:
            collector.stop()
            agent.cleanup()
        without = run_without_agent(lab, 'bench-nopost', args.precopy_limit)
    lat = [r['latency_events_ms'] for r in runs if r['latency_events_ms'] is not None]
    result = {
        'guest': GUEST, 'bandwidth_mibs': BANDWIDTH,
        'agent_idle': idle,
        'with_agent': runs,
        'with_agent_median': {
            k: statistics.median(r[k] for r in runs)
            for k in ('migration_time_ms', 'bytes_transferred', 'downtime_ms',
                      'agent_cpu_pct', 'agent_rss_kib_max')},
        'latency_events_ms': {'median': statistics.median(lat) if lat else None,
                              'max': max(lat) if lat else None, 'n': len(lat)},
        'without_agent_precopy': without,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
