"""kbench's CSVs hold only whole rows: a row cut anywhere (a kill, a full disk) is detected by its
``row_crc32``, left out by every reader and dropped by ``--resume``, which measures it again; a
write that fails on a full disk is undone. The full-disk cases run on a real, tiny tmpfs where
this process may mount one (root), and with an injected short write everywhere."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from kbench.cli import main
from kbench.common import csvio
from kbench.common.csvio import ROW_CHECK_COLUMN, CsvLog, row_check, to_csv_text
from kbench.errors import UsageError
from kbench.results import merge, schema
from kbench.results.schema import KEY_COLUMNS, SWEEP_COLUMNS, row_is_whole
from test_concurrency import SKIPPED, profile_cache  # noqa: F401 - a fixture: lenet5's profile, no TF worker

PAGE = 4096  # tmpfs allocates whole pages


def _row(**values):
    row = {c: "" for c in SWEEP_COLUMNS}
    row.update({"run_id": "r1", "timestamp": "2026-12-01T10:00:00+00:00", "model": "lenet5", "family": "lenet",
                "input_h": "32", "input_w": "32", "batch_size": "1", "mode": "infer", "backend": "tensorflow",
                "precision": "float32", "jit": "false", "status": "ok", "samples_per_s": "100.5",
                "other_cpu_frac": "0.123456"})
    row.update({k: str(v) for k, v in values.items()})
    return row


# ----------------------------------------------------------------------------- the row check

def test_the_writer_fills_the_row_check_and_ignores_what_the_caller_put_there():
    assert SWEEP_COLUMNS[-1] == ROW_CHECK_COLUMN and schema.is_older_header(list(SWEEP_COLUMNS[:-1]))
    text = to_csv_text(SWEEP_COLUMNS, [_row(error='a "quoted", multi-field error', row_crc32="bogus")])
    header, rows = csvio.parse(text, "t.csv")
    (row,) = rows
    assert len(row[ROW_CHECK_COLUMN]) == 8 and row[ROW_CHECK_COLUMN] != "bogus"
    assert row[ROW_CHECK_COLUMN] == row_check([row[c] for c in SWEEP_COLUMNS[:-1]])
    assert row_is_whole(row)
    assert not row_is_whole({**row, "samples_per_s": "100.4"})
    assert not row_is_whole({**row, ROW_CHECK_COLUMN: ""})


def test_a_row_cut_anywhere_is_left_out_by_the_readers_and_dropped_by_resume(tmp_path):
    """Every cut of the last row, inside any field (the check included): merge and every schema
    reader see only the first row, and a resuming writer truncates the file back to it. Only the
    final newline missing is a whole row, kept (and its newline completed)."""
    first = _row(error="cut, anywhere")
    head = to_csv_text(SWEEP_COLUMNS, [first])
    last_line = to_csv_text(SWEEP_COLUMNS, [first, _row(batch_size=2, other_cpu_frac="0.654321")])[len(head):]
    assert last_line.endswith(",0.654321," + last_line[-9:-1] + "\n")  # other_cpu_frac, then the check
    path = tmp_path / "cut.csv"
    for cut in range(1, len(last_line)):
        path.write_text(head + last_line[:cut])
        whole = cut == len(last_line) - 1  # only the newline is missing
        expected = [first["batch_size"], "2"] if whole else [first["batch_size"]]
        assert [r["batch_size"] for r in schema.read_rows(path)] == expected, cut
        assert [r["batch_size"] for r in merge.read_input(str(path))] == expected, cut
        log = CsvLog(path, SWEEP_COLUMNS, check=lambda rows: schema.check_rows(rows, path))
        log.close()
        assert path.read_text() == (head + last_line if whole else head), cut


def test_a_row_cut_in_a_profile_csv_is_dropped_too(tmp_path):
    from kbench.commands.profile import PROFILE_COLUMNS

    rows = [{"model": "lenet5", "status": "ok", "params": 61706},
            {"model": "vgg11", "status": "ok", "params": 9231114}]
    text = to_csv_text(PROFILE_COLUMNS, rows)
    path = tmp_path / "profile.csv"
    for cut in range(1, 40):  # inside the check, then into the fields before it
        path.write_text(text[:-1 - cut])
        assert [r["model"] for r in csvio.read_rows(path)] == ["lenet5"], cut


def test_an_older_file_without_the_check_keeps_the_field_count_rule(tmp_path):
    older = list(SWEEP_COLUMNS[:-1])
    head = to_csv_text(older, [_row()])
    path = tmp_path / "older.csv"
    path.write_text(head + to_csv_text(older, [_row(batch_size=2)]).splitlines(keepends=True)[1][:40])
    assert [r["batch_size"] for r in schema.read_rows(path)] == ["1"]


def test_resume_drops_a_torn_row_and_measures_it_again(tmp_path, profile_cache):  # noqa: F811
    """A real sweep, its last row then cut at several places: --resume keeps every whole row
    byte for byte, drops the torn one and writes its configuration again, once."""
    out = tmp_path / "torn.csv"
    args = ["sweep", *SKIPPED, "--batch-sizes", "1", "--profile-cache", profile_cache, "--out", str(out)]
    assert main(args) == 0
    text = out.read_text()
    kept, last = text[:text.rstrip("\n").rfind("\n") + 1], text[text.rstrip("\n").rfind("\n") + 1:]
    first_run = schema.read_rows(out)[0]["run_id"]
    assert len(schema.read_rows(out)) == 2 and last.count("\n") == 1
    # inside the run_id, inside the status, inside the check, one character of the check left out
    for cut in (10, last.index(",skipped,") + 4, len(last) - 6, len(last) - 2):
        out.write_text(kept + last[:cut])
        assert main([*args, "--resume"]) == 0
        rows = schema.read_rows(out)
        assert out.read_text().startswith(kept)
        assert len(rows) == 2 and len({schema.row_key(r) for r in rows}) == 2 and all(map(row_is_whole, rows))
        assert rows[0]["run_id"] == first_run and rows[-1]["run_id"] != first_run  # measured again
    out.write_text(kept + last[:-1])  # only the newline missing: a whole row, kept as it is
    assert main([*args, "--resume"]) == 0
    assert out.read_text() == kept + last


# ----------------------------------------------------------------------------- a full disk, injected

@pytest.fixture
def short_writes(monkeypatch):
    """``os.write`` to a file named in the returned set writes half of the data, then fails with
    ENOSPC on the next call, as a file system that fills up does."""
    targets: set[str] = set()
    cut_short: set[tuple[int, int]] = set()  # (device, inode) of the files already cut short
    real_write = os.write

    def write(fd, data):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if not any(name == t or os.path.basename(name).startswith(f".{os.path.basename(t)}.") for t in targets):
            return real_write(fd, data)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) not in cut_short and len(data) > 1:
            cut_short.add((info.st_dev, info.st_ino))
            return real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)
    return targets


def test_an_append_that_fails_halfway_is_undone(tmp_path, short_writes):
    path = tmp_path / "s.csv"
    path.write_text(to_csv_text(SWEEP_COLUMNS, [_row()]))
    before = path.read_bytes()
    log = CsvLog(path, SWEEP_COLUMNS)
    short_writes.add(str(path))
    with log.locked(), pytest.raises(UsageError, match="No space left on device.*undone"):
        log.append(_row(batch_size=2))
    log.close()
    assert path.read_bytes() == before


def test_a_header_that_cannot_be_written_leaves_no_file(tmp_path, short_writes):
    path = tmp_path / "new.csv"
    short_writes.add(str(path))
    with pytest.raises(UsageError, match="No space left on device"):
        CsvLog(path, SWEEP_COLUMNS)
    assert not path.exists()
    empty = tmp_path / "empty.csv"  # an existing empty file: back to empty, never removed
    empty.write_bytes(b"")
    short_writes.add(str(empty))
    with pytest.raises(UsageError):
        CsvLog(empty, SWEEP_COLUMNS)
    assert empty.read_bytes() == b""


def test_a_first_row_that_cannot_be_written_leaves_no_file(tmp_path, short_writes):
    path = tmp_path / "new.csv"
    log = CsvLog(path, SWEEP_COLUMNS)
    short_writes.add(str(path))
    with log.locked(), pytest.raises(UsageError):
        log.append(_row())
    log.close()
    assert not path.exists()  # nothing but the header this run wrote: the rerun starts afresh


def test_a_rewrite_that_fails_leaves_the_file_and_no_temporary(tmp_path, short_writes):
    path = tmp_path / "s.csv"
    path.write_text(to_csv_text(SWEEP_COLUMNS, [_row(), _row(batch_size=2)]))
    before = path.read_bytes()
    log = CsvLog(path, SWEEP_COLUMNS)
    short_writes.add(str(path))  # and its temporary files (.s.csv.*)
    with log.locked(), pytest.raises(UsageError, match="cannot rewrite"):
        log.replace([_row(), _row(batch_size=2, status="error", samples_per_s="")])
    log.close()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.csv"]


# ----------------------------------------------------------------------------- a full disk, real

@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs at tmp_path/disk, and a function that fills it to the last byte."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root")

    def fill():
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"x" * PAGE)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        assert os.statvfs(disk).f_bavail == 0

    try:
        yield disk, fill
    finally:
        busy = subprocess.run(["umount", str(disk)], capture_output=True, text=True)
        if busy.returncode != 0:  # a file left open there: detach the mount anyway, then fail
            subprocess.run(["umount", "--lazy", str(disk)], check=True)
            pytest.fail(f"a file on the tiny disk was left open: {busy.stderr.strip()}")


def test_full_disk_sweep_append_is_undone(tiny_disk, tmp_path, profile_cache, capsys):  # noqa: F811
    """The row a resumed sweep appends is cut short by a full disk (the file's last page has
    100 bytes left): exit 2, one line, the file exactly as it was, then the rerun completes it."""
    disk, fill = tiny_disk
    out = disk / "sweep.csv"
    args = ["sweep", *SKIPPED, "--profile-cache", profile_cache, "--out", str(out)]
    assert main([*args, "--batch-sizes", "1"]) == 0
    rows = schema.read_rows(out)
    padding = 2 * PAGE - 100 - out.stat().st_size
    rows[0]["error"] += " " * padding  # the file then ends 100 bytes before a page boundary
    out.write_text(to_csv_text(SWEEP_COLUMNS, rows))
    assert out.stat().st_size == 2 * PAGE - 100
    fill()
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*args, "--batch-sizes", "1,2", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert out.read_bytes() == before
    assert sorted(os.listdir(disk)) == ["filler", "sweep.csv"]
    os.unlink(disk / "filler")
    assert main([*args, "--batch-sizes", "1,2", "--resume"]) == 0
    assert out.read_bytes().startswith(before)
    assert len(schema.read_rows(out)) == 4 and not _duplicates(schema.read_rows(out))


def _duplicates(rows):
    keys = [tuple(r[c] for c in KEY_COLUMNS) for r in rows]
    return len(keys) != len(set(keys))


def test_full_disk_profile_csv_leaves_no_file(tiny_disk, capsys):
    """The header of ``profile --format csv --out`` cannot be written: exit 2, one line, and no
    empty file left to block the rerun with "already exists"."""
    disk, fill = tiny_disk
    fill()
    out = disk / "profile.csv"
    assert main(["profile", "lenet5", "--format", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert sorted(os.listdir(disk)) == ["filler"]


def test_full_disk_whole_file_outputs_leave_nothing(tiny_disk, tmp_path, capsys):
    disk, fill = tiny_disk
    source = tmp_path / "in.csv"
    source.write_text(to_csv_text(SWEEP_COLUMNS, [_row(error="e" * 2000)]))
    fill()
    for argv in (["merge", str(disk / "merged.csv"), str(source)], ["list", "--out", str(disk / "models.txt")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "No space left on device" in err, err
        assert sorted(os.listdir(disk)) == ["filler"], argv  # no output, no temporary file


# ----------------------------------------------------------------------------- the writer's rules

@pytest.mark.parametrize("throughput", [float("inf"), float("nan"), -5.0, 0.0])
def test_a_measurement_no_reader_accepts_is_written_as_an_error_row(throughput, tmp_path, profile_cache,  # noqa: F811
                                                                    monkeypatch):
    """The sweep checks each row it makes with the readers' rules (``schema.row_problem``): an
    ``ok`` result with an impossible throughput becomes an ``error`` row saying why, and the
    file stays one that compare, history and report read."""
    from kbench.results import frame
    from kbench.running import supervisor

    monkeypatch.setattr(supervisor.Runner, "start", lambda self: None)  # no worker: the result is given
    monkeypatch.setattr(supervisor.Runner, "measure", lambda self, cfg: {
        "status": "ok", "samples_per_s": throughput, "latency_ms_p50": 1.0, "rounds": 1,
        "samples_per_s_rounds": "100"})
    out = tmp_path / "invalid.csv"
    assert main(["sweep", "--models", "lenet5", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer",
                 "--no-jit", "--no-progress", "--profile-cache", profile_cache, "--out", str(out)]) == 0
    (row,) = schema.read_rows(out)
    assert row["status"] == "error" and row["error"].startswith("invalid measurement: samples_per_s"), row["error"]
    assert row["samples_per_s"] == "" and row_is_whole(row)
    assert len(frame.read_sweep(out)) == 1
