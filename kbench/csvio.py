"""CSV reports that never lose a row.

Rows are appended one at a time: each row is written with a single ``write`` of one complete
line to a file opened in append mode, then flushed and fsync'ed, so a crash or kill leaves
either the whole row or nothing. The header is written when the file is created; appending
to a file whose header differs is refused (a silently misaligned CSV is worse than an error).
Whole-file outputs (``write_text_atomic``) go to a temporary file renamed into place.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from kbench.errors import UsageError


def _line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def read_header(path: Path) -> list[str] | None:
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="") as f:
        try:
            return next(csv.reader(f))
        except (StopIteration, csv.Error) as exc:
            raise UsageError(f"malformed CSV {str(path)!r}: cannot read its header ({exc})") from exc


def read_rows(path: Path) -> list[dict[str, str]]:
    """All complete rows of a CSV written by kbench (a torn last line is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # drop a line cut by a crash
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise UsageError(f"malformed CSV {str(path)!r}: {exc}") from exc
    header = read_header(path) or []
    for number, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise UsageError(f"malformed CSV {str(path)!r}: line {number} has {len(row) - (None in row)} fields, the header has {len(header)}")
    return rows


class RowWriter:
    """Append rows (dicts) to a CSV with a fixed column order, atomically per row."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = read_header(self.path)
        if header is None:
            self._append(_line(self.columns))
        elif header != self.columns:
            raise UsageError(
                f"cannot append to {str(self.path)!r}: its columns differ from this report's "
                f"(first difference: {_first_difference(header, self.columns)}); write to a new file")
        else:
            self._repair_torn_tail()

    def _repair_torn_tail(self):
        # A row cut by a kill leaves a last line without newline; drop it before appending.
        with self.path.open("rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)

    def _append(self, line: str):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, row: Mapping[str, object]):
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"row has columns not in the report: {sorted(unknown)}")
        self._append(_line([row.get(c, "") for c in self.columns]))


def _first_difference(a, b) -> str:
    for x, y in zip(a, b):
        if x != y:
            return f"{x!r} vs {y!r}"
    return f"{len(a)} vs {len(b)} columns"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a whole file at once: a temporary file beside it (one per process), fsync, then an
    atomic rename, so readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def to_csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    return _line(columns) + "".join(_line([row.get(c, "") for c in columns]) for row in rows)
