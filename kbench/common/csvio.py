"""CSV reports that never lose a row, never repeat a key and never clobber a file.

Rows are appended one at a time: each row is written with a single ``write`` of one complete
line to a file opened in append mode, then fsync'ed, so a crash or kill leaves either the whole
row or nothing. ``CsvLog`` does every read-check-append under an exclusive advisory lock
(``fcntl.flock``) on the file itself, so that several processes appending to one file (two
``kbench sweep --resume`` on one CSV) write the header once and can check, under the lock,
that a key is not already there. The header is written when the file is created; appending to
a file whose header differs is refused (a silently misaligned CSV is worse than an error).

A last line without its newline is kept when it is a complete row (all the header's fields:
someone's editor dropped the newline) and dropped when it is not (a row cut by a crash).

Whole-file outputs (``write_text_atomic``) go through ``kbench.common.outputs.write_text``: a
temporary file renamed over the real target, never over a symlink or a device.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from kbench.common import outputs
from kbench.errors import UsageError


def _line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def decode(data: bytes, path) -> str:
    """UTF-8 text of a file kbench reads; anything else is a malformed file (UsageError)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"malformed CSV {str(path)!r}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start})") from None


def _read_bytes(path) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _split_tail(text: str, width: int | None) -> tuple[str, str]:
    """(kept text, dropped tail): a last line without newline is kept if it has ``width`` fields."""
    if not text or text.endswith("\n"):
        return text, ""
    start = text.rfind("\n") + 1
    tail = text[start:]
    if width is not None and start > 0:
        try:
            fields = next(csv.reader([tail]), [])
        except csv.Error:
            fields = []
        if len(fields) == width and tail.count('"') % 2 == 0:
            return text + "\n", ""
    return text[:start], tail


def parse(text: str, path, columns: Sequence[str] | None = None) -> tuple[list[str] | None, list[dict[str, str]]]:
    """(header, rows) of CSV text written by kbench; a row with another number of fields than the
    header is a malformed file (UsageError naming the line)."""
    if not text:
        return None, []
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return None, []
    except csv.Error as exc:
        raise UsageError(f"malformed CSV {str(path)!r}: cannot read its header ({exc})") from None
    if columns is not None and header != list(columns):
        return header, []
    text, _ = _split_tail(text, len(header))
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        next(reader)
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise UsageError(f"malformed CSV {str(path)!r}: line {reader.line_num} has {len(fields)} fields, "
                                 f"the header has {len(header)}")
            rows.append(dict(zip(header, fields)))
    except csv.Error as exc:
        raise UsageError(f"malformed CSV {str(path)!r}: line {reader.line_num}: {exc}") from None
    return header, rows


def read_header(path: Path) -> list[str] | None:
    data = _read_bytes(path)
    if not data:
        return None
    header, _ = parse(decode(data, path).split("\n", 1)[0] + "\n", path)
    return header


def read_rows(path: Path) -> list[dict[str, str]]:
    """All complete rows of a CSV written by kbench (a torn last line is ignored)."""
    data = _read_bytes(path)
    if not data:
        return []
    _, rows = parse(decode(data, path), path)
    return rows


def _first_difference(a, b) -> str:
    for x, y in zip(a, b):
        if x != y:
            return f"{x!r} vs {y!r}"
    return f"{len(a)} vs {len(b)} columns"


def default_mismatch(path, header: list[str], columns: Sequence[str]) -> str:
    return (f"cannot append to {str(path)!r}: its columns differ from this report's (first difference: "
            f"{_first_difference(header, list(columns))}); write to a new file")


class CsvLog:
    """An append-only CSV shared safely between processes.

    Construct it after the arguments are validated (it creates the file). ``locked()`` holds an
    exclusive lock; inside it, ``rows()`` reads the file as it is now and ``append()`` /
    ``replace()`` change it. ``exists_hint``: when given, an existing non-empty file is refused
    with it (no ``--resume``); ``mismatch(header)``: the message for a file with other columns.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], *, what: str = "--out",
                 exists_hint: str | None = None, mismatch: Callable[[list[str]], str] | None = None,
                 lock_poll_s: float = 0.05):
        self.shown = os.fspath(path)
        self.columns = list(columns)
        self.what = what
        self.mismatch = mismatch or (lambda header: default_mismatch(self.shown, header, self.columns))
        self.lock_poll_s = lock_poll_s
        self.path = outputs.check_output(path, what, append=True)
        if exists_hint is not None and self.path.exists() and self.path.stat().st_size > 0:
            raise UsageError(f"{what} {self.shown!r} already exists; {exists_hint}")
        self._check_existing()  # before creating or locking anything
        outputs.make_parents(self.path, what, repr(self.shown))
        self.fd = self._open()
        self.held = False
        with self.locked():
            self._prepare()

    def _check_existing(self):
        data = _read_bytes(self.path)
        if data:
            header, _ = parse(decode(data, self.shown), self.shown, self.columns)
            if header is not None and header != self.columns:
                raise UsageError(self.mismatch(header))
            parse(decode(data, self.shown), self.shown)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UsageError(f"cannot write {self.what} {self.shown!r}: {exc.strerror or exc}") from None

    # -- the lock
    def _acquire(self, deadline: float | None) -> bool:
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(self.lock_poll_s)
                continue
            # Another process may have replaced the file (``replace``) while we waited: lock the new one.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(self.fd)
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                return True
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = self._open()

    @contextlib.contextmanager
    def locked(self, timeout_s: float | None = None) -> Iterator[bool]:
        """Hold the lock; yields False (without the lock) when ``timeout_s`` ran out first."""
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
        if not self._acquire(deadline):
            yield False
            return
        self.held = True
        try:
            yield True
        finally:
            self.held = False
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            except OSError:
                pass

    # -- reading and writing (under the lock)
    def _text(self) -> str:
        os.lseek(self.fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return decode(b"".join(chunks), self.shown)

    def _prepare(self):
        text = self._text()
        if not text:
            self._write(_line(self.columns))
            return
        header, _ = parse(text, self.shown, self.columns)
        if header != self.columns:
            raise UsageError(self.mismatch(header or []))
        kept, dropped = _split_tail(text, len(self.columns))
        if dropped:  # a row cut by a kill: drop it before appending
            os.ftruncate(self.fd, len(kept.encode()))
        elif kept != text:  # a complete last row without its newline: keep it
            self._write("\n")

    def rows(self) -> list[dict[str, str]]:
        assert self.held, "CsvLog.rows() needs the lock"
        _, rows = parse(self._text(), self.shown)
        return rows

    def _write(self, text: str):
        data = text.encode()
        try:
            written = os.write(self.fd, data)
            if written != len(data):
                raise OSError(28, "short write (no space left on device?)")
            os.fsync(self.fd)
        except OSError as exc:
            raise UsageError(f"cannot write {self.what} {self.shown!r}: {exc.strerror or exc}") from None

    def append(self, row: Mapping[str, object]):
        assert self.held, "CsvLog.append() needs the lock"
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"row has columns not in the report: {sorted(unknown)}")
        self._write(_line([row.get(c, "") for c in self.columns]))

    def replace(self, rows: Iterable[Mapping[str, object]]):
        """Rewrite the whole file (header + ``rows``) atomically, keeping the lock: a temporary
        file in the same directory, locked before it is renamed over the file."""
        assert self.held, "CsvLog.replace() needs the lock"
        text = to_csv_text(self.columns, rows)
        mode = os.fstat(self.fd).st_mode & 0o7777
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.write(fd, text.encode())
            os.fsync(fd)
            os.fchmod(fd, mode)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise UsageError(f"cannot rewrite {self.what} {self.shown!r}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                os.close(fd)
                os.unlink(tmp)
        old, self.fd = self.fd, fd
        os.close(old)  # releases the old file's lock; waiters see the new inode and relock
        os.lseek(self.fd, 0, os.SEEK_END)
        flags = os.O_APPEND
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | flags)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class RowWriter:
    """Append rows (dicts) to a CSV with a fixed column order, atomically per row (each under
    the file's lock, so concurrent writers never interleave or write the header twice)."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], what: str = "--out"):
        self.log = CsvLog(path, columns, what=what)
        self.path = self.log.path
        self.columns = self.log.columns

    def write(self, row: Mapping[str, object]):
        with self.log.locked():
            self.log.append(row)


def write_text_atomic(path: str | os.PathLike, text: str, what: str = "output file") -> None:
    """Write a whole file at once through ``path`` (see ``kbench.common.outputs.write_text``); an
    existing regular file is replaced, anything else is refused."""
    outputs.write_text(path, text, what, overwrite=True)


def to_csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    return _line(columns) + "".join(_line([row.get(c, "") for c in columns]) for row in rows)
