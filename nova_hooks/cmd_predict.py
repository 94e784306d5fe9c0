"""`migpilot predict INSTANCE [--bandwidth MiB/s] [--downtime-ms N] [--json]`: predict a
live migration of a guest of this host before it starts.

Measures the guest's dirtying with libvirt's dirty-rate calc (virDomainStartDirtyRateCalc,
page sampling, a 1 s then a 4 s window, results from virDomainListGetStats with
VIR_DOMAIN_STATS_DIRTYRATE), then asks the C forecast (_migpilot.forecast, the model the
agent's policy decides with) for the passes, total time, bytes, downtime and whether
post-copy will be needed. The link rate is --bandwidth, else the guest's migration max
speed (virDomainMigrateGetMaxSpeed) when one is set; the max downtime is --downtime-ms, else
the guest's (virDomainMigrateGetMaxDowntime). Pass 1 sends no more than QEMU's resident
set (virDomainMemoryStats rss): the pages a guest never touched are zero. The [policy] section of migpilot.conf, when
readable, is the policy's configuration.

Exit status: 0 (a forecast, possibly "unknown" with its reason), 1 (the guest could not be
measured), 2 (bad arguments, or no link rate).
"""
import argparse
import configparser
import json
import sys
import time

import _migpilot

from nova_hooks.cmd_listen import _ms, _rate, _size

PROG = 'migpilot predict'
MIB = 1024 * 1024
# the windows, seconds: the short one gives the rate, the long one the working set
WINDOWS_S = (1, 4)
# how long past a window's end the result may take to appear, and how often to look
MARGIN_S = 0.3
POLL_S = 0.25
WAIT_S = 10.0
# libvirt's "no limit" max speed (QEMU_DOMAIN_MIG_BANDWIDTH_MAX, MiB/s): no rate set
UNLIMITED_MIBS = ((1 << 63) - 1) // MIB
DEFAULT_URI = 'qemu:///system'
STATS_KEYS = {
    'status': 'dirtyrate.calc_status',
    'start_time': 'dirtyrate.calc_start_time',
    'period': 'dirtyrate.calc_period',
    'rate': 'dirtyrate.megabytes_per_second',
    'mode': 'dirtyrate.calc_mode',
}


class PredictError(Exception):
    """The guest cannot be measured: one line for the user."""


class UsageError(PredictError):
    """Missing input (exit 2)."""


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v > 0 or v != v or v == float('inf'):
        raise argparse.ArgumentTypeError('%r is not a positive number' % text)
    return v


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError('%r is not a positive integer' % text)
    return v


def register(subparsers):
    parser = subparsers.add_parser(
        'predict', help='predict a live migration of a guest of this host (time, bytes, '
                        'downtime, post-copy) from a measurement of its dirtying',
        description='Measure a guest\'s memory dirtying with libvirt (1 s and 4 s '
                    'dirty-rate windows) and predict its live migration: passes, time, '
                    'bytes, downtime and whether migpilot will switch it to post-copy.')
    parser.add_argument('instance', metavar='INSTANCE',
                        help='nova instance UUID or libvirt domain name')
    parser.add_argument('--bandwidth', type=_positive_float, metavar='MiB/s',
                        help='link rate of the migration (default: the guest\'s migration '
                             'max speed, when set)')
    parser.add_argument('--downtime-ms', type=_positive_int, metavar='N',
                        help='max downtime (default: the guest\'s, libvirt\'s '
                             'migrate-getmaxdowntime)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    parser.add_argument('--libvirt-uri', default=DEFAULT_URI, metavar='URI',
                        help='libvirt connection (default %(default)s)')
    parser.add_argument('--migpilot-conf', default='/etc/migpilot/migpilot.conf',
                        metavar='PATH', help='the agent\'s configuration, for its [policy] '
                                             '(default %(default)s; ignored if absent)')
    parser.set_defaults(func=run)


def open_connection(uri):
    """A libvirt connection (tests replace this)."""
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise PredictError('cannot connect to %s: %s' % (uri, e.get_error_message()))


def _libvirt():
    import libvirt
    return libvirt


def find_domain(conn, instance):
    """The domain of a nova instance UUID (nova's domain UUID) or a libvirt name."""
    libvirt = _libvirt()
    for lookup in (conn.lookupByUUIDString, conn.lookupByName):
        try:
            return lookup(instance)
        except libvirt.libvirtError:
            continue
    raise PredictError('no domain with UUID or name %r' % instance)


def parse_stats(params):
    """The dirtyrate.* figures of one domain's stats record (a dict)."""
    if STATS_KEYS['status'] not in params:
        raise PredictError('libvirt gave no %s: this libvirt cannot measure dirty rates'
                           % STATS_KEYS['status'])
    out = {'status': params[STATS_KEYS['status']],
           'start_time': params.get(STATS_KEYS['start_time'], 0),
           'period': params.get(STATS_KEYS['period'], 0),
           'rate': params.get(STATS_KEYS['rate']),
           'mode': params.get(STATS_KEYS['mode'])}
    for key in ('status', 'start_time', 'period'):
        if not isinstance(out[key], int) or out[key] < 0:
            raise PredictError('libvirt gave %s = %r' % (STATS_KEYS[key], out[key]))
    if out['rate'] is not None and (not isinstance(out['rate'], int) or out['rate'] < 0):
        raise PredictError('libvirt gave %s = %r' % (STATS_KEYS['rate'], out['rate']))
    return out


def read_stats(conn, dom):
    libvirt = _libvirt()
    records = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
    if not records:
        raise PredictError('libvirt gave no statistics for %s' % dom.name())
    return parse_stats(records[0][1])


def measure(conn, dom, windows=WINDOWS_S, sleep=time.sleep):
    """A measurement (the dict of _migpilot.forecast) of dom: one window after the other,
    each result newer than what an earlier calc left."""
    libvirt = _libvirt()
    job = dom.jobInfo()[0]
    if job != libvirt.VIR_DOMAIN_JOB_NONE:
        # libvirt would hold the calc for the job's lock (docs/reference/dirty-rate.md)
        raise PredictError('a libvirt job (a migration?) runs on %s: measure it before '
                           'it migrates' % dom.name())
    before = read_stats(conn, dom)
    if before['status'] == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING:
        raise PredictError('a dirty-rate calc is already running on %s' % dom.name())
    not_before = before['start_time'] + 1 \
        if before['status'] == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED else 0
    out = []
    for seconds in windows:
        try:
            dom.startDirtyRateCalc(seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
        except libvirt.libvirtError as e:
            raise PredictError('dirty-rate calc of %d s refused on %s: %s'
                               % (seconds, dom.name(), e.get_error_message()))
        sleep(seconds + MARGIN_S)
        waited = 0.0
        while True:
            st = read_stats(conn, dom)
            if st['status'] == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED and \
                    st['period'] == seconds and st['start_time'] >= not_before and \
                    st['rate'] is not None:
                break
            if waited >= WAIT_S:
                raise PredictError('no result of the %d s dirty-rate window of %s after '
                                   '%.0f s' % (seconds, dom.name(), seconds + WAIT_S))
            sleep(POLL_S)
            waited += POLL_S
        out.append((seconds * 1000, st['rate']))
        not_before = st['start_time'] + 1
    return {'windows': out, 'memory_bytes': dom.maxMemory() * 1024, 'age_ms': 0}


def link_rate(dom, bandwidth_mibs):
    """(bytes/s, where it came from)."""
    if bandwidth_mibs is not None:
        return int(bandwidth_mibs * MIB), '--bandwidth'
    libvirt = _libvirt()
    try:
        speed = dom.migrateGetMaxSpeed(0)
    except libvirt.libvirtError:
        speed = 0
    if 0 < speed < UNLIMITED_MIBS:
        return speed * MIB, 'the guest\'s migration max speed'
    raise UsageError('no link rate: the guest has no migration max speed set; give '
                     '--bandwidth MiB/s')


def max_downtime(dom, downtime_ms, policy):
    if downtime_ms is not None:
        return downtime_ms, '--downtime-ms'
    libvirt = _libvirt()
    try:
        v = dom.migrateGetMaxDowntime(0)
    except (libvirt.libvirtError, AttributeError):
        v = 0
    if v > 0:
        return v, 'the guest\'s'
    return int(policy.get('downtime_ms', 300)), 'the policy\'s downtime_ms'


def resident_bytes(dom):
    """QEMU's resident set (bytes), or None: pages the guest never touched are zero, which
    pass 1 sends as a few bytes each."""
    libvirt = _libvirt()
    try:
        rss = dom.memoryStats().get('rss')
    except libvirt.libvirtError:
        return None
    return rss * 1024 if isinstance(rss, int) and rss > 0 else None


def policy_config(path):
    """The [policy] keys of migpilot.conf, {} if it is absent or unreadable."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                          inline_comment_prefixes=('#', ';'))
    try:
        parser.read(path)
    except configparser.Error:
        return {}
    if not parser.has_section('policy'):
        return {}
    return dict(parser.items('policy'))


def predict(conn, instance, bandwidth=None, downtime_ms=None, policy=None,
            sleep=time.sleep):
    """The forecast dict of one guest, with what it was made from."""
    policy = policy or {}
    dom = find_domain(conn, instance)
    if not dom.isActive():
        raise PredictError('%s is not running: nothing to measure' % dom.name())
    bps, bw_from = link_rate(dom, bandwidth)
    dt, dt_from = max_downtime(dom, downtime_ms, policy)
    m = measure(conn, dom, sleep=sleep)
    ram = m['memory_bytes']
    resident = resident_bytes(dom)
    try:
        fc = _migpilot.forecast(m, ram, bps, dt, policy=policy, resident_bytes=resident)
    except _migpilot.Error as e:
        raise UsageError(str(e))
    out = {'instance_id': dom.UUIDString(), 'name': dom.name(),
           'measurement': {'windows': [{'window_ms': w, 'rate_mibs': r}
                                       for w, r in m['windows']],
                           'memory_bytes': ram},
           'bandwidth_from': bw_from, 'max_downtime_from': dt_from}
    out.update(fc)
    return out


def table(fc):
    rows = [
        ('instance', '%s (%s)' % (fc['instance_id'], fc['name'])),
        ('guest RAM', '%s (%s touched: sent by pass 1)' % (_size(fc['memory_bytes']),
                                                          _size(fc['first_pass_bytes']))),
        ('link rate', '%s (%s)' % (_rate(fc['bandwidth_bps']), fc['bandwidth_from'])),
        ('max downtime', '%d ms (%s)' % (fc['max_downtime_ms'], fc['max_downtime_from'])),
        ('measured', ', '.join('%d MiB/s over %d s' % (w['rate_mibs'], w['window_ms'] // 1000)
                               for w in fc['measurement']['windows'])),
        ('working set', _size(fc['wss_bytes'])),
        ('write rate', _rate(fc['write_bps'])),
        ('forecast', '%s (%s)' % (fc['status'], fc['reason'])),
    ]
    if fc['status'] != 'unknown':
        rows += [
            ('time', _ms(fc['time_ms'])),
            ('bytes', _size(fc['bytes'])),
            ('downtime', _ms(fc['downtime_ms']) if fc['downtime_ms'] is not None
             else '- (post-copy: not modelled)'),
            ('passes', str(fc['passes'])),
            ('post-copy', 'at pass %d after %s, fetching %s' % (
                fc['switch_pass'], _ms(fc['switch_at_ms']), _size(fc['postcopy_bytes']))
             if fc['postcopy'] else 'not needed'),
        ]
    rows.append(('why', fc['explanation']))
    width = max(len(k) for k, _ in rows)
    return ''.join('%-*s  %s\n' % (width, k, v) for k, v in rows)


def run(args, conn=None, sleep=time.sleep):
    policy = policy_config(args.migpilot_conf)
    try:
        if conn is None:
            conn = open_connection(args.libvirt_uri)
        fc = predict(conn, args.instance, args.bandwidth, args.downtime_ms, policy,
                     sleep=sleep)
    except UsageError as e:
        sys.stderr.write('%s: %s\n' % (PROG, e))
        return 2
    except PredictError as e:
        sys.stderr.write('%s: %s\n' % (PROG, e))
        return 1
    except _libvirt().libvirtError as e:
        sys.stderr.write('%s: libvirt: %s\n' % (PROG, e.get_error_message()))
        return 1
    if args.json:
        sys.stdout.write(json.dumps(fc, sort_keys=True) + '\n')
    else:
        sys.stdout.write(table(fc))
    return 0
