"""Locks on a store, for processes that share its file system: ``fcntl.flock`` on a ``lock`` file.

The kernel releases a flock when its holder exits, however it exits (``kill -9`` too), so a lock
never outlives a crashed preparer. ``hold`` waits for the lock; ``try_hold`` does not.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with hold(folder):
...     with try_hold(folder) as again:     # a second open file description: refused, not waited
...         again
False
>>> with try_hold(folder) as got:
...     got
True
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

LOCK = "lock"


@contextmanager
def hold(folder: str) -> Iterator[None]:
    """Hold ``folder``'s lock, waiting as long as another process holds it."""
    with _locked(folder, blocking=True):
        yield


@contextmanager
def try_hold(folder: str) -> Iterator[bool]:
    """Hold ``folder``'s lock if it is free; yields whether it was taken."""
    with _locked(folder, blocking=False) as got:
        yield got


@contextmanager
def _locked(folder: str, *, blocking: bool) -> Iterator[bool]:
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
