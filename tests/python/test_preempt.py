"""[migpilot] postcopy_preempt: the support check with faked libvirt/QEMU versions, and the
driver's override of nova's _parse_migration_flags."""
import logging
import types

import libvirt
import pytest

from nova_hooks import driver
from nova_hooks import preempt

from tests.python.test_driver_compat import EpoxyLibvirtDriver
from tests.python.test_driver_compat import MasterLibvirtDriver
from tests.python.test_driver_compat import ZedLibvirtDriver
from tests.python.test_driver_compat import hooked

PREEMPT = 1 << 21                 # the value proposed upstream (libvirt-domain.h)
POSTCOPY = libvirt.VIR_MIGRATE_POSTCOPY

# a libvirt binding without the flag (every release up to 12.9) and one with it
OLD = types.SimpleNamespace()
NEW = types.SimpleNamespace(VIR_MIGRATE_POSTCOPY_PREEMPT=PREEMPT)

BOOKWORM = (9000000, 7002000)     # Debian 12: libvirt 9.0.0, QEMU 7.2
TRIXIE = (11003000, 10000000)     # Debian 13: libvirt 11.3.0, QEMU 10.0


def test_debian_stacks_unsupported():
    flag, why = preempt.support(OLD, *BOOKWORM)
    assert flag is None
    assert why == ('libvirt defines no VIR_MIGRATE_POSTCOPY_PREEMPT (no libvirt release up '
                   'to 12.9 has it; libvirt 9.0.0 here, QEMU 7.2.0: no post-copy preemption '
                   'here)')
    flag, why = preempt.support(OLD, *TRIXIE)
    assert flag is None
    assert why.endswith('libvirt 11.3.0 here, QEMU 10.0.0: libvirt already turns QEMU\'s '
                        'postcopy-preempt on for every post-copy migration)'), why


def test_automatic_preemption():
    assert not preempt.automatic(*BOOKWORM)
    assert preempt.automatic(*TRIXIE)
    assert not preempt.automatic(11003000, 7002000)     # QEMU 7.2: x-postcopy-preempt only
    assert not preempt.automatic(11002000, 10000000)    # not seen: not counted
    assert not preempt.automatic(0, 0)


def test_the_installed_binding_has_no_flag():
    # what the lab test relies on: Debian 12's binding, like 13's, does not define it
    assert not hasattr(libvirt, preempt.FLAG_NAME)


def test_versions_decide_when_the_flag_exists():
    assert preempt.support(NEW, 10000000, 8000000) == (PREEMPT, None)
    assert preempt.support(NEW, *TRIXIE) == (PREEMPT, None)
    assert preempt.support(NEW, 9000000, 10000000) == (
        None, 'needs libvirt >= 10.0.0, this host has 9.0.0')
    assert preempt.support(NEW, 11003000, 7002000) == (
        None, 'needs QEMU >= 8.0.0, this host has 7.2.0')
    assert preempt.support(NEW, 11003000, 0) == (
        None, 'needs QEMU >= 8.0.0, this host has an unknown version')
    assert preempt.support(NEW, 0, 0)[0] is None


def test_flag_only_with_postcopy():
    live = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    assert preempt.add_flag(live | POSTCOPY, POSTCOPY, PREEMPT) == live | POSTCOPY | PREEMPT
    assert preempt.add_flag(live, POSTCOPY, PREEMPT) == live
    assert preempt.add_flag(live | POSTCOPY, POSTCOPY, None) == live | POSTCOPY


class FakeConn:
    def __init__(self, lib, qemu):
        self.lib, self.qemu = lib, qemu

    def getLibVersion(self):
        return self.lib

    def getVersion(self):
        return self.qemu


class FakeHost:
    def __init__(self, versions):
        self.conn = FakeConn(*versions)

    def get_connection(self):
        return self.conn


@pytest.fixture
def conf():
    yield driver.CONF
    driver.CONF.clear_override('postcopy_preempt', group='migpilot')


def parsed(parent, versions, monkeypatch, binding):
    monkeypatch.setattr(driver, 'libvirt', types.SimpleNamespace(
        VIR_MIGRATE_POSTCOPY=POSTCOPY, libvirtError=libvirt.libvirtError,
        **vars(binding)))
    d = hooked(parent)()
    d._host = FakeHost(versions)
    d._parse_migration_flags()
    return d


def records(caplog):
    return [r for r in caplog.records if r.name == driver.__name__]


@pytest.mark.parametrize('parent', [ZedLibvirtDriver, EpoxyLibvirtDriver])
def test_default_off_flags_untouched(conf, monkeypatch, caplog, parent):
    with caplog.at_level(logging.DEBUG):
        d = parsed(parent, TRIXIE, monkeypatch, NEW)
    assert d._live_migration_flags == libvirt.VIR_MIGRATE_LIVE | POSTCOPY
    assert records(caplog) == []


@pytest.mark.parametrize('parent', [ZedLibvirtDriver, EpoxyLibvirtDriver])
def test_asked_and_supported_adds_the_flag(conf, monkeypatch, caplog, parent):
    conf.set_override('postcopy_preempt', True, group='migpilot')
    with caplog.at_level(logging.INFO):
        d = parsed(parent, TRIXIE, monkeypatch, NEW)
    assert d._live_migration_flags == libvirt.VIR_MIGRATE_LIVE | POSTCOPY | PREEMPT
    assert d._block_migration_flags == libvirt.VIR_MIGRATE_LIVE | POSTCOPY | PREEMPT
    assert [r.getMessage() for r in records(caplog)] == [
        'migpilot: live migrations with post-copy start with VIR_MIGRATE_POSTCOPY_PREEMPT']


@pytest.mark.parametrize('versions,binding,why', [
    (BOOKWORM, OLD, 'libvirt defines no VIR_MIGRATE_POSTCOPY_PREEMPT'),
    (TRIXIE, OLD, 'libvirt defines no VIR_MIGRATE_POSTCOPY_PREEMPT'),
    (BOOKWORM, NEW, 'needs libvirt >= 10.0.0, this host has 9.0.0'),
])
def test_asked_but_unsupported_logs_once(conf, monkeypatch, caplog, versions, binding, why):
    conf.set_override('postcopy_preempt', True, group='migpilot')
    with caplog.at_level(logging.DEBUG):
        d = parsed(ZedLibvirtDriver, versions, monkeypatch, binding)
    assert d._live_migration_flags == libvirt.VIR_MIGRATE_LIVE | POSTCOPY
    (rec,) = records(caplog)
    assert rec.levelno == logging.WARNING and why in rec.getMessage()
    assert rec.getMessage().startswith('migpilot: [migpilot] postcopy_preempt = True, but '
                                       'this host cannot use post-copy preemption')


def test_postcopy_not_permitted_no_flag(conf, monkeypatch):
    conf.set_override('postcopy_preempt', True, group='migpilot')

    class NoPostcopy(ZedLibvirtDriver):
        def _parse_migration_flags(self):
            self._live_migration_flags = self._block_migration_flags = \
                libvirt.VIR_MIGRATE_LIVE
    d = parsed(NoPostcopy, TRIXIE, monkeypatch, NEW)
    assert d._live_migration_flags == libvirt.VIR_MIGRATE_LIVE


def test_mismatched_nova_stock_flags(conf, monkeypatch, caplog):
    # nova master: the guard says stock, so not even the flags are touched
    conf.set_override('postcopy_preempt', True, group='migpilot')
    d = parsed(MasterLibvirtDriver, TRIXIE, monkeypatch, NEW)
    assert d._migpilot_stock
    assert d._live_migration_flags == libvirt.VIR_MIGRATE_LIVE | POSTCOPY
