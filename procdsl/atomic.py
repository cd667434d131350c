"""Atomic file writes: the old content or the new one, never a file cut short.

Every write of a user's file (``procdsl fmt``, ``plan -o``) or of a run artefact goes through
:func:`atomic_write` (or :func:`atomic_open` for code that writes as it goes): the bytes go to a
temporary file in the target's own directory (so the final ``rename`` never crosses file
systems), are flushed and ``fsync``-ed, and only then renamed over the target; the directory is
synced too. A full disk, a signal or a crash leaves the target as it was and no temporary file
behind. The target keeps its permission bits; a symlink is followed, so the file it points to is
replaced and the link stays a link. A target that exists but is not a regular file (``/dev/stdout``,
a fifo) cannot be renamed over and is written directly; a directory is refused.

Torch-free and dependency-free on purpose: the compiler and the runtime both use it.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "plan.json")
>>> atomic_write(path, '{"a": 1}\\n')
>>> with atomic_open(path) as fh:
...     _ = fh.write('{"a": 2}\\n')
>>> open(path).read(), sorted(os.listdir(folder))
('{"a": 2}\\n', ['plan.json'])
>>> atomic_write(folder, "x")
Traceback (most recent call last):
  ...
IsADirectoryError: [Errno 21] Is a directory: '...'
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Union


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a directory we may write but not open (rare): the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Union[str, os.PathLike], mode: str = "w", *, encoding: str = "utf-8") -> Iterator[IO]:
    """A file object (``mode`` ``"w"`` or ``"wb"``) whose content replaces ``path`` atomically when
    the ``with`` block ends without an exception; on an exception the target is untouched."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = os.path.realpath(os.fspath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    text = "b" not in mode
    # binary files take neither an encoding nor a newline policy
    file_encoding, newline = (encoding, "") if text else (None, None)
    if st is not None and not stat.S_ISREG(st.st_mode):  # a device or fifo: nothing to replace
        with open(target, mode, encoding=file_encoding, newline=newline) as fh:
            yield fh
        return
    folder = os.path.dirname(target)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        os.chmod(temp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=file_encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(folder)


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes], *, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` (text is encoded with ``encoding``, newlines kept as given)."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", encoding=encoding) as fh:
        fh.write(data)


__all__ = ["atomic_open", "atomic_write"]
