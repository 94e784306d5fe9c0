"""A JUnit result file for the stack tests, read by tests/summary.py like pytest's."""
import time
import traceback
import xml.etree.ElementTree as ET


class Suite:
    """Steps run in order; a step that raises fails (its message and output tail kept), and
    with `needs` a later step is failed, not run, once a step it needs failed."""

    def __init__(self, name):
        self.name = name
        self.cases = []
        self.failed = set()

    def step(self, name, func, needs=()):
        start = time.monotonic()
        missing = [n for n in needs if n in self.failed]
        print('--- %s/%s' % (self.name, name), flush=True)
        if missing:
            message = 'not run: %s failed' % ', '.join(missing)
        else:
            try:
                func()
                message = None
            except Exception as exc:   # every failure is reported, none stops the suite
                message = '%s\n%s' % (exc, traceback.format_exc(limit=3))
        took = time.monotonic() - start
        self.cases.append((name, took, message))
        if message is not None:
            self.failed.add(name)
            print('--- %s/%s: FAILED (%.0f s): %s' % (self.name, name, took, message),
                  flush=True)
        else:
            print('--- %s/%s: ok (%.0f s)' % (self.name, name, took), flush=True)
        return message is None

    def write(self, path):
        suite = ET.Element('testsuite', name=self.name, tests=str(len(self.cases)),
                           failures=str(sum(1 for c in self.cases if c[2] is not None)))
        for name, took, message in self.cases:
            case = ET.SubElement(suite, 'testcase', classname=self.name, name=name,
                                 time='%.1f' % took)
            if message is not None:
                ET.SubElement(case, 'failure', message=message.splitlines()[0]).text = message
        ET.ElementTree(suite).write(path, encoding='unicode')
