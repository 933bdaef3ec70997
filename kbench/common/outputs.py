"""Output paths are sacred: every file kbench writes goes through here.

* **Write through the path.** A symlink is followed and its target is written (a temporary
  file in the *target's* directory renamed over it), so the link stays a link. Anything that
  is not a regular file or a new path -- a directory, a device, a fifo, a socket, a path under
  /proc or /sys, a path whose parent is a file -- is refused before any work
  (``UsageError``: one line, exit 2). Writing to /dev/null or /dev/full never replaces them.
* **No silent overwrite.** An existing regular file is replaced only when the caller says so
  (``overwrite=True``: a ``--force`` flag) or appended to (``append=True``: ``--resume``).
* **Check first, write last.** ``check_output`` is called when the arguments are validated,
  before any measurement; it also refuses a directory that cannot be written (permission, a
  read-only file system). A write that fails anyway (ENOSPC, EACCES, EROFS) is one line and
  exit 2 and leaves no temporary file behind.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from kbench.errors import UsageError

FORBIDDEN_ROOTS = (Path("/proc"), Path("/sys"))
FORCE_HINT = "pass --force to overwrite it, or choose another file"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _unwritable_reason(directory: Path) -> str:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def check_output(path: str | os.PathLike, what: str = "--out", *, overwrite: bool = False,
                 append: bool = False, hint: str = FORCE_HINT) -> Path:
    """Validate an output path before any work; return the real path that will be written.

    ``overwrite``: an existing regular file may be replaced; ``append``: it may be appended to.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise UsageError(f"{what} is empty: name a file")
    shown = repr(str(text))
    target = Path(os.path.realpath(text))  # follows every symlink, dangling ones too
    for root in FORBIDDEN_ROOTS:
        if target == root or root in target.parents:
            raise UsageError(f"{what} {shown} is under {root}: kbench writes only regular files")
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise UsageError(f"{what} {shown}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot use {what} {shown}: {_reason(exc)}") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{what} {shown} is {_kind(info.st_mode)}; kbench writes only regular files")
        if not (overwrite or append):
            raise UsageError(f"{what} {shown} already exists; {hint}")
        if not os.access(target, os.W_OK):
            raise UsageError(f"cannot write {what} {shown}: {_unwritable_reason(target.parent)}")
        if overwrite and not os.access(target.parent, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {what} {shown}: {_unwritable_reason(target.parent)} in its directory")
        return target
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {shown}: {str(ancestor)!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {what} {shown}: {_unwritable_reason(ancestor)} in {str(ancestor)!r}")
    return target


def make_parents(target: Path, what: str = "--out", shown: str | None = None):
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the directory of {what} {shown or repr(str(target))}: {_reason(exc)}") from None


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text(path: str | os.PathLike, text: str, what: str = "--out", *, overwrite: bool = False,
               hint: str = FORCE_HINT) -> Path:
    """Write a whole file at once through ``path``: a temporary file beside the real target,
    fsync, then an atomic rename over the target (readers see the old file or the new one).
    The replaced file's permission bits are kept. Returns the real path written."""
    target = check_output(path, what, overwrite=overwrite, hint=hint)
    shown = repr(os.fspath(path))
    make_parents(target, what, shown)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = _default_mode()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UsageError(f"cannot write {what} {shown}: {_reason(exc)}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Validate an output *directory* (``kbench report``) before any work: an existing directory
    or a new path whose nearest existing ancestor is a writable directory; never under /proc."""
    text = os.fspath(path)
    if not str(text).strip():
        raise UsageError(f"{what} is empty: name a directory")
    shown = repr(str(text))
    target = Path(os.path.realpath(text))
    for root in FORBIDDEN_ROOTS:
        if target == root or root in target.parents:
            raise UsageError(f"{what} {shown} is under {root}: kbench writes only regular files")
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise UsageError(f"{what} {shown}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot use {what} {shown}: {_reason(exc)}") from None
    if info is not None:
        if not stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{what} {shown} is {_kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else 'a file'}; "
                             f"it must be a directory")
        if not os.access(target, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write into {what} {shown}: {_unwritable_reason(target)}")
        return target
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {shown}: {str(ancestor)!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {what} {shown}: {_unwritable_reason(ancestor)} in {str(ancestor)!r}")
    return target
