"""_migpilot.parse_bool: the core's reading of a boolean, shared by the agent and the CLI."""
import pytest

import _migpilot
from nova_hooks import cmd_listen


@pytest.mark.parametrize('value,want', [
    ('true', True), ('Yes', True), ('ON', True), ('1', True),
    ('false', False), ('No', False), ('off', False), ('0', False),
    ('', None), ('2', None), ('truthy', None), (' true', None), ('a\0b', None),
])
def test_parse_bool(value, want):
    assert _migpilot.parse_bool(value) is want


def test_parse_bool_type():
    with pytest.raises(TypeError):
        _migpilot.parse_bool(b'true')


def test_listen_truth_follows_the_core():
    assert cmd_listen._truth('YES', False) is True
    assert cmd_listen._truth('maybe', True) is False
    assert cmd_listen._truth(None, True) is True

