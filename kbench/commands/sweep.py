"""``kbench sweep``: throughput over models x batch sizes x modes x precisions x jit x backends.

Each (model, backend) is measured in its own worker subprocess; every finished configuration is
appended to the CSV at once; ``--resume`` continues a killed sweep without duplicating rows.
See ``kbench/sweep.py`` for the rules (resume keys, OOM/skip, timeout, time budget, FLOPs/MFU).

Defaults can come from a TOML file (``--config sweeps/nightly.toml``); flags given on the
command line win over the file. Keys: models (list or selector string), family, batch_sizes,
modes, precision, backend, jit (auto|on|off|both), warmup, iters, timeout, time_budget,
input_size, num_classes, peak_tflops, set (a table of builder options).
"""

from __future__ import annotations

import datetime as _dt
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

from kbench.commands._common import format_table, parse_input_size, parse_int_list, parse_set
from kbench.errors import UsageError

NAME = "sweep"
HELP = "measure throughput and latency over models x batch sizes x modes x precision x backends"

DEFAULTS = {"batch_sizes": "1,8,32", "modes": "infer,train", "precision": "float32", "backend": "tensorflow",
            "jit": "auto", "warmup": 10, "iters": 50, "timeout": 600.0}
CONFIG_KEYS = {"models", "family", "batch_sizes", "modes", "precision", "backend", "jit", "warmup", "iters",
               "timeout", "time_budget", "input_size", "num_classes", "peak_tflops", "set"}


def add_arguments(parser):
    parser.add_argument("selector", nargs="?", metavar="MODELS",
                        help="same as --models (e.g. 'all', 'resnet18,resnet50', 'family:resnet')")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--models", help="M1,M2,... | all | family:F")
    which.add_argument("--family", help="every model of one family")
    parser.add_argument("--config", help="TOML file with default settings (flags override it)")
    parser.add_argument("--batch-sizes", help="comma-separated positive integers (default: 1,8,32)")
    parser.add_argument("--modes", help="infer,train (default: both)")
    parser.add_argument("--precision", help="comma list of float32, mixed_float16, mixed_bfloat16 (default: float32)")
    jit = parser.add_mutually_exclusive_group()
    jit.add_argument("--jit", dest="jit", action="store_const", const="on",
                     help="compile with XLA (jit_compile=True); on torch this is recorded as skipped")
    jit.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="no XLA / no jax.jit")
    jit.add_argument("--jit-both", dest="jit", action="store_const", const="both", help="measure with and without")
    parser.add_argument("--backend", help="comma list of tensorflow, jax, torch (default: tensorflow); "
                        "default jit: Keras' 'auto' (jax: on; tensorflow: on only with a GPU; torch: off)")
    parser.add_argument("--input-size", help="H or H,W for every model (default: each model's own)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option for every model (repeatable)")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    parser.add_argument("--warmup", type=int, help="untimed steps after the first (compiling) call (default: 10)")
    parser.add_argument("--iters", type=int, help="timed steps (default: 50)")
    parser.add_argument("--timeout", type=float, help="seconds per configuration before it is killed (default: 600)")
    parser.add_argument("--time-budget", type=float, help="seconds for the whole sweep; configurations left "
                        "when it runs out are not run (no row) and --resume picks them up")
    parser.add_argument("--peak-tflops", type=float, help="device peak TFLOP/s for mfu (default: kbench.devices table; none on CPU)")
    parser.add_argument("--out", help="CSV to write (default: results/sweep-<UTC time>.csv)")
    parser.add_argument("--resume", action="store_true", help="continue --out: skip configurations already recorded")
    parser.add_argument("--profile-cache", help="directory of cached TF profiles (default: .profile-cache/ beside --out)")
    parser.add_argument("--profile-only", action="store_true",
                        help="only fill the profile cache (needs TensorFlow) and measure nothing: run this on a "
                        "TensorFlow machine, then carry the directory to a machine without TensorFlow")
    parser.add_argument("--progress", action=__import__("argparse").BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: only when stderr is a terminal)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any configuration ended in error or timeout")


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read --config {path!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"malformed TOML in --config {path!r}: {exc}") from None
    data = data.get("sweep", data)
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} in {path!r}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    return data


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_spec(args):
    from kbench import registry
    from kbench.sweep import SweepSpec

    cfg = _load_config(args.config)

    def pick(name, key=None):
        value = getattr(args, name)
        if value is not None:
            return value
        key = key or name
        if key in cfg:
            return cfg[key]
        return DEFAULTS.get(key)

    if args.selector and (args.models or args.family):
        raise UsageError("name the models once: a positional MODELS or --models/--family, not both")
    if args.models or args.selector:
        selector = args.models or args.selector
    elif args.family:
        selector = f"family:{args.family}"
    elif "models" in cfg:
        selector = _as_text(cfg["models"])
    elif "family" in cfg:
        selector = f"family:{cfg['family']}"
    else:
        raise UsageError("name the models: --models M1,M2 | --models all | --family F (or 'models' in --config)")
    models = registry.resolve_models(selector)

    jit = pick("jit")
    if isinstance(jit, bool):
        jit = "on" if jit else "off"
    variant = parse_set(args.set) if args.set else dict(cfg.get("set", {}))
    input_size = args.input_size if args.input_size is not None else cfg.get("input_size")
    time_budget = pick("time_budget")
    try:
        warmup, iters, timeout = int(pick("warmup")), int(pick("iters")), float(pick("timeout"))
        time_budget = float(time_budget) if time_budget is not None else None
        peak = pick("peak_tflops")
        peak = float(peak) if peak is not None else None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad numeric setting: {exc}") from None
    out = args.out or f"results/sweep-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.csv"
    return SweepSpec(
        models=models,
        batch_sizes=parse_int_list(_as_text(pick("batch_sizes")), "--batch-sizes"),
        modes=_list(_as_text(pick("modes"))),
        precisions=_list(_as_text(pick("precision"))),
        backends=_list(_as_text(pick("backend"))),
        jit=str(jit),
        input_size=parse_input_size(_as_text(input_size)) if input_size is not None else None,
        variant=variant,
        num_classes=pick("num_classes"),
        warmup=warmup, iters=iters, timeout_s=timeout, time_budget_s=time_budget, peak_tflops=peak,
        out=out, resume=args.resume,
        profile_cache=args.profile_cache,
        progress=args.progress,
        profile_only=args.profile_only,
    )


def run(args) -> int:
    from kbench.sweep import fill_profile_cache, run_sweep, summary_rows, validate

    spec = build_spec(args)
    if spec.profile_only:
        filled = fill_profile_cache(spec, validate(spec))
        print(f"kbench: {filled.profiled} profiles in {filled.cache_dir} ({filled.computed} computed now)"
              + (f"; failed: {', '.join(filled.failed)}" if filled.failed else ""), file=sys.stderr)
        return 1 if filled.failed else 0
    result = run_sweep(spec)
    if result.rows:
        sys.stdout.write(format_table(("model", "batch", "mode", "backend", "precision", "jit", "samples/s",
                                       "p50_ms", "cv", "status"), summary_rows(result.rows)))
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    parts = [f"{n} {s}" for s, n in sorted(counts.items())]
    message = f"kbench: {len(result.rows)} rows appended to {result.path}" + (f" ({', '.join(parts)})" if parts else "")
    if result.skipped_existing:
        message += f"; {result.skipped_existing} configurations already in the file"
    if result.not_run:
        message += f"; {result.not_run} configurations not run: time budget exhausted (rerun with --resume)"
    print(message, file=sys.stderr)
    if args.strict and (counts.get("error") or counts.get("timeout")):
        return 1
    return 0
