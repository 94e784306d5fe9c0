# Shared pytest set-up for every suite under tests/: the lab's fixtures (session-scoped
# `lab`, `rabbit`, `rabbit_tls`; see tests/lab/README.md). They import libvirt and start
# daemons only when a test asks for them.
pytest_plugins = ['tests.lab.fixtures']
