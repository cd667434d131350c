"""Rows: whole units of the interleave laid out into rows, then one rank's rows materialised.

A row holds ``R = context + 1`` tokens (the model reads the first ``context``, the last is
only a label; :mod:`procdsl.stream.batch`). Units come in stream order and are never cut:

* ``padded``: one unit per row at position 0, the rest of the row padding (the paper's layout);
* ``packed``: units fill a row in order while they fit; the first unit that does not fit the
  rest of a row starts the next row, and the rest is padding (next-fit).

Each unit attends only to itself and its positions restart at 0 (``document``/``positions``
of :class:`Rows`); padding is never a target and never attended by a real token.

Layout and content are two steps. :func:`row_bounds` needs only unit *lengths* — it is cheap
and every rank computes it for the whole global batch, for several batches at once — and
:func:`fill_rows` copies the tokens of the units that land in a rank's own rows.

>>> row_bounds(np.array([5, 4, 3, 6, 2, 9, 1]), start=0, rows=2, row_len=10, packed=True, steps=2)
array([[0, 2, 4]])
>>> row_bounds(np.array([5, 4, 3]), start=1, rows=2, row_len=10, packed=False, steps=3)
array([[1, 2, 3]])
>>> row_bounds(np.array([5, 4]), start=0, rows=1, row_len=10, packed=True, steps=1)   # may take more
array([], shape=(0, 2), dtype=int64)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Rows", "fill_rows", "row_bounds"]


def row_bounds(
    lengths: np.ndarray, *, start: int, rows: int, row_len: int, packed: bool, steps: int
) -> np.ndarray:
    """Lay out up to ``steps`` global batches of ``rows`` rows from unit ``start`` of ``lengths``
    (each ``≤ row_len``): ``bounds[s, r]`` is the first unit of row ``r`` of batch ``s`` and
    ``bounds[s, rows]`` the first unit after the batch, so batch ``s + 1`` starts there.

    Only batches the units settle are returned: a packed row whose units end with the queue
    could still take the next unit, a padded row needs its unit — pull more units and ask again
    for the rest. One ``searchsorted`` gives, for every unit, where a row starting at it ends
    (next-fit); then rows follow one another in a loop over plain ints.
    """
    available = len(lengths) - start
    if not packed:
        count = max(0, min(steps, available // rows))
        return start + np.arange(count)[:, None] * rows + np.arange(rows + 1)[None, :]
    ends = np.cumsum(lengths[start : start + available])
    nxt = ends.searchsorted(ends - lengths[start : start + available] + row_len, side="right").tolist()
    out: list[list[int]] = []
    first = 0
    while len(out) < steps:
        bounds = [first]
        for _ in range(rows):
            if first >= available or nxt[first] >= available:
                return _bounds_array(out, start, rows)  # the row might take more: unknown
            first = nxt[first]
            bounds.append(first)
        out.append(bounds)
    return _bounds_array(out, start, rows)


def _bounds_array(bounds: list[list[int]], start: int, rows: int) -> np.ndarray:
    return np.array(bounds, np.int64).reshape(len(bounds), rows + 1) + start


@dataclass(frozen=True)
class Rows:
    """``[rows, row_len]`` arrays of one rank's rows (see :class:`procdsl.stream.batch.Batch`).

    ``document[r, t]`` numbers the units of row ``r`` from 0 (padding takes the next number);
    ``positions[r, t]`` counts from 0 in each unit (and in the padding).
    """

    tokens: np.ndarray  # int32
    targets: np.ndarray  # bool
    source: np.ndarray  # int8
    starts: np.ndarray  # bool: first token of a unit
    positions: np.ndarray  # int32
    document: np.ndarray  # int16


def fill_rows(
    tokens: np.ndarray,
    targets: np.ndarray,
    *,
    source: np.ndarray,
    lengths: np.ndarray,
    row: np.ndarray,
    rows: int,
    row_len: int,
    pad_id: int,
) -> Rows:
    """Materialise ``rows`` rows from units given in stream order: ``tokens``/``targets`` the
    units concatenated, per unit its ``source`` id, ``lengths`` and ``row`` (non-decreasing).
    A row's units fill it from column 0, back to back; the rest of the row is padding.

    >>> out = fill_rows(np.array([7, 8, 9, 5, 6]), np.array([0, 1, 1, 0, 1]) > 0, source=np.array([0, 1]),
    ...                 lengths=np.array([3, 2]), row=np.array([0, 0]), rows=1, row_len=6, pad_id=0)
    >>> out.tokens.tolist(), out.positions.tolist(), out.document.tolist()
    ([[7, 8, 9, 5, 6, 0]], [[0, 1, 2, 0, 1, 0]], [[0, 0, 0, 1, 1, 2]])
    >>> out.targets.astype(int).tolist(), out.starts.astype(int).tolist()
    ([[0, 1, 1, 0, 1, 0]], [[1, 0, 0, 1, 0, 0]])
    """
    shape = (rows, row_len)
    column = np.arange(row_len)
    filled = np.bincount(row, weights=lengths, minlength=rows).astype(np.int64)
    if len(row) and ((np.diff(row) < 0).any() or row[-1] >= rows or filled.max() > row_len):
        raise ValueError("units must come in row order and fit their rows")
    # the cells a row's units cover are its first `filled` ones, in the units' order
    used = column < filled[:, None]
    out_tokens = np.full(shape, pad_id, np.int32)
    out_tokens[used] = tokens
    out_targets = np.zeros(shape, bool)
    out_targets[used] = targets
    out_source = np.zeros(shape, np.int8)
    out_source[used] = np.repeat(np.asarray(source, np.int8), lengths)
    unit_start = np.cumsum(lengths) - lengths  # in the concatenation
    col = unit_start - (np.cumsum(filled) - filled)[row]
    starts = np.zeros(shape, bool)
    starts[row, col] = True
    # padding: numbered after its row's units, positions counted from its start
    document = np.repeat(np.bincount(row, minlength=rows).astype(np.int16)[:, None], row_len, axis=1)
    document[used] = np.repeat(np.arange(len(row)) - np.searchsorted(row, row), lengths)
    positions = (column - filled[:, None]).astype(np.int32)
    positions[used] = np.arange(int(lengths.sum())) - np.repeat(unit_start, lengths)
    return Rows(out_tokens, out_targets, out_source, starts, positions, document)
