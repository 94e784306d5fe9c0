"""A host's libvirt migration events as seen from outside the agent, timed on the caller's
monotonic clock: pass starts (MIGRATION_ITERATION) and lifecycle changes (the post-copy
switch is SUSPENDED/POSTCOPY on the source). Used by tests and benchmarks that measure when
something happened, independently of what the agent says."""
import threading
import time

import libvirt

from tests.lab import lab as lablib

POSTCOPY = (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)


class EventRecorder:
    """Records every domain's events on one host, on a connection of its own.
    events: [(t, domain uuid, 'iteration' | 'lifecycle', pass | (event, detail))]."""

    def __init__(self, host):
        lablib.ensure_event_loop()
        self.conn = libvirt.open(host.uri)
        self.events = []
        self.cond = threading.Condition()
        self.ids = [
            self.conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, self._iteration, None),
            self.conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None),
        ]

    def _add(self, dom, kind, value):
        with self.cond:
            self.events.append((time.monotonic(), dom.UUIDString(), kind, value))
            self.cond.notify_all()

    def _iteration(self, conn, dom, iteration, opaque):
        self._add(dom, 'iteration', iteration)

    def _lifecycle(self, conn, dom, event, detail, opaque):
        self._add(dom, 'lifecycle', (event, detail))

    def _of(self, kind, uuid):
        return [(t, v) for t, u, k, v in self.events
                if k == kind and (uuid is None or u == uuid)]

    def first(self, kind, value, uuid=None):
        """Time of the first such event (of that domain if uuid), or None."""
        with self.cond:
            return next((t for t, v in self._of(kind, uuid) if v == value), None)

    def max_iteration(self, uuid=None):
        with self.cond:
            return max((v for _, v in self._of('iteration', uuid)), default=0)

    def wait_iteration(self, n, timeout, uuid=None):
        """True once a pass >= n started, False after timeout."""
        with self.cond:
            return self.cond.wait_for(
                lambda: any(v >= n for _, v in self._of('iteration', uuid)), timeout)

    def switch_info(self, uuid=None):
        """(pass at the post-copy switch, s from that pass's start to the switch), or None."""
        with self.cond:
            post = [t for t, v in self._of('lifecycle', uuid) if v == POSTCOPY]
            if not post:
                return None
            passes = [(t, v) for t, v in self._of('iteration', uuid) if t <= post[0]]
        if not passes:
            return None
        t, v = passes[-1]
        return v, post[0] - t

    def close(self):
        for i in self.ids:
            try:
                self.conn.domainEventDeregisterAny(i)
            except libvirt.libvirtError:
                pass
        self.conn.close()
