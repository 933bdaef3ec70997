"""``kbench sweep``: throughput over models x batch sizes x modes x precisions x jit x backends.

Each (model, backend) is measured in its own worker subprocess; every finished configuration is
appended to the CSV at once; ``--resume`` continues a killed sweep without duplicating rows.
See ``kbench/sweep.py`` for the rules (resume keys, OOM/skip, timeout, time budget, FLOPs/MFU).

Defaults can come from a TOML file (``--config my.toml``) or a preset shipped with kbench
(``--config nightly``, ``--config full``: ``kbench/running/sweeps/*.toml``); flags given on the
command line win over the file. Keys: models (list or selector string), family, batch_sizes,
modes, precision, backend, jit (auto|on|off|both), warmup, iters, rounds, timeout, time_budget,
input_size, num_classes, peak_tflops, devices, set (a table of builder options), each with its type
checked (``kbench.common.validate``). SIGINT, SIGTERM and SIGHUP stop a sweep cleanly: one line on
stderr, every written row complete, exit code 128 + the signal's number.
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

DEFAULTS = {"batch_sizes": "1,8,32", "modes": "infer,train", "precision": "float32", "backend": "tensorflow",
            "jit": "auto", "warmup": 10, "iters": 10, "rounds": 5, "timeout": 600.0}
CONFIG_TYPES = {"models": (str, list), "family": (str,), "batch_sizes": (str, int, list), "modes": (str, list),
                "precision": (str, list), "backend": (str, list), "jit": (str, bool), "warmup": (int,),
                "iters": (int,), "rounds": (int,), "timeout": (int, float), "time_budget": (int, float), "input_size": (str, int, list),
                "num_classes": (int,), "peak_tflops": (int, float), "set": (dict,), "devices": (str, int, list)}
CONFIG_KEYS = set(CONFIG_TYPES)
JIT_CHOICES = ("auto", "on", "off", "both")


def add_arguments(parser):
    parser.allow_abbrev = False  # --batch-size must not silently mean --batch-sizes
    parser.add_argument("selector", nargs="?", metavar="MODELS",
                        help="same as --models (e.g. 'all', 'resnet18,resnet50', 'family:resnet', 'resnet*')")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--models", help="model selector: names, 'resnet*', family:F, all, @FILE, PATH.keras, "
                       "package.module:factory, comma-separated")
    which.add_argument("--family", help="every model of one family")
    parser.add_argument("--config", help="TOML file with default settings, or a preset's name: "
                        f"{', '.join(preset_names())} (flags override it)")
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
    parser.add_argument("--num-classes", help="classifier outputs (default: the model's)")
    parser.add_argument("--warmup", help="untimed steps after the first (compiling) call (default: 10)")
    parser.add_argument("--iters", help="timed steps per round (default: 10; 5 rounds: 50 timed steps)")
    parser.add_argument("--rounds", help="rounds of --iters timed steps after one warm-up; samples_per_s is "
                        "the median over rounds (default: 5)")
    parser.add_argument("--timeout", help="seconds per configuration before it is killed (default: 600)")
    parser.add_argument("--time-budget", help="seconds for the whole sweep; configurations left "
                        "when it runs out are not run (no row) and --resume picks them up")
    parser.add_argument("--peak-tflops", help="device peak TFLOP/s for mfu (default: kbench.common.devices table; none on CPU)")
    parser.add_argument("--out", help="CSV to write (default: results/sweep-<UTC time>.csv)")
    parser.add_argument("--resume", action="store_true", help="continue --out: skip configurations already recorded")
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --resume: measure the error and timeout rows again (each new row replaces the old)")
    parser.add_argument("--profile-cache", help="directory of cached TF profiles (default: .profile-cache/ beside --out)")
    parser.add_argument("--profile-only", action="store_true",
                        help="only fill the profile cache (needs TensorFlow) and measure nothing: run this on a "
                        "TensorFlow machine, then carry the directory to a machine without TensorFlow")
    parser.add_argument("--progress", action=__import__("argparse").BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: only when stderr is a terminal)")
    parser.add_argument("--devices", metavar="N1,N2,...", help="data-parallel device counts (default: 1): "
                        "--batch-sizes are then global batches split over n devices; rows carry n_devices, "
                        "per_device_batch and scaling_efficiency (jax: keras.distribution; tensorflow: tf.distribute)")
    parser.add_argument("--shard", metavar="K/N", help="run only the K-th of N deterministic, cost-balanced slices "
                        "of the configurations (N hosts cover the plan once; join their CSVs with 'kbench merge')")
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


def _load_config(path: str | None) -> dict:
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
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r} in {path!r}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    check.check_types(data, CONFIG_TYPES, f"--config {path!r}")
    return data


def _as_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def build_spec(args):
    from kbench.models import selectors
    from kbench.running.sweep import SweepSpec

    cfg = _load_config(args.config)
    source = f"--config {args.config!r}"

    def pick(name, key=None):
        """(value, what): the flag if given, else the config's key, else the default."""
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is not None:
            return value, flag
        key = key or name
        if key in cfg:
            return cfg[key], f"{key} in {source}"
        return DEFAULTS.get(key), flag

    if args.selector and (args.models or args.family):
        raise UsageError("name the models once: a positional MODELS or --models/--family, not both")
    if args.models or args.selector:
        selector = args.models or args.selector
    elif args.family:
        selector = f"family:{args.family}"
    elif "models" in cfg:
        selector = ",".join(check.word_list(cfg["models"], f"models in {source}"))
    elif "family" in cfg:
        selector = f"family:{cfg['family']}"
    else:
        raise UsageError("name the models: --models M1,M2 | --models all | --family F (or 'models' in --config)")
    models = selectors.expand(selector)

    jit, jit_what = pick("jit")
    if isinstance(jit, bool):
        jit = "on" if jit else "off"
    check.one_of(jit, f"jit in {source}" if jit_what != "--jit" else "--jit", JIT_CHOICES)
    if args.set:
        variant = check.parse_set(args.set)
    else:
        variant = check.variant_from_config(cfg.get("set", {}), source)
    input_size = args.input_size if args.input_size is not None else cfg.get("input_size")
    input_what = "--input-size" if args.input_size is not None else f"input_size in {source}"
    warmup, what = pick("warmup")
    warmup = check.integer(warmup, what, minimum=0)
    iters, what = pick("iters")
    iters = check.integer(iters, what, minimum=1)
    rounds, what = pick("rounds")
    rounds = check.integer(rounds, what, minimum=1)
    timeout, what = pick("timeout")
    timeout = check.finite_float(timeout, what, positive=True)
    time_budget, what = pick("time_budget")
    time_budget = check.finite_float(time_budget, what, positive=True) if time_budget is not None else None
    peak, what = pick("peak_tflops")
    peak = check.finite_float(peak, what, positive=True) if peak is not None else None
    num_classes, what = pick("num_classes")
    num_classes = check.integer(num_classes, what, minimum=1) if num_classes is not None else None
    devices, devices_what = pick("devices")
    devices = check.int_list(devices, devices_what) if devices is not None else [1]
    batch_sizes, what = pick("batch_sizes")
    modes, modes_what = pick("modes")
    precision, precision_what = pick("precision")
    backend, backend_what = pick("backend")
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed needs --resume (it re-measures the failed rows of an existing --out)")
    from kbench.running.shard import parse_shard

    shard = parse_shard(args.shard) if args.shard is not None else None
    out = args.out or f"results/sweep-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.csv"
    return SweepSpec(
        models=models,
        batch_sizes=check.int_list(batch_sizes, "--batch-sizes" if what == "--batch-sizes" else what),
        modes=check.word_list(modes, modes_what),
        precisions=check.word_list(precision, precision_what),
        backends=check.word_list(backend, backend_what),
        jit=str(jit),
        input_size=check.input_size(input_size, input_what),
        variant=variant,
        num_classes=num_classes,
        warmup=warmup, iters=iters, rounds=rounds, timeout_s=timeout, time_budget_s=time_budget, peak_tflops=peak,
        out=out, resume=args.resume,
        profile_cache=args.profile_cache,
        progress=args.progress,
        profile_only=args.profile_only,
        retry_failed=args.retry_failed,
        shard=shard,
        devices=devices,
    )


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
    from kbench.running.sweep import summary_rows

    shown = summary_rows([row])[0]
    speed = f", {shown['samples/s']} samples/s" if row["status"] == "ok" else f": {row['error'][:120]}" if row["error"] else ""
    print(f"kbench: {shown['model']} batch {row['batch_size']} {row['mode']} {row['backend']} {row['precision']} "
          f"jit={row['jit']}: {row['status']}{speed}", file=sys.stderr, flush=True)


def _run(args) -> int:
    from kbench.common import interrupts
    from kbench.running.sweep import fill_profile_cache, run_sweep, summary_rows, validate

    spec = build_spec(args)
    interrupts.checkpoint()
    if spec.profile_only:
        filled = fill_profile_cache(spec, validate(spec))
        print(f"kbench: {filled.profiled} profiles in {filled.cache_dir} ({filled.computed} computed now)"
              + (f"; failed: {', '.join(filled.failed)}" if filled.failed else ""), file=sys.stderr)
        return 1 if filled.failed else 0
    bar = spec.progress if spec.progress is not None else sys.stderr.isatty()
    result = run_sweep(spec, on_row=None if bar else _log_row)
    if result.rows:
        sys.stdout.write(format_table(("model", "batch", "mode", "backend", "precision", "jit", "samples/s",
                                       "p50_ms", "cv", "status"), summary_rows(result.rows)))
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
    if rounds_warning(spec.rounds):
        print(f"kbench: warning: {rounds_warning(spec.rounds)}", file=sys.stderr)
    if args.strict and (counts.get("error") or counts.get("timeout")):
        return 1
    return 0
