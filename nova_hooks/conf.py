"""The [migpilot] options of nova.conf, read by nova_hooks.driver.LibvirtDriver.

Registered on nova's own CONF when the driver is imported, and listed for
oslo-config-generator through the `oslo.config.opts` entry point (`migpilot`):

    oslo-config-generator --namespace nova.conf --namespace migpilot

The policy options mirror the [policy] section of migpilot.conf (the agent's), with the
same names and ranges; their defaults are read from the C policy itself, so the two can
never drift apart.
"""
from oslo_config import cfg

import _migpilot

# the C core's defaults (one place: agent/core/mppolicy.c)
_POLICY_DEFAULTS = _migpilot.Policy().config

GROUP = 'migpilot'

migpilot_group = cfg.OptGroup(
    GROUP, title='migpilot',
    help='migpilot: switch nova live migrations to post-copy when pre-copy cannot '
         'converge. Read by compute_driver = migpilot.driver.LibvirtDriver.')

migpilot_opts = [
    cfg.StrOpt(
        'mode', default='auto', choices=[
            ('auto', 'decide from nova\'s job-info polls and, when pre-copy is not '
                     'converging, queue nova\'s own force-complete (post-copy switch)'),
            ('observe', 'decide and log every decision, never act'),
            ('off', 'behave exactly as nova\'s libvirt driver (the resource audit '
                    'fix below still applies)'),
        ],
        help='What the driver does during a live migration. auto needs '
             '[libvirt] live_migration_permit_post_copy = True: without it nova\'s '
             'force-complete would pause the guest, so the driver then only logs what it '
             'would have done.'),
    cfg.IntOpt(
        'min_pass', default=_POLICY_DEFAULTS['min_pass'], min=2,
        help='Never switch before this pass: the first pass sends all memory once, so '
             'post-copy only has the working set left to fetch.'),
    cfg.FloatOpt(
        'rho_max', default=_POLICY_DEFAULTS['rho_max'], min=0.0, max=1.0,
        help='Per-pass shrink ratio of the remaining bytes (dirtied / sent) at or above '
             'which pre-copy counts as not converging.'),
    cfg.IntOpt(
        'max_passes', default=_POLICY_DEFAULTS['max_passes'], min=1,
        help='More further passes than this predicted before pre-copy could finish: '
             'not converging.'),
    cfg.IntOpt(
        'shrink_passes', default=_POLICY_DEFAULTS['shrink_passes'], min=1,
        help='Pass transitions over which "remaining not shrinking" is judged.'),
    cfg.FloatOpt(
        'shrink_min', default=_POLICY_DEFAULTS['shrink_min'], min=0.0, max=0.99,
        help='Fraction by which the remaining bytes must shrink per pass.'),
    cfg.IntOpt(
        'deadline', default=_POLICY_DEFAULTS['deadline_ms'] // 1000, min=0,
        help='Seconds: switch when pre-copy is predicted to end later than this after '
             'the migration started (or is still running then); 0 = no deadline. Unlike '
             '[libvirt] live_migration_completion_timeout it is not scaled by the '
             'guest\'s size.'),
    cfg.IntOpt(
        'downtime_ms', default=_POLICY_DEFAULTS['downtime_ms'], min=1,
        help='Maximum downtime (ms) the policy assumes when libvirt does not report the '
             'job\'s expected downtime.'),
    cfg.IntOpt(
        'min_bandwidth_samples', default=_POLICY_DEFAULTS['min_bandwidth_samples'], min=1,
        help='Send-rate samples needed before the policy predicts anything.'),
    cfg.BoolOpt(
        'postcopy_preempt', default=False,
        help='Start post-copy-permitted live migrations with libvirt\'s '
             'VIR_MIGRATE_POSTCOPY_PREEMPT: during post-copy, the pages the guest faults on '
             'overtake the background copy on a channel of their own. Needs a libvirt that '
             'defines the flag (none up to 12.9 does) and QEMU >= 8.0, on this host and on '
             'every destination; checked against this host when nova-compute starts, and '
             'logged once when asked for but unsupported (the flag is then not set). '
             'Paused instances: nova drops VIR_MIGRATE_POSTCOPY for them and libvirt '
             'refuses preemption without it, so leave this off where paused instances '
             'are live-migrated.'),
    cfg.BoolOpt(
        'resource_audit_in_thread', default=True,
        help='Run the host PCI device listing of nova\'s periodic resource audit '
             '(update_available_resource) in a native thread. Called from the eventlet '
             'hub while a migration is in flight, it was measured to freeze the whole '
             'source nova-compute for 60-90 s, delaying force-complete, nova\'s own '
             'migration monitor and migpilot\'s switch. Only when nova runs under '
             'eventlet: in nova\'s native-thread mode the call blocks only its own thread.'),
]


def register_opts(conf):
    conf.register_group(migpilot_group)
    conf.register_opts(migpilot_opts, group=migpilot_group)


def policy_config(conf):
    """The keyword arguments of _migpilot.Policy for this configuration."""
    group = conf[GROUP]
    return {
        'mode': 'observe' if group.mode == 'observe' else 'auto',
        'min_pass': group.min_pass,
        'rho_max': group.rho_max,
        'max_passes': group.max_passes,
        'shrink_passes': group.shrink_passes,
        'shrink_min': group.shrink_min,
        'deadline_ms': group.deadline * 1000,
        'downtime_ms': group.downtime_ms,
        'min_bandwidth_samples': group.min_bandwidth_samples,
    }


def list_opts():
    return [(migpilot_group, migpilot_opts)]
