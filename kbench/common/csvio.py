"""CSV reports that never lose a row, never repeat a key and never clobber a file.

Rows are appended one at a time: each row is written with a single ``write`` of one complete
line to a file opened in append mode, then fsync'ed, so a crash or kill leaves either the whole
row or nothing. ``CsvLog`` does every read-check-append under an exclusive advisory lock
(``fcntl.flock``) on the file itself, so that several processes appending to one file (two
``kbench sweep --resume`` on one CSV) write the header once and can check, under the lock,
that a key is not already there. The header is written when the file is created; appending to
a file whose header differs is refused (a silently misaligned CSV is worse than an error).

**The row check.** A CSV whose last column is ``row_crc32`` (``ROW_CHECK_COLUMN``: the sweep
CSV, the profile CSVs) gets it filled by the writer itself (``CsvLog.append``, ``to_csv_text``),
whatever the caller put there: the CRC-32 of the row's other fields (trailing empty ones left
out) written as one CSV line (UTF-8, ``\n``-terminated), as 8 lowercase hex digits
(``row_check``). A row cut anywhere -- inside any field, the check included -- then fails it.
The readers (``parse``) take an unterminated last line as whole only when its check matches
(else it is a torn row: ignored, and dropped before ``--resume`` appends, which measures it
again); a non-empty check that does not match on any other line is a damaged or hand-edited row
(UsageError). An empty check is accepted on a terminated line: a row written by another tool,
or edited by hand with its check cleared. In a CSV without the column, a last line without its
newline is kept when it has all the header's fields and dropped when it has not.

**A write that fails** (a full disk: ENOSPC, or a short write) is undone: the file is truncated
back to its last complete row, and a file this writer created that holds nothing but its header
is removed, so that the rerun starts as if nothing had happened; the error is a UsageError
(one line, exit 2).

Whole-file outputs (``write_text_atomic``) go through ``kbench.common.outputs.write_text``: a
temporary file renamed over the real target, never over a symlink or a device.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from kbench.common import outputs
from kbench.errors import UsageError


ROW_CHECK_COLUMN = "row_crc32"
ROW_CHECK_WIDTH = 8  # fixed: a check cut short is never a valid one


def _line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def row_check(values: Sequence[object]) -> str:
    """The ``row_crc32`` of a row whose other fields are ``values`` (in column order): the CRC-32
    of them, trailing empty ones left out, written as one CSV line (UTF-8, ``\n``-terminated),
    8 lowercase hex digits. Leaving the trailing empty fields out keeps the check of an older row
    valid when a later version appends columns (empty in that row) before the check."""
    fields = ["" if v is None else str(v) for v in values]
    while fields and fields[-1] == "":
        fields.pop()
    return f"{zlib.crc32(_line(fields).encode()):0{ROW_CHECK_WIDTH}x}"


def has_row_check(columns: Sequence[str]) -> bool:
    return bool(columns) and columns[-1] == ROW_CHECK_COLUMN


def fields_are_whole(fields: Sequence[str]) -> bool:
    """A row's fields, its check last: True when the check is there and matches the others (a
    row cut anywhere, or changed after it was written, is not whole)."""
    return bool(fields) and fields[-1] == row_check(fields[:-1])


def _row_values(columns: Sequence[str], row: Mapping[str, object]) -> list[object]:
    """The row's fields in column order, its check (if the columns end with one) computed here."""
    values = [row.get(c, "") for c in columns]
    if has_row_check(columns):
        values[-1] = row_check(values[:-1])
    return values


def _row_line(columns: Sequence[str], row: Mapping[str, object]) -> str:
    return _line(_row_values(columns, row))


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


def _split_tail(text: str, header: Sequence[str] | None) -> tuple[str, str]:
    """(kept text, dropped tail): a last line without newline is kept (its newline added) when it
    is a whole row of ``header`` (see the module docstring), dropped when it is torn. A header
    line alone without its newline is kept."""
    if not text or text.endswith("\n"):
        return text, ""
    start = text.rfind("\n") + 1
    if start == 0:  # the header line only (no row yet): nothing was cut from a row
        return text + "\n", ""
    tail = text[start:]
    if header is not None:
        try:
            fields = next(csv.reader([tail]), [])
        except csv.Error:
            fields = []
        whole = len(fields) == len(header) and tail.count('"') % 2 == 0
        if whole and has_row_check(header):
            whole = fields_are_whole(fields)
        if whole:
            return text + "\n", ""
    return text[:start], tail


def parse(text: str, path, columns: Sequence[str] | None = None) -> tuple[list[str] | None, list[dict[str, str]]]:
    """(header, rows) of CSV text written by kbench; a row with another number of fields than the
    header, or one whose non-empty ``row_crc32`` does not match it, is a malformed file
    (UsageError naming the line). A torn last row is left out (see the module docstring)."""
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
    text, _ = _split_tail(text, header)
    checked = has_row_check(header)
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
            if checked and fields[-1] and not fields_are_whole(fields):
                raise UsageError(f"malformed CSV {str(path)!r}: line {reader.line_num} does not match its "
                                 f"{ROW_CHECK_COLUMN} {fields[-1]!r} (damaged, or edited after it was written: to keep "
                                 f"an edit, empty that cell)")
            rows.append(dict(zip(header, map(sys.intern, fields))))  # repeated cells (model, host, versions) stored once
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
    with it (no ``--resume``); ``mismatch(header)``: the message for a file with other columns;
    ``check(rows)``: raises a UsageError for rows the caller refuses (checked before the file is
    changed in any way, e.g. before a torn last row is dropped).
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], *, what: str = "--out",
                 exists_hint: str | None = None, mismatch: Callable[[list[str]], str] | None = None,
                 check: Callable[[list[dict[str, str]]], object] | None = None, lock_poll_s: float = 0.05):
        self.shown = os.fspath(path)
        self.columns = list(columns)
        self.what = what
        self.mismatch = mismatch or (lambda header: default_mismatch(self.shown, header, self.columns))
        self.check = check
        self.lock_poll_s = lock_poll_s
        self.path = outputs.check_output(path, what, append=True)
        if exists_hint is not None and self.path.exists() and self.path.stat().st_size > 0:
            raise UsageError(f"{what} {self.shown!r} already exists; {exists_hint}")
        self._check_existing()  # before creating or locking anything
        outputs.make_parents(self.path, what, repr(self.shown))
        self.created = not self.path.exists()  # a failed first write removes what this log created
        self.header_size: int | None = None  # bytes of the header this log wrote (None: it found one)
        self.fd = self._open()
        self.held = False
        self.prepared = False
        try:
            with self.locked():
                self._prepare()
            self.prepared = True
        except BaseException:
            self.close()  # a refused or failed start holds no file open
            raise

    def _torn_header(self, text: str) -> bool:
        """A first line cut short while this report's header was written (a full disk)."""
        return "\n" not in text and _line(self.columns).startswith(text)

    def _read(self, text: str) -> list[dict[str, str]]:
        """The rows of ``text`` after its header is checked (``mismatch``) and its rows (``check``)."""
        if self._torn_header(text):
            return []
        header, _ = parse(text, self.shown, self.columns)
        if header is not None and header != self.columns:
            raise UsageError(self.mismatch(header))
        _, rows = parse(text, self.shown)
        if self.check is not None:
            self.check(rows)
        return rows

    def _check_existing(self):
        data = _read_bytes(self.path)
        if data:
            self._read(decode(data, self.shown))

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
            if self.prepared and os.fstat(self.fd).st_size == 0:
                # Another writer removed the file (its failed first write); ``_acquire`` opened a new one.
                self.created = True
                self._prepare()
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
        if text and self._torn_header(text):
            self._truncate(0)
            text = ""
        if not text:
            header = _line(self.columns)
            self._write(header)
            self.header_size = len(header.encode())
            return
        self._read(text)  # the file another process may have changed since _check_existing
        kept, dropped = _split_tail(text, self.columns)
        if dropped:  # a row cut by a kill or a full disk: drop it before appending (it is measured again)
            self._truncate(len(kept.encode()))
        elif kept != text:  # a whole last row without its newline: keep it
            self._write("\n")

    def _truncate(self, size: int):
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise UsageError(f"cannot write {self.what} {self.shown!r}: {exc.strerror or exc}") from None

    def rows(self) -> list[dict[str, str]]:
        assert self.held, "CsvLog.rows() needs the lock"
        _, rows = parse(self._text(), self.shown)
        return rows

    def _write(self, text: str):
        """Append ``text`` whole, or leave the file as it was (see the module docstring)."""
        size = os.fstat(self.fd).st_size
        try:
            _write_all(self.fd, text.encode())
            os.fsync(self.fd)
        except BaseException as exc:  # OSError, or a signal between two partial writes
            undone = self._undo(size)
            if isinstance(exc, OSError):
                raise UsageError(f"cannot write {self.what} {self.shown!r}: {exc.strerror or exc} ({undone})") from None
            raise

    def _undo(self, size: int) -> str:
        """Back to ``size`` bytes. A header this log wrote goes too when nothing follows it (the
        file is as it was found), and a file this log created is then removed: a rerun starts
        afresh (no "already exists")."""
        if self.header_size is not None and size <= self.header_size:
            size = 0
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            return f"and it could not be undone: {exc.strerror or exc}"
        with contextlib.suppress(OSError):
            os.fsync(self.fd)
        if self.created and size == 0:
            try:
                here, mine = os.stat(self.path), os.fstat(self.fd)
                if (here.st_ino, here.st_dev) == (mine.st_ino, mine.st_dev):
                    os.unlink(self.path)
                    return "nothing was written: the file was removed"
            except OSError:
                pass
        return "the write was undone: the file holds only its complete rows" if size else "nothing was written"

    def append(self, row: Mapping[str, object]):
        """Append one row (its ``row_crc32``, if the report has one, computed here)."""
        assert self.held, "CsvLog.append() needs the lock"
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"row has columns not in the report: {sorted(unknown)}")
        self._write(_row_line(self.columns, row))

    def replace(self, rows: Iterable[Mapping[str, object]]):
        """Rewrite the whole file (header + ``rows``) atomically, keeping the lock: a temporary
        file in the same directory, locked before it is renamed over the file."""
        assert self.held, "CsvLog.replace() needs the lock"
        text = to_csv_text(self.columns, rows)
        mode = os.fstat(self.fd).st_mode & 0o7777
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            _write_all(fd, text.encode())  # a short write must never be renamed over the file
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


def _write_all(fd: int, data: bytes):
    """Write all of ``data``; after a short write (a full disk) the next write raises why."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def to_csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A whole CSV: the header, then each row (its ``row_crc32``, if any, computed here)."""
    return _line(columns) + "".join(_row_line(columns, row) for row in rows)
