"""nova's libvirt driver with migpilot's post-copy policy.

    [DEFAULT]
    compute_driver = migpilot.driver.LibvirtDriver     # the shim nova/virt/migpilot/driver.py

During a live migration, nova's own monitor loop polls the source domain's job statistics
every 0.5 s. The driver hands each of those polls to the C policy (_migpilot.Policy) as it
goes by, and when the policy says "switch" it queues nova's own force-complete task: nova's
loop picks it up in the same iteration and switches to post-copy itself, so the migration
record says `running (post-copy)`, nova activates the destination port bindings early and
its completion timeout leaves the job alone. Nothing of nova is copied or patched: the
driver overrides two methods and calls the parent's.

The second override keeps the switch on time: nova's periodic resource audit lists the
host's PCI devices with a libvirt call made from the eventlet hub, and during an outgoing
migration that call was measured to freeze the whole source nova-compute for 60-90 s
(monitor loop, force-complete and this policy included). It now runs in a native thread.
"""
import libvirt
from eventlet import tpool
from oslo_log import log as logging

import nova.conf
from nova.compute import power_state
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import guest as libvirt_guest

import _migpilot
from nova_hooks import conf as mp_conf

CONF = nova.conf.CONF
mp_conf.register_opts(CONF)

LOG = logging.getLogger(__name__)

POSTCOPY_STATUS = 'running (post-copy)'


def sample_from_stats(stats, postcopy_permitted, in_postcopy, max_downtime_ms=None):
    """The policy's sample for one virDomainGetJobStats result (an active job);
    max_downtime_ms is the limit nova last set (None: not known yet)."""
    sample = {
        'elapsed_ms': stats.get('time_elapsed', 0),
        'pass': stats.get('memory_iteration'),
        'memory_total': stats.get('memory_total'),
        'memory_processed': stats.get('memory_processed'),
        'memory_remaining': stats.get('memory_remaining'),
        'memory_bps': stats.get('memory_bps'),
        'dirty_rate_pps': stats.get('memory_dirty_rate'),
        'page_size': stats.get('memory_page_size'),
        # for an active job libvirt's "downtime" is QEMU's expected downtime
        'expected_downtime_ms': stats.get('downtime'),
        'max_downtime_ms': max_downtime_ms,
        'postcopy_permitted': postcopy_permitted,
        'in_postcopy': in_postcopy,
    }
    # the first polls of a job lack most figures, and a pass of 0 means "not started"
    if not sample['pass']:
        sample['pass'] = None
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


class LibvirtDriver(libvirt_driver.LibvirtDriver):
    """nova.virt.libvirt.LibvirtDriver + migpilot's switch policy."""

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

    def _live_migration_monitor(self, context, instance, guest, dest, post_method,
                                recover_method, block_migration, migrate_data,
                                finish_event, disk_paths):
        pilot = self._migpilot_pilot(instance, guest, migrate_data)
        if pilot is not None:
            # nova's loop keeps doing everything; its job-info polls now pass the tap
            guest = libvirt_guest.Guest(_JobStatsTap(guest._domain, pilot))
            LOG.info('migpilot: watching live migration to %s (mode %s, post-copy %s)',
                     dest, CONF.migpilot.mode,
                     'permitted' if pilot.postcopy_enabled else 'not permitted',
                     instance=instance)
        try:
            return super()._live_migration_monitor(
                context, instance, guest, dest, post_method, recover_method,
                block_migration, migrate_data, finish_event, disk_paths)
        finally:
            if pilot is not None:
                LOG.info('migpilot: live migration monitoring ended: %s', pilot.summary(),
                         instance=instance)

    def _get_pci_passthrough_devices(self):
        if not CONF.migpilot.resource_audit_in_thread:
            return super()._get_pci_passthrough_devices()
        # node-device objects are not wrapped by nova's tpool proxy: run the whole
        # listing in a native thread so the hub (and every migration monitor) keeps going
        return tpool.execute(super()._get_pci_passthrough_devices)
