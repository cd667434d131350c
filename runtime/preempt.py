"""Stopping a run cleanly: a signal becomes "finish this step, checkpoint, exit 3".

``SIGTERM`` (a scheduler's preemption or ``kill``), ``SIGINT`` (Ctrl-C) and ``SIGUSR1`` (SLURM's
``--signal=USR1@120`` lead time before the time limit) only set a flag (:class:`StopRequest`):
nothing is interrupted — not a step, not a save, not a collective — so no signal can tear a
checkpoint or print a traceback. A repeated signal changes nothing (the first one is being
handled; ``kill -9`` stops at once, and the run resumes from the newest complete checkpoint).

Every rank must stop at the same step (a checkpoint is collective). :class:`Agreement`
combines each rank's flags with a ``MAX`` all-reduce on a gloo group — CPU tensors, no device
sync — started after step ``s`` and read after step ``s + 1``, so it never waits on the network:
every rank learns the same answer one step later. Rank 0 also puts its wall-clock checkpoint
timer in it (ranks' clocks differ; rank 0's decides). A single process needs no exchange.

:data:`EXIT_STOPPED` is the exit code of a run stopped this way (0 done, 1 failed, 2 usage):
rerun the same command to continue.

>>> agreement = Agreement(world=1)
>>> agreement.exchange([1, 0])
[1, 0]
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any, Optional

#: exit code of a run stopped by a signal after saving its checkpoint
EXIT_STOPPED = 3
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Stopped(Exception):
    """The run stopped on a signal after saving the checkpoint of ``step`` at ``path``."""

    def __init__(self, signal_name: str, step: int, path: str):
        self.signal_name, self.step, self.path = signal_name, step, path
        super().__init__(
            f"stopped by {signal_name} after step {step}: the checkpoint is {path}; "
            "rerun the same command to continue"
        )


class StopRequest:
    """The signal flag of this process (module docstring). Install once, restore when done.

    >>> stop = StopRequest()
    >>> stop.handle(signal.SIGTERM, None); stop.handle(signal.SIGINT, None)
    >>> stop.requested, stop.name, stop.repeats
    (True, 'SIGTERM', 1)
    """

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self.repeats = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        """Route :data:`SIGNALS` to :meth:`handle` (only the main thread may; elsewhere a no-op)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def handle(self, signum: int, frame: Any) -> None:
        if self.signal is None:
            self.signal = signum
        else:
            self.repeats += 1

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


class Agreement:
    """Flags combined over ranks with ``MAX``, answered one exchange late (module docstring).

    ``exchange(flags)`` returns the combined flags of the *previous* call on every rank (zeros
    the first time) when ``world > 1``; with one rank it returns ``flags`` at once. :meth:`drain`
    waits for the exchange in flight (call it before the process group goes away).
    """

    def __init__(self, world: int, group: Any = None):
        self.world, self.group = world, group
        self._pending: Any = None
        self._tensor: Any = None

    @classmethod
    def for_world(cls, world: int) -> Agreement:
        if world == 1:
            return cls(1)
        import torch.distributed as dist

        return cls(world, dist.new_group(backend="gloo"))  # collective: every rank creates it

    def exchange(self, flags: Sequence[int]) -> list[int]:
        if self.world == 1:
            return list(flags)
        import torch
        import torch.distributed as dist

        answer = self.drain() or [0] * len(flags)
        self._tensor = torch.tensor(list(flags), dtype=torch.int64)
        self._pending = dist.all_reduce(self._tensor, op=dist.ReduceOp.MAX, group=self.group, async_op=True)
        return answer

    def drain(self) -> Optional[list[int]]:
        """Wait for the exchange in flight; its combined flags (None when there is none)."""
        if self._pending is None:
            return None
        self._pending.wait()
        self._pending = None
        return [int(v) for v in self._tensor.tolist()]
