"""migpilot: the _migpilot extension (over the C core) and the nova_hooks package.

Build with Debian's interpreter only: /usr/bin/python3 setup.py build_ext --inplace
(`make` does this). The C core archive is built by the Makefile; setup.py asks make for it.
"""
import glob
import os
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.install import install

HERE = os.path.dirname(os.path.abspath(__file__))
CORE_LIB = os.environ.get('MIGPILOT_CORE_LIB', 'build/libmigpilot-core.a')


def _check_interpreter():
    # A pyenv or venv interpreter links the extension against itself (RUNPATH) while
    # Debian's python still imports it: refuse instead of building something broken.
    if os.path.realpath(sys.base_prefix) != '/usr' and \
            not os.environ.get('MIGPILOT_ANY_PYTHON'):
        sys.exit('migpilot: build with /usr/bin/python3 (Debian\'s), not %s'
                 % sys.executable)


class BuildExt(build_ext):
    def run(self):
        _check_interpreter()
        subprocess.check_call(['make', '-s', 'BUILD=' + os.path.dirname(CORE_LIB),
                               CORE_LIB], cwd=HERE)
        build_ext.run(self)


# nova Zed imports compute_driver as nova.virt.<value>, so the re-exporting shim
# (compute_driver = migpilot.driver.LibvirtDriver) must live inside nova's own package
# directory, wherever the distribution put it; a copy beside it in another site dir would
# never be found because nova is a regular package.
SHIM_SRC = os.path.join('nova_shim', 'nova', 'virt', 'migpilot')


def nova_package_dir():
    """nova's package directory (MIGPILOT_NOVA_DIR overrides), or None."""
    if os.environ.get('MIGPILOT_NOVA_DIR'):
        return os.environ['MIGPILOT_NOVA_DIR']
    import importlib.util
    spec = importlib.util.find_spec('nova')
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


class Install(install):
    """install, plus the driver shim in nova's package (nova/virt/migpilot/)."""

    def run(self):
        install.run(self)
        self.shim_outputs = []
        nova_dir = nova_package_dir()
        if nova_dir is None:
            self.announce('migpilot: nova is not installed here: driver shim not '
                          'installed (set MIGPILOT_NOVA_DIR to install it anyway)', level=3)
            return
        target = os.path.join(nova_dir, 'virt', 'migpilot')
        if self.root:
            target = os.path.join(self.root, target.lstrip(os.sep))
        self.mkpath(target)
        for name in sorted(os.listdir(os.path.join(HERE, SHIM_SRC))):
            if name.endswith('.py'):
                out, _ = self.copy_file(os.path.join(HERE, SHIM_SRC, name),
                                        os.path.join(target, name))
                self.shim_outputs.append(out)
        if self.record:
            with open(self.record, 'a') as f:
                for out in self.shim_outputs:
                    f.write(out + '\n')

    def get_outputs(self):
        return install.get_outputs(self) + getattr(self, 'shim_outputs', [])


def _pkg_config(*args):
    out = subprocess.check_output(['pkg-config'] + list(args) +
                                  ['jansson', 'librabbitmq'])
    return out.decode().split()


extension = Extension(
    '_migpilot',
    # The listener reuses the agent's URL parser and synchronous AMQP steps (no libvirt),
    # the log scanner the agent's reading of a log's zone.
    sources=sorted(glob.glob('cext/*.c')) + ['agent/daemon/mpurl.c',
                                             'agent/daemon/mpamqpconn.c',
                                             'agent/daemon/mplocalzone.c'],
    include_dirs=['agent/core', 'agent/daemon', 'cext'],
    extra_objects=[CORE_LIB],
    extra_compile_args=['-std=gnu11', '-Wall', '-Wextra', '-Werror',
                        '-Wno-missing-field-initializers'] +
    _pkg_config('--cflags'),
    extra_link_args=_pkg_config('--libs'),
    define_macros=[('_GNU_SOURCE', None), ('MP_VERSION_STR', '"0.1.0"')],
)

setup(
    name='migpilot',
    version='0.1.0',
    description='Post-copy rescue and per-migration metrics for nova live migration',
    license='Apache-2.0',
    packages=find_packages(include=['nova_hooks', 'nova_hooks.*']),
    ext_modules=[extension],
    cmdclass={'build_ext': BuildExt, 'install': Install},
    entry_points={
        'console_scripts': ['migpilot = nova_hooks.cli:main'],
        'oslo.config.opts': ['migpilot = nova_hooks.conf:list_opts'],
    },
    python_requires='>=3.11',
)
