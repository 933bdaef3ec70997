"""CLI subcommands, one module each: ``NAME``, ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``.

``kbench.cli`` discovers every public module here, so a new command is added by a new file.
"""
