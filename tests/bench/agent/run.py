#!/usr/bin/python3
"""The agent's own cost on the lab. Writes tests/bench/results/agent.json.

  MPLAB_PREFIX=.. MPLAB_RABBIT_PORT=.. /usr/bin/python3 -m tests.bench.agent.run \
      [--latency-runs 12] [--messages 30000] [--out DIR]

1. Decision latency: stalled guests ping-pong between the two lab hosts, one agent per host
   (log_level = debug). Per switch: the agent's own figure (pass start noticed -> its
   decision, just before virDomainMigrateStartPostCopy), the gap between its 'pass N
   started' and 'switched' log stamps (which also covers the call's round trip to
   libvirtd), and, seen from outside, MIGRATION_ITERATION N -> the source's
   SUSPENDED/POSTCOPY event on this script's own libvirt connection.
2. RSS (and PSS, USS: RSS counts the shared libraries' pages) and CPU of the agent idle and
   while it watches 4 concurrent migrations.
3. Bus throughput: a busy nova exchange (99 % unrelated notifications, half versioned, half
   legacy) is published into the agent's queue and into the queue of a Python
   oslo.messaging notification listener (Debian's, with a NotificationFilter for the live
   migration events, the way a Ceilometer-style consumer filters) while both consumers are
   stopped; then each drains its queue alone and the drain is timed from the queue depth.
"""
import argparse
import json
import logging
import os
import random
import re
import resource
import statistics
import sys
import threading
import time
import uuid

import amqp

from tests.bench import lablib, stamp
from tests.integration import bus
from tests.integration.agentproc import Agent
from tests.lab.lab import Lab
from tests.lab.rabbit import Rabbit

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
CLK = os.sysconf('SC_CLK_TCK')
STALLED = dict(mem_mib=256, dirty_mib=128, dirty_rate=-1)
CAP_MIBS = 64
IDLE_GUEST = dict(mem_mib=256, dirty_mib=32, dirty_rate=0)
CONCURRENT_CAP_MIBS = 8


def proc_cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_mem_kib(pid):
    """RSS, PSS and USS (private clean + dirty) from smaps_rollup."""
    vals = {}
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(':'):
                vals[parts[0][:-1]] = int(parts[1])
    return {'rss_kib': vals.get('Rss', 0), 'pss_kib': vals.get('Pss', 0),
            'uss_kib': vals.get('Private_Clean', 0) + vals.get('Private_Dirty', 0)}


def dist(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return {'n': len(xs), 'min': xs[0], 'median': statistics.median(xs),
            'p90': xs[min(len(xs) - 1, int(0.9 * len(xs)))], 'max': xs[-1]}


def agents_for(lab, rabbit, level='debug'):
    return [Agent(h.uri, rabbit.url, host=h.name,
                  extra={'DEFAULT': {'log_level': level, 'progress_interval_ms': '0'}}).start()
            for h in lab.hosts]


# ---- 1. decision latency ------------------------------------------------------------------

def latency(lab, rabbit, runs, log):
    agents = agents_for(lab, rabbit)
    name = 'lat'
    out = {'runs': []}
    try:
        lab.start_guest(lab.hosts[0], name, persistent=True, **STALLED)
        for i in range(runs):
            src = lab.find_guest(name)
            dst = lab.hosts[1] if src is lab.hosts[0] else lab.hosts[0]
            r = lablib.measure(lab, src, dst, name, lablib.Agent(limit_s=60), CAP_MIBS)
            out['runs'].append(r)
            log('  latency run %d: %s %s, switch pass %s, events %s ms, healthy %s'
                % (i + 1, r['outcome'], r['mode'], r['switch_pass'],
                   r['switch_latency_events_ms'], r['healthy']))
            if not r['healthy']:
                lab.destroy_guest(name)
                lab.start_guest(lab.hosts[0], name, persistent=True, **STALLED)
        lab.destroy_guest(name)
    finally:
        sw = []
        for a in agents:
            sw.extend(lablib.parse_agent_log(a.log()))
            a.cleanup()
    out['agent_switches'] = sw
    out['agent_ms'] = dist([x['agent_ms'] for x in sw])
    out['log_ms'] = dist([x['log_ms'] for x in sw])
    out['events_ms'] = dist([r['switch_latency_events_ms'] for r in out['runs']])
    return out


# ---- 2. RSS / CPU ---------------------------------------------------------------------------

def footprint(lab, rabbit, log, idle_s=15):
    agent = Agent(lab.hosts[0].uri, rabbit.url, host=lab.hosts[0].name,
                  extra={'DEFAULT': {'log_level': 'info'}}).start()
    names = ['cc%d' % i for i in range(4)]
    try:
        time.sleep(2)
        c0, t0 = proc_cpu_s(agent.pid), time.monotonic()
        time.sleep(idle_s)
        idle = dict(proc_mem_kib(agent.pid),
                    cpu_pct=round(100 * (proc_cpu_s(agent.pid) - c0) /
                                  (time.monotonic() - t0), 3))
        log('  idle: %s' % idle)
        a, b = lab.hosts
        for n in names:
            lab.start_guest(a, n, persistent=True, wait=False, **IDLE_GUEST)
        for n in names:
            lab.wait_heartbeat(a, n, timeout=180)
        c0, t0 = proc_cpu_s(agent.pid), time.monotonic()
        migs = [lab.migrate(a, b, n, bandwidth_mibs=CONCURRENT_CAP_MIBS, wait=False)
                for n in names]
        samples = []
        watched_s = 0.0
        while not all(m.done.is_set() for m in migs):
            samples.append(proc_mem_kib(agent.pid))
            time.sleep(0.5)
        t1 = time.monotonic()
        busy_cpu = proc_cpu_s(agent.pid) - c0
        for m in migs:
            m.wait(check=False)
        watched_s = t1 - t0
        try:
            # its metrics records: it watched the four to their end
            agent.wait_log(r'published compute\.live_migration\.metrics', count=4, timeout=30)
            seen_all = True
        except AssertionError:
            seen_all = False
        busy = {'migrations': len(migs), 'completed': sum(1 for m in migs if m.ok),
                'agent_published_4_metrics': seen_all,
                'watched_s': round(watched_s, 1),
                'cpu_pct': round(100 * busy_cpu / watched_s, 3),
                'rss_kib_max': max(s['rss_kib'] for s in samples),
                'pss_kib_max': max(s['pss_kib'] for s in samples),
                'uss_kib_max': max(s['uss_kib'] for s in samples)}
        log('  4 concurrent: %s' % busy)
    finally:
        agent.cleanup()
        for n in names:
            lab.destroy_guest(n)
    return {'idle': idle, 'four_concurrent': busy}


# ---- 3. bus throughput --------------------------------------------------------------------

UNRELATED = ['instance.update', 'compute.instance.update', 'compute.instance.exists',
             'instance.power_on.end', 'instance.create.end', 'compute.instance.create.end',
             'scheduler.select_destinations.end', 'compute_task.build_instances.end',
             'instance.interface_attach.end', 'compute.metrics.update', 'volume.attach.end',
             'instance.snapshot.end']
RELATED = ['instance.live_migration_pre.start', 'instance.live_migration_post.end',
           'compute.instance.live_migration.pre.start',
           'compute.instance.live_migration._post.end']
LM_FILTER = r'^(instance\.live_migration_|compute\.instance\.live[._]migration)'


def bodies(n_distinct=400, related_every=100):
    """Oslo 2.0 envelopes shaped like nova's (the captured pre.start payload)."""
    tpl = bus.versioned_payload('00000000-0000-0000-0000-000000000000', 'lab-a')
    out = []
    for i in range(n_distinct):
        related = i % related_every == 0
        legacy = i % 2 == 1
        et = random.choice(RELATED if related else UNRELATED)
        inst = str(uuid.uuid4())
        payload = json.loads(json.dumps(tpl))
        payload['nova_object.data']['uuid'] = inst
        if legacy:
            payload = {'instance_id': inst, 'tenant_id': 'p', 'user_id': 'u',
                       'host': 'lab-a', 'node': 'lab-a', 'state': 'active',
                       'memory_mb': 4096, 'vcpus': 2, 'display_name': 'vm-%d' % i,
                       'metadata': {'k%d' % j: 'v' * 20 for j in range(20)}}
        inner = {'message_id': str(uuid.uuid4()),
                 'publisher_id': ('compute.lab-b' if legacy else 'nova-compute:lab-b'),
                 'event_type': et, 'priority': 'INFO', 'payload': payload,
                 'timestamp': '2026-11-22 11:00:50.555914', '_unique_id': uuid.uuid4().hex,
                 '_context_request_id': 'req-%s' % uuid.uuid4(), '_context_is_admin': True}
        body = json.dumps({'oslo.version': '2.0', 'oslo.message': json.dumps(inner)})
        out.append(('notifications.info' if legacy else 'versioned_notifications.info',
                    body, related))
    return out


class Broker:
    def __init__(self, port):
        self.conn = amqp.Connection(host='127.0.0.1:%d' % port, userid='guest',
                                    password='guest')
        self.conn.connect()
        self.ch = self.conn.channel()

    def depth(self, queue):
        return self.ch.queue_declare(queue, passive=True).message_count

    def publish(self, msgs, n):
        self.ch.exchange_declare('nova', 'topic', durable=False, auto_delete=False)
        for i in range(n):
            key, body, _ = msgs[i % len(msgs)]
            self.ch.basic_publish(amqp.Message(body, content_type='application/json',
                                               content_encoding='utf-8', delivery_mode=2),
                                  exchange='nova', routing_key=key)
        # a round trip so that everything above has reached the broker
        self.ch.queue_declare('bench-sync-%d' % os.getpid(), exclusive=True)

    def close(self):
        self.conn.close()


def drain(broker, queue, n, start, stop, cpu, timeout=600):
    """Starts a consumer and times its drain of a queue holding n messages."""
    # the broker routes published messages to queues asynchronously: wait until all are in
    deadline = time.monotonic() + 60
    while broker.depth(queue) < n:
        if time.monotonic() > deadline:
            raise AssertionError('queue %s holds %d < %d' % (queue, broker.depth(queue), n))
        time.sleep(0.05)
    c0 = None
    t_go = time.monotonic()
    handle = start()
    c0 = cpu(handle)
    first = None
    deadline = time.monotonic() + timeout
    while True:
        d = broker.depth(queue)
        now = time.monotonic()
        if first is None and d < 0.99 * n:
            first = (now, d)
        if d == 0:
            break
        if now > deadline:
            raise AssertionError('%s not drained within %ss (%d left)' % (queue, timeout, d))
        time.sleep(0.02)
    t_end = time.monotonic()
    used = cpu(handle) - c0
    stop(handle)
    t_first, d_first = first if first else (t_go, n)
    secs = max(1e-3, t_end - t_first)
    return {'messages': n, 'drain_s': round(secs, 3),
            'msgs_per_s': round(d_first / secs), 'startup_s': round(t_first - t_go, 2),
            'cpu_s': round(used, 2), 'msgs_per_cpu_s': round(n / used) if used > 0 else None}


class OsloConsumer:
    """The Python side: oslo.messaging's notification listener (executor 'threading', as
    Ceilometer's), keeping the live-migration events and their instance, like the agent."""

    def __init__(self, url, pool):
        import oslo_messaging
        self.om = oslo_messaging
        self.url, self.pool = url, pool
        self.lock = threading.Lock()
        self.processed = 0
        self.matched = 0
        self.first = None
        self.last = None
        self.instances = set()
        rx = re.compile(LM_FILTER)
        consumer = self

        class Endpoint:
            def info(self, ctxt, publisher_id, event_type, payload, metadata):
                inst = None
                if rx.match(event_type or ''):
                    data = payload.get('nova_object.data', payload) \
                        if isinstance(payload, dict) else {}
                    inst = data.get('uuid') or data.get('instance_id')
                now = time.monotonic()
                with consumer.lock:
                    if consumer.first is None:
                        consumer.first = now
                    consumer.last = now
                    consumer.processed += 1
                    if inst:
                        consumer.matched += 1
                        consumer.instances.add(inst)

        self.endpoint = Endpoint()

    def start(self):
        self.transport = bus.transport(self.url)
        targets = [self.om.Target(topic=t, exchange='nova')
                   for t in ('notifications', 'versioned_notifications')]
        self.listener = self.om.get_notification_listener(
            self.transport, targets, [self.endpoint], executor='threading', pool=self.pool)
        self.listener.start()
        return self

    def stop(self):
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()

    def drain(self, n, timeout=900):
        """Starts, waits until n messages went through the endpoint, stops."""
        c0, t_go = self_cpu_s(), time.monotonic()
        self.start()
        deadline = t_go + timeout
        while self.processed < n:
            if time.monotonic() > deadline:
                raise AssertionError('oslo listener: %d of %d in %ss'
                                     % (self.processed, n, timeout))
            time.sleep(0.02)
        used = self_cpu_s() - c0
        self.stop()
        secs = max(1e-3, self.last - self.first)
        return {'messages': n, 'drain_s': round(secs, 3), 'msgs_per_s': round(n / secs),
                'startup_s': round(self.first - t_go, 2), 'cpu_s': round(used, 2),
                'msgs_per_cpu_s': round(n / used) if used > 0 else None,
                'matched': self.matched}


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def throughput(lab, rabbit, n, log):
    msgs = bodies()
    related = sum(1 for i in range(n) if msgs[i % len(msgs)][2])
    broker = Broker(rabbit.port)
    host = lab.hosts[0]
    queue = 'migpilot.%s' % host.name
    oslo_pool = 'oslo-bench'
    mk_agent = lambda: Agent(host.uri, rabbit.url, host=host.name,  # noqa: E731
                             extra={'DEFAULT': {'log_level': 'info',
                                                'progress_interval_ms': '0'}})
    # both queues declared (with their bindings) by their own consumers, then stopped
    a = mk_agent().start()
    a.wait_log(r'amqp: connected', timeout=30)
    a.cleanup()
    o = OsloConsumer(rabbit.url, oslo_pool).start()
    time.sleep(2)
    o.stop()
    rounds = []
    for rnd in range(3):
        for q in (queue, oslo_pool):
            broker.ch.queue_purge(q)
        t = time.monotonic()
        broker.publish(msgs, n)
        pub_s = time.monotonic() - t
        holder = {}

        def start_agent():
            holder['a'] = mk_agent().start()
            return holder['a']

        def stop_agent(ag):
            ag.stop()
            holder['log'] = ag.log()
            ag.cleanup()

        ra = drain(broker, queue, n, start_agent, stop_agent, lambda ag: proc_cpu_s(ag.pid))
        m = re.search(r'stopped: (\d+) bus messages read, (\d+) rejected', holder.get('log', ''))
        ra['agent_counted'] = int(m.group(1)) if m else None
        ra['agent_rejected'] = int(m.group(2)) if m else None
        ro = OsloConsumer(rabbit.url, oslo_pool).drain(n)
        log('  round %d: published %d (%d live-migration) in %.1f s; agent %s; oslo %s'
            % (rnd + 1, n, related, pub_s, ra, ro))
        rounds.append({'agent': ra, 'oslo_listener': ro})
    for q in (queue, oslo_pool):
        broker.ch.queue_delete(q)
    broker.close()

    def med(who, key):
        xs = [r[who][key] for r in rounds if r[who].get(key) is not None]
        return statistics.median(xs) if xs else None

    summary = {who: {k: med(who, k) for k in ('drain_s', 'msgs_per_s', 'cpu_s',
                                              'msgs_per_cpu_s', 'startup_s')}
               for who in ('agent', 'oslo_listener')}
    summary['agent']['agent_counted'] = [r['agent']['agent_counted'] for r in rounds]
    summary['oslo_listener']['matched'] = [r['oslo_listener']['matched'] for r in rounds]
    a, o = summary['agent'], summary['oslo_listener']
    return {'messages': n, 'live_migration_messages': related, 'rounds': rounds,
            'agent': a, 'oslo_listener': o,
            'ratio_msgs_per_s': round(a['msgs_per_s'] / o['msgs_per_s'], 1),
            'ratio_msgs_per_cpu_s': round(a['msgs_per_cpu_s'] / o['msgs_per_cpu_s'], 1)
            if a['msgs_per_cpu_s'] and o['msgs_per_cpu_s'] else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--latency-runs', type=int, default=12)
    ap.add_argument('--messages', type=int, default=10000,
                    help='per round; the agent bounds its queue at 10000 (x-max-length)')
    ap.add_argument('--out', default=os.path.join(REPO, 'tests', 'bench', 'results'))
    args = ap.parse_args()
    prefix = os.environ.get('MPLAB_PREFIX', 'mpbench')
    port = int(os.environ.get('MPLAB_RABBIT_PORT', '5713'))
    t0 = time.monotonic()

    def log(msg):
        print('[agent %6.0fs] %s' % (time.monotonic() - t0, msg), flush=True)

    # py-amqp complains about deliveries in flight when oslo's listener closes its channel
    logging.getLogger('amqp').setLevel(logging.ERROR)
    result = {}
    st = stamp.Stamp()
    with Lab(prefix=prefix) as lab, Rabbit(port=port, prefix=prefix) as rabbit:
        log('bus throughput')
        result['bus'] = throughput(lab, rabbit, args.messages, log)
        log('footprint')
        result['footprint'] = footprint(lab, rabbit, log)
        log('decision latency')
        result['latency'] = latency(lab, rabbit, args.latency_runs, log)
    result['seconds'] = round(time.monotonic() - t0)
    result['stamp'] = st.finish()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'agent.json'), 'w') as f:
        json.dump(result, f, indent=1)
    lat = result['latency']
    log('done: latency median agent %s ms, log %s ms, events %s ms; idle RSS %s KiB '
        '(USS %s); 4 concurrent RSS %s KiB, CPU %s %%; bus %sx'
        % (lat['agent_ms'] and lat['agent_ms']['median'],
           lat['log_ms'] and lat['log_ms']['median'],
           lat['events_ms'] and lat['events_ms']['median'],
           result['footprint']['idle']['rss_kib'], result['footprint']['idle']['uss_kib'],
           result['footprint']['four_concurrent']['rss_kib_max'],
           result['footprint']['four_concurrent']['cpu_pct'],
           result['bus']['ratio_msgs_per_s']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
