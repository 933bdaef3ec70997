"""The ``kbench`` command line: ``kbench list|profile|sweep|fit-flops ...``.

Exit codes (the README's contract): 0 success; 1 a measured failure the command exists to
report; 2 bad usage or bad input, with a one-line message on stderr and no traceback; 3 an
internal error (a bug of kbench), one line on stderr (the traceback only with KBENCH_DEBUG=1). ``kbench``
with no command prints the help on standard output and exits 0 (asking for help is not an error).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from kbench.version import __version__
from kbench.errors import UsageError

EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of the usage block, and without prefix
    matching (``--batch-size`` must not silently mean ``--batch-sizes``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # main() prints "kbench: error: ": name only the subcommand ("sweep: ..."), never "kbench" twice.
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        raise UsageError(f"{command}: {message}" if command else message)


def _command_modules():
    from kbench import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def version_text() -> str:
    """``kbench --version``: kbench and the versions its numbers depend on (from the installed
    packages' metadata: nothing is imported, so this is instant)."""
    from kbench.common import env

    backend = env.backend_name()
    versions = [("TensorFlow", "tensorflow"), ("Keras", "keras"), (f"backend: {backend}", backend)]
    return f"kbench {__version__} (" + ", ".join(
        f"{label} {env.package_version(package) or 'not installed'}" for label, package in versions) + ")"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kbench", description="Parameters, TF-profiler FLOPs and throughput of Keras CNNs.")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Run one command. SIGINT, SIGTERM and SIGHUP stop any command alike (``kbench.common.interrupts``):
    one line on stderr, exit 128 + the signal's number."""
    from kbench.common import interrupts
    from kbench.models.session import own_process

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    own_process()
    installed = interrupts.install()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        interrupts.checkpoint()
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"kbench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"kbench: {interrupts.describe(exc)}", file=sys.stderr)
        return interrupts.exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: its own exit code, never 1 (a measured failure)
        if os.environ.get("KBENCH_DEBUG"):
            import traceback

            traceback.print_exc()
        from kbench.results.frame import printable

        print(f"kbench: internal error: {type(exc).__name__}: {printable(' '.join(str(exc).split())[:500])} "
              f"(please report it; KBENCH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if installed:
            interrupts.restore()


if __name__ == "__main__":
    sys.exit(main())
