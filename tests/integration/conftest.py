"""Fixtures shared by the agent's integration tests (tests/lab/fixtures.py has the lab's).

  collector      a consumer of migpilot's notifications on the lab's RabbitMQ
  agent_factory  starts agents on the lab's first host; at teardown each must have stopped
                 cleanly on SIGTERM, with no sanitizer report in its log
"""
import pytest

from tests.integration import bus
from tests.integration.agentproc import Agent


@pytest.fixture
def collector(rabbit):
    c = bus.Collector(rabbit.url).start()
    yield c
    c.stop()


@pytest.fixture
def agent_factory(lab, rabbit):
    agents = []

    def make(**kw):
        a = Agent(lab.hosts[0].uri, rabbit.url, host=lab.hosts[0].name, **kw)
        agents.append(a)
        return a.start()

    yield make
    for a in agents:
        rc = a.stop()
        log = a.log()
        a.cleanup()
        # every agent must stop cleanly on SIGTERM, and never crash or leak on the way
        assert rc == 0, 'agent exit status %s; log:\n%s' % (rc, log[-3000:])
        assert 'ERROR: AddressSanitizer' not in log, log[-3000:]
