"""Sweep CSVs as pandas DataFrames, for the analysis commands (compare, history, report).

``read_sweep`` validates a file once, at the edge (a malformed or foreign CSV is a one-line
``UsageError``: exit 2), and adds parsed columns beside the CSV's text columns:

* ``key``: the configuration key (``kbench.results.schema.CONFIG_KEY``), a tuple;
* ``throughput``: ``samples_per_s`` as a float (NaN unless the row's status is ``ok``);
* ``round_values``: the per-round samples/s (``samples_per_s_rounds``; [] in older CSVs);
* ``step_cv``: the per-step coefficient of variation ``cv`` (NaN when absent);
* ``other_cpu``: ``other_cpu_frac``, the share of the CPUs other processes used while the row
  was measured (NaN when absent: CSVs written before it was recorded, or no /proc).

Input files are only ever read.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

from kbench.errors import UsageError
from kbench.results import schema
from kbench.results.schema import CONFIG_KEY, KEY_DEFAULTS

# What a file must have to be read at all; the key columns added later are filled in.
REQUIRED = tuple(c for c in CONFIG_KEY if c not in KEY_DEFAULTS and c != "num_classes") + ("status", "samples_per_s")
# run_all.sh names each run <tag>-YYYY-MM-DDTHHMMSSZ.csv (UTC), so that a second run on one day
# has its own file; <tag>-YYYY-MM-DD.csv (earlier run_all.sh) and kbench sweep's default
# <tag>-YYYYMMDDTHHMMSSZ.csv are read too.
NIGHTLY_NAME = re.compile(r"^(?P<tag>[a-z][a-z0-9-]*?)-(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})"
                          r"(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})Z)?\.csv$")


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


# Characters a terminal would act on instead of showing: C0 and C1 controls, DEL, and the
# bidirectional overrides that reorder what is shown.
_UNPRINTABLE = [c for c in range(0x20)] + list(range(0x7F, 0xA0)) + [0x200E, 0x200F] + \
    list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNPRINTABLE}


def printable(text) -> str:
    """``text`` as a terminal shows it literally: control characters (an escape sequence in a
    CSV field, a carriage return, a bidi override) written as ``\\x1b``-style escapes. Every
    text of a sweep CSV that kbench prints for people goes through this."""
    return str(text).translate(_ESCAPES)


TAG = re.compile(r"^[a-z][a-z0-9-]*$")


def check_tag(tag: str) -> str:
    """A ``--tag`` (the nightly CSVs' file name prefix) is a plain name: lower-case letters,
    digits and '-', starting with a letter (``NIGHTLY_NAME``); anything else (a path, '..', an
    empty text) is a UsageError."""
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise UsageError(f"--tag {tag!r} must be a plain name of lower-case letters, digits and '-' starting with "
                         f"a letter (the nightly CSVs are named <tag>-<UTC date[time]>.csv)")
    return tag


def _read_text(path: Path) -> str:
    name = str(path)
    if not path.is_file():
        raise UsageError(f"{name!r} is not a file (expected a kbench sweep CSV)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name!r}: {printable(exc)}") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a row cut by a killed sweep: kbench ignores it
    if not text.strip():
        raise UsageError(f"{name!r} is empty (expected a kbench sweep CSV with a header)")
    return text


def read_sweep(path: str | Path):
    """A sweep CSV as a DataFrame of strings plus the parsed columns (see the module docstring).

    Every row is checked by ``kbench.results.schema.row_problem`` (the one rule of a valid row),
    fed from the columns' arrays rather than ``iterrows``/``to_dict``, which cost ten times
    more: a 150k-row file reads in a few seconds (``benchmarks/nightly_readers.py``)."""
    import pandas as pd

    path = Path(path)
    name = str(path)
    text = _read_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise UsageError(f"malformed CSV {name!r}: {printable(' '.join(str(exc).split()))}") from None
    del text
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UsageError(f"{name!r} is not a kbench sweep CSV: missing columns {', '.join(missing)}")
    for column in schema.SWEEP_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    columns = list(frame.columns)
    for line, values in enumerate(zip(*(frame[c].to_numpy() for c in columns)), start=2):
        problem = schema.row_problem(dict(zip(columns, values)))
        if problem:
            raise UsageError(f"malformed sweep CSV {name!r}: line {line} has {printable(problem)}")
    key_arrays = [frame[c].to_numpy() for c in CONFIG_KEY]
    frame["key"] = [schema.key_values(dict(zip(CONFIG_KEY, values)), CONFIG_KEY) for values in zip(*key_arrays)]
    duplicated = frame["key"].duplicated()
    if duplicated.any():
        first = int(duplicated.to_numpy().argmax())
        raise UsageError(f"malformed sweep CSV {name!r}: line {first + 2} repeats configuration "
                         f"{describe_key(frame['key'].iat[first])}")
    ok = (frame["status"] == "ok").to_numpy()
    frame["throughput"] = pd.to_numeric(frame["samples_per_s"], errors="coerce").where(ok)
    frame["round_values"] = [schema.parse_rounds(v) if good else []
                             for v, good in zip(frame["samples_per_s_rounds"].to_numpy(), ok)]
    frame["step_cv"] = pd.to_numeric(frame["cv"], errors="coerce")
    frame["other_cpu"] = pd.to_numeric(frame["other_cpu_frac"], errors="coerce")
    return frame


def describe_key(key: tuple) -> str:
    """``resnet18 32x32 b8 train tensorflow float32`` (``kbench.results.schema.describe_key``)."""
    return schema.describe_key(dict(zip(CONFIG_KEY, key)))


def night_label(name: str, tag: str = "sweep") -> str | None:
    """The run's UTC date (``2026-12-03``) or time (``2026-12-03T14:15:00Z``) from a file name
    of ``NIGHTLY_NAME`` with this tag; None for any other name. Labels sort in time order."""
    match = NIGHTLY_NAME.match(name)
    if not match or match["tag"] != tag:
        return None
    label = f"{match['y']}-{match['m']}-{match['d']}"
    if match["H"]:
        label += f"T{match['H']}:{match['M']}:{match['S']}Z"
    return label


def nightly_files(directory: str | Path, tag: str = "sweep") -> list[tuple[str, Path]]:
    """``(label, path)`` of every nightly sweep CSV in ``directory`` (``night_label``), oldest
    first. ``tag`` 'sweep' does not pick up 'sweep-full-...' or other tags."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{str(directory)!r} is not a directory (expected run_all.sh's results directory)")
    found = []
    for path in directory.iterdir():
        label = night_label(path.name, tag)
        if label and path.is_file():
            found.append((label, path))
    return sorted(found)


def previous_frame(directory: str | Path, new_path: str | Path, tag: str = "sweep", new_frame=None):
    """The run to compare ``new_path`` with: the newest nightly CSV of ``directory`` that is
    older than it (by the label in its name; any other file of the directory when ``new_path``
    has no such name), holds rows (a header-only file, a sweep whose budget ran out before its
    first row, has nothing to compare) and holds rows of one of its hosts (the same machine).
    Returns ``(path, frame, skipped)``: path and frame None when there is none; ``skipped`` names
    the unreadable candidates passed over (a damaged old file must not stop every later night).
    ``new_frame``: ``read_sweep(new_path)`` when the caller has it."""
    new_path = Path(new_path)
    new_frame = read_sweep(new_path) if new_frame is None else new_frame
    new_hosts = set(new_frame["host"]) - {""}
    new_label = night_label(new_path.name, tag)
    skipped = []
    for label, path in reversed(nightly_files(directory, tag)):
        if path.resolve() == new_path.resolve() or (new_label is not None and label >= new_label):
            continue
        try:
            frame = read_sweep(path)
        except UsageError as exc:
            skipped.append(f"{path.name} ({exc})")
            continue
        hosts = set(frame["host"]) - {""}
        if len(frame) and (not new_hosts or not hosts or hosts & new_hosts):
            return path, frame, skipped
    return None, None, skipped


def previous_run(directory: str | Path, new_path: str | Path, tag: str = "sweep"):
    """``(path, skipped)`` of ``previous_frame``."""
    path, _, skipped = previous_frame(directory, new_path, tag)
    return path, skipped
