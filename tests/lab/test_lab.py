"""The lab's own tests: hosts, guests, migrations (pre-copy, stalled pre-copy rescued by a
manual post-copy switch), traces, link cuts, libvirtd restarts, RabbitMQ.

Run: /usr/bin/python3 -m pytest -p no:cacheprovider tests/lab   (as root; ~1-2 min)
If the lab cannot start, every test fails with the reason (never skipped).
"""
import json
import os
import socket
import subprocess
import time

import libvirt
import pytest

from tests.lab import trace as tracemod
from tests.lab.lab import SUBNET, GuestUnhealthy, lab_netns, pids_in_netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MiB = 1 << 20
BW_MIBS = 32          # bandwidth cap that a dirtying guest outruns
IDLE = 'lab-idle'
STALL = 'lab-stall'


def _report(name, value):
    print('[lab timing] %s: %s' % (name, value))


@pytest.fixture(scope='module')
def idle_guest(lab):
    """An idle 256 MiB guest on host A, booted once for this module."""
    lab.destroy_guest(IDLE)
    lab.start_guest(lab.hosts[0], IDLE, mem_mib=256, dirty_mib=32, dirty_rate=0)
    _report('lab up', '%.1f s' % lab.timings['up_s'])
    _report('idle guest boot', '%.1f s' % lab.timings['boot_%s_s' % IDLE])
    yield IDLE
    lab.destroy_guest(IDLE)


def _wait_samples(rec, npass, count, timeout):
    """Waits until the recorder has `count` samples of pass `npass` giving memory_remaining;
    returns how many it has."""
    deadline = time.monotonic() + timeout
    while True:
        with rec.lock:
            n = sum(1 for x in rec.lines if x.get('kind') == 'sample' and
                    x.get('pass') == npass and 'memory_remaining' in x)
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def _tcp_reachable(host, addr, port=16509, timeout=1.0):
    code = ('import socket,sys\n'
            'try:\n socket.create_connection((%r, %d), %r).close()\n'
            'except OSError as e:\n print(e); sys.exit(1)\n' % (addr, port, timeout))
    return host.exec('/usr/bin/python3', '-c', code, check=False).returncode == 0


def test_hosts_are_distinct_libvirt_hosts(lab):
    assert len(lab.hosts) >= 2
    uuids = set()
    for i, h in enumerate(lab.hosts):
        c = h.conn()
        assert c.getHostname() == h.name == 'lab-%s' % chr(ord('a') + i)
        caps = c.getCapabilities()
        assert '<uuid>%s</uuid>' % h.host_uuid in caps
        uuids.add(h.host_uuid)
        assert c.listAllNetworks() == [], 'lab hosts must have no libvirt networks'
        assert h.addr == '%s.%d' % (SUBNET, i + 1)
        assert os.kill(h.pid, 0) is None
        # the libvirtd runs in the host's own network namespace
        assert os.readlink('/proc/%d/ns/net' % h.pid) != os.readlink('/proc/self/ns/net')
    assert len(uuids) == len(lab.hosts)
    a, b = lab.hosts[0], lab.hosts[1]
    # peer-to-peer path: A's namespace reaches B's libvirtd over TCP, as libvirt does
    p = a.exec('virsh', '-c', b.tcp_uri, 'hostname', check=False, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == b.name, p.stdout


def test_idle_guest_migrates_a_to_b_and_back(lab, idle_guest):
    a, b = lab.hosts[0], lab.hosts[1]
    before = lab.heartbeats(a, idle_guest)[-1].seq
    m = lab.migrate(a, b, idle_guest)
    _report('idle migration A->B', '%.1f s' % m.elapsed)
    assert m.ok
    assert not a.has_domain(idle_guest), 'guest still active on the source'
    hb = lab.check_guest_healthy(b, idle_guest)
    assert hb.seq > before, 'heartbeat did not continue on B'
    m = lab.migrate(b, a, idle_guest)
    _report('idle migration B->A', '%.1f s' % m.elapsed)
    assert not b.has_domain(idle_guest)
    lab.check_guest_healthy(a, idle_guest)
    assert lab.find_guest(idle_guest) is a


def test_link_cut_and_restore(lab):
    a, b = lab.hosts[0], lab.hosts[1]
    assert _tcp_reachable(a, b.addr)
    lab.cut_link(b)
    try:
        assert not lab.link_is_up(b)
        assert not _tcp_reachable(a, b.addr), 'B still reachable with its link cut'
    finally:
        lab.restore_link(b)
    assert lab.link_is_up(b)
    assert _tcp_reachable(a, b.addr)


def test_libvirtd_restart_keeps_guest(lab, idle_guest):
    a = lab.find_guest(idle_guest)
    assert a is not None
    old = a.pid
    t = time.monotonic()
    lab.restart_libvirtd(a)
    _report('libvirtd restart', '%.1f s' % (time.monotonic() - t))
    assert a.pid != old
    assert a.has_domain(idle_guest), 'the new libvirtd lost the running guest'
    lab.check_guest_healthy(a, idle_guest)


def test_stalled_precopy_rescued_by_manual_postcopy(lab, tmp_path):
    """A guest dirtying 128 MiB at 100 MiB/s outruns a 32 MiB/s cap: pre-copy does not
    converge (remaining climbs back at every pass); a post-copy switch through the libvirt
    API finishes the migration and the guest stays healthy on B. The job stats are recorded
    as a trace whose structure is checked."""
    a, b = lab.hosts[0], lab.hosts[1]
    lab.destroy_guest(STALL)
    mem, dmib, rate = 256, 128, 100
    try:
        lab.start_guest(a, STALL, mem_mib=mem, dirty_mib=dmib, dirty_rate=rate)
        _report('dirtying guest boot', '%.1f s' % lab.timings['boot_%s_s' % STALL])
        time.sleep(2)   # let the dirtier reach its rate
        hbs = lab.heartbeats(a, STALL)
        assert hbs[-1].dirtied >= 50, 'dirtier too slow under TCG: %r' % (hbs[-1],)

        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                 | libvirt.VIR_MIGRATE_POSTCOPY)
        path = str(tmp_path / 'stalled.jsonl')
        rec = tracemod.TraceRecorder(path, a, STALL, meta={
            'guest_mem_mib': mem, 'dirty_mib': dmib, 'dirty_rate_mibs': rate,
            'bandwidth_mibs': BW_MIBS, 'flags': flags, 'scenario': 'lab_test_stalled'}).start()
        m = lab.migrate(a, b, STALL, bandwidth_mibs=BW_MIBS, flags=flags, wait=False)
        try:
            # two full passes without completing, and pass 3 sampled (judged below)
            m.wait_pass(3, timeout=90)
            n3 = _wait_samples(rec, 3, 3, timeout=10)
            assert n3 >= 3, 'only %d job-stats samples of pass 3 in 10 s' % n3
            assert not m.done.is_set(), 'pre-copy converged, the guest did not stall it'
            pre_s = m.elapsed
            rec.postcopy_switch()
            t = time.monotonic()
            m.start_postcopy()
            _report('migrateStartPostCopy call', '%.2f s' % (time.monotonic() - t))
            m.wait(120)
        finally:
            if not m.done.is_set():
                try:
                    m.abort()
                except libvirt.libvirtError:
                    pass
                m.wait(60, check=False)
            lines = rec.finish(error=m.error if m.done.is_set() else "not finished")
        _report('stalled migration: pre-copy until switch', '%.1f s' % pre_s)
        _report('stalled migration: total', '%.1f s' % m.elapsed)
        _report('stalled migration: post-copy page requests',
                lines[-1].get('memory_postcopy_requests'))

        assert not a.has_domain(STALL)
        hb = lab.check_guest_healthy(b, STALL)
        assert hb.dirtied >= 10, 'guest on B stopped dirtying: %r' % (hb,)

        # the trace
        with open(path) as f:
            assert [json.loads(x) for x in f] == lines
        samples = tracemod.check_structure(lines)
        meta, done = lines[0], lines[-1]
        assert meta['scenario'] == 'lab_test_stalled' and meta['bandwidth_mibs'] == BW_MIBS
        assert meta['flags'] & libvirt.VIR_MIGRATE_POSTCOPY
        iters = [x['pass'] for x in lines if x.get('event') == 'iteration']
        assert iters[:3] == [1, 2, 3], iters
        switch = [x for x in lines if x.get('event') == 'postcopy_switch']
        assert len(switch) == 1
        lifecycle = [x['detail'] for x in lines if x.get('event') == 'lifecycle']
        assert 'SUSPENDED/POSTCOPY' in lifecycle, lifecycle
        # the guest ran on B while pages were still missing there: it keeps rewriting its
        # 128 MiB at 100 MiB/s, so it faults on some before the background copy sends them
        assert done['memory_postcopy_requests'] > 0, done
        assert done['memory_iteration'] >= 3, done
        assert 0 <= done['downtime'] < 5000, done

        # remaining climbs back at the start of each pass: pre-copy was not converging
        by_pass = {}
        for s in samples:
            if s.get('t_ms', 0) < switch[0]['t_ms'] and 'memory_remaining' in s:
                by_pass.setdefault(s['pass'], []).append(s['memory_remaining'])
        assert 1 in by_pass and 2 in by_pass, sorted(by_pass)
        for k in (2, 3):
            assert k in by_pass, 'no sample of pass %d before the switch: %s' % (
                k, sorted(by_pass))
            low_before = min(by_pass[k - 1])
            start = max(by_pass[k][:3])
            assert start > low_before + 32 * MiB, \
                'remaining did not climb back at pass %d: %d MiB after a low of %d MiB' \
                % (k, start >> 20, low_before >> 20)
            assert start > 64 * MiB, 'pass %d starts with only %d MiB' % (k, start >> 20)
        # and the rate is capped as asked
        bps = [s['memory_bps'] for s in samples
               if s.get('memory_bps') and s.get('pass', 0) >= 1 and s['t_ms'] < switch[0]['t_ms']]
        assert bps and max(bps) <= (BW_MIBS + 4) * MiB, max(bps or [0])
    finally:
        lab.destroy_guest(STALL)


def test_link_cut_during_postcopy_then_resume(lab):
    """cut_link(kill_sockets=True) during post-copy breaks the migration at once (source
    PAUSED/POSTCOPY_FAILED); after restore_link a POSTCOPY_RESUME migration finishes it and
    the guest is healthy on B."""
    a, b = lab.hosts[0], lab.hosts[1]
    name = 'lab-cut'
    lab.destroy_guest(name)
    try:
        lab.start_guest(a, name, mem_mib=256, dirty_mib=128, dirty_rate=100)
        time.sleep(1)
        # post-copy throttled to 8 MiB/s so that it is still running when the link goes
        m = lab.migrate(a, b, name, bandwidth_mibs=64, postcopy=True, wait=False,
                        params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: 8})
        m.wait_pass(2, timeout=60)
        m.start_postcopy()
        m.wait_for(lambda st: a.domain(name).state() == [libvirt.VIR_DOMAIN_PAUSED,
                                                          libvirt.VIR_DOMAIN_PAUSED_POSTCOPY],
                   timeout=20)
        time.sleep(0.5)
        lab.cut_link(b, kill_sockets=True)
        try:
            m.wait(30, check=False)
            assert m.error is not None, 'migration survived the cut?'
            state = a.domain(name).state()
            assert state == [libvirt.VIR_DOMAIN_PAUSED,
                             libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED], state
        finally:
            lab.restore_link(b)
        t = time.monotonic()
        libvirt_11_3 = a.open().getLibVersion() // 1000 == 11003
        # QEMU needs a moment to reach postcopy-paused on both sides; until then libvirt
        # refuses the resume with "QEMU reports migration is still running" (each attempt
        # runs in the Migration's own thread with a deadline: a resume that never ends must
        # fail the test, not hang it)
        for attempt in range(60):
            r = lab.migrate(a, b, name, params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: 1024},
                            extra_flags=libvirt.VIR_MIGRATE_POSTCOPY
                            | libvirt.VIR_MIGRATE_POSTCOPY_RESUME, wait=False)
            r.wait(120, check=False)
            if r.error is None:
                break
            # "client socket is closed": the source's libvirtd still held its connection to
            # the destination's from before the cut (libvirt 9.0 notices by keepalive)
            retry = 'still running' in str(r.error) or (
                not libvirt_11_3 and 'client socket is closed' in str(r.error))
            if retry and attempt < 59:
                time.sleep(0.5)
                continue
            if libvirt_11_3:
                # libvirt 11.3 (Debian 13): the resume kills the destination's libvirtd
                # (SIGSEGV in its qemu driver), which is why the agent's feature table
                # holds resumes off there (agent/daemon/mpfeatures.c)
                with pytest.raises(libvirt.libvirtError):
                    libvirt.open(b.uri).getLibVersion()
                _report('post-copy resume on libvirt 11.3',
                        'the destination libvirtd died: %s' % r.error)
                lab.restart_libvirtd(b)
                return
            raise r.error
        # libvirt 11.3 resumed: its entry in mpfeatures.c is wrong
        assert not libvirt_11_3
        _report('post-copy resume after link restore', '%.1f s (%d refused attempts)'
                % (time.monotonic() - t, attempt))
        assert not a.has_domain(name)
        lab.check_guest_healthy(b, name)
    finally:
        lab.destroy_guest(name)


def test_guest_health_check_detects_a_crash(lab):
    """check_guest_healthy must be able to fail: a console with an Oops is reported."""
    a = lab.hosts[0]
    path = a.serial_log('lab-fake')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('HB 1 up=1 dirtied=0 maxgap_ms=0\nBUG: unable to handle page fault\n'
                'Kernel panic - not syncing: Fatal exception\n')
    try:
        assert len(lab.console_problems('lab-fake')) == 2
        with pytest.raises(GuestUnhealthy):
            lab.check_guest_healthy(a, 'lab-fake', timeout=2)
    finally:
        os.unlink(path)


def test_labctl_down_cleans_up_after_a_crashed_run():
    """A process that brought a lab up and started a guest is SIGKILLed (no finalizer, no
    atexit); labctl down must remove everything it left, and be idempotent."""
    prefix = 'mpcrash'
    code = ('import os, signal\n'
            'from tests.lab.lab import Lab\n'
            'lab = Lab(hosts=2, prefix=%r)\n'
            'lab.up()\n'
            'lab.start_guest(0, "orphan", mem_mib=128, wait=False)\n'
            'print("UP", flush=True)\n'
            'os.kill(os.getpid(), signal.SIGKILL)\n' % prefix)
    p = subprocess.run(['/usr/bin/python3', '-c', code], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=180)
    assert 'UP' in p.stdout and p.returncode == -9, p.stdout[-2000:]
    namespaces = lab_netns(prefix)
    assert sorted(namespaces) == ['%s-a' % prefix, '%s-b' % prefix, '%s-sw' % prefix]
    pids = [pid for ns in namespaces for pid in pids_in_netns(ns)]
    assert len(pids) >= 3, 'expected 2 libvirtd + 1 QEMU left behind, got %r' % pids
    for _ in range(2):   # idempotent
        d = subprocess.run(['/usr/bin/python3', '-m', 'tests.lab.labctl', '--prefix', prefix,
                            'down'], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        assert d.returncode == 0, d.stdout
    assert lab_netns(prefix) == []
    for pid in pids:
        assert not os.path.exists('/proc/%d/cmdline' % pid) or \
            open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[0] == 'Z', \
            'pid %d survived labctl down' % pid
    assert not os.path.exists('/tmp/%s' % prefix)
    mounts = open('/proc/self/mounts').read()
    assert prefix not in mounts, [m for m in mounts.splitlines() if prefix in m]


@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_rabbit_accepts_amqp(rabbit):
    import kombu
    assert rabbit.url == 'rabbit://guest:guest@127.0.0.1:%d/' % rabbit.port
    assert rabbit.pid and os.kill(rabbit.pid, 0) is None
    _report('rabbitmq start', '%.1f s' % rabbit.startup_s)
    # only on loopback
    with pytest.raises(OSError):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((_non_loopback_addr(), rabbit.port))
        finally:
            s.close()
    url = rabbit.url.replace('rabbit://', 'amqp://')
    with kombu.Connection(url, connect_timeout=5) as conn:
        q = kombu.Queue('lab-selftest', exchange=kombu.Exchange('lab', type='topic'),
                        routing_key='lab.#', auto_delete=True)
        with conn.Producer() as prod:
            prod.publish({'hello': 'lab'}, exchange=q.exchange, routing_key='lab.test',
                         declare=[q], serializer='json')
        got = []
        with conn.Consumer(q, callbacks=[lambda body, msg: (got.append(body), msg.ack())]):
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
        assert got == [{'hello': 'lab'}]
    p = rabbit.ctl('status', timeout=60)
    assert p.returncode == 0 and rabbit.nodename in p.stdout, p.stdout[-500:]


def _non_loopback_addr():
    """An address of this machine that is not loopback (the broker must not listen there)."""
    out = subprocess.run(['ip', '-4', '-o', 'addr', 'show', 'scope', 'global'],
                         stdout=subprocess.PIPE, text=True).stdout.split()
    for i, tok in enumerate(out):
        if tok == 'inet':
            return out[i + 1].split('/')[0]
    return '192.0.2.254'   # none: any unreachable address makes the connect fail too


def test_rabbit_tls_listener(rabbit_tls):
    import ssl

    import amqp
    # the server certificate must verify against the generated CA
    sslopts = {'ca_certs': rabbit_tls.ca_file, 'cert_reqs': ssl.CERT_REQUIRED,
               'server_hostname': 'localhost'}
    c = amqp.Connection('127.0.0.1:%d' % rabbit_tls.tls_port, userid='guest',
                        password='guest', ssl=sslopts, connect_timeout=5)
    c.connect()
    try:
        assert c.server_properties.get('product') == 'RabbitMQ'
        assert c.transport.sock.version().startswith('TLS')
    finally:
        c.close()
    assert rabbit_tls.tls_url.endswith(':%d/?ssl=1' % rabbit_tls.tls_port)
