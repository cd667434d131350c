"""When a run checkpoints, and what makes a checkpoint count: policy, sidecar, retention, async.

A run saves a full checkpoint (TorchTitan's ``CheckpointManager.save``: model, optimizer,
schedule, stream, RNG) after a step when any of these holds:

* the step ends a phase (the next phase takes over from it);
* ``runtime.checkpoint_every = N steps`` divides the run's step;
* ``runtime.checkpoint_minutes`` of wall time passed since the last save (default
  :data:`DEFAULT_MINUTES`; rank 0's clock decides, through ``procdsl.runtime.preempt.Agreement``);
* a signal asked the run to stop (``procdsl.runtime.preempt``).

A save is complete only when rank 0 has written the sidecar (``procdsl.runtime.sidecar``)
after DCP finished; a directory about to be written again is removed first, so no stale
sidecar can vouch for new files. With ``runtime { async_checkpoint }`` DCP writes in the
background (TorchTitan's ``async_mode = "async"``) while training goes on; the sidecar follows
when the write is done (checked after every step), and phase ends and stops wait for it.
``runtime { keep = N }`` keeps the N newest complete checkpoints and every phase's last one,
removing older ones once a newer sidecar is written.

>>> from types import SimpleNamespace
>>> due_by_step(SimpleNamespace(checkpoint_every=4), 8), due_by_step(SimpleNamespace(checkpoint_every=None), 8)
(True, False)
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from torch.distributed.checkpoint.api import CheckpointException

from . import internals, sidecar

#: wall-time checkpoint interval when ``runtime.checkpoint_minutes`` is unset
DEFAULT_MINUTES = 30.0


class SaveFailed(Exception):
    """A checkpoint could not be written (the message names it and the reason)."""


def reason(error: BaseException) -> str:
    """The cause of a failed save in a few words (DCP wraps each rank's error with its stack).

    >>> reason(OSError(28, "No space left on device"))
    'No space left on device'
    """
    failures = getattr(error, "failures", None)
    if failures:
        first = next(iter(failures.values()))
        error = first[0] if isinstance(first, tuple) else first
    return getattr(error, "strerror", None) or str(error).splitlines()[0]


def due_by_step(runtime: Any, step: int) -> bool:
    every = runtime.checkpoint_every
    return bool(every) and step % every == 0


def interval_seconds(runtime: Any) -> float:
    minutes = getattr(runtime, "checkpoint_minutes", None)
    return (DEFAULT_MINUTES if minutes is None else minutes) * 60.0


class Saver:
    """Checkpoints of one run on one rank (module docstring). Every rank calls :meth:`save` for
    the same steps (a save is collective); only rank 0 writes sidecars and removes old ones."""

    def __init__(
        self,
        folder: str,
        *,
        runtime: Any,
        rank: int,
        world: int,
        phase_ends: set[int],
        note: Callable[[str], None],
    ):
        self.folder, self.runtime, self.rank, self.world = folder, runtime, rank, world
        self.phase_ends, self.note = phase_ends, note
        self.every_seconds = interval_seconds(runtime)
        self.keep: Optional[int] = getattr(runtime, "keep", None)
        self.last_save = time.monotonic()
        self._pending: Optional[tuple[Any, str, dict[str, Any]]] = None
        self._finisher = (
            ThreadPoolExecutor(1, thread_name_prefix="procdsl-sidecar")
            if rank == 0 and getattr(runtime, "async_checkpoint", False)
            else None
        )
        self._finishing: list[Any] = []

    def due_by_time(self) -> bool:
        """Rank 0's wall-clock timer (other ranks learn it through the agreement)."""
        return self.rank == 0 and time.monotonic() - self.last_save >= self.every_seconds

    def save(self, checkpointer: Any, step: int, record: dict[str, Any], *, wait: bool) -> str:
        """Save step ``step``; with ``wait`` (or without async) return only once it is complete."""
        import torch.distributed as dist

        path = sidecar.checkpoint_path(self.folder, step)
        self.finish()  # one save in flight at a time
        if self.rank == 0 and os.path.isdir(path):
            shutil.rmtree(path)  # a damaged or stale save of the same step
        if self.world > 1:
            dist.barrier()
        self.last_save = time.monotonic()
        try:
            checkpointer.save(step)
        except (OSError, CheckpointException) as error:
            raise SaveFailed(f"cannot write the checkpoint {path}: {reason(error)}") from None
        future = internals.pending_save(checkpointer)
        if future is None or wait:
            if future is not None:
                self._result(future, path)
            self._complete(path, record)
        else:
            self._pending = (future, path, record)
        return path

    def poll(self) -> None:
        """Complete an async save whose files are written (after a step; never blocks)."""
        if self._pending is not None and self._pending[0].done():
            future, path, record = self._pending
            self._pending = None
            self._result(future, path)
            if self._finisher is not None:
                self._finishing.append(self._finisher.submit(self._complete, path, record))

    def finish(self) -> None:
        """Wait for the save in flight and its sidecar (before another save, a stop, the end)."""
        if self._pending is not None:
            future, path, record = self._pending
            self._pending = None
            self._result(future, path)
            self._complete(path, record)
        for done in self._finishing:
            done.result()
        self._finishing.clear()

    def close(self) -> None:
        try:
            self.finish()
        finally:
            if self._finisher is not None:
                self._finisher.shutdown(wait=True)

    def _result(self, future: Any, path: str) -> None:
        try:
            future.result()
        except (OSError, CheckpointException) as error:
            raise SaveFailed(f"cannot write the checkpoint {path}: {reason(error)}") from None

    def _complete(self, path: str, record: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        try:
            sidecar.write(path, record)
        except OSError as error:
            raise SaveFailed(f"cannot complete the checkpoint {path}: {error.strerror or error}") from None
        if self.keep:
            for removed in sidecar.prune(
                self.folder, keep=self.keep, newest=record["global_step"], protect=self.phase_ends
            ):
                self.note(f"removed {removed} (keep = {self.keep})")
