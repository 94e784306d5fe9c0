#!/usr/bin/python3
"""Lab control from the shell (run from the repository root, as root):

    /usr/bin/python3 -m tests.lab.labctl up [--hosts N] [--rabbit] [--rabbit-port P]
    /usr/bin/python3 -m tests.lab.labctl status
    /usr/bin/python3 -m tests.lab.labctl down

`up` leaves the lab running after it returns (state in /tmp/<prefix>/lab.json; attach to it
from Python with Lab.attach()). `down` removes everything a lab with this prefix left,
also after a crash: QEMU and libvirtd (by PID files and by membership of the lab's network
namespaces), RabbitMQ nodes and the epmd they started (by PID files), network namespaces
with their veths and bridge, state dirs. It is idempotent. The guest image cache
(tests/lab/cache/) is kept.
"""
import argparse
import atexit
import json
import os
import sys

from . import lab as labmod
from . import rabbit as rabbitmod


def cmd_up(args):
    lab = labmod.Lab(hosts=args.hosts, prefix=args.prefix, verbose=True)
    lab.up()
    atexit.unregister(lab.down)   # keep it running
    for h in lab.hosts:
        print('%s  addr %s  netns %s  libvirtd pid %d\n    uri %s\n    tcp %s\n    logs %s'
              % (h.name, h.addr, h.netns, h.pid, h.uri, h.tcp_uri, h.log_dir))
    if args.rabbit:
        r = rabbitmod.Rabbit(port=args.rabbit_port, prefix=args.prefix)
        try:
            r.start()
        except rabbitmod.RabbitError as e:
            print('labctl: %s' % e, file=sys.stderr)
            return 1
        atexit.unregister(r.stop)
        print('rabbitmq  %s  node %s  pid %d  (ready in %.1f s)'
              % (r.url, r.nodename, r.pid, r.startup_s))
    print('lab up in %.1f s' % lab.timings['up_s'])
    return 0


def cmd_status(args):
    base = labmod.state_dir(args.prefix)
    rc = 0
    try:
        with open(os.path.join(base, 'lab.json')) as f:
            state = json.load(f)
    except OSError:
        state = None
        print('lab %s: not up' % args.prefix)
    if state:
        lab = labmod.Lab.attach(args.prefix)
        for h in lab.hosts:
            alive = labmod._pid_alive(h.pid)
            line = '%s  %s  libvirtd pid %s %s  link %s' % (
                h.name, h.addr, h.pid, 'running' if alive else 'DEAD',
                'up' if lab.link_is_up(h) else 'CUT')
            if alive:
                try:
                    doms = h.conn().listAllDomains()
                    line += '  domains: ' + (', '.join(
                        '%s(%s)' % (d.name(), 'running' if d.isActive() else 'off')
                        for d in doms) or '-')
                except Exception as e:  # noqa: BLE001
                    line += '  (%s)' % e
            else:
                rc = 1
            print(line)
    leftovers = labmod.lab_netns(args.prefix)
    if leftovers and not state:
        print('leftover network namespaces: %s (run labctl down)' % ', '.join(leftovers))
        rc = 1
    root = os.environ.get('MPLAB_STATE_ROOT', '/tmp')
    for d in sorted(os.listdir(root)):
        if d.startswith(args.prefix + '-rabbit-') and d.rsplit('-', 1)[1].isdigit():
            r = rabbitmod.Rabbit(port=int(d.rsplit('-', 1)[1]), prefix=args.prefix)
            pid = r._read_pid()
            print('rabbitmq  %s  pid %s %s' % (r.url, pid,
                                                'running' if pid and labmod._pid_alive(pid)
                                                else 'DEAD'))
    return rc


def cmd_down(args):
    done = rabbitmod.cleanup(args.prefix)
    done += labmod.cleanup(args.prefix)
    for line in done:
        print('down: ' + line)
    left = labmod.lab_netns(args.prefix)
    if left:
        print('down: network namespaces still present: %s' % ', '.join(left), file=sys.stderr)
        return 1
    print('down: lab %s is down' % args.prefix)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog='labctl', description='migpilot lab control')
    ap.add_argument('--prefix', default=os.environ.get('MPLAB_PREFIX', 'mplab'))
    sub = ap.add_subparsers(dest='cmd', required=True)
    up = sub.add_parser('up', help='bring the lab up and leave it running')
    up.add_argument('--hosts', type=int, default=2)
    up.add_argument('--rabbit', action='store_true', help='also start a RabbitMQ node')
    up.add_argument('--rabbit-port', type=int, default=5673)
    sub.add_parser('status', help='show what is running')
    sub.add_parser('down', help='tear everything down (idempotent, also after a crash)')
    args = ap.parse_args(argv)
    return {'up': cmd_up, 'status': cmd_status, 'down': cmd_down}[args.cmd](args)


if __name__ == '__main__':
    sys.exit(main())
