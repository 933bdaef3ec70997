"""What a sweep measures: its options (each declared once), the resolved models, the configurations.

**One declaration per option** (asv's ``common_args``). Every option of a sweep is a field of
``SweepSpec`` whose metadata (``option``) holds its command-line flag, its key in a ``--config``
TOML file, its help text and the parser that turns a flag's text, a TOML value or a Python
argument into the field's value (or a one-line ``UsageError``). ``kbench sweep`` builds its
parser and reads its TOML from these declarations, and ``kbench.sweep_models`` parses its keyword
arguments with the same parsers: a default, a type, an allowed value and its message exist once.

**Resolved once, at the edge.** ``resolve`` checks what one value cannot tell alone (options that
need each other, an installed backend, a writable ``--out``) and resolves each model into the
``ModelRequest`` every configuration of it carries. ``kbench.running.sweep.run_sweep`` trusts a
``ResolvedSweep`` and never checks again.

**Processes.** ``processes`` (``--processes P``) runs each configuration's n devices from P worker
processes that join one ``jax.distributed`` job (``kbench.running.supervisor.ProcessGroup``);
refused unless every backend can and every device count is a multiple of P. ``launcher``
(``--launcher``) says who starts them: the sweep on its own host (``local``), or Slurm's ``srun`` as
one job step of the allocation the sweep runs in (``srun``; refused outside one).

**Order** of the plan: model, backend, device count (1 first: the baseline of
``scaling_efficiency``), precision, jit, mode, then batch sizes ascending, so that after an ``oom``
at batch B every larger batch of the same group is written as ``skipped`` without being tried.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

from kbench.common import validate as check
from kbench.errors import UsageError
from kbench.models.registry import ModelRequest
from kbench.results import schema
from kbench.results.schema import MODES, PRECISIONS
from kbench.running.backends import BACKENDS

PROFILE_CACHE_DIRNAME = ".profile-cache"
JIT_CHOICES = ("auto", "on", "off", "both")
LAUNCHERS = ("local", "srun")  # kbench.running.supervisor.LAUNCHERS starts each


# ----------------------------------------------------------------------------- option parsers
# Each takes (value, what): a flag's text, a TOML value or a Python value, and the name to show.

def _choices(allowed) -> Callable[[Any, str], list[str]]:
    def parse(value, what):
        words = check.word_list(value, what)
        if not words:
            raise UsageError(f"{what} needs at least one value; allowed: {', '.join(allowed)}")
        for word in words:
            if word not in allowed:
                raise UsageError(f"{what}: unknown value {word!r}; allowed: {', '.join(allowed)}")
        return words
    return parse


def _jit(value, what):
    if isinstance(value, bool):  # a TOML true/false
        return "on" if value else "off"
    return check.one_of(value, what, JIT_CHOICES)


def _int_at_least(minimum: int):
    return lambda value, what: check.integer(value, what, minimum=minimum)


def _seconds(value, what):
    return _positive(value, what, "seconds")


def _tflops(value, what):
    return _positive(value, what, "TFLOP/s")


def _positive(value, what, unit):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{what} {value!r} must be a finite positive number of {unit}")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{what} {value!r} must be a finite positive number of {unit}") from None
    if not math.isfinite(number) or number <= 0:
        raise UsageError(f"{what} {value!r} must be a finite positive number of {unit}")
    return number


def _input_size(value, what):
    return check.input_size(value, what)


def _variant(value, what):
    """``--set KEY=VALUE`` items (literals parsed) or a table/dict of builder options (typed)."""
    return check.variant_from_config(value, what) if isinstance(value, dict) else check.parse_set(value, what)


def _shard(value, what):
    from kbench.running.shard import check_shard, parse_shard

    return check_shard(value) if isinstance(value, tuple) else parse_shard(value, what)


def _launcher(value, what):
    return check.one_of(value, what, LAUNCHERS)


def _flag(value, what):
    if not isinstance(value, bool):
        raise UsageError(f"{what} {value!r} must be true or false")
    return value


def _text(value, what):
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} {value!r} must be a non-empty string")
    return value


def option(default=None, *, parse: Callable | None = None, types: tuple = (), flag: str | None = None,
           config: str | None = None, help: str = "", metavar: str | None = None, factory: Callable | None = None):
    """A ``SweepSpec`` field declared with everything the edges need (module docstring).
    ``types``: what a typed value (TOML, Python) may be before ``parse`` reads it (a flag's text is
    always a string); ``config``: its key in a ``--config`` TOML file (None: not settable there);
    ``flag``: its command-line flag (None: declared by the command itself, e.g. ``--jit``'s
    three switches)."""
    metadata = {"parse": parse, "types": types, "flag": flag, "config": config, "help": help, "metavar": metavar}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


TEXT, NUMBER, WORDS, INTS = (str,), (int, float), (str, list, tuple), (str, int, list, tuple)


@dataclasses.dataclass
class SweepSpec:
    """Every option of a sweep (``kbench sweep``'s flags, ``--config`` keys, ``sweep_models``'
    keywords). ``models``: registered names, user selectors (PATH.keras, module:factory) or
    ``ModelRequest``s."""

    models: list = option(factory=list)
    batch_sizes: list = option(
        factory=lambda: [1, 8, 32], parse=check.int_list, types=INTS, flag="--batch-sizes", config="batch_sizes",
        help="comma-separated positive integers")
    modes: list = option(
        factory=lambda: list(MODES), parse=_choices(MODES), types=WORDS, flag="--modes", config="modes",
        help=f"comma list of {', '.join(MODES)}")
    precisions: list = option(
        factory=lambda: ["float32"], parse=_choices(PRECISIONS), types=WORDS, flag="--precision", config="precision",
        help=f"comma list of {', '.join(PRECISIONS)}")
    backends: list = option(
        factory=lambda: ["tensorflow"], parse=_choices(tuple(BACKENDS)), types=WORDS, flag="--backend",
        config="backend", help=f"comma list of {', '.join(BACKENDS)}; the default jit is Keras' 'auto' (jax: on; "
                               "tensorflow: on only with a GPU; torch: off)")
    jit: str = option("auto", parse=_jit, types=(str, bool), config="jit", help=f"one of {', '.join(JIT_CHOICES)}")
    input_size: tuple | None = option(
        None, parse=_input_size, types=INTS, flag="--input-size", config="input_size",
        help="H or H,W for every model (default: each model's own)")
    variant: dict = option(
        factory=dict, parse=_variant, types=(dict,), flag="--set", config="set", metavar="KEY=VALUE",
        help="builder option for every model (repeatable)")
    num_classes: int | None = option(
        None, parse=_int_at_least(1), types=(int,), flag="--num-classes", config="num_classes",
        help="classifier outputs (default: the model's)")
    warmup: int = option(
        10, parse=_int_at_least(0), types=(int,), flag="--warmup", config="warmup",
        help="untimed steps after the first (compiling) call")
    iters: int = option(
        10, parse=_int_at_least(1), types=(int,), flag="--iters", config="iters",
        help="timed steps per round")
    rounds: int = option(
        5, parse=_int_at_least(1), types=(int,), flag="--rounds", config="rounds",
        help="rounds of --iters timed steps after one warm-up; samples_per_s is the median over rounds")
    timeout_s: float = option(
        600.0, parse=_seconds, types=NUMBER, flag="--timeout", config="timeout",
        help="seconds per configuration before it is killed")
    time_budget_s: float | None = option(
        None, parse=_seconds, types=NUMBER, flag="--time-budget", config="time_budget",
        help="seconds for the whole sweep; configurations left when it runs out are not run (no row) and "
             "--resume picks them up")
    peak_tflops: float | None = option(
        None, parse=_tflops, types=NUMBER, flag="--peak-tflops", config="peak_tflops",
        help="device peak TFLOP/s for mfu (default: kbench.common.devices' table; none on CPU)")
    devices: list = option(
        factory=lambda: [1], parse=check.int_list, types=INTS, flag="--devices", config="devices",
        metavar="N1,N2,...", help="data-parallel device counts: --batch-sizes are then global batches "
                                  "split over n devices; rows carry n_devices, per_device_batch and "
                                  "scaling_efficiency (jax: keras.distribution; tensorflow: tf.distribute)")
    processes: int = option(
        1, parse=_int_at_least(1), types=(int,), flag="--processes", config="processes", metavar="P",
        help="worker processes that run one model together (jax only): each joins jax.distributed and drives "
             "n/P of the --devices, with its part of the global batch; rows carry n_processes")
    launcher: str = option(
        "local", parse=_launcher, types=TEXT, flag="--launcher",
        config="launcher", metavar="|".join(LAUNCHERS),
        help="how the --processes P are started: local (on this host) or srun (one 'srun --ntasks=P' step of the "
             "Slurm allocation this sweep runs in, sbatch or salloc: its tasks may be on several nodes)")
    out: str = option(
        "results/sweep.csv", parse=_text, types=TEXT, flag="--out",
        help="CSV to write (default: results/sweep-<UTC time>.csv)")
    resume: bool = option(
        False, parse=_flag, types=(bool,), flag="--resume", help="continue --out: skip configurations already recorded")
    retry_failed: bool = option(
        False, parse=_flag, types=(bool,), flag="--retry-failed",
        help="with --resume: measure the error and timeout rows again (each new row replaces the old)")
    profile_cache: str | None = option(
        None, parse=_text, types=TEXT, flag="--profile-cache",
        help="directory of cached TF profiles (default: .profile-cache/ beside --out)")
    profile_only: bool = option(
        False, parse=_flag, types=(bool,), flag="--profile-only",
        help="only fill the profile cache (needs TensorFlow) and measure nothing: run this on a TensorFlow "
             "machine, then carry the directory to a machine without TensorFlow")
    progress: bool | None = option(
        None, parse=_flag, types=(bool,), help="progress bar on stderr (default: only when stderr is a terminal)")
    shard: tuple | None = option(
        None, parse=_shard, types=(str, tuple), flag="--shard", metavar="K/N",
        help="run only the K-th of N deterministic, cost-balanced slices of the configurations (N hosts cover the "
             "plan once; join their CSVs with 'kbench merge')")

    @property
    def profile_cache_dir(self) -> Path:
        """Where profiles are cached: ``profile_cache``, else beside the output file, so that a
        sweep writes only where its user asked for output."""
        return Path(self.profile_cache) if self.profile_cache else Path(self.out).parent / PROFILE_CACHE_DIRNAME


OPTIONS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(SweepSpec) if f.metadata.get("parse")}


def default_of(name: str):
    """The declared default of option ``name``."""
    field = OPTIONS[name]
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def help_of(name: str) -> str:
    """The option's help with its declared default, for a parser's ``--help``."""
    help_text, default = OPTIONS[name].metadata["help"], default_of(name)
    if default in (None, False, {}, [], "") or "(default" in help_text:
        return help_text
    shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else f"{default:g}" \
        if isinstance(default, float) else str(default)
    return f"{help_text} (default: {shown})"
CONFIG_KEYS: dict[str, str] = {f.metadata["config"]: name for name, f in OPTIONS.items() if f.metadata["config"]}


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", tuple: "a tuple",
               dict: "a table", bool: "true/false"}


def parse_option(name: str, value, what: str | None = None, *, text: bool = False):
    """``value`` parsed by ``name``'s declaration: a flag's text (``text``) or a typed value (TOML,
    Python), whose type must be one the option declares. None stays None (the default applies)."""
    if value is None:
        return None
    field = OPTIONS[name]
    what = what or field.metadata["flag"] or name
    allowed = field.metadata["types"]
    if not text and allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
        names = " or ".join(dict.fromkeys(_TYPE_NAMES.get(t, t.__name__) for t in allowed))
        raise UsageError(f"{what} must be {names}, got {type(value).__name__} {value!r}")
    return field.metadata["parse"](value, what)


def spec_from_options(models: list, options: dict[str, tuple[Any, str, bool]]) -> SweepSpec:
    """A ``SweepSpec`` from ``{field: (value, what, is_text)}``: each value parsed by its declaration
    (a UsageError names ``what``: the flag, the TOML key or the keyword); the rest keep defaults."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"unknown sweep option {unknown[0]!r}; known: {', '.join(sorted(OPTIONS))}")
    values = {name: parse_option(name, value, what, text=is_text) for name, (value, what, is_text) in options.items()}
    return SweepSpec(models=list(models), **{k: v for k, v in values.items() if v is not None})


# ----------------------------------------------------------------------------- resolving

@dataclasses.dataclass
class ResolvedSweep:
    """A ``SweepSpec`` checked as a whole, with each model resolved once into its request."""

    spec: SweepSpec
    requests: list[ModelRequest]


def resolve(spec: SweepSpec) -> ResolvedSweep:
    """What one value alone cannot tell, checked before anything is measured (UsageError, exit 2):
    options that need each other, the backends installed, TensorFlow for ``--profile-only``, the
    profile cache and ``--out`` paths; then every model resolved into its ``ModelRequest``."""
    from kbench.common import outputs
    from kbench.models import registry

    if spec.retry_failed and not spec.resume:
        raise UsageError("--retry-failed needs --resume (it re-measures the failed rows of an existing --out)")
    if spec.profile_only and not BACKENDS["tensorflow"].available():
        raise UsageError(f"--profile-only needs TensorFlow, which profiles the models "
                         f"({BACKENDS['tensorflow'].install_hint()})")
    for name in spec.backends:
        if not BACKENDS[name].available():
            raise UsageError(f"backend {name!r} is not installed in this environment ({BACKENDS[name].install_hint()})")
    if spec.processes > 1:
        others = [name for name in spec.backends if not BACKENDS[name].multi_process_supported]
        if others:
            supported = ", ".join(name for name, b in BACKENDS.items() if b.multi_process_supported)
            raise UsageError(f"--processes {spec.processes} needs --backend {supported} (one model over several "
                             f"processes is jax.distributed), not {', '.join(others)}")
        indivisible = [n for n in spec.devices if n % spec.processes]
        if indivisible:
            raise UsageError(f"--devices {indivisible[0]} is not divisible by --processes {spec.processes}: each "
                             f"process drives an equal share of the devices (allowed: multiples of {spec.processes})")
    if spec.launcher == "srun":
        check_srun(spec.processes)
    if not spec.models:
        raise UsageError("no models selected")
    if spec.profile_cache_dir.exists() and not spec.profile_cache_dir.is_dir():
        raise UsageError(f"--profile-cache {str(spec.profile_cache_dir)!r} is not a directory")
    if not spec.profile_only:
        out = Path(spec.out)
        empty = out.is_file() and out.stat().st_size == 0
        outputs.check_output(spec.out, "--out", append=spec.resume or empty,
                             hint="pass --resume to continue it or choose another --out")
    # A model may come resolved already (``sweep_models`` with keras.Model objects).
    requests = [name if isinstance(name, ModelRequest) else
                registry.resolve(name, spec.input_size, spec.num_classes, spec.variant) for name in spec.models]
    for request in requests:
        check.check_variant(request)
    return ResolvedSweep(spec, requests)


def check_srun(processes: int) -> None:
    """``--launcher srun`` runs a job step: it needs a process group, ``srun`` and an allocation."""
    import os
    import shutil

    if processes < 2:
        raise UsageError(f"--launcher srun starts the processes of a group: it needs --processes P >= 2, "
                         f"not {processes}")
    if not shutil.which("srun"):
        raise UsageError("--launcher srun: no 'srun' on PATH (run the sweep inside a Slurm allocation: sbatch or "
                         "salloc)")
    if not os.environ.get("SLURM_JOB_ID"):
        raise UsageError("--launcher srun needs a Slurm allocation (SLURM_JOB_ID is not set): run the sweep from an "
                         "sbatch script or inside salloc")


# ----------------------------------------------------------------------------- configurations

@dataclasses.dataclass
class Config:
    request: ModelRequest
    batch_size: int
    mode: str
    backend: str
    precision: str
    jit: bool
    warmup: int
    iters: int
    rounds: int = 1
    n_devices: int = 1  # data parallelism: batch_size is the global batch (kbench.running.backends.DataParallel)
    n_processes: int = 1  # > 1: the n devices are driven by this many processes (jax.distributed)

    @property
    def model(self) -> str:
        return self.request.name

    @property
    def family(self) -> str:
        return self.request.family

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.request.input_shape

    @property
    def num_classes(self) -> int:
        return self.request.num_classes

    @property
    def variant_text(self) -> str:
        return self.request.variant_text

    def key_fields(self) -> dict[str, object]:
        """The row's key columns (``kbench.results.schema.KEY_COLUMNS``) for this configuration."""
        h, w, _ = self.input_shape
        return {"model": self.model, "input_h": h, "input_w": w, "variant": self.variant_text,
                "batch_size": self.batch_size, "mode": self.mode, "backend": self.backend,
                "precision": self.precision, "jit": "true" if self.jit else "false", "n_devices": self.n_devices,
                "n_processes": self.n_processes, "num_classes": "" if self.num_classes is None else self.num_classes}

    @property
    def key(self) -> tuple[str, ...]:
        return schema.row_key(self.key_fields())

    @property
    def group(self) -> tuple[str, ...]:
        return schema.group_key(self.key)

    def worker_payload(self) -> dict:
        return {"key": "|".join(self.key), "request": self.request.to_payload(), "batch_size": self.batch_size,
                "mode": self.mode, "precision": self.precision, "jit": self.jit, "warmup": self.warmup,
                "iters": self.iters, "rounds": self.rounds, "n_devices": self.n_devices,
                "n_processes": self.n_processes}

    def describe(self) -> str:
        return schema.describe_key(self.key_fields())

    def skip_reason(self) -> str:
        """Why this configuration is recorded as ``skipped`` without being tried ('' if it runs)."""
        backend = BACKENDS[self.backend]
        if self.jit and not backend.supports_jit:
            return backend.jit_unsupported_reason
        if self.n_devices > 1 and backend.multi_device_unsupported_reason:
            return backend.multi_device_unsupported_reason
        if self.batch_size % self.n_devices:
            return (f"global batch {self.batch_size} is not divisible by {self.n_devices} devices: each needs an "
                    f"equal part (Keras issue #21167 crashes there)")
        return ""


def jit_values(jit: str, backend: str) -> list[bool]:
    return {"auto": [BACKENDS[backend].default_jit()], "on": [True], "off": [False], "both": [True, False]}[jit]


def plan(resolved: ResolvedSweep) -> list[Config]:
    """Every configuration, in the sweep's order (module docstring)."""
    spec = resolved.spec
    configs = []
    for request in resolved.requests:
        for backend in spec.backends:
            for n_devices in sorted(set(spec.devices)):  # 1 first: the baseline of scaling_efficiency
                for precision in spec.precisions:
                    for jit in jit_values(spec.jit, backend):
                        for mode in spec.modes:
                            for batch in sorted(set(spec.batch_sizes)):
                                configs.append(Config(request, batch, mode, backend, precision, jit,
                                                      spec.warmup, spec.iters, spec.rounds, n_devices,
                                                      spec.processes))
    return configs
