"""Read-ahead in a background thread, with the state of what was *consumed*, not produced.

:func:`prefetched` runs ``produce()`` — an iterator of ``(item, state)`` pairs, ``state`` being
the producer's state right after making ``item`` — in a daemon thread up to ``depth`` items
ahead, and yields the items in order. :class:`Consumed` remembers the state attached to the
last item handed out, so a checkpoint taken between two steps holds exactly the state after
the last *trained* batch, however far the thread has run ahead: resume stays exact. An
exception in the producer is raised in the consumer, at the item where it happened; closing
the consumer's iterator stops the thread.

The stream's work is numpy (which releases the GIL in its kernels) and the training step waits
on the accelerator (which releases it too), so one thread overlaps the two; on CUDA the thread
also pins the batch's memory, so the host-to-device copy can be asynchronous.

>>> consumed = Consumed()
>>> def produce():
...     for i in range(5):
...         yield i * 10, {"next": i + 1}
>>> it = prefetched(produce, depth=2, consumed=consumed)
>>> next(it), next(it), consumed.state
(0, 10, {'next': 2})
>>> it.close()
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class Consumed:
    """The state attached to the last item the consumer took (None before the first)."""

    def __init__(self) -> None:
        self.state: Any = None


def prefetched(
    produce: Callable[[], Iterator[tuple[Any, Any]]], *, depth: int, consumed: Consumed
) -> Iterator[Any]:
    """``produce()``'s items, made up to ``depth`` ahead in a thread (module docstring)."""
    if depth < 1:
        for item, state in produce():
            consumed.state = state
            yield item
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for pair in produce():
                if not put(pair):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))

    thread = threading.Thread(target=run, name="procdsl-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            entry = slots.get()
            if entry is _END:
                return
            if isinstance(entry, _Failed):
                raise entry.error
            item, state = entry
            consumed.state = state
            yield item
    finally:
        stop.set()
        thread.join()
