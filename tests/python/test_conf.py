"""nova.conf's [migpilot] policy options are generated from the C policy's key table."""
import pytest
from oslo_config import cfg

import _migpilot
from nova_hooks import conf


def make_conf(**overrides):
    c = cfg.ConfigOpts()
    conf.register_opts(c)
    c([], default_config_files=[])
    # oslo.config keeps overrides in the (shared) group's option records: start clean
    for o in conf.migpilot_opts:
        c.clear_override(o.name, group='migpilot')
    for name, value in overrides.items():
        c.set_override(name, value, group='migpilot')
    return c


def opts_by_name():
    (group, opts), = conf.list_opts()
    assert group.name == 'migpilot'
    return {o.name: o for o in opts}


def test_policy_keys_match_the_c_policy():
    keys = _migpilot.policy_keys()
    config = _migpilot.Policy().config
    # every key of the C table, in the table's order, with the C defaults
    assert [k['name'] for k in keys] == list(config)
    for k in keys:
        assert k['default'] == config[k['name']], k['name']
        assert k['help'] and '\n' not in k['help'], k['name']
        assert k['kind'] in ('uint', 'double', 'string')
    kinds = {k['name']: k['kind'] for k in keys}
    assert kinds['mode'] == 'string' and kinds['rho_max'] == 'double'
    assert kinds['deadline_ms'] == 'uint'


def test_every_c_key_is_a_nova_option_with_its_default_and_range():
    opts = opts_by_name()
    for k in _migpilot.policy_keys():
        o = opts[k['name']]
        assert o.default == k['default'], k['name']
        if k['kind'] == 'string':
            continue
        assert (o.type.min, o.type.max) == (k['min'], k['max']), k['name']
        # the C policy accepts both bounds unless they are exclusive
        for bound, excl in ((k['min'], k['min_exclusive']), (k['max'], k['max_exclusive'])):
            if excl:
                with pytest.raises(ValueError):
                    o.type(bound)
                with pytest.raises(_migpilot.Error):
                    _migpilot.Policy(**{k['name']: bound})
            else:
                assert o.type(bound) == bound
                _migpilot.Policy(**{k['name']: bound})
    # the nova side's mode choices include every C mode (nova adds off)
    mode, = [k for k in _migpilot.policy_keys() if k['name'] == 'mode']
    assert mode['choices'] == ['auto', 'observe']
    assert set(mode['choices']) | {'off'} == set(opts['mode'].type.choices)
    for word in mode['choices']:
        assert _migpilot.Policy(mode=word).config['mode'] == word


@pytest.mark.parametrize('name, value, message', [
    ('min_pass', 1, 'Should be greater than or equal to 2'),
    ('max_passes', 1001, 'Should be less than or equal to 1000'),
    ('rho_max', 0.0, 'Should be greater than 0'),
    ('shrink_min', 1.0, 'Should be less than 1'),
    ('deadline_ms', 2592000001, 'Should be less than or equal to 2.592e+09'),
    ('dirty_max_age_ms', 0, 'Should be greater than or equal to 1'),
])
def test_out_of_range_refused_with_a_clear_message(tmp_path, name, value, message):
    path = tmp_path / 'nova.conf'
    path.write_text('[migpilot]\n%s = %s\n' % (name, value))
    c = make_conf()
    c(['--config-file', str(path)])
    with pytest.raises(cfg.ConfigFileValueError) as e:
        c.migpilot[name]
    assert message in str(e.value) and name in str(e.value)


def test_policy_config_round_trips_to_the_c_policy():
    values = {'min_pass': 3, 'rho_max': 0.95, 'max_passes': 12, 'shrink_passes': 2,
              'shrink_min': 0.2, 'deadline_ms': 90500, 'downtime_ms': 500,
              'min_bandwidth_samples': 4, 'dirty_max_age_ms': 30000}
    # each differs from its default, so a key dropped on the way would show
    defaults = _migpilot.Policy().config
    assert all(defaults[k] != v for k, v in values.items())
    c = make_conf(mode='observe', **values)
    kw = conf.policy_config(c)
    assert set(kw) == set(defaults)
    assert _migpilot.Policy(**kw).config == dict(values, mode='observe')


def test_defaults_round_trip():
    assert _migpilot.Policy(**conf.policy_config(make_conf())).config == \
        _migpilot.Policy().config


def test_deprecated_deadline_in_seconds():
    # deadline (seconds) is converted once, while deadline_ms is at its default
    assert conf.policy_config(make_conf(deadline=90))['deadline_ms'] == 90000
    # deadline_ms of its own wins
    assert conf.policy_config(make_conf(deadline=90, deadline_ms=5000))['deadline_ms'] == 5000
    assert conf.policy_config(make_conf())['deadline_ms'] == 0
    opt = opts_by_name()['deadline']
    assert opt.deprecated_for_removal and opt.type.max * 1000 == opts_by_name()[
        'deadline_ms'].type.max


def test_nova_conf_snippet_shows_every_policy_option_with_its_default():
    import os
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'etc', 'nova',
                        'nova.conf.migpilot')
    with open(path) as f:
        lines = set(f.read().splitlines())
    for k in _migpilot.policy_keys():
        default = k['default']
        assert '#%s = %s' % (k['name'], default) in lines, k['name']
