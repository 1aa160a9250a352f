"""The ``hmr`` command. Argument parsing only: every command calls a library function."""
