"""The interleave: one deterministic stream of units from many sources, by token share.

No coin flips. Source ``k`` has delivered ``D_k`` tokens (whole units); its next unit, of
``L`` tokens, is *due* at the stream position where its planned cumulative share reaches the
unit's middle, ``deadline_k(D_k + L / 2)`` (:class:`procdsl.stream.shares.Shares`). The next
unit comes from the source due first; ties go to the earlier source of the mix. With constant
shares the deadline is ``(D_k + L / 2) / s_k`` — weighted fair queueing by tokens — so every
source stays within about one unit of its planned tokens at every point of the stream, and a
ramp is followed as closely.

A source's deadlines depend only on its own units, so the stream is the merge of the sources'
deadline sequences sorted by ``(deadline, source)``: it is computed for many units at once
(``LOOKAHEAD`` per source), which gives exactly the unit-by-unit choice above.

The stream is consumed unit by unit: ``pull(n)`` places the next units in deadline order until
at least ``n`` more tokens are out, and returns them as :class:`Piece` objects (units of one
source's block, with their stream positions). Units are never cut here: how they become rows is
:mod:`procdsl.stream.pack`'s job, and the packer hands back what it has not placed yet through
:meth:`Interleave.rewound` when it saves its state.

>>> from procdsl.plan.sources import TaskSource
>>> from procdsl.stream.shares import Shares
>>> from procdsl.stream.units import ProceduralUnits
>>> readers = [ProceduralUnits(TaskSource(rule=(r,), length=4, vocab=10), seed=0, key=r,
...                            context=16, offset=o, loss="output_only")
...            for r, o in (("sort", 0), ("reverse", 12))]
>>> mix = Interleave(readers, Shares([0.75, 0.25], [0.75, 0.25], total=1000))
>>> pieces = mix.pull(36)
>>> order = sorted((int(at), p.source) for p in pieces for at in p.at)
>>> order                                 # 9-token units: sort due at 4.5, 16.5, 28.5; reverse at 18
[(0, 0), (9, 0), (18, 1), (27, 0)]
>>> mix.position, mix.delivered
(36, [27, 9])
>>> state = mix.state_dict()
>>> again = Interleave(readers, Shares([0.75, 0.25], [0.75, 0.25], total=1000))
>>> again.load_state_dict(state)
>>> [int(at) for p in again.pull(9) for at in p.at] == [int(at) for p in mix.pull(9) for at in p.at]
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from procdsl.stream.shares import Shares
from procdsl.stream.units import Cursor, UnitReader, Units

#: units of each source whose deadlines are computed at once
LOOKAHEAD = 1024


def spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])``, vectorised.

    >>> spans(np.array([5, 0]), np.array([2, 3])).tolist()
    [5, 6, 0, 1, 2]
    """
    total = int(lengths.sum())
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total) + shift


@dataclass(frozen=True)
class Piece:
    """Units ``index`` of one source's block ``units``, at stream positions ``at``."""

    source: int
    units: Units
    index: np.ndarray
    at: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.units.lengths[self.index]

    @property
    def starts(self) -> np.ndarray:
        """Where each unit's tokens start in ``units.tokens``."""
        return self.units.offsets[self.index]


class Interleave:
    """The unit stream of ``readers`` at ``shares``; ``pull(n)`` consumes it."""

    def __init__(self, readers: Sequence[UnitReader], shares: Shares):
        if len(readers) != len(shares):
            raise ValueError(f"{len(readers)} readers for {len(shares)} shares")
        self.readers, self.shares = list(readers), shares
        count = len(readers)
        self.position = 0  # tokens of every unit pulled so far
        self.delivered = [0] * count  # tokens of the units each source has given
        self._cursors = [Cursor(0, 0, 0)] * count  # next unit of a source without a block
        self._blocks: list[Optional[Units]] = [None] * count
        self._next = [0] * count  # next unit within the block

    # ------------------------------------------------------------------------------ stream

    def pull(self, n: int) -> list[Piece]:
        """The next units, in deadline order, until at least ``n`` more tokens are out (at
        least one unit); ``Piece.at`` holds each unit's stream position."""
        pieces: list[Piece] = []
        goal = self.position + max(n, 1)
        while self.position < goal:
            self.position = self._merge(self.position, goal, pieces)
        return pieces

    def _merge(self, filled: int, goal: int, pieces: list[Piece]) -> int:
        """Place the next units (up to ``LOOKAHEAD`` per source) in deadline order, stopping
        at the first that reaches ``goal``; returns the position after the last placed."""
        key_parts: list[np.ndarray] = []
        source_parts: list[np.ndarray] = []
        rank_parts: list[np.ndarray] = []
        length_parts: list[np.ndarray] = []
        blocks: dict[int, tuple[Units, int]] = {}
        for k in range(len(self.readers)):
            if not self.shares.active(k):
                continue
            units, j = self._block(k)
            width = min(len(units) - j, LOOKAHEAD)
            length = units.lengths[j : j + width]
            due = self.shares.deadline(k, self.delivered[k] + np.cumsum(length) - length + length * 0.5)
            if not np.isfinite(due[0]):  # its share has run out for good
                continue
            key_parts.append(due)
            source_parts.append(np.full(width, k))
            rank_parts.append(np.arange(width))
            length_parts.append(length)
            blocks[k] = (units, j)
        if not key_parts:
            raise RuntimeError("no source has a positive share left")
        # safe to place: every unit ordered before the earliest last-computed unit of a source
        bound = min((float(due[-1]), int(src[0])) for due, src in zip(key_parts, source_parts))
        keys, sources = np.concatenate(key_parts), np.concatenate(source_parts)
        rank, lengths = np.concatenate(rank_parts), np.concatenate(length_parts)
        order = np.lexsort((rank, sources, keys))
        safe = int(np.count_nonzero((keys < bound[0]) | ((keys == bound[0]) & (sources <= bound[1]))))
        order = order[:safe]
        ends = np.cumsum(lengths[order])
        take = min(int(np.searchsorted(ends, goal - filled)) + 1, safe)
        order, ends = order[:take], ends[:take]
        at = filled + ends - lengths[order]
        taken = sources[order]
        for k, (units, j) in blocks.items():
            mine = taken == k
            count = int(np.count_nonzero(mine))
            if not count:
                continue
            index = j + np.arange(count)
            pieces.append(Piece(k, units, index, at[mine]))
            self.delivered[k] += int(units.offsets[j + count] - units.offsets[j])
            self._next[k] = j + count
        return filled + int(ends[-1])

    def _block(self, k: int) -> tuple[Units, int]:
        """Source ``k``'s current block and next unit in it, reading a new block when needed."""
        units = self._blocks[k]
        if units is None or self._next[k] == len(units):
            cursor = self._cursors[k] if units is None else units.end
            units = self.readers[k].read(cursor)
            self._blocks[k], self._next[k] = units, 0
        return units, self._next[k]

    # ------------------------------------------------------------------------------- state

    def cursor(self, k: int) -> Cursor:
        """The cursor of source ``k``'s next unit (not yet in the stream)."""
        units = self._blocks[k]
        return self._cursors[k] if units is None else units.cursor(self._next[k])

    def state_dict(self) -> dict[str, Any]:
        """Position, delivered tokens and each source's next cursor: JSON-able ints."""
        return {
            "position": self.position,
            "delivered": list(self.delivered),
            "cursors": [list(self.cursor(k)) for k in range(len(self.readers))],
        }

    def rewound(self, first_unread: dict[int, Cursor], unread_tokens: Sequence[int]) -> dict[str, Any]:
        """The state as if units pulled but not used had never been pulled: source ``k``'s
        cursor goes back to ``first_unread[k]`` (its first such unit) and its delivered tokens
        down by ``unread_tokens[k]``. The deadline order depends only on what each source
        delivered and on its next unit, so pulling again yields them again, in the same order."""
        state = self.state_dict()
        for k, cursor in first_unread.items():
            state["cursors"][k] = list(cursor)
        for k, tokens in enumerate(unread_tokens):
            state["delivered"][k] -= int(tokens)
            state["position"] -= int(tokens)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        count = len(self.readers)
        if len(state["delivered"]) != count or len(state["cursors"]) != count:
            raise ValueError(f"state is for {len(state['delivered'])} sources, not {count}")
        self.position = int(state["position"])
        self.delivered = [int(d) for d in state["delivered"]]
        self._cursors = [Cursor(*map(int, c)) for c in state["cursors"]]
        self._blocks, self._next = [None] * count, [0] * count
