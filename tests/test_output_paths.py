"""Output paths are sacred (kbench.common.outputs, kbench.common.csvio): symlinks are written through, devices
and fifos are refused, existing files are kept unless asked, write errors leave nothing behind."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from kbench.common import outputs
from kbench.common.csvio import CsvLog, read_rows, write_text_atomic
from kbench.errors import UsageError


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_symlink_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="--force"):
        outputs.write_text(link, "new\n")  # an existing file is kept unless asked
    assert target.read_text() == "old\n"
    outputs.write_text(link, "new\n", overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n" and _leftovers(tmp_path) == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "sub" / "made.csv")
    write_text_atomic(link, "a\n")
    assert link.is_symlink() and (tmp_path / "sub" / "made.csv").read_text() == "a\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_character_device_is_never_replaced(tmp_path):
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    for call in (lambda: write_text_atomic(device, "x\n"), lambda: CsvLog(device, ["a"])):
        with pytest.raises(UsageError, match="character device"):
            call()
        assert stat.S_ISCHR(os.lstat(device).st_mode)
    link = tmp_path / "to-null"
    link.symlink_to(device)
    with pytest.raises(UsageError, match="character device"):
        write_text_atomic(link, "x\n")
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


def test_real_devices_fifo_directory_proc_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    modes = {p: os.stat(p).st_mode for p in ("/dev/null", "/dev/full")}
    for path, needle in (("/dev/null", "character device"), ("/dev/full", "character device"), (fifo, "fifo"),
                         (tmp_path, "directory"), ("/proc/self/x.txt", "/proc"), ("/sys/x.txt", "/sys")):
        with pytest.raises(UsageError, match=needle):
            write_text_atomic(path, "x\n")
    assert {p: os.stat(p).st_mode for p in modes} == modes and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        outputs.check_output(tmp_path / "file" / "below.csv")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_write_errors_are_one_line_and_leave_no_temporary_file(tmp_path, monkeypatch, code):
    target = tmp_path / "out.txt"
    target.write_text("before\n")

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(UsageError) as info:
        outputs.write_text(target, "after\n", overwrite=True)
    assert os.strerror(code) in str(info.value) and "\n" not in str(info.value)
    assert target.read_text() == "before\n" and _leftovers(tmp_path) == []


def test_unwritable_directory_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match="permission denied|read-only"):
        outputs.check_output(tmp_path / "new.csv")

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(UsageError, match="read-only file system"):
        outputs.check_output(tmp_path / "new.csv")


def test_append_error_is_one_line(tmp_path, monkeypatch):
    log = CsvLog(tmp_path / "rows.csv", ["a", "b"])
    real_write = os.write

    def full(fd, data):
        if fd == log.fd:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with log.locked(), pytest.raises(UsageError, match="No space left"):
        log.append({"a": 1, "b": 2})
    log.close()


def test_complete_last_row_without_newline_is_kept_and_torn_one_dropped(tmp_path):
    complete = tmp_path / "complete.csv"
    complete.write_text("a,b\n1,2\n3,4")
    assert read_rows(complete) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    log = CsvLog(complete, ["a", "b"])
    log.close()
    assert complete.read_text() == "a,b\n1,2\n3,4\n"
    torn = tmp_path / "torn.csv"
    torn.write_text("a,b\n1,2\n3")
    assert read_rows(torn) == [{"a": "1", "b": "2"}]
    CsvLog(torn, ["a", "b"]).close()
    assert torn.read_text() == "a,b\n1,2\n"


def test_short_row_message_counts_its_fields(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n1,2,3\n1,2\n")
    with pytest.raises(UsageError, match="line 3 has 2 fields, the header has 3"):
        read_rows(path)
