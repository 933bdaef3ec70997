"""``kbench sweep``: throughput over models x batch sizes x modes x precisions x jit x backends.

Configurations run in warm worker processes; every finished configuration is appended to the
CSV at once; ``--resume`` continues a killed sweep without duplicating rows. The rules (resume
keys, OOM/skip, timeout, time budget, FLOPs/MFU) are in ``kbench/running/sweep.py``; every
option's flag, ``--config`` key, default, type and help are declared once, on ``SweepSpec``
(``kbench/running/plan.py``), and this command builds its parser from them.

Defaults can come from a TOML file (``--config my.toml``) or a preset shipped with kbench
(``--config nightly``, ``--config full``: ``kbench/running/sweeps/*.toml``); flags given on the
command line win over the file. Keys: models (list or selector string), family, and the options'
declared keys. SIGINT, SIGTERM and SIGHUP stop a sweep cleanly: one line on stderr, every
written row complete, exit code 128 + the signal's number.
"""

from __future__ import annotations

import datetime as _dt
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

from kbench.common import validate as check
from kbench.commands._common import format_table
from kbench.errors import UsageError

NAME = "sweep"
HELP = "measure throughput and latency over models x batch sizes x modes x precision x backends"


def add_arguments(parser):
    """The flags of ``SweepSpec``'s declarations (``kbench.running.plan``), plus the model selector,
    ``--config``, the three jit switches and ``--strict``, which are the command's own."""
    import argparse

    from kbench.running.plan import OPTIONS, help_of

    parser.allow_abbrev = False  # --batch-size must not silently mean --batch-sizes
    parser.add_argument("selector", nargs="?", metavar="MODELS",
                        help="same as --models (e.g. 'all', 'resnet18,resnet50', 'family:resnet', 'resnet*')")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--models", help="model selector: names, 'resnet*', family:F, all, @FILE, PATH.keras, "
                       "package.module:factory, comma-separated")
    which.add_argument("--family", help="every model of one family")
    parser.add_argument("--config", help="TOML file with default settings, or a preset's name: "
                        f"{', '.join(preset_names())} (flags override it)")
    jit = parser.add_mutually_exclusive_group()
    jit.add_argument("--jit", dest="jit", action="store_const", const="on",
                     help="compile with XLA (jit_compile=True); on torch this is recorded as skipped")
    jit.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="no XLA / no jax.jit")
    jit.add_argument("--jit-both", dest="jit", action="store_const", const="both", help="measure with and without")
    for name, field in OPTIONS.items():
        flag = field.metadata["flag"]
        if not flag:
            continue
        metavar = field.metadata["metavar"] or flag.lstrip("-").upper().replace("-", "_")
        if field.type == "bool":
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=help_of(name))
        elif name == "variant":
            parser.add_argument(flag, dest=name, action="append", metavar=metavar, help=help_of(name))
        else:
            parser.add_argument(flag, dest=name, metavar=metavar, help=help_of(name))
    parser.add_argument("--progress", dest="progress", action=argparse.BooleanOptionalAction, default=None,
                        help=help_of("progress"))
    parser.add_argument("--strict", action="store_true", help="exit 1 if any configuration ended in error or timeout")


PRESETS_DIR = Path(__file__).resolve().parents[1] / "running" / "sweeps"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def config_path(value: str) -> str:
    """``--config``: an existing file is read as given; a bare name (no directory, no suffix)
    is a preset shipped in ``kbench/running/sweeps/``, so that ``--config nightly`` works from anywhere."""
    if Path(value).exists() or Path(value).suffix or Path(value).name != value:
        return value
    preset = PRESETS_DIR / f"{value}.toml"
    if not preset.is_file():
        raise UsageError(f"--config {value!r} is neither a file nor a preset; presets: {', '.join(preset_names())}")
    return str(preset)


MODEL_KEYS = {"models": (str, list), "family": (str,)}  # the --config keys that are not SweepSpec options


def _load_config(path: str | None) -> dict:
    from kbench.running.plan import CONFIG_KEYS

    if not path:
        return {}
    path = config_path(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --config {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"malformed TOML in --config {path!r}: not UTF-8 text (offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"malformed TOML in --config {path!r}: {exc}") from None
    if "sweep" in data:
        if not isinstance(data["sweep"], dict):
            raise UsageError(f"'sweep' in --config {path!r} must be a table ([sweep]), "
                             f"got {type(data['sweep']).__name__} {data['sweep']!r}")
        data = data["sweep"]
    allowed = set(CONFIG_KEYS) | set(MODEL_KEYS)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} in {path!r}; allowed: {', '.join(sorted(allowed))}")
    check.check_types({k: v for k, v in data.items() if k in MODEL_KEYS}, MODEL_KEYS, f"--config {path!r}")
    return data


def _selector(args, cfg: dict, source: str) -> str:
    if args.selector and (args.models or args.family):
        raise UsageError("name the models once: a positional MODELS or --models/--family, not both")
    if args.models or args.selector:
        return args.models or args.selector
    if args.family:
        return f"family:{args.family}"
    if "models" in cfg:
        return ",".join(check.word_list(cfg["models"], f"models in {source}"))
    if "family" in cfg:
        return f"family:{cfg['family']}"
    raise UsageError("name the models: --models M1,M2 | --models all | --family F (or 'models' in --config)")


def build_spec(args):
    """The ``SweepSpec`` of the command line: each option from its flag, else the ``--config`` key,
    else its declared default, parsed by its one declaration (``kbench.running.plan``)."""
    from kbench.models import selectors
    from kbench.running.plan import CONFIG_KEYS, OPTIONS, spec_from_options

    cfg = _load_config(args.config)
    source = f"--config {args.config!r}"
    models = selectors.expand(_selector(args, cfg, source))
    options = {CONFIG_KEYS[key]: (value, f"{key!r} in {source}", False)
               for key, value in cfg.items() if key in CONFIG_KEYS}
    for name in OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            flag = OPTIONS[name].metadata["flag"] or "--" + name.replace("_", "-")
            options[name] = (value, flag, True)
    if "out" not in options:
        options["out"] = (f"results/sweep-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.csv",
                          "--out", True)
    return spec_from_options(models, options)


def run(args) -> int:
    """The sweep, with SIGINT/SIGTERM/SIGHUP turned into a clean stop (exit 128 + n)."""
    from kbench.common import interrupts

    installed = interrupts.install()
    try:
        return _run(args)
    except KeyboardInterrupt as exc:
        print(f"kbench: {interrupts.describe(exc)}; every row written is complete "
              "(rerun with --resume to continue)", file=sys.stderr)
        return interrupts.exit_code(exc)
    finally:
        if installed:
            interrupts.restore()


def _log_row(row: dict) -> None:
    """Without a progress bar (off a terminal): one line per configuration as it is written."""
    from kbench.running.rows import summary_rows

    shown = summary_rows([row])[0]
    speed = f", {shown['samples/s']} samples/s" if row["status"] == "ok" else f": {row['error'][:120]}" if row["error"] else ""
    print(f"kbench: {shown['model']} batch {row['batch_size']} {row['mode']} {row['backend']} {row['precision']} "
          f"jit={row['jit']}: {row['status']}{speed}", file=sys.stderr, flush=True)


def _warn_noisy(rows: list[dict], spec) -> None:
    """One stderr line when some rows' rounds are too noisy for compare's default threshold."""
    from kbench.results.stats import DEFAULT_THRESHOLD
    from kbench.running.rows import noisy_rows, summary_rows

    noisy = noisy_rows(rows, DEFAULT_THRESHOLD)
    if noisy:
        row, spread = noisy[0]
        print(f"kbench: warning: {len(noisy)} configuration(s) too noisy to tell a {DEFAULT_THRESHOLD:.0%} change "
              f"with {spec.rounds} rounds of {spec.iters} steps (worst: {summary_rows([row])[0]['model']} batch "
              f"{row['batch_size']} {row['mode']}, cv {float(row['cv']):.2g}: each round varies by about "
              f"{spread:.0%}); measure with more --iters or on a quieter machine", file=sys.stderr)


def _run(args) -> int:
    from kbench.common import interrupts
    from kbench.running.rows import SUMMARY_COLUMNS, summary_rows
    from kbench.running.sweep import fill_profile_cache, resolve, run_sweep

    resolved = resolve(build_spec(args))
    spec = resolved.spec
    interrupts.checkpoint()
    if spec.profile_only:
        filled = fill_profile_cache(resolved)
        print(f"kbench: {filled.profiled} profiles in {filled.cache_dir} ({filled.computed} computed now)"
              + (f"; failed: {', '.join(filled.failed)}" if filled.failed else ""), file=sys.stderr)
        return 1 if filled.failed else 0
    bar = spec.progress if spec.progress is not None else sys.stderr.isatty()
    result = run_sweep(resolved, on_row=None if bar else _log_row)
    if result.rows:
        sys.stdout.write(format_table(SUMMARY_COLUMNS, summary_rows(result.rows)))
        _warn_noisy(result.rows, spec)
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    parts = [f"{n} {s}" for s, n in sorted(counts.items())]
    noun = "row" if len(result.rows) == 1 else "rows"
    message = f"kbench: {len(result.rows)} {noun} appended to {result.path}" + (f" ({', '.join(parts)})" if parts else "")
    if result.skipped_existing:
        message += f"; {result.skipped_existing} configurations already in the file"
    if result.not_run:
        message += f"; {result.not_run} configurations not run: time budget exhausted (rerun with --resume)"
    print(message, file=sys.stderr)
    from kbench.results.stats import rounds_warning  # compare's rule: kbench.results.stats.min_rounds
    too_few = rounds_warning(spec.rounds)
    if too_few:
        print(f"kbench: warning: {too_few}", file=sys.stderr)
    if args.strict and (counts.get("error") or counts.get("timeout")):
        return 1
    return 0
