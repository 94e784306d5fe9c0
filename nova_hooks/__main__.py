"""`python3 -m nova_hooks SUBCOMMAND ...` behaves as the `migpilot` command."""
import sys

from nova_hooks.cli import main

sys.exit(main())
