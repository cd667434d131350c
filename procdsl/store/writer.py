"""One part of a store (one shard's documents), appended in chunks, committed, resumable.

A part is a directory of flat arrays: ``tokens.bin`` (every document's ids and its EOS, in the
store's dtype), ``ends.bin`` (``int64``: where each document ends in ``tokens``), ``mask.bin``
(``uint8`` targets, only for sources with answers), and ``progress.json``: the documents and
tokens *committed*. A commit flushes the arrays to disk first and then replaces
``progress.json`` atomically, so after any crash the committed prefix is intact; reopening a
part cuts whatever lies beyond it (a chunk being written when ``kill -9`` came) and appends
from there. A failed write (a full disk) cuts back to the last commit before it reports, so
nothing half-written stays behind.

>>> import tempfile, numpy as np
>>> part = PartWriter(tempfile.mkdtemp(), dtype="uint16", masked=False, label="c4 (train)")
>>> part.append(np.array([5, 6, 9, 7, 9], np.uint16), np.array([3, 2]), None)
>>> part.commit()
>>> part.append(np.array([1, 2], np.uint16), np.array([2]), None)      # not committed...
>>> again = PartWriter(part.folder, dtype="uint16", masked=False, label="c4 (train)")
>>> again.documents, again.tokens, np.fromfile(again.path("ends"), np.int64).tolist()
(2, 5, [3, 5])
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO, Optional

import numpy as np

from procdsl.store.errors import StoreError
from procdsl.store.manifest import PROGRESS, read_json, write_json

ARRAYS = ("tokens", "ends", "mask")


class PartWriter:
    """Appends to the part in ``folder``, resuming from its last commit."""

    def __init__(self, folder: str, *, dtype: str, masked: bool, label: str):
        self.folder, self.dtype, self.masked, self.label = folder, np.dtype(dtype), masked, label
        os.makedirs(folder, exist_ok=True)
        try:
            state = read_json(os.path.join(folder, PROGRESS)) or {}
        except ValueError:
            state = {}  # a progress file is replaced atomically: unreadable means foreign
        self.documents = int(state.get("documents", 0))
        self.tokens = int(state.get("tokens", 0))
        self.exhausted = bool(state.get("exhausted", False))
        self._handles: dict[str, BinaryIO] = {}
        self._guard(self._cut)
        for name in self._arrays():
            self._handles[name] = open(self.path(name), "ab")
        self._pending = (self.documents, self.tokens)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.bin")

    def append(self, ids: np.ndarray, lengths: np.ndarray, mask: Optional[np.ndarray]) -> None:
        """Append documents (``ids`` of all, ``lengths`` of each, ``mask`` when masked)."""
        documents, tokens = self._pending
        ends = tokens + np.cumsum(lengths, dtype=np.int64)

        def write() -> None:
            _write(self._handles["tokens"], np.ascontiguousarray(ids, self.dtype).tobytes())
            _write(self._handles["ends"], ends.tobytes())
            if self.masked:
                _write(self._handles["mask"], np.ascontiguousarray(mask, np.uint8).tobytes())

        self._guard(write)
        self._pending = (documents + len(lengths), int(ends[-1]) if len(ends) else tokens)

    def commit(self, *, exhausted: bool = False) -> None:
        """Make everything appended so far durable, then record it in ``progress.json``."""

        def flush() -> None:
            for handle in self._handles.values():
                handle.flush()
                os.fsync(handle.fileno())
            write_json(
                os.path.join(self.folder, PROGRESS),
                {"documents": self._pending[0], "tokens": self._pending[1], "exhausted": exhausted},
            )

        self._guard(flush)
        self.documents, self.tokens = self._pending
        self.exhausted = exhausted

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def _arrays(self) -> list[str]:
        return [name for name in ARRAYS if name != "mask" or self.masked]

    def _cut(self) -> None:
        """Cut every array back to the committed prefix."""
        sizes = {"tokens": self.tokens * self.dtype.itemsize, "ends": self.documents * 8, "mask": self.tokens}
        for name in self._arrays():
            with open(self.path(name), "ab") as handle:
                if handle.tell() < sizes[name]:
                    raise StoreError(
                        self.label,
                        f"{self.path(name)} is shorter than its committed "
                        "progress (the store was damaged); delete the store's directory "
                        f"{os.path.dirname(self.folder)} and prepare again",
                    )
                handle.truncate(sizes[name])

    def _guard(self, action) -> None:
        """Run ``action``; on an OSError cut back to the last commit and report the source."""
        try:
            action()
        except OSError as err:
            self.close()
            self._pending = (self.documents, self.tokens)
            try:
                self._cut()
            except OSError:
                pass
            if err.errno == errno.ENOSPC:
                raise StoreError(
                    self.label,
                    f"no space left on the device of {self.folder}; the "
                    f"{self.documents:,} documents committed so far are kept. Free space "
                    "(or point --cache-dir / PROCDSL_CACHE elsewhere) and prepare again: it "
                    "resumes",
                ) from None
            raise StoreError(self.label, f"cannot write {self.folder}: {err.strerror or err}") from None


def _write(handle: BinaryIO, data: bytes) -> None:
    """One write of an array's bytes (a function of its own, so tests can fill the disk)."""
    handle.write(data)
