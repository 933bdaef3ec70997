"""The ``kbench`` command line: ``kbench list|profile|sweep|fit-flops ...``.

Exit codes (shared/specs/interface.md): 0 success; 1 a measured failure the command exists to
report; 2 bad usage or bad input, with a one-line message on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from kbench import __version__
from kbench.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of the usage block, and without prefix
    matching (``--batch-size`` must not silently mean ``--batch-sizes``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _command_modules():
    from kbench import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kbench", description="Parameters, TF-profiler FLOPs and throughput of Keras CNNs.")
    parser.add_argument("--version", action="version", version=f"kbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Run one command. SIGINT, SIGTERM and SIGHUP stop any command alike (``kbench.interrupts``):
    one line on stderr, exit 128 + the signal's number."""
    from kbench import interrupts

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    installed = interrupts.install()
    try:
        args = build_parser().parse_args(argv)
        interrupts.checkpoint()
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"kbench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"kbench: {interrupts.describe(exc)}", file=sys.stderr)
        return interrupts.exit_code(exc)
    finally:
        if installed:
            interrupts.restore()


if __name__ == "__main__":
    sys.exit(main())
