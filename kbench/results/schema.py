"""The sweep CSV's schema, written once: its columns, the configuration key, the statuses, what a
valid row holds, and how a file is read. Every writer (the sweep, ``--resume``, merge, the
micro-benchmark converter) and every reader (merge, compare, history, report, nightly) takes
these from here, so a column added here reaches all of them.

* **Columns** (``SWEEP_COLUMNS``): the contract's required columns in their order
  (``REQUIRED_COLUMNS``), then kbench's own (``EXTRA_COLUMNS``), then the row check
  (``ROW_CHECK_COLUMN``), always last. Columns a later version appended (``LATER_COLUMNS``, a
  trailing run of the data columns, before the check) are empty in the rows of older files,
  which are still read but never appended to.
* **Key** (``KEY_COLUMNS``): what makes two rows the same configuration, for ``--resume``, merge,
  compare and history alike. Key columns added after files were written take their implicit
  value in older rows (``KEY_DEFAULTS``; an empty ``num_classes`` is the model's default count).
  ``CONFIG_KEY`` adds the device kind: the readers that compare runs never pair two devices.
* **Rows** (``row_problem``): what every reader and writer accepts; a row that fails is a
  malformed file (exit 2), never silently written or read. ``check_rows`` adds the file-level
  rule: no configuration key twice.
* **The row check** (``ROW_CHECK_COLUMN``, ``row_crc32``, the last column): the CRC-32 of the
  row's other fields (trailing empty ones left out, so a column appended later, empty in an
  older row, leaves its check valid), filled by the CSV writer itself (``kbench.common.csvio``).
  A row cut anywhere fails it (``row_is_whole``): an unterminated last row that fails it is torn
  (ignored by the readers, dropped and measured again by ``--resume``); a non-empty check that
  does not match on a terminated row is a damaged or hand-edited row (``row_problem``). Rows of
  older files (no column) and rows whose check was cleared by hand are not checked.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
from pathlib import Path
from typing import Iterable, Mapping

from kbench.common.csvio import ROW_CHECK_COLUMN, decode, fields_are_whole, parse
from kbench.errors import UsageError

REQUIRED_COLUMNS = (
    "run_id", "timestamp", "model", "family", "input_h", "input_w", "batch_size", "mode", "backend",
    "precision", "jit", "status", "error", "samples_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
    "latency_ms_std", "compile_s", "peak_mem_mb", "params_trainable", "macs", "flops_tf", "achieved_tflops", "mfu",
    "device", "device_kind", "host", "kbench_version", "tf_version", "keras_version", "backend_version", "git_commit",
)
EXTRA_COLUMNS = (
    "input_c", "variant", "num_classes", "n_iters", "warmup", "cv", "latency_ms_mean", "latency_ms_min",
    "peak_tflops", "flops_multiplier", "peak_mem_source", "python_version", "model_mem_mb",
    "n_devices", "per_device_batch", "scaling_efficiency",
    "samples_per_s_iqr", "rounds", "samples_per_s_rounds", "other_cpu_frac", "n_processes",
)
# The measured and descriptive columns: everything but the row check.
DATA_COLUMNS = REQUIRED_COLUMNS + EXTRA_COLUMNS
# Last, always: kbench.common.csvio fills it when it writes a row (a torn row fails it).
SWEEP_COLUMNS = DATA_COLUMNS + (ROW_CHECK_COLUMN,)
# Appended by later versions, in order: a header whose data columns lack only a trailing run of
# these (with or without the row check after them) is an older sweep CSV (read with them empty,
# never appended to). Files written before the row check existed lack it too.
LATER_COLUMNS = ("model_mem_mb", "n_devices", "per_device_batch", "scaling_efficiency",
                 "samples_per_s_iqr", "rounds", "samples_per_s_rounds", "other_cpu_frac", "n_processes")

KEY_COLUMNS = ("model", "input_h", "input_w", "variant", "batch_size", "mode", "backend", "precision", "jit",
               "n_devices", "n_processes", "num_classes")
# Key columns added after files were written: the value such a file's rows implicitly have
# (num_classes: the model's default count, ``default_num_classes``).
KEY_DEFAULTS = {"n_devices": "1", "n_processes": "1"}
CONFIG_KEY = KEY_COLUMNS + ("device_kind",)
# The key without the batch size: the unit of the "out of memory at batch B skips the larger
# ones" rule.
GROUP_COLUMNS = tuple(c for c in KEY_COLUMNS if c != "batch_size")
# What a data-parallel row's 1-device baseline shares with it (``kbench.results.scaling``): the
# baseline of a row over n devices in P processes is the 1-device row of one process.
BASELINE_COLUMNS = tuple(c for c in CONFIG_KEY if c not in ("batch_size", "n_devices", "n_processes"))
# The software and machine of a row beyond the key: rows that differ here measured different
# software or machines, so a change between them is not a kbench change.
ENVIRONMENT_COLUMNS = ("host", "tf_version", "keras_version", "backend_version", "python_version")
ROUND_COLUMNS = ("samples_per_s_iqr", "rounds", "samples_per_s_rounds")

MODES = ("infer", "train")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT_VALUES = ("true", "false")
STATUSES = ("ok", "oom", "error", "timeout", "skipped")
RETRIED_STATUSES = ("error", "timeout")  # ``--resume --retry-failed`` measures these again
ROUND_SEPARATOR = ";"

# Columns shown for a configuration by the readers' tables: the key with "HxW" as one column.
DISPLAY_KEY = tuple("input" if c == "input_h" else c for c in CONFIG_KEY if c != "input_w")

# Numeric columns and what a value must be when present ('' is always allowed except where a
# rule of ``row_problem`` requires the value).
_POSITIVE_INT = ("batch_size",)
_OPTIONAL_POSITIVE_INT = ("input_h", "input_w", "input_c", "num_classes", "n_devices", "per_device_batch", "n_iters",
                          "rounds", "n_processes")
_OPTIONAL_NON_NEGATIVE = ("samples_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_std", "compile_s",
                          "peak_mem_mb", "params_trainable", "macs", "flops_tf", "achieved_tflops", "mfu", "warmup",
                          "cv", "latency_ms_mean", "latency_ms_min", "peak_tflops", "flops_multiplier",
                          "model_mem_mb", "scaling_efficiency", "samples_per_s_iqr")


def _is_int_text(text: str) -> bool:
    # str.isdigit() accepts '²' and other digits int() refuses: ASCII only.
    return text.isascii() and text.isdigit()


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def significant(value, digits: int = 6):
    """A number rounded to ``digits`` significant digits for a CSV cell; '' for none/NaN."""
    if value is None or value == "":
        return ""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if value != value:  # NaN
        return ""
    return float(f"{value:.{digits}g}")


def parse_rounds(text: str) -> list[float]:
    """``"101.2;99.87"`` -> [101.2, 99.87]; '' -> []. ValueError unless every value is a positive
    finite number."""
    text = (text or "").strip()
    if not text:
        return []
    values = [_finite(part) for part in text.split(ROUND_SEPARATOR)]
    if any(v is None or v <= 0 for v in values):
        raise ValueError(f"per-round values must be positive numbers joined by {ROUND_SEPARATOR!r}, got {text!r}")
    return values


def format_rounds(values: Iterable[float], digits: int = 6) -> str:
    """Per-round throughputs as compact text: ``"101.2;99.87;100.4"`` (``parse_rounds`` reverses it)."""
    return ROUND_SEPARATOR.join(f"{float(v):.{digits}g}" for v in values)


def row_is_whole(row: Mapping[str, object]) -> bool:
    """True when the row's ``row_crc32`` is there and matches its other fields: a row cut anywhere
    (inside any field, the check included) or changed after it was written is not whole. The
    test for an unterminated last line; ``row_problem`` applies it to every row that has a check.
    Columns a row lacks (an older file's) count as empty, which leaves its check valid."""
    return fields_are_whole(["" if row.get(c) is None else str(row.get(c)) for c in SWEEP_COLUMNS])


def _is_timestamp(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def row_problem(row: Mapping[str, str]) -> str | None:
    """What is wrong with one sweep row ('column value (expected ...)'), or None when it is valid.

    Every row: a ``row_crc32`` that matches the row (where it has one), a model, a known status,
    a positive integer batch (and input sides, where given, ASCII digits only), a known mode and
    jit true/false (where given), an ISO 8601 timestamp (where given), no number that is not
    finite or is negative, and per-round values (where given) that are positive numbers, as many
    as ``rounds`` says. An ``ok`` row also needs a positive ``samples_per_s``.
    """
    def get(column):
        return str(row.get(column, "") or "")

    if get(ROW_CHECK_COLUMN) and not row_is_whole(row):
        return (f"{ROW_CHECK_COLUMN} {get(ROW_CHECK_COLUMN)!r} that does not match the row (damaged, or edited "
                f"after it was written: to keep an edit, empty that cell)")
    status = get("status")
    if status not in STATUSES:
        return f"status {status!r} (allowed: {', '.join(STATUSES)})"
    if not get("model").strip():
        return "an empty model (expected the model's name)"
    for column in _POSITIVE_INT:
        if not _is_int_text(get(column)) or int(get(column)) <= 0:
            return f"{column} {get(column)!r} (expected a positive integer)"
    # Empty input sides, mode and jit: a converted micro-benchmark (kbench convert-benchmarks).
    if get("mode") not in MODES + ("",):
        return f"mode {get('mode')!r} (allowed: {', '.join(MODES)})"
    if get("jit") not in JIT_VALUES + ("",):
        return f"jit {get('jit')!r} (allowed: true, false)"
    if get("timestamp") and not _is_timestamp(get("timestamp")):
        return f"timestamp {get('timestamp')!r} (expected ISO 8601, e.g. 2026-12-01T10:00:00+00:00, or empty)"
    for column in _OPTIONAL_POSITIVE_INT:
        value = get(column)
        if value and (not _is_int_text(value) or int(value) <= 0):
            return f"{column} {value!r} (expected a positive integer or empty)"
    for column in _OPTIONAL_NON_NEGATIVE:
        value = get(column)
        if value and ((number := _finite(value)) is None or number < 0):
            return f"{column} {value!r} (expected a finite number >= 0 or empty)"
    other = get("other_cpu_frac")
    if other and ((share := _finite(other)) is None or not 0 <= share <= 1):
        return f"other_cpu_frac {other!r} (expected a share between 0 and 1 or empty)"
    try:
        rounds = parse_rounds(get("samples_per_s_rounds"))
    except ValueError:
        return (f"samples_per_s_rounds {get('samples_per_s_rounds')!r} (expected positive numbers joined by "
                f"{ROUND_SEPARATOR!r})")
    if rounds and get("rounds") and int(get("rounds")) != len(rounds):
        return f"rounds {get('rounds')!r} but {len(rounds)} values in samples_per_s_rounds"
    if status == "ok":
        throughput = _finite(get("samples_per_s"))
        if throughput is None or throughput <= 0:
            return f"samples_per_s {get('samples_per_s')!r} with status ok (expected a positive number)"
    return None


def check_rows(rows: list[dict[str, str]], path, *, unique_keys: bool = True) -> list[dict[str, str]]:
    """``rows`` when every one is valid (``row_problem``) and no configuration key
    (``KEY_COLUMNS``) appears twice; else a UsageError naming the file, the line and the value.
    ``unique_keys=False``: for a checker that counts the repeated keys itself."""
    seen: dict[tuple[str, ...], int] = {}
    for line, row in enumerate(rows, start=2):
        problem = row_problem(row)
        if problem:
            raise UsageError(f"malformed sweep CSV {str(path)!r}: line {line} has {problem}")
        if not unique_keys:
            continue
        key = row_key(row)
        if key in seen:
            raise UsageError(f"malformed sweep CSV {str(path)!r}: line {line} repeats the configuration of line "
                             f"{seen[key]} ({describe_key(row)}); a sweep CSV has one row per configuration")
        seen[key] = line
    return rows


@functools.lru_cache(maxsize=None)
def default_num_classes(model: str) -> str:
    """The class count a row with an empty ``num_classes`` was measured with: the registered
    model's default ('' for a model that is not registered, e.g. a user's own)."""
    from kbench.models import registry

    try:
        classes = registry.known_spec(model).default_num_classes
    except UsageError:
        return ""
    return "" if classes is None else str(classes)


def key_values(row: Mapping[str, object], columns: tuple[str, ...] = KEY_COLUMNS) -> tuple[str, ...]:
    """A row's key (``columns`` of it, as text), implicit values filled in (``KEY_DEFAULTS``,
    ``default_num_classes``): rows of older files key like the rows written today."""
    values = []
    for column in columns:
        value = row.get(column, "")
        value = "" if value is None else str(value)
        if value == "":
            value = KEY_DEFAULTS.get(column, "")
            if column == "num_classes":
                value = default_num_classes(str(row.get("model", "")))
        values.append(value)
    return tuple(values)


def row_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """A row's configuration key (``KEY_COLUMNS``): the key of ``--resume`` and merge."""
    return key_values(row, KEY_COLUMNS)


def group_key(key: tuple[str, ...]) -> tuple[str, ...]:
    """A key without its batch size (``GROUP_COLUMNS``)."""
    return tuple(value for column, value in zip(KEY_COLUMNS, key) if column != "batch_size")


def display_fields(row: Mapping[str, object]) -> dict[str, str]:
    """The ``DISPLAY_KEY`` fields of a row (``input`` = "HxW")."""
    fields = dict(zip(CONFIG_KEY, key_values(row, CONFIG_KEY)))
    fields["input"] = f"{fields.pop('input_h')}x{fields.pop('input_w')}"
    return {column: fields[column] for column in DISPLAY_KEY}


def describe_key(row: Mapping[str, object]) -> str:
    """``resnet18 32x32 b8 train tensorflow float32`` (+ variant, classes other than the model's
    default, jit, devices and processes when set): a configuration in words."""
    get = lambda column: str(row.get(column, "") or "")  # noqa: E731
    text = f"{get('model')} {get('input_h')}x{get('input_w')}"
    if get("variant"):
        text += f" [{get('variant')}]"
    classes = get("num_classes")
    if classes and classes != default_num_classes(get("model")):
        text += f" {classes} classes"
    text += f" b{get('batch_size')} {get('mode')} {get('backend')} {get('precision')}"
    if get("jit") == "true":
        text += " jit"
    if get("n_devices") not in ("", "1"):
        text += f" x{get('n_devices')} devices"
    if get("n_processes") not in ("", "1"):
        text += f" in {get('n_processes')} processes"
    return text


def is_older_header(header: list[str]) -> bool:
    """The header of an earlier kbench version: this version's data columns minus a trailing run
    of ``LATER_COLUMNS`` (each appended when it was introduced), then the row check or (files
    written before it existed) not."""
    if list(header) == list(SWEEP_COLUMNS):
        return False
    data = list(header[:-1]) if header[-1:] == [ROW_CHECK_COLUMN] else list(header)
    n = len(data)
    return len(DATA_COLUMNS) - len(LATER_COLUMNS) <= n <= len(DATA_COLUMNS) and data == list(DATA_COLUMNS[:n])


def header_problem(header: list[str]) -> str:
    """Why ``header`` is not this version's sweep header, in a few words."""
    missing = [c for c in SWEEP_COLUMNS if c not in header]
    extra = [c for c in header if c not in SWEEP_COLUMNS]
    if missing:
        return f"missing columns {', '.join(missing[:5])}"
    if extra:
        return f"unknown columns {', '.join(extra[:5])}"
    return "its columns are in a different order"


def read_rows(path: str | Path, *, what: str = "sweep CSV", older: bool = True,
              unique_keys: bool = True) -> list[dict[str, str]]:
    """The valid rows of a sweep CSV ([] for a missing or empty file). ``older``: accept an older
    version's header (its later columns read as empty); otherwise the header must be this
    version's. A torn last line (a killed writer) is ignored; anything else malformed is a
    UsageError (``unique_keys``: see ``check_rows``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except IsADirectoryError:
        raise UsageError(f"{str(path)!r} is a directory; give a {what}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if not data:
        return []
    header, rows = parse(decode(data, path), path)
    if header is None:
        return []
    if header != list(SWEEP_COLUMNS) and not (older and is_older_header(header)):
        version = "of this version or an earlier one" if older else "of this version"
        raise UsageError(f"{str(path)!r}: its header is not that of a kbench sweep CSV {version} "
                         f"({header_problem(header)})")
    for row in rows:
        for column in LATER_COLUMNS + (ROW_CHECK_COLUMN,):
            row.setdefault(column, "")
    return check_rows(rows, path, unique_keys=unique_keys)
