"""``python_code()``: the running Python's standard library ``.py`` files, one document each.

A real code corpus that needs no network: ``sysconfig.get_paths()["stdlib"]`` walked in sorted
order of relative path, skipping test suites (``test``, ``tests``, ``idle_test``), installed
packages (``site-packages``), caches, the build configuration, and empty files. Its size
depends on the Python version (3.11: about 730 files, 12 MB); ``validate`` says which.

>>> corpus = stdlib_corpus()
>>> any(rel == "json/decoder.py" for rel, _ in corpus.files), corpus.bytes > 1_000_000
(True, True)
"""

from __future__ import annotations

import os
import platform
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Optional

from procdsl.data.document import Document, ReadStats, SourceInfo
from procdsl.data.errors import DataError
from procdsl.data.text import read_files
from procdsl.plan.sources import PythonCodeSource

#: directories never entered: test suites, third-party packages, caches, build artefacts
SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib-dynload", "_bundled"}
)


@dataclass(frozen=True)
class StdlibCorpus:
    """The files of the corpus: ``(relative posix path, absolute path)`` pairs, and their bytes."""

    root: str
    files: tuple[tuple[str, str], ...]
    bytes: int


@cache
def stdlib_corpus(root: Optional[str] = None) -> StdlibCorpus:
    """List the corpus under ``root`` (default: this Python's standard library)."""
    root = root or sysconfig.get_paths()["stdlib"]
    if not os.path.isdir(root):
        raise DataError("the Python standard library directory does not exist", path=root)
    found: list[tuple[str, str]] = []
    total = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("config-")]
        for name in names:
            if not name.endswith(".py") or name.startswith("_sysconfigdata"):
                continue
            path = os.path.join(folder, name)
            size = os.path.getsize(path)
            if size:
                found.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
                total += size
    found.sort()
    if not found:
        raise DataError("no .py file found in the Python standard library", path=root)
    return StdlibCorpus(root, tuple(found), total)


def read_python_code(source: PythonCodeSource, stats: Optional[ReadStats] = None) -> Iterator[Document]:
    """Each standard-library file as one document, origin ``stdlib/<relative path>``."""
    corpus = stdlib_corpus()
    yield from read_files(
        [path for _, path in corpus.files], stats, origins=[f"stdlib/{rel}" for rel, _ in corpus.files]
    )


def validate_python_code(source: PythonCodeSource) -> SourceInfo:
    corpus = stdlib_corpus()
    return SourceInfo(
        "python_code",
        f"python_code: {len(corpus.files):,} files, "
        f"{corpus.bytes:,} bytes of the Python {platform.python_version()} standard "
        f"library at {corpus.root}",
        tuple(path for _, path in corpus.files),
        corpus.bytes,
    )
