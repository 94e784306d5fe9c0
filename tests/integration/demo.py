#!/usr/bin/python3
"""make demo: migpilot rescuing a stalled live migration, for real.

Two libvirt hosts in network namespaces, a private RabbitMQ, migpilot-agent watching host
lab-a, and a guest that rewrites memory faster than the 32 MiB/s link can send it. The
migration is started with post-copy permitted (as nova does with
live_migration_permit_post_copy = True); pre-copy cannot converge, the agent switches it to
post-copy at the start of pass 2, and the metrics it published arrive at an oslo.messaging
listener (the way Ceilometer listens). Everything is torn down at the end.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

from tests.integration import bus  # noqa: E402
from tests.integration.agentproc import Agent  # noqa: E402
from tests.lab.lab import Lab  # noqa: E402
from tests.lab.rabbit import Rabbit  # noqa: E402

PREFIX = os.environ.get('MPLAB_PREFIX', 'mpdemo')
PORT = int(os.environ.get('MPLAB_RABBIT_PORT', '5703'))
T0 = time.monotonic()


def say(msg):
    print('[%6.1fs] %s' % (time.monotonic() - T0, msg), flush=True)


def mib(n):
    return '%.0f MiB' % (n / 1048576.0)


def main():
    say('bringing up the lab: libvirt hosts lab-a and lab-b, RabbitMQ on 127.0.0.1:%d' % PORT)
    with Lab(prefix=PREFIX) as lab, Rabbit(port=PORT, prefix=PREFIX) as rabbit:
        a, b = lab.hosts
        agent = Agent(a.uri, rabbit.url, host=a.name)
        collector = bus.Collector(rabbit.url).start()
        try:
            agent.start()
            say('migpilot-agent running for %s (pid %d), log %s' % (a.name, agent.pid,
                                                                    agent.log_path))
            say('booting guest "demo" on %s: 384 MiB, rewriting 256 MiB flat out' % a.name)
            dom = lab.start_guest(a, 'demo', mem_mib=384, dirty_mib=256, dirty_rate=-1)
            inst = dom.UUIDString()
            say('migrating demo %s -> %s, bandwidth 32 MiB/s, post-copy permitted'
                % (a.name, b.name))
            m = lab.migrate(a, b, 'demo', bandwidth_mibs=32, postcopy=True, wait=False)
            while not m.done.wait(1.0):
                s = m.stats()
                if s:
                    say('  pass %d: %s of %s remaining, sending %s/s, dirty rate %s/s'
                        % (s.get('memory_iteration', 0), mib(s.get('memory_remaining', 0)),
                           mib(s.get('memory_total', 0)), mib(s.get('memory_bps', 0)),
                           mib(s.get('memory_dirty_rate', 0) * s.get('memory_page_size', 4096))))
            m.wait(check=True)
            say('migration finished in %.1f s' % m.elapsed)
            for line in agent.log().splitlines():
                if 'switched to post-copy' in line or 'would switch' in line:
                    say('agent: ' + line.split(' ', 3)[3])
            metrics = collector.wait_for('compute.live_migration.metrics', inst, timeout=60)[0]
            switch = collector.of('compute.live_migration.switch', inst)
            if switch:
                say('compute.live_migration.switch received:')
                print(json.dumps(switch[0]['payload'], indent=2, sort_keys=True))
            say('compute.live_migration.metrics received by an oslo.messaging listener '
                '(publisher %s):' % metrics['publisher_id'])
            print(json.dumps(metrics['payload'], indent=2, sort_keys=True))
            hb = lab.check_guest_healthy(b, 'demo')
            say('guest healthy on %s: heartbeat %d, largest stall seen by the guest %d ms'
                % (b.name, hb.seq, hb.maxgap_ms))
            p = metrics['payload']
            ok = p['outcome'] == 'completed' and p['mode'] == 'post-copy'
        finally:
            collector.stop()
            agent.cleanup()
            lab.destroy_guest('demo')
        say('tearing down')
    say('done: %s' % ('a stalled migration rescued by post-copy' if ok else 'NOT rescued'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
