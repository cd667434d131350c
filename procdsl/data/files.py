"""Paths of file-backed sources: a file or a glob, expanded to a sorted, checked list of files.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.txt").write_text("b"); _ = (d / "a.txt").write_text("a")
>>> [pathlib.Path(p).name for p in expand_paths(str(d / "*.txt"))]
['a.txt', 'b.txt']
>>> expand_paths(str(d / "*.csv"))
Traceback (most recent call last):
  ...
procdsl.data.errors.DataError: .../*.csv: the pattern matches no file
"""

from __future__ import annotations

import glob
import os

from procdsl.data.errors import DataError

_GLOB_CHARS = frozenset("*?[")


def is_glob(path: str) -> bool:
    """Whether ``path`` is a glob pattern (``*``, ``?``, ``[``) rather than one file."""
    return any(ch in _GLOB_CHARS for ch in path)


def expand_paths(path: str) -> list[str]:
    """The files ``path`` names, sorted; ``**`` matches directories recursively.

    Raises DataError when a plain path does not exist or is a directory, and when a glob
    matches no file. Every returned file exists; emptiness is the reader's judgement.
    """
    if not is_glob(path):
        if os.path.isdir(path):
            raise DataError(
                f"is a directory: name a file, or a glob such as {os.path.join(path, '**', '*.txt')}",
                path=path,
            )
        if not os.path.isfile(path):
            raise DataError("file not found", path=path)
        return [path]
    files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    if not files:
        raise DataError("the pattern matches no file", path=path)
    return files


def read_bytes(path: str) -> bytes:
    """The content of ``path``; a DataError (not an OSError) when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise DataError(f"cannot be read: {err.strerror or err}", path=path) from None


def check_nonempty(path: str) -> int:
    """The size of ``path`` in bytes; a DataError naming it if missing, unreadable or empty."""
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise DataError(f"cannot be read: {err.strerror or err}", path=path) from None
    if size == 0:
        raise DataError("file is empty", path=path)
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as err:
        raise DataError(f"cannot be read: {err.strerror or err}", path=path) from None
    return size
