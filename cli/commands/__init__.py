"""One module per subcommand, discovered automatically by :mod:`cli.main`.

A command module defines:

- ``COMMAND``: the subcommand name (``"body-model"``),
- ``HELP``: one line for ``hmr --help``,
- ``EXAMPLE``: a usage example shown at the end of ``hmr COMMAND --help``,
- ``add_arguments(parser)``: its options,
- ``run(args) -> int``: calls the library and returns the exit code.

No logic lives here beyond turning arguments into a library call and results into output.
"""
