"""Debian roots for the fresh-machine test and the Debian 13 stack.

Cache, kept between runs (MIGPILOT_ROOT_CACHE overrides the directory):

    /var/cache/migpilot/roots/<suite>-base         debootstrap --variant=minbase; never
                                                   changed once made
    /var/cache/migpilot/roots/<suite>-stack-<hash> the base plus every package `make deps`
                                                   installs, keyed by a hash of that list

Packages download once: debootstrap and apt in every root use the host's
/var/cache/apt/archives. The mirror is the host's own, read from its apt sources, so no
mirror name is written in the project.

A root is entered with `run()`: a private mount namespace (unshare) with /proc, /sys, /dev,
a fresh /run and /dev/shm; every mount made in there, network
namespaces bound under its /run/netns included, goes away with that namespace.
"""
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

CACHE = os.environ.get('MIGPILOT_ROOT_CACHE', '/var/cache/migpilot/roots')
ARCHIVES = '/var/cache/apt/archives'
KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'


class RootError(RuntimeError):
    pass


def log(msg):
    print('stacks: %s' % msg, file=sys.stderr, flush=True)


def host_mirrors():
    """(main, security) mirror URIs of the host's apt sources; security may be None."""
    main = security = None
    for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')) + \
            ['/etc/apt/sources.list']:
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in text.split('\n\n'):
            fields = {}
            for line in stanza.splitlines():
                if ':' in line and not line.startswith(('#', ' ')):
                    k, v = line.split(':', 1)
                    fields[k.strip()] = v.split()
            uris, suites = fields.get('URIs', []), fields.get('Suites', [])
            for line in stanza.splitlines():       # one-line format
                words = line.split()
                if len(words) >= 3 and words[0] == 'deb' and not words[1].startswith('['):
                    uris, suites = [words[1]], [words[2]]
            if not uris or not suites:
                continue
            if any(s.endswith('-security') for s in suites):
                security = security or uris[0]
            else:
                main = main or uris[0]
    if main is None:
        raise RootError('no Debian mirror in the host\'s apt sources')
    return main, security


def _run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise RootError('%s: exit %d\n%s' % (' '.join(cmd), p.returncode, p.stdout[-4000:]))
    return p.stdout


def base_root(suite):
    """The pristine minbase root of `suite`, made once."""
    base = os.path.join(CACHE, suite + '-base')
    if os.path.exists(os.path.join(base, 'bin', 'sh')):
        return base
    if not shutil.which('debootstrap'):
        raise RootError('debootstrap is not installed (make deps)')
    main, _ = host_mirrors()
    os.makedirs(CACHE, exist_ok=True)
    tmp = '%s.tmp.%d' % (base, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    log('debootstrap %s into %s (once)' % (suite, base))
    try:
        _run(['debootstrap', '--variant=minbase', '--cache-dir=' + ARCHIVES,
              '--keyring=' + KEYRING, suite, tmp, main])
    except RootError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, base)
    return base


def write_sources(root, suite):
    """apt sources of `suite` in root (+ updates, security, and backports for trixie);
    packages kept in the shared archive cache; services never started."""
    main, security = host_mirrors()
    suites = [suite, suite + '-updates'] + ([suite + '-backports'] if suite == 'trixie' else [])
    text = ('Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n'
            % (main, ' '.join(suites), KEYRING))
    if security:
        text += ('\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n'
                 'Signed-By: %s\n' % (security, suite, KEYRING))
    try:
        os.unlink(os.path.join(root, 'etc/apt/sources.list'))
    except FileNotFoundError:
        pass
    with open(os.path.join(root, 'etc/apt/sources.list.d/debian.sources'), 'w') as f:
        f.write(text)
    confd = os.path.join(root, 'etc/apt/apt.conf.d')
    # the host's own settings for its mirror (e.g. snapshot dates: no Valid-Until check)
    for path in glob.glob('/etc/apt/apt.conf.d/99*'):
        shutil.copy(path, confd)
    try:
        os.unlink(os.path.join(confd, 'docker-clean'))
    except FileNotFoundError:
        pass
    with open(os.path.join(confd, '10migpilot-keep-debs'), 'w') as f:
        f.write('Binary::apt::APT::Keep-Downloaded-Packages "true";\n')
    policy = os.path.join(root, 'usr/sbin/policy-rc.d')
    with open(policy, 'w') as f:
        f.write('#!/bin/sh\n# no service starts inside a test root\nexit 101\n')
    os.chmod(policy, 0o755)


def copy_root(src, dst):
    remove_root(dst)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    _run(['cp', '-a', src, dst])


_ENTER = r'''
set -e
root=$1; shift
# the root a mount point of its own: `ip netns exec` makes "/" a slave mount
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mkdir -p "$root/run/lock" "$root/dev/shm"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
exec chroot "$root" "$@"
'''


def _link_debs(src, dst):
    """Hard-links the .deb files of src that dst lacks (same file system: no copies)."""
    os.makedirs(dst, exist_ok=True)
    have = set(os.listdir(dst))
    for name in os.listdir(src):
        if name.endswith('.deb') and name not in have:
            try:
                os.link(os.path.join(src, name), os.path.join(dst, name))
            except OSError:
                shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


def run(root, cmd, env=None, timeout=None, log_path=None, check=True):
    """Runs cmd (a list) as root inside `root`; returns the exit status (raises RootError
    on a non-zero one when check). Output goes to log_path (appended) or is inherited.

    The root's apt archive cache is filled from the host's before and gives back what it
    downloaded after: packages download once, and apt in the root never takes the host
    cache's lock (which a concurrent apt-get on the host may hold)."""
    shutil.copy('/etc/resolv.conf', os.path.join(root, 'etc/resolv.conf'))
    root_archives = os.path.join(root, 'var/cache/apt/archives')
    _link_debs(ARCHIVES, root_archives)
    try:
        return _run_in(root, cmd, env, timeout, log_path, check)
    finally:
        _link_debs(root_archives, ARCHIVES)
        for name in os.listdir(root_archives):   # a root copies small without them
            if name.endswith('.deb'):
                os.unlink(os.path.join(root_archives, name))


def _run_in(root, cmd, env, timeout, log_path, check):
    base_env = {'HOME': '/root', 'LANG': 'C.UTF-8', 'DEBIAN_FRONTEND': 'noninteractive',
                'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}
    # CI, and the lab's names and ports: a root shares this machine's network, so two labs
    # must not share a prefix or a port
    for name, value in os.environ.items():
        if name == 'CI' or name.startswith('MPLAB_'):
            base_env[name] = value
    base_env.update(env or {})
    full = ['unshare', '--mount', '--propagation', 'private', '--', '/bin/bash', '-c', _ENTER,
            'enter', root, '/usr/bin/env', '-i'] + \
        ['%s=%s' % kv for kv in sorted(base_env.items())] + list(cmd)
    out = open(log_path, 'a') if log_path else None
    try:
        p = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT if out else None,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            stop_processes(root)
            raise RootError('%s: timed out after %d s' % (' '.join(cmd), timeout))
    finally:
        if out:
            out.close()
    if check and rc != 0:
        raise RootError('%s: exit %d%s' % (' '.join(cmd), rc,
                                           ' (log: %s)' % log_path if log_path else ''))
    return rc


def stop_processes(root):
    """Stops, by PID, every process whose root directory is `root` (daemons that a killed
    suite left behind): SIGTERM, then SIGKILL after 5 s."""
    real = os.path.realpath(root)
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 2)):
        pids = []
        for proc in glob.glob('/proc/[0-9]*'):
            try:
                if os.readlink(proc + '/root') == real:
                    pids.append(int(proc[6:]))
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(wait)


def remove_root(root):
    """Removes a root made by copy_root (its processes stopped first); refuses a root with
    something still mounted in it (removing would reach into the host)."""
    if not os.path.exists(root):
        return
    stop_processes(root)
    real = os.path.realpath(root)
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mnt = line.split()[4]
            if mnt == real or mnt.startswith(real + '/'):
                raise RootError('%s still has %s mounted: not removing it' % (root, mnt))
    shutil.rmtree(root)


def clone_tree(repo, dest):
    """The committed tree of `repo`, cloned as a user would."""
    shutil.rmtree(dest, ignore_errors=True)
    _run(['git', 'clone', '-q', '--no-hardlinks', repo, dest])


def package_list(repo):
    """DEB_PACKAGES of the Makefile of repo (what `make deps` installs)."""
    out = _run(['make', '-s', '-C', repo, '--no-print-directory', 'print-deb-packages'])
    return out.split()


def stack_root(suite, repo, log_path):
    """The cached root of `suite` with every package of `make deps` installed, made from
    the base when the list changed. The caller copies it before changing anything."""
    packages = package_list(repo)
    digest = hashlib.sha256(' '.join(sorted(packages)).encode()).hexdigest()[:12]
    path = os.path.join(CACHE, '%s-stack-%s' % (suite, digest))
    if os.path.exists(os.path.join(path, '.complete')):
        return path
    for old in glob.glob(os.path.join(CACHE, suite + '-stack-*')):
        log('removing the outdated %s' % old)
        remove_root(old)
    tmp = path + '.tmp'
    copy_root(base_root(suite), tmp)
    write_sources(tmp, suite)
    log('installing %d packages into %s (once per package list; log %s)'
        % (len(packages), path, log_path))
    run(tmp, ['apt-get', 'update', '-q'], log_path=log_path)
    run(tmp, ['apt-get', 'install', '-y', '-q', '--no-install-recommends'] + packages,
        log_path=log_path)
    open(os.path.join(tmp, '.complete'), 'w').close()
    os.rename(tmp, path)
    return path
