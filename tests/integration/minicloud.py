"""A keystone-free OpenStack Zed (Debian's packages) on the lab's libvirt hosts.

    cloud = MiniCloud(lab, rabbit).up()     # control plane + one nova-compute per lab host
    server = cloud.boot('vm1', cloud.flavors['stalled'], cloud.images['stalled'], 'lab-a')
    ...
    cloud.down()                            # every process stopped by PID

Recipe and pitfalls: docs/reference/minicloud.md and docs/reference/libvirt-lab.md. In short:
RabbitMQ is the lab's; placement, glance, nova-api/conductor/scheduler and a real
neutron-server (no agents) run as plain processes on free ports of 127.0.0.1 with their
own config and state under /tmp/<prefix>-nova (never Debian's /etc files or default
ports, which daemons started by the packages' postinst scripts may hold). Auth is noauth2 /
unauthenticated / admin_token. Each nova-compute runs in its lab host's mount namespace
(root network namespace), where the same instances_path is bind-mounted from a per-host
directory and /usr/bin/qemu-system-x86_64 is the lab's RAM-size wrapper (the real binary
stays under /usr/bin, bind-mounted as qemu-system-i386). The driver shim
nova/virt/migpilot/ is put into Debian's nova package for the session and removed after.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import libvirt

from tests.lab import lab as lablib
from tests.lab.events import EventRecorder
from tests.lab.rabbit import free_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PYTHON = '/usr/bin/python3'
TOKEN = 'admin:admin'
COMPUTE_API = '2.80'
SHIM_SRC = os.path.join(REPO, 'nova_shim', 'nova', 'virt', 'migpilot')
PR_SET_PDEATHSIG = 1


class CloudError(AssertionError):
    pass


def _die_with_parent():
    # a pytest killed by its timeout skips teardown: no daemon may outlive it
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _ini(path, sections):
    """Writes an INI file; sections without keys are left out."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for section, keys in sections.items():
            if not keys:
                continue
            f.write('[%s]\n' % section)
            for k, v in keys.items():
                f.write('%s = %s\n' % (k, v))
            f.write('\n')


def _nova_package_dir():
    import importlib.util
    spec = importlib.util.find_spec('nova')
    if spec is None:
        raise CloudError('Debian\'s nova (python3-nova) is not installed: run make deps')
    return list(spec.submodule_search_locations)[0]


class Proc:
    """A daemon in its own session, stopped by PID (its process group: nova-api and
    ceilometer fork workers)."""

    def __init__(self, name, cmd, log, env=None):
        self.name = name
        self.log = log
        out = open(log, 'ab')
        self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True, preexec_fn=_die_with_parent)
        out.close()
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=15):
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # workers of the group may outlive the leader
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def tail(self, n=3000):
        try:
            with open(self.log, errors='replace') as f:
                return f.read()[-n:]
        except OSError:
            return ''


class MiniCloud:
    """quorum_queues: nova, neutron and Ceilometer run with [oslo_messaging_rabbit]
    rabbit_quorum_queue = true, on a vhost of their own (transport_url): on the shared node,
    suites before them declared nova's exchange transient, and a quorum site's is durable.
    Agents and listeners of such a cloud use transport_url and nova_conf."""

    def __init__(self, lab, rabbit, prefix=None, quorum_queues=False):
        self.lab = lab
        self.rabbit = rabbit
        self.prefix = prefix or lab.prefix
        self.quorum_queues = quorum_queues
        self.vhost = '%s-quorum' % self.prefix if quorum_queues else None
        self.transport_url = rabbit.url + (self.vhost or '')
        # what nova.conf (and its neighbours') [oslo_messaging_rabbit] say
        self.oslo_rabbit = {'rabbit_quorum_queue': 'true'} if quorum_queues else {}
        self.base = '/tmp/%s-nova' % self.prefix
        self.etc = os.path.join(self.base, 'etc')
        self.logs = os.path.join(self.base, 'logs')
        self.state = os.path.join(self.base, 'state')
        # the path nova sees on every compute; per-host content by bind mounts
        self.instances_path = os.path.join(self.base, 'instances')
        self.ports = {}
        self.procs = {}
        self.computes = {}
        self.flavors = {}
        self.images = {}
        self.shim_created = []
        self.mounted = []       # lab hosts whose mount namespace got the bind mounts
        self.timings = {}
        self.compute_files = {}

    # -- helpers ---------------------------------------------------------------------------

    def url(self, service):
        return 'http://127.0.0.1:%d' % self.ports[service]

    def env(self, pythonpath=''):
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'HOME': '/root',
               'PYTHONPATH': pythonpath}
        return env

    def request(self, service, method, path, body=None, headers=None, raw=None, timeout=60):
        """One REST call with the admin token; returns (status, decoded JSON or None)."""
        h = {'X-Auth-Token': TOKEN, 'Accept': 'application/json'}
        if service == 'nova':
            h['OpenStack-API-Version'] = 'compute %s' % COMPUTE_API
            h['X-OpenStack-Nova-API-Version'] = COMPUTE_API
        data = None
        if raw is not None:
            data = raw
            h['Content-Type'] = 'application/octet-stream'
        elif body is not None:
            data = json.dumps(body).encode()
            h['Content-Type'] = 'application/json'
        h.update(headers or {})
        prefix = {'nova': '/v2.1', 'glance': '', 'placement': '', 'neutron': ''}[service]
        req = urllib.request.Request(self.url(service) + prefix + path, data=data,
                                     headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
                status = r.status
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors='replace')
            status = e.code
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def api(self, service, method, path, body=None, ok=(200, 201, 202, 204), **kw):
        status, data = self.request(service, method, path, body, **kw)
        if status not in ok:
            raise CloudError('%s %s %s -> %s: %s' % (service, method, path, status, data))
        return data

    def _run(self, name, cmd, env=None, timeout=300):
        t = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env or self.env(), timeout=timeout)
        with open(os.path.join(self.logs, 'setup.log'), 'a') as f:
            f.write('$ %s  (%.1fs, rc %d)\n%s\n' % (' '.join(cmd), time.monotonic() - t,
                                                    p.returncode, p.stdout))
        if p.returncode != 0:
            raise CloudError('%s failed (rc %d): %s' % (name, p.returncode, p.stdout[-3000:]))
        return p.stdout

    def _start(self, name, cmd, env=None):
        if name in self.procs:
            self.procs.pop(name).stop()
        self.procs[name] = Proc(name, cmd, os.path.join(self.logs, name + '.log'),
                                env=env or self.env())
        with open(os.path.join(self.base, 'pids', name), 'w') as f:
            f.write('%d\n' % self.procs[name].pid)
        return self.procs[name]

    def _wait(self, what, pred, timeout=120, interval=0.5, procs=()):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for p in procs:
                if not p.alive():
                    raise CloudError('%s exited (rc %s) while waiting for %s:\n%s'
                                     % (p.name, p.popen.returncode, what, p.tail()))
            try:
                r = pred()
                if r:
                    return r
            except (OSError, CloudError, ValueError) as e:
                last = e
            time.sleep(interval)
        raise CloudError('%s not reached within %ss (%s)' % (what, timeout, last))

    def _http_up(self, service, path='/'):
        def ok():
            try:
                status, _ = self.request(service, 'GET', path, timeout=5)
            except OSError:
                return False
            return status < 500
        return ok

    # -- up / down ---------------------------------------------------------------------------

    def up(self):
        t0 = time.monotonic()
        try:
            self._cleanup_leftovers()
            for d in (self.etc, self.logs, self.state, os.path.join(self.base, 'pids'),
                      os.path.join(self.base, 'py'), self.instances_path):
                os.makedirs(d, exist_ok=True)
            for svc in ('placement', 'glance', 'nova', 'neutron'):
                self.ports[svc] = free_port()
            self._install_shim()
            self._create_vhost()
            self._write_configs()
            t = time.monotonic()
            self._init_dbs()
            self.timings['db_init_s'] = time.monotonic() - t
            t = time.monotonic()
            self._start_control_plane()
            self.timings['control_plane_s'] = time.monotonic() - t
            t = time.monotonic()
            for h in self.lab.hosts:
                self._prepare_host(h)
            self.start_computes()
            self.timings['computes_s'] = time.monotonic() - t
            t = time.monotonic()
            self._create_flavors_and_images()
            self.timings['flavors_images_s'] = time.monotonic() - t
        except BaseException:
            self.down()
            raise
        self.timings['up_s'] = time.monotonic() - t0
        return self

    def down(self):
        for name in [n for n in self.procs if n.startswith('nova-compute')] + \
                [n for n in self.procs if not n.startswith('nova-compute')]:
            self.procs.pop(name).stop()
        self._unmount_hosts()
        self._remove_shim()
        if self.vhost:
            self.rabbit.ctl('delete_vhost', self.vhost)

    def _create_vhost(self):
        if not self.vhost:
            return
        # a crashed earlier session's vhost holds its durable queues: start afresh
        self.rabbit.ctl('delete_vhost', self.vhost)
        for args in (('add_vhost', self.vhost),
                     ('set_permissions', '-p', self.vhost, 'guest', '.*', '.*', '.*')):
            r = self.rabbit.ctl(*args)
            if r.returncode != 0:
                raise CloudError('rabbitmqctl %s: %s' % (' '.join(args), r.stdout.strip()))

    def _unmount_hosts(self):
        # the lab outlives the cloud (session-scoped): later lab guests must find the plain
        # /usr/bin/qemu-system-x86_64 again, or the RAM-size wrapper is applied twice
        while self.mounted:
            h = self.mounted.pop()
            script = '; '.join('umount %s' % p for p in (
                '/usr/bin/qemu-system-x86_64', '/usr/bin/qemu-system-i386',
                self.instances_path))
            subprocess.run(['nsenter', '-t', str(h.pid), '-m', '-r', '-w', '--', '/bin/sh', '-c', script],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def _cleanup_leftovers(self):
        # a crashed earlier session of this prefix: its daemons by recorded PID only
        piddir = os.path.join(self.base, 'pids')
        if os.path.isdir(piddir):
            for f in os.listdir(piddir):
                pid = lablib._read_pid(os.path.join(piddir, f))
                try:
                    with open('/proc/%d/environ' % pid, 'rb') as e:
                        mine = self.base.encode() in e.read()
                    with open('/proc/%d/cmdline' % pid, 'rb') as c:
                        mine = mine or self.base.encode() in c.read()
                except (OSError, TypeError):
                    continue
                if mine:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        lablib.kill_pid(pid, timeout=5)
        shutil.rmtree(self.base, ignore_errors=True)

    def _install_shim(self):
        # nova loads compute drivers only from nova.virt: the shim must sit in Debian's
        # nova package for the session (what `make install` does for good)
        target = os.path.join(_nova_package_dir(), 'virt', 'migpilot')
        if not os.path.isdir(target):
            os.makedirs(target)
            self.shim_created.append(target)
        for name in ('__init__.py', 'driver.py'):
            dst = os.path.join(target, name)
            with open(os.path.join(SHIM_SRC, name)) as f:
                want = f.read()
            try:
                with open(dst) as f:
                    if f.read() == want:
                        continue
            except OSError:
                pass
            if os.path.exists(dst):
                raise CloudError('%s exists with other content: not overwriting' % dst)
            with open(dst, 'w') as f:
                f.write(want)
            self.shim_created.append(dst)

    def _remove_shim(self):
        for path in reversed(self.shim_created):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self.shim_created = []

    # -- configuration -------------------------------------------------------------------------

    def _write_configs(self):
        b = self.base
        rabbit = self.transport_url
        nova_conf = os.path.join(self.etc, 'nova', 'nova.conf')
        lock = os.path.join(self.state, 'lock')
        os.makedirs(lock, exist_ok=True)
        os.makedirs(os.path.join(self.etc, 'empty'), exist_ok=True)
        self.nova_conf = nova_conf
        _ini(nova_conf, {
            'DEFAULT': {
                'debug': 'true', 'use_stderr': 'false', 'transport_url': rabbit,
                'state_path': os.path.join(self.state, 'nova'), 'my_ip': '127.0.0.1',
                'enabled_apis': 'osapi_compute', 'osapi_compute_listen': '127.0.0.1',
                'osapi_compute_listen_port': self.ports['nova'],
                'osapi_compute_workers': '1', 'heal_instance_info_cache_interval': '-1',
                'instances_path': self.instances_path,
                'compute_driver': 'migpilot.driver.LibvirtDriver',
            },
            'api': {'auth_strategy': 'noauth2'},
            # nova 2025.1 enforces scopes and the new policy defaults, which noauth2's
            # project-scoped admin context does not meet (os-services:list is refused);
            # Zed has the same options, off by default
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
            'wsgi': {'api_paste_config': os.path.join(self.etc, 'nova', 'api-paste.ini')},
            'conductor': {'workers': '1'},
            'scheduler': {'workers': '1'},
            'placement': {'auth_type': 'admin_token', 'token': TOKEN,
                          'endpoint': self.url('placement'),
                          'endpoint_override': self.url('placement')},
            'glance': {'endpoint_override': self.url('glance')},
            'neutron': {'auth_type': 'admin_token', 'token': TOKEN,
                        'endpoint': self.url('neutron'),
                        'endpoint_override': self.url('neutron')},
            'compute': {'live_migration_wait_for_vif_plug': 'false'},
            'notifications': {'notification_format': 'both',
                              'notify_on_state_change': 'vm_and_task_state'},
            'oslo_messaging_notifications': {'driver': 'messagingv2'},
            'oslo_concurrency': {'lock_path': lock},
            'vnc': {'enabled': 'false'},
            'libvirt': {'virt_type': 'qemu', 'cpu_mode': 'none',
                        'live_migration_scheme': 'tcp',
                        'live_migration_permit_post_copy': 'True',
                        # MiB/s: a pass of a 384 MiB guest takes ~10 s
                        'live_migration_bandwidth': '32'},
            # Debian's format-inspector backport rejects aki/ari on the destination
            'workarounds': {'disable_deep_image_inspection': 'True'},
            'migpilot': {'mode': 'auto'},
            'oslo_messaging_rabbit': self.oslo_rabbit,
        })
        _ini(os.path.join(self.etc, 'nova', 'ctl.conf'), {
            'DEFAULT': {'host': 'ctl'},
            'api_database': {'connection': 'sqlite:///%s/nova/nova_api.sqlite' % self.state,
                             'sqlite_synchronous': 'false'},
            'database': {'connection': 'sqlite:///%s/nova/nova_cell1.sqlite' % self.state,
                         'sqlite_synchronous': 'false'},
        })
        # scenario 3: nova's stock driver, the agent switches; nova must never abort
        _ini(os.path.join(self.etc, 'nova', 'stock.conf'), {
            'DEFAULT': {'compute_driver': 'libvirt.LibvirtDriver'},
            'libvirt': {'live_migration_completion_timeout': '0'},
        })
        os.makedirs(os.path.join(self.state, 'nova'), exist_ok=True)
        # nova-api: Debian's paste pipeline plus a filter giving noauth2 contexts the token,
        # so nova-api can call glance/neutron on the user's behalf
        with open('/etc/nova/api-paste.ini') as f:
            paste = f.read()
        paste = paste.replace(' noauth2 ', ' noauth2 mptoken ')
        paste += '\n[filter:mptoken]\npaste.filter_factory = minicloud_token:filter_factory\n'
        with open(os.path.join(self.etc, 'nova', 'api-paste.ini'), 'w') as f:
            f.write(paste)
        with open(os.path.join(b, 'py', 'minicloud_token.py'), 'w') as f:
            f.write('''"""noauth2 builds contexts without auth_token; copy X-Auth-Token in."""


def filter_factory(global_conf, **local_conf):
    def make(app):
        def middleware(environ, start_response):
            ctx = environ.get('nova.context')
            token = environ.get('HTTP_X_AUTH_TOKEN')
            if ctx is not None and token and not ctx.auth_token:
                ctx.auth_token = token
            return app(environ, start_response)
        return middleware
    return make
''')
        with open(os.path.join(b, 'py', 'nova-compute'), 'w') as f:
            f.write('import sys\nfrom nova.cmd.compute import main\nsys.exit(main())\n')
        _ini(os.path.join(self.etc, 'placement', 'placement.conf'), {
            'DEFAULT': {'debug': 'true'},
            'api': {'auth_strategy': 'noauth2'},
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
            'placement_database': {
                'connection': 'sqlite:///%s/placement.sqlite' % self.state,
                'sqlite_synchronous': 'false'},
        })
        for d in ('glance-images', 'glance-cache', 'glance-staging', 'neutron'):
            os.makedirs(os.path.join(self.state, d), exist_ok=True)
        _ini(os.path.join(self.etc, 'glance', 'glance-api.conf'), {
            # 2025.1 enforces scopes and the new policy defaults (see nova.conf above)
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
            'DEFAULT': {'debug': 'true', 'bind_host': '127.0.0.1',
                        'bind_port': self.ports['glance'], 'workers': '1',
                        'image_cache_dir': os.path.join(self.state, 'glance-cache'),
                        'node_staging_uri': 'file://%s/glance-staging' % self.state},
            'database': {'connection': 'sqlite:///%s/glance.sqlite' % self.state,
                         'sqlite_synchronous': 'false'},
            # empty flavor: the unauthenticated-context pipeline (no keystone)
            'paste_deploy': {'flavor': '', 'config_file': '/etc/glance/glance-api-paste.ini'},
            'glance_store': {'stores': 'file', 'default_store': 'file',
                             'filesystem_store_datadir': '%s/glance-images/' % self.state},
            'oslo_concurrency': {'lock_path': lock},
        })
        _ini(os.path.join(self.etc, 'neutron', 'neutron.conf'), {
            # 2025.1 enforces scopes and the new policy defaults (see nova.conf above)
            'oslo_policy': {'enforce_scope': 'false', 'enforce_new_defaults': 'false'},
            'DEFAULT': {'debug': 'true', 'core_plugin': 'ml2', 'service_plugins': '',
                        'auth_strategy': 'noauth', 'bind_host': '127.0.0.1',
                        'bind_port': self.ports['neutron'], 'api_workers': '1',
                        'rpc_workers': '0', 'rpc_state_report_workers': '0',
                        'transport_url': rabbit,
                        'notify_nova_on_port_status_changes': 'false',
                        'notify_nova_on_port_data_changes': 'false',
                        'state_path': os.path.join(self.state, 'neutron'),
                        'api_paste_config': '/etc/neutron/api-paste.ini'},
            'database': {'connection': 'sqlite:///%s/neutron/neutron.sqlite' % self.state,
                         'sqlite_synchronous': 'false'},
            'oslo_concurrency': {'lock_path': lock},
            'oslo_messaging_rabbit': self.oslo_rabbit,
        })
        _ini(os.path.join(self.etc, 'neutron', 'ml2_conf.ini'), {
            'ml2': {'type_drivers': 'flat,vlan,vxlan', 'tenant_network_types': 'vxlan',
                    'mechanism_drivers': '', 'extension_drivers': 'port_security'},
            'ml2_type_flat': {'flat_networks': '*'},
            'ml2_type_vxlan': {'vni_ranges': '1:1000'},
        })

    def nova_args(self, *extra):
        return ['--config-file', self.nova_conf] + \
            [a for e in extra for a in ('--config-file', os.path.join(self.etc, 'nova', e))] + \
            ['--config-dir', os.path.join(self.etc, 'empty')]

    def _init_dbs(self):
        nm = ['/usr/bin/nova-manage'] + self.nova_args('ctl.conf')
        self._run('nova api_db sync', nm + ['api_db', 'sync'])
        self._run('nova map_cell0', nm + ['cell_v2', 'map_cell0', '--database_connection',
                                          'sqlite:///%s/nova/nova_cell0.sqlite' % self.state])
        self._run('nova create_cell', nm + ['cell_v2', 'create_cell', '--name', 'cell1'])
        self._run('nova db sync', nm + ['db', 'sync'])
        self._run('placement db sync', ['/usr/bin/placement-manage', '--config-file',
                                         os.path.join(self.etc, 'placement', 'placement.conf'),
                                         'db', 'sync'])
        self._run('glance db_sync', ['/usr/bin/glance-manage', '--config-file',
                                     os.path.join(self.etc, 'glance', 'glance-api.conf'),
                                     'db_sync'])
        # neutron's alembic migrations cannot ALTER constraints on sqlite: build the schema
        # from the models (as neutron's own unit tests do), then stamp the heads
        self._run('neutron schema', [PYTHON, '-c',
                                     'from neutron.db.migration.models import head\n'
                                     'import sqlalchemy as sa\n'
                                     'head.get_metadata().create_all(sa.create_engine('
                                     '"sqlite:///%s/neutron/neutron.sqlite"))' % self.state])
        self._run('neutron stamp', ['/usr/bin/neutron-db-manage'] + self._neutron_args() +
                  ['stamp', 'heads'])
        # sqlite's default rollback journal makes readers block writers: nova's services
        # then hit "database is locked" under load (seen failing a migration's
        # post-processing). WAL mode is persistent in the file and lets them overlap.
        import sqlite3
        for root, _, files in os.walk(self.state):
            for f in files:
                if f.endswith('.sqlite'):
                    db = sqlite3.connect(os.path.join(root, f))
                    try:
                        db.execute('PRAGMA journal_mode=WAL').fetchall()
                    finally:
                        db.close()

    def _neutron_args(self):
        return ['--config-file', os.path.join(self.etc, 'neutron', 'neutron.conf'),
                '--config-file', os.path.join(self.etc, 'neutron', 'ml2_conf.ini')]

    def _start_control_plane(self):
        py = os.path.join(self.base, 'py')
        placement_env = self.env()
        placement_env['OS_PLACEMENT_CONFIG_DIR'] = os.path.join(self.etc, 'placement')
        procs = [
            self._start('neutron-server', ['/usr/bin/neutron-server'] +
                        self._neutron_args() +
                        ['--config-dir', os.path.join(self.etc, 'empty')]),
            self._start('placement-api', ['/usr/bin/placement-api', '--host', '127.0.0.1',
                                          '--port', str(self.ports['placement'])],
                        env=placement_env),
            self._start('glance-api', ['/usr/bin/glance-api', '--config-file',
                                       os.path.join(self.etc, 'glance', 'glance-api.conf'),
                                       '--config-dir', os.path.join(self.etc, 'empty')]),
            self._start('nova-api', ['/usr/bin/nova-api'] + self.nova_args('ctl.conf'),
                        env=self.env(py)),
            self._start('nova-conductor', ['/usr/bin/nova-conductor'] +
                        self.nova_args('ctl.conf')),
            self._start('nova-scheduler', ['/usr/bin/nova-scheduler'] +
                        self.nova_args('ctl.conf')),
        ]
        for svc, path in (('placement', '/'), ('glance', '/versions'), ('nova', '/'),
                          ('neutron', '/v2.0/extensions')):
            self._wait('%s API' % svc, self._http_up(svc, path), timeout=150, procs=procs)

    # -- computes -------------------------------------------------------------------------------

    def qemu_shim(self):
        """The emulator nova's domains get as /usr/bin/qemu-system-x86_64 on lab hosts: the
        lab's RAM-size wrapper, exec'ing the real binary bind-mounted at
        /usr/bin/qemu-system-i386 (QEMU finds its modules relative to its own path). Kept
        with the same ctime across runs, so libvirt's capability cache stays valid."""
        path = os.path.join(lablib.CACHE_DIR, 'nova-qemu-x86_64')
        want = ('#!/bin/sh\n# lab hosts running nova: see tests/integration/minicloud.py\n'
                'MPLAB_REAL_QEMU=/usr/bin/qemu-system-i386 exec %s "$@"\n'
                % self.lab.images['emulator'])
        try:
            with open(path) as f:
                if f.read() == want:
                    return path
        except OSError:
            pass
        with open(path + '.tmp', 'w') as f:
            f.write(want)
        os.chmod(path + '.tmp', 0o755)
        os.rename(path + '.tmp', path)
        return path

    def _prepare_host(self, h):
        hdir = os.path.join(self.base, 'hosts', h.name)
        os.makedirs(os.path.join(hdir, 'instances'), exist_ok=True)
        os.makedirs(os.path.join(self.state, h.name, 'lock'), exist_ok=True)
        shim = self.qemu_shim()
        script = ' && '.join([
            'mount --bind %s %s' % (os.path.join(hdir, 'instances'), self.instances_path),
            'mount --bind /usr/bin/qemu-system-x86_64 /usr/bin/qemu-system-i386',
            'mount --bind %s /usr/bin/qemu-system-x86_64' % shim,
        ])
        # -r -w: libvirtd's root and working directories as well as its mount namespace (in
        # a test root, the namespace alone resolves paths from the machine's root)
        self._run('mounts on %s' % h.name,
                  ['nsenter', '-t', str(h.pid), '-m', '-r', '-w', '--', '/bin/sh', '-c', script])
        self.mounted.append(h)
        conf = os.path.join(self.etc, 'nova', 'cmp-%s.conf' % h.name)
        _ini(conf, {
            'DEFAULT': {'host': h.name, 'state_path': os.path.join(self.state, h.name)},
            'libvirt': {'connection_uri': h.uri, 'live_migration_inbound_addr': h.addr},
            'oslo_concurrency': {'lock_path': os.path.join(self.state, h.name, 'lock')},
            'nova_sys_admin': {'helper_command': '/usr/bin/privsep-helper ' + ' '.join(
                self.nova_args('cmp-%s.conf' % h.name)[:-2])},
        })
        self.compute_files[h.name] = ['cmp-%s.conf' % h.name]

    def compute_log(self, h):
        return os.path.join(self.logs, 'nova-compute-%s.log' % self.lab.host(h).name)

    def start_computes(self, stock=False):
        """(Re)starts nova-compute on every lab host; stock=True: nova's own driver with
        live_migration_completion_timeout = 0 (the agent switches)."""
        pythonpath = '%s:%s' % (REPO, os.path.join(self.base, 'py'))
        started = {}
        for h in self.lab.hosts:
            name = 'nova-compute-%s' % h.name
            files = self.compute_files[h.name] + (['stock.conf'] if stock else [])
            log = self.compute_log(h)
            if name in self.procs:
                self.procs.pop(name).stop()
            # in the host's mount namespace (its instances dir), root network namespace
            started[h.name] = self._start(
                name, ['nsenter', '-t', str(h.pid), '-m', '-r', '-w', '--', PYTHON,
                       os.path.join(self.base, 'py', 'nova-compute')] +
                self.nova_args(*files) + ['--log-file', log], env=self.env(pythonpath))
        self.stock = stock

        def services_up():
            data = self.api('nova', 'GET', '/os-services?binary=nova-compute')
            up = {s['host'] for s in data['services'] if s['state'] == 'up' and
                  s['status'] == 'enabled'}
            return all(h.name in up for h in self.lab.hosts)
        self._wait('nova-compute services up', services_up, timeout=180,
                   procs=list(started.values()))
        self._run('discover_hosts', ['/usr/bin/nova-manage'] + self.nova_args('ctl.conf') +
                  ['cell_v2', 'discover_hosts'])

        def hypervisors():
            data = self.api('nova', 'GET', '/os-hypervisors/detail')
            names = {x['hypervisor_hostname'] for x in data['hypervisors']
                     if x['state'] == 'up'}
            return all(h.name in names for h in self.lab.hosts)
        self._wait('hypervisors listed', hypervisors, timeout=120,
                   procs=list(started.values()))
        return started

    # -- flavors, images, servers -----------------------------------------------------------------

    def _image(self, name, disk_format, path, **props):
        body = dict(name=name, disk_format=disk_format, container_format=disk_format
                    if disk_format in ('aki', 'ari', 'ami') else 'bare', **props)
        img = self.api('glance', 'POST', '/v2/images', body)
        with open(path, 'rb') as f:
            self.api('glance', 'PUT', '/v2/images/%s/file' % img['id'], raw=f.read())
        self._wait('image %s active' % name,
                   lambda: self.api('glance', 'GET', '/v2/images/' + img['id'])['status'] ==
                   'active', timeout=60)
        return img['id']

    def _create_flavors_and_images(self):
        images = self.lab.images
        kernel = self._image('lab-kernel', 'aki', images['kernel'])
        ramdisk = self._image('lab-ramdisk', 'ari', images['initrd'])
        blank = os.path.join(self.state, 'blank.img')
        with open(blank, 'wb') as f:
            f.truncate(1024 * 1024)
        for kind, (mem, dmib, rate) in GUESTS.items():
            self.flavors[kind] = self.api('nova', 'POST', '/flavors', {'flavor': {
                'name': 'lab-%s' % kind, 'ram': mem, 'vcpus': 1, 'disk': 1}})['flavor']['id']
            self.images[kind] = self._image(
                'lab-%s' % kind, 'ami', blank, kernel_id=kernel, ramdisk_id=ramdisk,
                os_command_line='console=ttyS0 quiet loglevel=4 panic=-1 dirt_mib=%d '
                                'dirt_rate=%d' % (dmib, rate))

    def boot(self, name, kind, host, timeout=150):
        """A server of a GUESTS kind on a lab host; waits for ACTIVE and its first
        heartbeat on the console. Returns the server id."""
        h = self.lab.host(host)
        server = self.api('nova', 'POST', '/servers', {'server': {
            'name': name, 'imageRef': self.images[kind], 'flavorRef': self.flavors[kind],
            'networks': 'none', 'host': h.name}})['server']
        sid = server['id']

        def active():
            s = self.api('nova', 'GET', '/servers/' + sid)['server']
            if s['status'] == 'ERROR':
                raise CloudError('server %s went to ERROR: %s' % (name, s.get('fault')))
            return s['status'] == 'ACTIVE'
        try:
            self._wait('server %s ACTIVE' % name, active, timeout=timeout)
        except CloudError as e:
            raise CloudError('%s\n%s' % (e, self.procs['nova-compute-%s' % h.name].tail()))
        self._wait('first heartbeat of %s' % name,
                   lambda: self.heartbeats(h, sid), timeout=timeout)
        return sid

    def delete(self, sid):
        self.request('nova', 'DELETE', '/servers/' + sid)

        def gone():
            status, _ = self.request('nova', 'GET', '/servers/' + sid)
            return status == 404
        self._wait('server %s deleted' % sid, gone, timeout=60)

    def server(self, sid):
        return self.api('nova', 'GET', '/servers/' + sid)['server']

    def migrations(self, sid):
        return self.api('nova', 'GET', '/os-migrations?instance_uuid=%s' % sid)['migrations']

    # -- guests ------------------------------------------------------------------------------------

    def console_path(self, host, sid):
        h = self.lab.host(host)
        return os.path.join(self.base, 'hosts', h.name, 'instances', sid, 'console.log')

    def console(self, host, sid):
        try:
            with open(self.console_path(host, sid), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def heartbeats(self, host, sid):
        return [lablib.Heartbeat(*map(int, m))
                for m in lablib.HB_RE.findall(self.console(host, sid))]

    def check_guest_healthy(self, host, sid, after_seq=0, beats=2, timeout=40):
        """The server's domain runs on host, `beats` heartbeats newer than after_seq appear
        on its console there, and no console of it (any host) shows a kernel crash."""
        h = self.lab.host(host)
        try:
            state, reason = h.conn().lookupByUUIDString(sid).state()
        except libvirt.libvirtError as e:
            raise lablib.GuestUnhealthy('server %s has no domain on %s: %s' % (sid, h.name, e))
        if state != libvirt.VIR_DOMAIN_RUNNING:
            raise lablib.GuestUnhealthy('server %s on %s: state %d reason %d'
                                        % (sid, h.name, state, reason))
        hbs = self.heartbeats(h, sid)
        seq = max([after_seq] + [x.seq for x in hbs])
        want = seq + beats
        self._wait('%d new heartbeats of %s on %s' % (beats, sid, h.name),
                   lambda: any(x.seq >= want for x in self.heartbeats(h, sid)),
                   timeout=timeout)
        for x in self.lab.hosts:
            bad = [line for line in self.console(x, sid).splitlines()
                   if lablib.BAD_CONSOLE.search(line)]
            if bad:
                raise lablib.GuestUnhealthy('server %s crashed (console on %s): %s'
                                            % (sid, x.name, bad[:5]))
        return self.heartbeats(h, sid)[-1]


# kind -> (flavor RAM MiB, MiB the guest rewrites, rate MiB/s; -1 = flat out)
GUESTS = {
    # rewrites 256 MiB flat out, far above the 32 MiB/s cap: pre-copy never converges
    'stalled': (384, 256, -1),
    # 64 MiB at 4 MiB/s, well under the cap: pre-copy converges in a few passes
    'converging': (256, 64, 4),
}


class MigrationWatch:
    """What a live migration looked like from outside: the nova migration record's
    statuses (polled every 0.1 s), and the source's libvirt events (pass starts, post-copy),
    all on the test's monotonic clock."""

    def __init__(self, cloud, sid, source):
        self.cloud = cloud
        self.sid = sid
        self.source = cloud.lab.host(source)
        self.statuses = []            # [(t, migration id, status)]
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.recorder = EventRecorder(self.source)
        self.known = {m['id'] for m in cloud.migrations(sid)}
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    @property
    def events(self):
        """This instance's libvirt events on the source: [(t, kind, value)]."""
        with self.recorder.cond:
            return [(t, k, v) for t, u, k, v in self.recorder.events if u == self.sid]

    def _poll(self):
        last = None
        while not self.stop_event.is_set():
            try:
                ms = [m for m in self.cloud.migrations(self.sid) if m['id'] not in self.known]
            except (OSError, CloudError):
                ms = []
            if ms:
                m = max(ms, key=lambda x: x['id'])
                if (m['id'], m['status']) != last:
                    last = (m['id'], m['status'])
                    with self.lock:
                        self.statuses.append((time.monotonic(), m['id'], m['status']))
            time.sleep(0.1)

    def status_sequence(self):
        with self.lock:
            return [s for _, _, s in self.statuses]

    def first(self, kind, value):
        return self.recorder.first(kind, value, self.sid)

    def wait_final(self, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seq = self.status_sequence()
            if seq and seq[-1] in ('completed', 'error', 'failed', 'cancelled'):
                return seq[-1]
            time.sleep(0.2)
        raise CloudError('migration of %s not finished within %ss (statuses %s)'
                         % (self.sid, timeout, self.status_sequence()))

    def close(self):
        self.stop_event.set()
        self.thread.join(5)
        self.recorder.close()


def osc_live_migrate(cloud, sid, host):
    """`openstack server migrate --live-migration --host <host> <id>`, as an operator."""
    env = cloud.env()
    env.update({'OS_AUTH_TYPE': 'admin_token', 'OS_TOKEN': TOKEN,
                'OS_ENDPOINT': cloud.url('nova') + '/v2.1',
                'OS_COMPUTE_API_VERSION': COMPUTE_API})
    p = subprocess.run(['/usr/bin/openstack', 'server', 'migrate', '--live-migration',
                        '--host', cloud.lab.host(host).name, sid],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                       timeout=120)
    if p.returncode != 0:
        raise CloudError('openstack server migrate failed (rc %d): %s'
                         % (p.returncode, p.stdout))
    return p.stdout


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def grep_log(path, pattern, since=0):
    """re.findall over the log from byte offset `since` (a log_size() taken earlier)."""
    try:
        with open(path, 'rb') as f:
            f.seek(since)
            return re.findall(pattern, f.read().decode(errors='replace'), re.M)
    except OSError:
        return []


class Ceilometer:
    """Debian's ceilometer-agent-notification with migpilot's meter definitions (the
    repository's etc/ceilometer/meters.d) and a file publisher, on the cloud's RabbitMQ.
    (Ceilometer 19 has no file publisher for events: the event definitions are checked
    with Ceilometer's own converter in tests/python/test_check.py.)"""

    def __init__(self, cloud):
        self.cloud = cloud
        self.dir = os.path.join(cloud.etc, 'ceilometer')
        self.samples_path = os.path.join(cloud.base, 'ceilometer-samples.json')
        self.proc = None

    def start(self):
        import ceilometer
        pkg = os.path.dirname(ceilometer.__file__)
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, 'pipeline.yaml'), 'w') as f:
            f.write('---\nsources:\n  - name: migpilot_source\n    meters:\n'
                    '      - "compute.instance.live_migration.*"\n    sinks:\n'
                    '      - migpilot_sink\nsinks:\n  - name: migpilot_sink\n'
                    '    publishers:\n      - file://%s?json\n' % self.samples_path)
        conf = os.path.join(self.dir, 'ceilometer.conf')
        with open(conf, 'w') as f:
            f.write('[DEFAULT]\ndebug = true\ntransport_url = %s\npipeline_cfg_file = %s\n'
                    '[notification]\nworkers = 1\npipelines = meter\n'
                    '[meter]\nmeter_definitions_dirs = %s\nmeter_definitions_dirs = %s\n'
                    % (self.cloud.transport_url, os.path.join(self.dir, 'pipeline.yaml'),
                       os.path.join(REPO, 'etc', 'ceilometer', 'meters.d'),
                       os.path.join(pkg, 'data', 'meters.d')))
            if self.cloud.oslo_rabbit:
                f.write('[oslo_messaging_rabbit]\n' + ''.join(
                    '%s = %s\n' % kv for kv in self.cloud.oslo_rabbit.items()))
        self.proc = self.cloud._start(
            'ceilometer-agent-notification',
            ['/usr/bin/ceilometer-agent-notification', '--config-file', conf,
             '--config-dir', os.path.join(self.cloud.etc, 'empty'),
             '--log-file', os.path.join(self.cloud.logs, 'ceilometer.log')])
        # ready once its notification listeners consume from notifications.info
        self.cloud._wait('ceilometer listening', self._consuming, timeout=90,
                         procs=[self.proc])
        return self

    def _consuming(self):
        out = self.cloud.rabbit.ctl('list_queues', '-q', '-p', self.cloud.vhost or '/', 'name',
                                    'consumers')
        text = out if isinstance(out, str) else getattr(out, 'stdout', '')
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == 'notifications.info' and int(parts[1]) > 0:
                return True
        return False

    def _read(self, path):
        out = []
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        out.append(json.loads(line))
        except OSError:
            pass
        return out

    def samples(self, resource_id=None):
        return [s for s in self._read(self.samples_path)
                if resource_id is None or s.get('resource_id') == resource_id]

    def wait_samples(self, resource_id, names, timeout=60):
        def got():
            have = {s['name']: s for s in self.samples(resource_id)}
            return have if all(n in have for n in names) else None
        return self.cloud._wait('Ceilometer samples %s for %s' % (names, resource_id), got,
                                timeout=timeout, procs=[self.proc])
