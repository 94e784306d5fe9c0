#!/usr/bin/python3
"""Builds the lab guest (kernel + initramfs) and installs the QEMU wrapper into the cache.

    /usr/bin/python3 -m tests.lab.build          # build if needed, print the paths

Outputs, in tests/lab/cache/ (git-ignored):
  vmlinuz      the kernel of the Debian package that linux-image-amd64 currently depends on
               (apt-get download + extraction only; nothing is installed, /boot untouched)
  initrd.gz    busybox-static + the static dirtier + guest/init
  qemu-wrap    the RAM-size wrapper used as the domains' <emulator>
  stamp.json   what the outputs were built from; a rebuild happens only when an output is
               missing or a source (dirtier.c, init, qemu-wrap, busybox, kernel package) changed
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_DIR = os.path.join(HERE, 'guest')
CACHE_DIR = os.environ.get('MPLAB_CACHE', os.path.join(HERE, 'cache'))
BUSYBOX = '/bin/busybox'


class BuildError(RuntimeError):
    pass


def _run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise BuildError('%s failed (rc %d): %s' % (' '.join(cmd), p.returncode, p.stdout.strip()))
    return p.stdout


def _sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def resolve_kernel_package():
    """Name of the package linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64)."""
    def depends():
        p = subprocess.run(['apt-cache', 'depends', 'linux-image-amd64'], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith('Depends:') and line.split()[1].startswith('linux-image-'):
                return line.split()[1]
        return None

    pkg = depends()
    if pkg is None:
        # empty apt lists (fresh machine): fetch them once
        _run(['apt-get', 'update', '-q'])
        pkg = depends()
    if pkg is None:
        raise BuildError('cannot resolve the package linux-image-amd64 depends on '
                         '(apt-cache depends linux-image-amd64 gave none)')
    return pkg


def _fetch_kernel(pkg, dest):
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        os.chmod(tmp, 0o755)   # apt's _apt user may want to write here
        _run(['apt-get', 'download', '-q', pkg], cwd=tmp)
        debs = [f for f in os.listdir(tmp) if f.endswith('.deb')]
        if len(debs) != 1:
            raise BuildError('apt-get download %s produced %r' % (pkg, debs))
        x = os.path.join(tmp, 'x')
        os.mkdir(x)
        # Only ./boot is needed; extracting the modules too would cost ~400 MB and seconds.
        deb = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', os.path.join(tmp, debs[0])],
                               stdout=subprocess.PIPE)
        tar = subprocess.run(['tar', '-x', '-C', x, '--wildcards', './boot/vmlinuz-*'],
                             stdin=deb.stdout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        deb.stdout.close()
        if deb.wait() != 0 or tar.returncode != 0:
            raise BuildError('extracting %s failed: %s' % (debs[0], tar.stdout))
        kernels = os.listdir(os.path.join(x, 'boot'))
        if len(kernels) != 1:
            raise BuildError('%s holds kernels %r' % (debs[0], kernels))
        shutil.move(os.path.join(x, 'boot', kernels[0]), dest + '.tmp')
        os.replace(dest + '.tmp', dest)


def _build_initrd(dest):
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        root = os.path.join(tmp, 'root')
        for d in ('bin', 'sbin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'usr/bin', 'usr/sbin'):
            os.makedirs(os.path.join(root, d))
        _run(['gcc', '-O2', '-static', '-Wall', '-Wextra', '-Werror', '-o',
              os.path.join(root, 'bin', 'dirtier'), os.path.join(GUEST_DIR, 'dirtier.c')])
        shutil.copy2(BUSYBOX, os.path.join(root, 'bin', 'busybox'))
        os.symlink('busybox', os.path.join(root, 'bin', 'sh'))
        shutil.copy2(os.path.join(GUEST_DIR, 'init'), os.path.join(root, 'init'))
        os.chmod(os.path.join(root, 'init'), 0o755)
        files = _run(['find', '.'], cwd=root)
        with open(dest + '.tmp', 'wb') as out:
            cpio = subprocess.Popen(['cpio', '-o', '-H', 'newc', '--quiet'], cwd=root,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            gz = subprocess.Popen(['gzip', '-1'], stdin=cpio.stdout, stdout=out)
            cpio.stdout.close()
            cpio.stdin.write(files.encode())
            cpio.stdin.close()
            if cpio.wait() != 0 or gz.wait() != 0:
                raise BuildError('cpio/gzip of the initramfs failed')
        os.replace(dest + '.tmp', dest)


def ensure(verbose=False):
    """Builds what is missing or stale; returns dict(kernel=, initrd=, emulator=)."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    out = {'kernel': os.path.join(CACHE_DIR, 'vmlinuz'),
           'initrd': os.path.join(CACHE_DIR, 'initrd.gz'),
           'emulator': os.path.join(CACHE_DIR, 'qemu-wrap')}
    stamp_path = os.path.join(CACHE_DIR, 'stamp.json')
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        stamp = {}

    try:
        pkg = resolve_kernel_package()
    except BuildError:
        if os.path.exists(out['kernel']) and stamp.get('kernel_package'):
            pkg = stamp['kernel_package']   # offline, but a kernel is cached: keep it
        else:
            raise
    if stamp.get('kernel_package') != pkg or not os.path.exists(out['kernel']):
        if verbose:
            print('build: fetching kernel from %s' % pkg, file=sys.stderr)
        _fetch_kernel(pkg, out['kernel'])
        stamp['kernel_package'] = pkg
        stamp.pop('kernel_sha', None)

    initrd_src = {name: _sha(os.path.join(GUEST_DIR, name)) for name in ('dirtier.c', 'init')}
    initrd_src['busybox'] = _sha(BUSYBOX)
    if stamp.get('initrd_src') != initrd_src or not os.path.exists(out['initrd']):
        if verbose:
            print('build: building initrd.gz', file=sys.stderr)
        _build_initrd(out['initrd'])
        stamp['initrd_src'] = initrd_src

    # Copied only when its content changed, so its ctime (which libvirt's capability cache
    # checks) stays put between runs.
    wrap_sha = _sha(os.path.join(GUEST_DIR, 'qemu-wrap'))
    if stamp.get('wrap_sha') != wrap_sha or not os.path.exists(out['emulator']):
        shutil.copy2(os.path.join(GUEST_DIR, 'qemu-wrap'), out['emulator'] + '.tmp')
        os.chmod(out['emulator'] + '.tmp', 0o755)
        os.replace(out['emulator'] + '.tmp', out['emulator'])
        stamp['wrap_sha'] = wrap_sha

    with open(stamp_path + '.tmp', 'w') as f:
        json.dump(stamp, f, indent=1, sort_keys=True)
    os.replace(stamp_path + '.tmp', stamp_path)
    return out


if __name__ == '__main__':
    for k, v in ensure(verbose=True).items():
        print('%s %s' % (k, v))
