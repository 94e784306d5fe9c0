"""nova's libvirt driver with migpilot's post-copy policy.

    [DEFAULT]
    compute_driver = migpilot.driver.LibvirtDriver     # the shim nova/virt/migpilot/driver.py

During a live migration, nova's own monitor loop polls the source domain's job statistics
every 0.5 s. The driver hands each of those polls to the C policy (_migpilot.Policy) as it
goes by, and when the policy says "switch" it queues nova's own force-complete task: nova's
loop picks it up in the same iteration and switches to post-copy itself, so the migration
record says `running (post-copy)`, nova activates the destination port bindings early and
its completion timeout leaves the job alone. Nothing of nova is copied or patched: the
driver overrides a few methods and calls the parent's.

The second override keeps the switch on time: nova's periodic resource audit lists the
host's PCI devices with a libvirt call made from the eventlet hub, and during an outgoing
migration that call was measured to freeze the whole source nova-compute for 60-90 s
(monitor loop, force-complete and this policy included). It now runs in a native thread
(eventlet's tpool) when nova runs under eventlet; under native threads (nova's threading
mode, available from 2025.2, nova-compute's default after 2026.1) the call blocks only its
own thread and runs as is.

A third, off by default ([migpilot] postcopy_preempt), adds libvirt's post-copy
preemption flag to nova's migration flags where post-copy is permitted and this host's
libvirt and QEMU support it (nova_hooks.preempt).

The overrides are private methods of nova, whose parameters change between releases (nova
2026.1 renamed the monitor's `finish_event` to `future`). So when the class is created, the
parent's signatures are compared with the ones the driver was written for
(nova_hooks.novacompat.EXPECTED: nova Zed to 2025.1). On any difference the driver logs one
warning saying which, and then behaves exactly like nova's stock driver: each override calls
the parent with the caller's arguments, and nothing else; the migpilot agent can still
switch. `migpilot check` makes the same comparison.
"""
import sys

import libvirt
from oslo_log import log as logging

from nova.compute import power_state
import nova.conf
from nova import utils as nova_utils
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import guest as libvirt_guest

import _migpilot
from nova_hooks import conf as mp_conf
from nova_hooks import novacompat
from nova_hooks import preempt

CONF = nova.conf.CONF
mp_conf.register_opts(CONF)

LOG = logging.getLogger(__name__)

POSTCOPY_STATUS = 'running (post-copy)'


def sample_from_stats(stats, postcopy_permitted, in_postcopy, max_downtime_ms=None):
    """The policy's sample for one virDomainGetJobStats result (an active job), read as the
    agent reads it (the core's table); max_downtime_ms is the limit nova last set (None:
    not known yet)."""
    sample = _migpilot.sample_from_job_stats(stats)
    sample.update(max_downtime_ms=max_downtime_ms, postcopy_permitted=postcopy_permitted,
                  in_postcopy=in_postcopy)
    return sample


class MigrationPilot:
    """The policy of one outgoing live migration, fed with nova's job-info polls.

    `force_complete` is called (once) when the policy decides to switch and the driver may
    act; it must only queue nova's task, never block.
    """

    def __init__(self, instance_uuid, migration, postcopy_enabled, policy_config,
                 act, force_complete):
        self.instance_uuid = instance_uuid
        self.migration = migration
        self.postcopy_enabled = postcopy_enabled
        self.act = act
        self.force_complete = force_complete
        self.policy = _migpilot.Policy(**policy_config)
        self.samples = 0
        self.switch = None          # the decision that switched (or would have)
        self.last = None
        self.failed = False
        # nova ramps the max downtime up in steps (50 ms first): pre-copy can only finish
        # once what remains fits in it, so the policy must judge with nova's value
        self.max_downtime_ms = None

    def on_max_downtime(self, ms):
        self.max_downtime_ms = ms

    def _log(self, level, msg, *args):
        LOG.log(level, 'migpilot: ' + msg, *args,
                extra={'instance_uuid': self.instance_uuid})

    def on_stats(self, stats):
        """One of nova's polls. Never raises: the migration matters more than the policy."""
        if self.failed or stats.get('type') != libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
            return None
        in_postcopy = getattr(self.migration, 'status', None) == POSTCOPY_STATUS
        try:
            decision = self.policy.feed_sample(
                sample_from_stats(stats, self.postcopy_enabled, in_postcopy,
                                  self.max_downtime_ms))
        except _migpilot.Error as e:
            # e.g. a sample going back in time after libvirt restarted: stop advising
            self.failed = True
            self._log(logging.WARNING, 'policy stopped for this migration: %s', e)
            return None
        self.samples += 1
        self.last = decision
        if decision['evaluated'] or decision['rule'] not in ('none', 'in-postcopy'):
            level = logging.INFO if decision['rule'] != 'none' or \
                decision['pass'] <= 2 else logging.DEBUG
            self._log(level, '%s', decision['explanation'])
        if decision['rule'] == 'postcopy-not-permitted':
            self._log(logging.WARNING,
                      'cannot switch: the migration was started without post-copy; set '
                      '[libvirt] live_migration_permit_post_copy = True')
        if decision['switch_decided'] and self.switch is None and \
                decision['rule'] not in ('postcopy-not-permitted', 'in-postcopy'):
            self.switch = decision
        if decision['action'] == 'switch':
            if self.act and self.postcopy_enabled and not in_postcopy:
                self._log(logging.INFO,
                          'switching to post-copy at pass %d (%s, %d ms into the job): '
                          'queueing nova force-complete', decision['pass'],
                          decision['rule'], decision['elapsed_ms'])
                self.force_complete()
            else:
                self._log(logging.INFO, 'would switch to post-copy at pass %d (%s); '
                          'observe mode: not acted on', decision['pass'], decision['rule'])
        return decision

    def summary(self):
        if self.switch is None:
            return 'no switch decided (%d polls)' % self.samples
        return 'switch decided at pass %d, %d ms into the job (%s)%s' % (
            self.switch['pass'], self.switch['elapsed_ms'], self.switch['rule'],
            '' if self.switch['acted_on'] and self.act else ', not acted on')


class _JobStatsTap:
    """Stands in for the libvirt domain of nova's Guest during a migration: every call goes
    to the real domain (nova's tpool proxy); the current job's statistics nova reads and the
    max downtime nova sets are also handed to the pilot."""

    def __init__(self, domain, pilot):
        self._tap_domain = domain
        self._tap_pilot = pilot

    def jobStats(self, *args, **kwargs):
        stats = self._tap_domain.jobStats(*args, **kwargs)
        if not args and not kwargs:
            self._tap_pilot.on_stats(stats)
        return stats

    def migrateSetMaxDowntime(self, downtime, *args, **kwargs):
        ret = self._tap_domain.migrateSetMaxDowntime(downtime, *args, **kwargs)
        self._tap_pilot.on_max_downtime(downtime)
        return ret

    def __getattr__(self, name):
        return getattr(self._tap_domain, name)


def _eventlet_tpool():
    """eventlet's tpool when nova runs under eventlet (its hub runs every green thread on
    one native thread, so a blocking C call stops them all), None under native threads."""
    threading_mode = getattr(nova_utils, 'concurrency_mode_threading', None)
    if threading_mode is not None:
        # nova 2025.2 and later choose at start (monkey_patch.patch()); in threading mode
        # they even refuse to import eventlet
        if threading_mode():
            return None
    else:
        # earlier nova monkey-patches every service it starts (nova/monkey_patch.py; all
        # but thread with the remote debugger) unless OS_NOVA_DISABLE_EVENTLET_PATCHING
        patcher = sys.modules.get('eventlet.patcher')
        if patcher is None or not (patcher.is_monkey_patched('thread') or
                                   patcher.is_monkey_patched('socket')):
            return None
    from eventlet import tpool
    return tpool


class LibvirtDriverHooks:
    """migpilot's overrides of nova's LibvirtDriver, to be mixed in before it.

    Each class made with it compares, when created, the signatures of the methods it
    overrides with the parent's (novacompat); `_migpilot_stock` is then None (they match,
    the hooks work) or the line logged (they differ, the overrides only call the parent).
    """

    _migpilot_stock = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # what the overrides' super() calls reach: the class after this one in cls's MRO
        parent = super(LibvirtDriverHooks, cls)
        found = novacompat.class_signatures(lambda name: getattr(parent, name, None))
        cls._migpilot_stock = novacompat.mismatch(found)
        if cls._migpilot_stock:
            LOG.warning('migpilot: %s', cls._migpilot_stock)

    def _migpilot_pilot(self, instance, guest, migrate_data):
        mode = CONF.migpilot.mode
        if mode == 'off':
            return None
        flags = self._get_migration_flags(migrate_data.block_migration)
        # the same conditions as nova's monitor: post-copy flag, no vPMEM, and
        # _live_migration_operation drops the flag for paused guests
        enabled = self._is_post_copy_enabled(flags) and \
            not self._get_vpmems(instance)
        try:
            if enabled and guest.get_power_state(self._host) == power_state.PAUSED:
                enabled = False
        except libvirt.libvirtError:
            pass
        try:
            return MigrationPilot(instance.uuid, migrate_data.migration, enabled,
                                  mp_conf.policy_config(CONF), act=(mode == 'auto'),
                                  force_complete=lambda:
                                      self.live_migration_force_complete(instance))
        except _migpilot.Error as e:
            LOG.error('migpilot: bad [migpilot] option in nova.conf, not advising this '
                      'migration: %s', e, instance=instance)
            return None

    def _live_migration_monitor(self, *args, **kwargs):
        if self._migpilot_stock:
            return super()._live_migration_monitor(*args, **kwargs)
        # the parent's parameters are the expected ones: take them by name, pass them so
        call = novacompat.expected_signature('_live_migration_monitor').bind(
            *args, **kwargs).arguments
        instance, dest = call['instance'], call['dest']
        pilot = self._migpilot_pilot(instance, call['guest'], call['migrate_data'])
        if pilot is not None:
            # nova's loop keeps doing everything; its job-info polls now pass the tap
            call['guest'] = libvirt_guest.Guest(_JobStatsTap(call['guest']._domain, pilot))
            LOG.info('migpilot: watching live migration to %s (mode %s, post-copy %s)',
                     dest, CONF.migpilot.mode,
                     'permitted' if pilot.postcopy_enabled else 'not permitted',
                     instance=instance)
        try:
            return super()._live_migration_monitor(**call)
        finally:
            if pilot is not None:
                LOG.info('migpilot: live migration monitoring ended: %s', pilot.summary(),
                         instance=instance)

    def _parse_migration_flags(self, *args, **kwargs):
        # nova's _live_migration_operation reads the attributes set here (not
        # _get_migration_flags, which only its monitor calls): this is where a flag must go
        ret = super()._parse_migration_flags(*args, **kwargs)
        if self._migpilot_stock or not CONF.migpilot.postcopy_preempt:
            return ret
        try:
            conn = self._host.get_connection()
            flag, why = preempt.support(libvirt, conn.getLibVersion(), conn.getVersion())
        except libvirt.libvirtError as e:
            flag, why = None, 'cannot read libvirt\'s versions: %s' % e
        if flag is None:
            LOG.warning('migpilot: [migpilot] postcopy_preempt = True, but this host '
                        'cannot use post-copy preemption: %s; migrations start without it',
                        why)
            return ret
        self._live_migration_flags = preempt.add_flag(
            self._live_migration_flags, libvirt.VIR_MIGRATE_POSTCOPY, flag)
        self._block_migration_flags = preempt.add_flag(
            self._block_migration_flags, libvirt.VIR_MIGRATE_POSTCOPY, flag)
        if self._live_migration_flags & flag:
            LOG.info('migpilot: live migrations with post-copy start with %s',
                     preempt.FLAG_NAME)
        return ret

    def _get_pci_passthrough_devices(self, *args, **kwargs):
        listing = super()._get_pci_passthrough_devices
        if self._migpilot_stock or not CONF.migpilot.resource_audit_in_thread:
            return listing(*args, **kwargs)
        tpool = _eventlet_tpool()
        if tpool is None:
            return listing(*args, **kwargs)
        # node-device objects are not wrapped by nova's tpool proxy: run the whole
        # listing in a native thread so the hub (and every migration monitor) keeps going
        return tpool.execute(listing, *args, **kwargs)


class LibvirtDriver(LibvirtDriverHooks, libvirt_driver.LibvirtDriver):
    """nova.virt.libvirt.LibvirtDriver + migpilot's switch policy."""
