"""`compute_driver = migpilot.driver.LibvirtDriver`: re-exports migpilot's driver.

nova Zed imports compute drivers as `nova.virt.<compute_driver>`, so an out-of-tree driver
needs a module inside nova.virt. This one only re-exports; the code lives in nova_hooks.
"""
from nova_hooks.driver import LibvirtDriver  # noqa: F401
