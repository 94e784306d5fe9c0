"""The stamp every results file of `make bench` carries: which tree, when, on what machine
load, by which command, so that a figure can be traced to the run that produced it."""
import datetime
import os
import platform
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _git(*args):
    try:
        return subprocess.run(['git', '-C', REPO] + list(args), capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _loadavg():
    with open('/proc/loadavg') as f:
        return [float(x) for x in f.read().split()[:3]]


class Stamp:
    """Taken when a bench part starts; finish() adds the load at its end."""

    def __init__(self, argv=None):
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.record = {
            'commit': _git('rev-parse', 'HEAD'),
            'tree_modified': bool(_git('status', '--porcelain', '--untracked-files=no')),
            'date': self.started.strftime('%Y-%m-%dT%H:%M:%SZ'),
            'command': ' '.join(argv if argv is not None else
                                ['/usr/bin/python3', '-m', _module()] + sys.argv[1:]),
            'machine': {'cpus': os.cpu_count(), 'kernel': platform.release(),
                        'loadavg_start': _loadavg()},
        }

    def finish(self):
        self.record['machine']['loadavg_end'] = _loadavg()
        self.record['seconds'] = round(
            (datetime.datetime.now(datetime.timezone.utc) - self.started).total_seconds())
        return self.record


def _module():
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    return spec.name if spec else (sys.argv[0] if sys.argv else '?')
