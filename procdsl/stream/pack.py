"""Rows: whole units of the interleave laid out into rows, then one rank's rows materialised.

A row holds ``R = context + 1`` tokens (the model reads the first ``context``, the last is
only a label; :mod:`procdsl.stream.batch`). Units come in stream order and are never cut:

* ``padded``: one unit per row at position 0, the rest of the row padding (the paper's layout);
* ``packed``: units fill a row in order while they fit; the first unit that does not fit the
  rest of a row starts the next row, and the rest is padding (next-fit).

Each unit attends only to itself and its positions restart at 0 (``document``/``positions``
of :class:`Rows`); padding is never a target and never attended by a real token.

Layout and content are two steps. :func:`layout_rows` needs only unit *lengths* — it is cheap
and every rank computes it for the whole global batch — and :func:`fill_rows` copies the tokens
of the units that land in a rank's own rows.

>>> layout_rows(np.array([5, 4, 3, 6, 2]), start=0, rows=2, row_len=10, packed=True)
Layout(row=array([0, 0, 1, 1]), col=array([0, 5, 0, 3]), used=4)
>>> layout_rows(np.array([5, 4, 3]), start=1, rows=2, row_len=10, packed=False)
Layout(row=array([0, 1]), col=array([0, 0]), used=2)
>>> layout_rows(np.array([5, 4]), start=0, rows=1, row_len=10, packed=True) is None   # may take more
True
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

__all__ = ["Layout", "Rows", "fill_rows", "layout_rows"]


class Layout(NamedTuple):
    """Where units ``start … start + used - 1`` go: ``row[i]`` and column ``col[i]``."""

    row: np.ndarray
    col: np.ndarray
    used: int


def layout_rows(lengths: np.ndarray, *, start: int, rows: int, row_len: int,
                packed: bool) -> Optional[Layout]:
    """Lay out ``rows`` rows from unit ``start`` of ``lengths`` (each ``≤ row_len``).

    None when ``lengths`` ends before the layout is settled: the last row could still take
    the next unit (packed) or a row has no unit yet — pull more units and ask again.
    """
    available = len(lengths) - start
    if not packed:
        if available < rows:
            return None
        return Layout(np.arange(rows), np.zeros(rows, np.int64), rows)
    ends = np.cumsum(lengths[start:])
    # the rows hold at most rows × row_len tokens: the units past that are not needed here
    needed = min(int(ends.searchsorted(rows * row_len, side="right")) + 1, len(ends))
    cumulative = ends[:needed].tolist()    # bisect on a list: no numpy call per row
    firsts, first, base = [], 0, 0
    for _ in range(rows):
        # units first … stop-1 fit: their cumulative end stays within base + row_len
        stop = bisect.bisect_right(cumulative, base + row_len, first)
        if stop >= available:
            return None                    # the next unit might still fit: unknown yet
        firsts.append(first)
        base, first = cumulative[stop - 1], stop
    counts = np.diff(np.append(firsts, first))
    row = np.repeat(np.arange(rows), counts)
    starts = ends[:first] - lengths[start:start + first]
    row_base = np.concatenate([[0], ends[np.array(firsts[1:], np.int64) - 1]]) if rows > 1 else np.zeros(1, np.int64)
    return Layout(row, starts - row_base[row], first)


@dataclass(frozen=True)
class Rows:
    """``[rows, row_len]`` arrays of one rank's rows (see :class:`procdsl.stream.batch.Batch`).

    ``document[r, t]`` numbers the units of row ``r`` from 0 (padding takes the next number);
    ``positions[r, t]`` counts from 0 in each unit (and in the padding).
    """

    tokens: np.ndarray      # int32
    targets: np.ndarray     # bool
    source: np.ndarray      # int8
    starts: np.ndarray      # bool: first token of a unit
    positions: np.ndarray   # int32
    document: np.ndarray    # int16


def fill_rows(units: list[tuple[int, np.ndarray, np.ndarray, int, int]], *, rows: int,
              row_len: int, pad_id: int) -> Rows:
    """Materialise rows from ``units``: ``(source, tokens, targets, row, col)`` for every unit
    that lands in them (``row`` counted from this rank's first row), in stream order.

    >>> out = fill_rows([(0, np.array([7, 8, 9]), np.array([False, True, True]), 0, 0),
    ...                  (1, np.array([5, 6]), np.array([False, True]), 0, 3)],
    ...                 rows=1, row_len=6, pad_id=0)
    >>> out.tokens.tolist(), out.positions.tolist(), out.document.tolist()
    ([[7, 8, 9, 5, 6, 0]], [[0, 1, 2, 0, 1, 0]], [[0, 0, 0, 1, 1, 2]])
    >>> out.targets.astype(int).tolist(), out.starts.astype(int).tolist()
    ([[0, 1, 1, 0, 1, 0]], [[1, 0, 0, 1, 0, 0]])
    """
    shape = (rows, row_len)
    tokens = np.full(shape, pad_id, np.int32)
    targets = np.zeros(shape, bool)
    source = np.zeros(shape, np.int8)
    starts = np.zeros(shape, bool)
    column = np.arange(row_len)
    if not units:
        positions = np.broadcast_to(column, shape).astype(np.int32)
        return Rows(tokens, targets, source, starts, positions, np.zeros(shape, np.int16))
    count = len(units)
    lengths = np.fromiter((len(u[1]) for u in units), np.int64, count)
    row = np.fromiter((u[3] for u in units), np.int64, count)
    col = np.fromiter((u[4] for u in units), np.int64, count)
    filled = np.bincount(row, weights=lengths, minlength=rows).astype(np.int64)
    unit_start = np.cumsum(lengths) - lengths          # in the units' concatenation
    if not np.array_equal(col, unit_start - (np.cumsum(filled) - filled)[row]):
        raise ValueError("units must fill each row from column 0, back to back, in stream order")
    # so the cells a row's units cover are its first `filled` ones, in the units' order
    used = column < filled[:, None]
    tokens[used] = np.concatenate([u[1] for u in units])
    targets[used] = np.concatenate([u[2] for u in units])
    source[used] = np.repeat(np.fromiter((u[0] for u in units), np.int8, count), lengths)
    starts[row, col] = True
    # padding: numbered after its row's units, positions counted from its start
    document = np.repeat(np.bincount(row, minlength=rows).astype(np.int16)[:, None], row_len, axis=1)
    positions = (column - filled[:, None]).astype(np.int32)
    document[used] = np.repeat(np.arange(count) - np.searchsorted(row, row), lengths)
    positions[used] = np.arange(int(lengths.sum())) - np.repeat(unit_start, lengths)
    return Rows(tokens, targets, source, starts, positions, document)
