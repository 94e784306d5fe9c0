"""Post-copy preemption ([migpilot] postcopy_preempt): whether this host can use it.

With VIR_MIGRATE_POSTCOPY_PREEMPT, the pages a guest faults on during post-copy travel on a
channel of their own instead of queueing behind the background stream (QEMU's
postcopy-preempt capability, stable since QEMU 8.0). nova never sets the flag. The check
is by version, at run time, as the agent's feature table does (agent/daemon/mpfeatures.c):

- libvirt must define the flag. It was proposed for libvirt 10.0.0, but no release up to
  12.9 has it, and libvirt refuses a flag it does not know; so the flag's presence in the
  libvirt Python binding (generated from the libvirt it was built with) decides, together
  with the daemon's version;
- QEMU >= 8.0.

Without the flag, libvirt turns QEMU's postcopy-preempt on by itself for every migration
started with VIR_MIGRATE_POSTCOPY when QEMU has it: seen on the lab with libvirt 11.3 and
QEMU 10.0, not with libvirt 9.0 and QEMU 7.2 (automatic()).

No nova import: unit-tested with faked versions.
"""

FLAG_NAME = 'VIR_MIGRATE_POSTCOPY_PREEMPT'
MIN_LIBVIRT = (10, 0, 0)
MIN_QEMU = (8, 0, 0)
# the oldest libvirt seen turning postcopy-preempt on by itself (older ones are not counted)
MIN_LIBVIRT_AUTOMATIC = (11, 3, 0)


def version_int(v):
    """(major, minor, micro) as libvirt encodes versions."""
    return v[0] * 1000000 + v[1] * 1000 + v[2]


def version_str(n):
    return '%d.%d.%d' % (n // 1000000, n // 1000 % 1000, n % 1000)


def automatic(lib_version, qemu_version):
    """True when libvirt uses post-copy preemption by itself with VIR_MIGRATE_POSTCOPY."""
    return bool(lib_version and qemu_version and
                lib_version >= version_int(MIN_LIBVIRT_AUTOMATIC) and
                qemu_version >= version_int(MIN_QEMU))


def support(libvirt_module, lib_version, qemu_version):
    """(flag, None) when this host can start migrations with post-copy preemption, else
    (None, why). lib_version, qemu_version: as virConnectGetLibVersion/GetVersion give
    them (0 or None: unknown)."""
    flag = getattr(libvirt_module, FLAG_NAME, None)
    if flag is None:
        return None, ('libvirt defines no %s (no libvirt release up to 12.9 has it; '
                      'libvirt %s here, QEMU %s: %s)' % (
                          FLAG_NAME, version_str(lib_version or 0),
                          version_str(qemu_version or 0),
                          'libvirt already turns QEMU\'s postcopy-preempt on for every '
                          'post-copy migration' if automatic(lib_version, qemu_version)
                          else 'no post-copy preemption here'))
    if not lib_version or lib_version < version_int(MIN_LIBVIRT):
        return None, 'needs libvirt >= %s, this host has %s' % (
            version_str(version_int(MIN_LIBVIRT)),
            version_str(lib_version) if lib_version else 'an unknown version')
    if not qemu_version or qemu_version < version_int(MIN_QEMU):
        return None, 'needs QEMU >= %s, this host has %s' % (
            version_str(version_int(MIN_QEMU)),
            version_str(qemu_version) if qemu_version else 'an unknown version')
    return flag, None


def add_flag(migration_flags, postcopy_flag, preempt_flag):
    """nova's migration flags with preemption added, only where post-copy is permitted
    (preemption without VIR_MIGRATE_POSTCOPY is refused)."""
    if preempt_flag and migration_flags & postcopy_flag:
        return migration_flags | preempt_flag
    return migration_flags
