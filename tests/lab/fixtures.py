"""pytest fixtures of the lab (loaded for every suite by tests/conftest.py).

  lab         session-scoped Lab(hosts=MPLAB_HOSTS or 2) that is up; torn down at the end
              of the session, also when tests failed (and by atexit if pytest dies).
  rabbit      session-scoped private RabbitMQ node (port MPLAB_RABBIT_PORT or 5673), started.
  rabbit_tls  like rabbit but on free ports picked at start (.port, .tls_port), with a TLS
              listener (CA in .ca_file).

If the lab cannot start, the fixture raises with the reason: tests using it fail (error),
they are never skipped.
"""
import os

import pytest


@pytest.fixture(scope='session')
def lab():
    from tests.lab.lab import Lab
    the_lab = Lab(hosts=int(os.environ.get('MPLAB_HOSTS', '2')),
                  prefix=os.environ.get('MPLAB_PREFIX', 'mplab'))
    try:
        the_lab.up()   # cleans up after itself if it fails
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(scope='session')
def rabbit():
    from tests.lab.rabbit import Rabbit
    node = Rabbit(port=int(os.environ.get('MPLAB_RABBIT_PORT', '5673')),
                  prefix=os.environ.get('MPLAB_PREFIX', 'mplab'))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope='session')
def rabbit_tls():
    from tests.lab.rabbit import Rabbit, free_port
    # free ports picked now: no fixed port to collide with another node on this machine
    node = Rabbit(port=free_port(), prefix=os.environ.get('MPLAB_PREFIX', 'mplab'), tls=True,
                  tls_port=free_port(), dist_port=free_port())
    try:
        node.start()
        yield node
    finally:
        node.stop()
