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

The stream is consumed in *windows*: ``next_window(n)`` returns the units covering positions
``[P, P + n + 1)`` and advances ``P`` by ``n`` — consecutive windows overlap by one token, the
last token of one being the first of the next (the input that predicts the next window's first
label). The unit holding the new ``P`` is the *carry*: it opens the next window. A window is a
list of :class:`Piece` objects: units of one source's block with their window positions.

>>> from procdsl.plan.sources import TaskSource
>>> from procdsl.stream.shares import Shares
>>> from procdsl.stream.units import ProceduralUnits
>>> readers = [ProceduralUnits(TaskSource(rule=(r,), length=4, vocab=10), seed=0, key=r,
...                            context=16, offset=o, loss="output_only")
...            for r, o in (("sort", 0), ("reverse", 12))]
>>> mix = Interleave(readers, Shares([0.75, 0.25], [0.75, 0.25], total=1000))
>>> window = mix.next_window(36)
>>> order = sorted((int(at), p.source) for p in window.pieces for at in p.at)
>>> order                                 # 9-token units: sort due at 6, 18, 30, 42; reverse at 18
[(0, 0), (9, 0), (18, 1), (27, 0), (36, 0)]
>>> window.start, mix.position, mix.delivered
(0, 36, [36, 9])
>>> mix.state_dict()["carry"]             # sort's 4th unit holds position 36: the next window's first
{'source': 0, 'cursor': [0, 3, 0], 'offset': 0}
>>> again = Interleave(readers, Shares([0.75, 0.25], [0.75, 0.25], total=1000))
>>> again.load_state_dict(mix.state_dict())
>>> again.next_window(36).tokens().tolist() == mix.next_window(36).tokens().tolist()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from procdsl.stream.shares import Shares
from procdsl.stream.units import Cursor, UnitReader, Units

#: units of each source whose deadlines are computed at once
LOOKAHEAD = 64


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
    """Units of one source's block in a window: tokens ``[starts[i], stops[i])`` of ``units``
    sit at window positions ``[at[i], at[i] + stops[i] - starts[i])``. ``opens`` is False when
    the first of them continues a unit begun in the previous window (the carry)."""

    source: int
    units: Units
    starts: np.ndarray
    stops: np.ndarray
    at: np.ndarray
    opens: bool = True

    @property
    def lengths(self) -> np.ndarray:
        return self.stops - self.starts

    def placement(self) -> tuple[np.ndarray, np.ndarray]:
        """``(window positions, block positions)`` of every token of the piece."""
        lengths = self.lengths
        block = spans(self.starts, lengths)
        return block + np.repeat(self.at - self.starts, lengths), block


@dataclass(frozen=True)
class Window:
    """Pieces covering stream positions ``[start, start + size)``."""

    start: int
    size: int
    pieces: tuple[Piece, ...]

    def tokens(self) -> np.ndarray:
        """The window's tokens in order (for tests and inspection)."""
        out = np.empty(self.size, np.int32)
        for piece in self.pieces:
            where, block = piece.placement()
            inside = where < self.size       # the last unit runs on into the next window
            out[where[inside]] = piece.units.tokens[block[inside]]
        return out


class Interleave:
    """The unit stream of ``readers`` at ``shares``; ``next_window(n)`` consumes it."""

    def __init__(self, readers: Sequence[UnitReader], shares: Shares):
        if len(readers) != len(shares):
            raise ValueError(f"{len(readers)} readers for {len(shares)} shares")
        self.readers, self.shares = list(readers), shares
        count = len(readers)
        self.position = 0                       # stream position of the carry's first token
        self.delivered = [0] * count            # tokens of the units each source has given
        self._cursors = [Cursor(0, 0, 0)] * count   # next unit of a source without a block
        self._blocks: list[Optional[Units]] = [None] * count
        self._next = [0] * count                # next unit within the block
        self._carry: Optional[Piece] = None
        self._carry_at: Optional[tuple[Cursor, int]] = None

    # ------------------------------------------------------------------------------ stream

    def next_window(self, n: int) -> Window:
        """The units covering ``[position, position + n + 1)``; then ``position += n``."""
        if n < 1:
            raise ValueError("a window holds at least one token")
        pieces: list[Piece] = []
        filled = 0
        if self._carry is not None:
            pieces.append(self._carry)
            filled = int(self._carry.lengths[0])
        last = None
        while filled < n + 1:
            filled, last = self._merge(filled, n + 1, pieces)
        k, units, j, at = last       # the unit holding position + n opens the next window
        offset = n - at
        self._carry = Piece(k, units, units.offsets[j:j + 1] + offset, units.offsets[j + 1:j + 2],
                            np.zeros(1, np.int64), opens=offset == 0)
        self._carry_at = (units.cursor(j), offset)
        window = Window(self.position, n + 1, tuple(pieces))
        self.position += n
        return window

    def _merge(self, filled: int, size: int, pieces: list[Piece]):
        """Place the next units (up to ``LOOKAHEAD`` per source) in deadline order."""
        keys, sources, rank, lengths, blocks = [], [], [], [], {}
        for k in range(len(self.readers)):
            if not self.shares.active(k):
                continue
            units, j = self._block(k)
            width = min(len(units) - j, LOOKAHEAD)
            length = units.lengths[j:j + width]
            due = self.shares.deadline(k, self.delivered[k] + np.cumsum(length) - length + length * 0.5)
            if not np.isfinite(due[0]):      # its share has run out for good
                continue
            keys.append(due)
            sources.append(np.full(width, k))
            rank.append(np.arange(width))
            lengths.append(length)
            blocks[k] = (units, j)
        if not keys:
            raise RuntimeError("no source has a positive share left")
        # safe to place: every unit ordered before the earliest last-computed unit of a source
        bound = min((float(due[-1]), int(src[0])) for due, src in zip(keys, sources))
        keys, sources = np.concatenate(keys), np.concatenate(sources)
        rank, lengths = np.concatenate(rank), np.concatenate(lengths)
        order = np.lexsort((rank, sources, keys))
        safe = int(np.count_nonzero((keys < bound[0]) | ((keys == bound[0]) & (sources <= bound[1]))))
        order = order[:safe]
        ends = np.cumsum(lengths[order])
        take = min(int(np.searchsorted(ends, size - filled)) + 1, safe)
        order, ends = order[:take], ends[:take]
        at = filled + ends - lengths[order]
        taken = sources[order]
        for k, (units, j) in blocks.items():
            mine = taken == k
            count = int(np.count_nonzero(mine))
            if not count:
                continue
            index = j + np.arange(count)
            pieces.append(Piece(k, units, units.offsets[index], units.offsets[index + 1], at[mine]))
            self.delivered[k] += int(units.offsets[j + count] - units.offsets[j])
            self._next[k] = j + count
        k = int(taken[-1])
        units, j = blocks[k]
        last = (k, units, self._next[k] - 1, int(at[-1]))
        return filled + int(ends[-1]), last

    def _block(self, k: int) -> tuple[Units, int]:
        """Source ``k``'s current block and next unit in it, reading a new block when needed."""
        units = self._blocks[k]
        if units is None or self._next[k] == len(units):
            cursor = self._cursors[k] if units is None else units.end
            self._blocks[k], self._next[k] = self.readers[k].read(cursor), 0
        return self._blocks[k], self._next[k]

    # ------------------------------------------------------------------------------- state

    def cursor(self, k: int) -> Cursor:
        """The cursor of source ``k``'s next unit (not yet in the stream)."""
        units = self._blocks[k]
        return self._cursors[k] if units is None else units.cursor(self._next[k])

    def state_dict(self) -> dict[str, Any]:
        """Position, delivered tokens, each source's next cursor and the carry: JSON-able ints."""
        carry = None
        if self._carry_at is not None:
            cursor, offset = self._carry_at
            carry = {"source": self._carry.source, "cursor": list(cursor), "offset": offset}
        return {"position": self.position, "delivered": list(self.delivered),
                "cursors": [list(self.cursor(k)) for k in range(len(self.readers))],
                "carry": carry}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        count = len(self.readers)
        if len(state["delivered"]) != count or len(state["cursors"]) != count:
            raise ValueError(f"state is for {len(state['delivered'])} sources, not {count}")
        self.position = int(state["position"])
        self.delivered = [int(d) for d in state["delivered"]]
        self._cursors = [Cursor(*map(int, c)) for c in state["cursors"]]
        self._blocks, self._next = [None] * count, [0] * count
        self._carry = self._carry_at = None
        carry = state.get("carry")
        if carry is not None:
            k, offset = int(carry["source"]), int(carry["offset"])
            cursor = Cursor(*map(int, carry["cursor"]))
            units = self.readers[k].read(cursor)
            self._carry = Piece(k, units, units.offsets[:1] + offset, units.offsets[1:2],
                                np.zeros(1, np.int64), opens=offset == 0)
            self._carry_at = (cursor, offset)
            if units.cursor(1) == self._cursors[k]:       # the carry's block holds what follows
                self._blocks[k], self._next[k] = units, 1
