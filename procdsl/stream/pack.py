"""Packing: a window of the unit stream → one rank's rows, and the global batch's token counts.

A global batch of ``B`` rows of context ``C`` is the window ``[P, P + B·C + 1)`` of the stream
(:meth:`procdsl.stream.mixture.Interleave.next_window` with ``n = B·C``); row ``i`` is
``[P + i·C, P + i·C + C + 1)``. Rank ``r`` of ``W`` owns rows ``[r·b, (r + 1)·b)``, ``b = B / W``
— one contiguous span of the window, ``[r·b·C, (r + 1)·b·C + 1)`` — and copies only the runs
that meet it. Counts cover the global batch's labels, positions ``[1, B·C]`` of the window.

>>> from procdsl.stream.units import Cursor, cut_units
>>> units = cut_units(np.arange(10, dtype=np.int32), np.ones(10, bool), np.array([0, 4, 10]),
...                   context=8, first_item=0, epoch=0, end=Cursor(0, 2, 0))
>>> piece = Piece(0, units, units.offsets[:-1], units.offsets[1:], np.array([0, 4]))
>>> window = Window(0, 10, (piece,))
>>> rows = pack_rows(window, context=3, first_row=1, rows=2)
>>> rows.tokens.tolist(), rows.targets.astype(int).tolist(), rows.starts.astype(int).tolist()
([[3, 4, 5, 6], [6, 7, 8, 9]], [[0, 0, 1, 1], [0, 1, 1, 1]], [[0, 1, 0, 0], [0, 0, 0, 0]])
>>> count_labels(window, n=9, sources=1)           # labels 1…9: 9 tokens, token 4 no target
([9], [8])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from procdsl.stream.mixture import Piece, Window

__all__ = ["Piece", "Rows", "Window", "count_labels", "pack_rows"]


@dataclass(frozen=True)
class Rows:
    """``[rows, context + 1]`` arrays of one rank (see :class:`procdsl.stream.batch.Batch`)."""

    tokens: np.ndarray
    targets: np.ndarray
    source: np.ndarray
    starts: np.ndarray


def pack_rows(window: Window, *, context: int, first_row: int, rows: int) -> Rows:
    """Rows ``[first_row, first_row + rows)`` of the window, each ``context + 1`` tokens."""
    lo = first_row * context
    hi = lo + rows * context + 1
    size = hi - lo
    tokens = np.empty(size, np.int32)
    targets = np.empty(size, bool)
    source = np.empty(size, np.int8)
    starts = np.zeros(size, bool)
    for piece in window.pieces:
        near = (piece.at < hi) & (piece.at + piece.lengths > lo)
        if not near.any():
            continue                         # another rank's rows: nothing to copy
        part = piece if near.all() else Piece(piece.source, piece.units, piece.starts[near],
                                              piece.stops[near], piece.at[near],
                                              piece.opens or not near[0])
        where, block = part.placement()
        keep = (where >= lo) & (where < hi)
        where, block = where[keep] - lo, block[keep]
        tokens[where] = part.units.tokens[block]
        targets[where] = part.units.targets[block]
        source[where] = part.source
        opening = part.at[0 if part.opens else 1:]
        opening = opening[(opening >= lo) & (opening < hi)]
        starts[opening - lo] = True
    index = np.arange(rows)[:, None] * context + np.arange(context + 1)
    out = Rows(tokens[index], targets[index], source[index], starts[index])
    out.targets[:, 0] = False                # the previous row's last label
    return out


def count_labels(window: Window, *, n: int, sources: int) -> tuple[list[int], list[int]]:
    """Per source: labels and target labels among window positions ``[1, n]``."""
    tokens, targets = [0] * sources, [0] * sources
    for piece in window.pieces:
        a = np.maximum(piece.at, 1)
        b = np.minimum(piece.at + piece.lengths, n + 1)
        b = np.maximum(a, b)
        prefix = piece.units.target_prefix
        first = piece.starts + (a - piece.at)
        last = piece.starts + (b - piece.at)
        tokens[piece.source] += int((b - a).sum())
        targets[piece.source] += int((prefix[last] - prefix[first]).sum())
    return tokens, targets
