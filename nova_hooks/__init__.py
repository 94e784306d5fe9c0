"""migpilot's Python face: the nova driver hook and the `migpilot` command line."""
