"""The [migpilot] options of nova.conf, read by nova_hooks.driver.LibvirtDriver.

Registered on nova's own CONF when the driver is imported, and listed for
oslo-config-generator through the `oslo.config.opts` entry point (`migpilot`):

    oslo-config-generator --namespace nova.conf --namespace migpilot

The policy options are generated from the C policy's key table (agent/core/mppolicy.c,
through _migpilot.policy_keys()): the same names, defaults, ranges and help as the [policy]
section of migpilot.conf (the agent's), so the two can never drift apart. Only `mode` is
nova's own (it adds `off`), and `deadline` (seconds) is the deprecated spelling of
`deadline_ms`, converted once in policy_config().
"""
from oslo_config import cfg
from oslo_config import types

import _migpilot

GROUP = 'migpilot'

# the C core's key table (one place: agent/core/mppolicy.c), mode aside
POLICY_KEYS = [k for k in _migpilot.policy_keys() if k['kind'] != 'string']


class _Bounded(types.Float):
    """A float whose bounds may be exclusive, as the C table's are for some keys."""

    def __init__(self, key):
        super().__init__(min=key['min'], max=key['max'])
        self.key = key

    def __call__(self, value):
        value = super().__call__(value)
        if value is not None:
            k = self.key
            if k['min_exclusive'] and not value > k['min']:
                raise ValueError('Should be greater than %g' % k['min'])
            if k['max_exclusive'] and not value < k['max']:
                raise ValueError('Should be less than %g' % k['max'])
        return value

    def __eq__(self, other):
        return super().__eq__(other) and self.key == other.key


def _range_help(key):
    lo = '>' if key['min_exclusive'] else '>='
    hi = '<' if key['max_exclusive'] else '<='
    return ' Range: %s %s and %s %s (as [policy] %s of migpilot.conf).' % (
        lo, key['min'], hi, key['max'], key['name'])


# what nova's side adds to the C table's one line
_NOVA_HELP = {
    'deadline_ms': ' Unlike [libvirt] live_migration_completion_timeout it is not scaled '
                   'by the guest\'s size.',
}


def _policy_opt(key):
    text = key['help'] + _NOVA_HELP.get(key['name'], '') + _range_help(key)
    if key['kind'] == 'uint':
        return cfg.IntOpt(key['name'], default=key['default'], min=key['min'],
                          max=key['max'], help=text)
    if key['min_exclusive'] or key['max_exclusive']:
        return cfg.Opt(key['name'], type=_Bounded(key), default=key['default'], help=text)
    return cfg.FloatOpt(key['name'], default=key['default'], min=key['min'],
                        max=key['max'], help=text)


_DEADLINE_MS = [k for k in POLICY_KEYS if k['name'] == 'deadline_ms'][0]

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
] + [_policy_opt(k) for k in POLICY_KEYS] + [
    cfg.IntOpt(
        'deadline', default=None, min=0, max=_DEADLINE_MS['max'] // 1000,
        deprecated_for_removal=True,
        deprecated_reason='Use deadline_ms, the name and unit of the agent\'s [policy] '
                          'key; deadline (seconds) is converted to it once.',
        help='Seconds: deadline_ms in seconds, used (x 1000) only while deadline_ms is '
             'left at its default.'),
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


def _deadline_ms(group):
    """deadline_ms, or the deprecated deadline (seconds) converted to it when deadline_ms
    is left at its default (a deadline_ms of its own wins)."""
    if group.deadline is None or group.deadline_ms != _DEADLINE_MS['default']:
        return group.deadline_ms
    return group.deadline * 1000


def policy_config(conf):
    """The keyword arguments of _migpilot.Policy for this configuration."""
    group = conf[GROUP]
    kw = {'mode': 'observe' if group.mode == 'observe' else 'auto'}
    for key in POLICY_KEYS:
        kw[key['name']] = group[key['name']]
    kw['deadline_ms'] = _deadline_ms(group)
    return kw


def list_opts():
    return [(migpilot_group, migpilot_opts)]
