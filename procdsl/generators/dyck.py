"""Bracket languages: complete k-Dyck strings (``dyck``) and the shuffle of k Dyck-1 (``shuffle_dyck``).

Token ids (both): ``0 … k-1`` open a bracket of that type, ``i + k`` closes type ``i``,
``PAD = 2k`` (vocabulary ``2k + 1``). ``length`` defaults to the phase's context. Loss on every
token but the first (the paper's "every position but the last", counted in targets).

``dyck``: a complete balanced string of exactly ``length`` tokens (even). At depth 0 open a
uniform type; otherwise, while the remaining positions exceed the depth, open a uniform type
with probability ``p_open`` (only if ``depth < remaining - 1`` and, when set, ``depth <
max_depth``) or close the top bracket; once ``remaining = depth``, close everything.

``shuffle_dyck``: each type is balanced on its own and types interleave freely. At total depth 0
open a uniform type; at total depth ``>= max_depth`` close; otherwise open (uniform type) with
probability ``p_open``, or close a type drawn uniformly among the types with an open bracket.
The string is cut at ``length`` tokens, so it usually ends with brackets still open.

Both are generated position by position, vectorised across the block's examples. Per position
the block draws two uniforms per example, ``coin`` (open or not) and ``which`` (the type:
``floor(which * k)`` when opening; for ``shuffle_dyck`` closes, the ``floor(which * m)``-th of
the ``m`` open types in list order, which is still uniform: a type is appended when it opens and,
when its last bracket closes, the last listed type takes its place).

Since the walk of depths never depends on the types, ``dyck`` first walks (two numpy calls per
position) and then gives each close the type of its open all at once, by a stable sort on depth
level (see :func:`_match`); ``shuffle_dyck`` keeps its open types as it goes (:class:`_OpenTypes`).

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.sources import DyckSource, ShuffleDyckSource
>>> src = DyckSource(k=3, length=12)
>>> print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
(0 [(0] [)0] [)0] [(0] [)0] [(1] [(0] [)0] [)1] [(2] [)2]
>>> src = ShuffleDyckSource(k=3, length=12, max_depth=3)
>>> print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
(0 [(0] [)0] [)0] [(0] [)0] [(1] [(0] [)0] [)1] [(2] [(2]
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.core import CHUNK, Block, Grid, default_length, top
from procdsl.plan.sources import DyckSource, ShuffleDyckSource


def _grid(tokens: np.ndarray, length: np.ndarray) -> Grid:
    """Rows of bracket ids as a grid: loss on every token but the first, cut to ``length``."""
    mask = np.ones(tokens.shape, bool)
    mask[:, 0] = False
    width = tokens.shape[1]
    keep = None if (length == width).all() else np.arange(width)[None, :] < length[:, None]
    return Grid(tokens, mask, keep)


def _scratch(size: int, n: int, dtype) -> np.ndarray:
    """An uninitialised ``(size, n)`` array whose rows are not 4 KiB apart: transposing it then
    does not thrash one cache set (a plain ``n = 2048`` int16 array would)."""
    return np.empty((size, n + 32), dtype)[:, :n]


def _shared(values: np.ndarray) -> np.ndarray:
    """Per-example values, as one value when all are equal (the usual case): numpy then
    broadcasts a scalar instead of reading a vector (or filling a matrix) per position."""
    return values[0] if len(values) and (values == values[0]).all() else values


def _thresholds(coin, p_open, below, t) -> np.ndarray:
    """Per position: open iff opens so far < threshold, i.e. iff depth < ``below`` if the coin
    says open (``coin < p_open``), else iff depth < 1 (depth = ``2 * opens so far - t``)."""
    closing = (t + 2) >> 1
    thresh = np.multiply((coin < p_open).view(np.int8), ((below + t + 1) >> 1) - closing)
    thresh += closing  # (a bool times an int: no np.where)
    return thresh


def _walk(opened: np.ndarray, thresh: np.ndarray) -> np.ndarray:
    """The walk over a chunk: which positions open. ``opened[0]`` holds the opens so far per
    example; ``opened[i + 1]`` gets them after position ``i``. Two numpy calls per position."""
    size, n = thresh.shape
    opens = _scratch(size, n, bool)
    for i in range(size):
        np.less(opened[i], thresh[i], out=opens[i])
        np.add(opened[i], opens[i], out=opened[i + 1])
    return opens


def _packing(k: int, width: int):
    """``(packed, half)``: integer types for ``code << bits | level`` and for ``level`` alone."""
    small = 2 * k < 2**15 and width < 2**14
    return (np.int32, np.int16) if small else (np.int64, np.int32)


def _dyck_walk(source: DyckSource, b: Block, length: np.ndarray, width: int, k: int) -> np.ndarray:
    """The depth walk of a block, example-major, shape ``(n, width)``: ``code << bits | level``.

    ``level`` (the low half) is the depth the bracket lives at: after an open, before a close.
    ``code`` (the high half, signed) is the drawn type of an open and ``-1`` for a close. Past
    ``length`` the walk goes on (open at depth 0, else close); those cells are cut later.

    The loop over positions carries ``opened`` = opens so far (depth = ``2 * opened - t``): the
    walk's rule "open iff depth < below" is "open iff opened < (below + t + 1) // 2", one
    comparison and one addition per position.
    """
    n = b.n
    p_open = _shared(b.param(source.p_open, integer=False))
    # no walk of `width` positions gets deeper than `width`: clamping the cap keeps it within
    # the walk's small integer type (max_depth=40000 would overflow int16)
    cap = min(source.max_depth, width) if source.max_depth is not None else width
    packed, half = _packing(k, width)
    bits = 8 * np.dtype(half).itemsize
    rows = np.asarray(_shared(length)).astype(half)
    walked = np.empty((n, width), packed)
    opened = np.zeros((CHUNK + 1, n), half)
    for start, coin, which in b.random_chunks(width):
        size = len(coin)
        t = np.arange(start, start + size, dtype=half)[:, None]
        # Open below the threshold: at depth 0 always (below = 1); by the coin when depth <
        # length - 1 - t (room to close it) and depth < cap.
        room = np.maximum(np.minimum(rows - 1 - t, cap), 1)
        opens = _walk(opened, _thresholds(coin, p_open, room, t))
        cell = _scratch(size, n, packed)
        np.multiply(which, k, out=cell, casting="unsafe")  # the drawn type
        cell |= np.subtract(opens, 1, dtype=packed)  # a close: -1 (all bits set)
        cell <<= bits
        # The level: the depth after an open, before a close = opens before + opens after - t.
        level = np.add(opened[:size], opened[1 : size + 1])
        level -= t
        cell |= level
        walked[:, start : start + size] = cell.T
        opened[0] = opened[size]
    return walked


def _match(walked: np.ndarray, k: int, rows: int = 32) -> np.ndarray:
    """Token ids of walked bracket strings: each close takes the type of its open, plus ``k``.

    The open a close matches is the nearest earlier open at the same level, and at one level
    opens and closes alternate in position order. So a stable sort of each row by level puts
    every close right after its open. Done ``rows`` rows at a time to stay in cache.
    """
    n, width = walked.shape
    half = _packing(k, width)[1]
    bits = 8 * np.dtype(half).itemsize
    out = np.empty((n, width), np.int32)
    base = np.arange(0, rows * width, width)[:, None]
    for r in range(0, n, rows):
        cells = walked[r : r + rows]
        order = np.argsort(cells.astype(half), axis=1, kind="stable")  # by level (low half)
        order += base[: len(order)]
        order = order.ravel()
        code = cells.ravel().take(order) >> bits
        token = np.empty_like(code)
        token[0] = 0  # (a row starts with an open)
        np.add(code[:-1], k + 1, out=token[1:])  # a close (-1): its open's type + k + 1 ...
        token &= code >> (8 * code.itemsize - 1)  # ... kept for closes only
        token += code
        out[r : r + rows].ravel()[order] = token
    return out


def dyck_lengths(source: DyckSource, b: Block) -> np.ndarray:
    """Tokens of each example: its ``length`` (the block's first draw)."""
    return b.param(default_length(source.length, b.context), even=True)


def make_dyck_block(source: DyckSource, b: Block) -> Grid:
    k = source.k
    length = dyck_lengths(source, b)
    width = top(source.length, b.context)
    return _grid(_match(_dyck_walk(source, b, length, width, k), k), length)


class _OpenTypes:
    """Per example, the open brackets of ``shuffle_dyck``: a count per type and the list of types
    with an open bracket (appended when a type opens, the last one moved into the hole when a
    type closes for good). Both hold *cells*, ``row * k + type``, the index into ``counts``.

    ``cells[row_s + j]`` for ``j < m`` is the list; the slot at ``m`` is spare. Past the lists,
    ``cells`` holds the chunk's drawn open cells, so one ``take`` reads an open's drawn type or a
    close's listed one, without ``np.where`` (slow on random masks).
    """

    def __init__(self, n: int, k: int, cap: int):
        slots = min(cap, k) + 1
        self.k, self.slots = k, slots
        self.counts = np.zeros(n * k, np.min_scalar_type(-cap))  # small: fewer cache misses
        self.drawn = 1 + n * slots  # (cell 0: what m - 1 = -1 reads)
        self.cells = np.zeros(self.drawn + CHUNK * n, np.intp)
        self.row_k = np.arange(n, dtype=np.intp) * k
        self.row_s = 1 + np.arange(n, dtype=np.intp) * slots
        self.m = np.zeros(n, np.intp)

    def chunk(self, opens: np.ndarray, which: np.ndarray) -> np.ndarray:
        """The cells of a chunk of brackets, ``(positions, n)``, updating the state."""
        size, n = opens.shape
        drawn = self.cells[self.drawn : self.drawn + size * n].reshape(size, n)
        np.multiply(which, self.k, out=drawn, casting="unsafe")
        drawn += self.row_k  # an open's cell
        pick = which * ~opens  # a close's pick; 0 for an open ...
        first = np.arange(self.drawn, self.drawn + size * n).reshape(size, n) - self.row_s
        first *= opens
        first += self.row_s  # ... which reads its drawn cell
        step = opens.astype(self.counts.dtype)
        step *= 2
        step -= 1
        out = np.empty((size, n), np.intp)
        counts, cells, m, row_s = self.counts, self.cells, self.m, self.row_s
        below_row = row_s - 1
        scaled = np.empty(n)
        slot, last, moved, target, alive, was = (np.empty(n, np.intp) for _ in range(6))
        before, after = np.empty(n, counts.dtype), np.empty(n, counts.dtype)
        for i in range(size):
            np.multiply(pick[i], m, out=scaled)
            np.copyto(slot, scaled, casting="unsafe")  # floor(which * m): the pick's rank
            slot += first[i]
            cell = cells.take(slot, out=out[i], mode="clip")  # (clip: an unbuffered take)
            counts.take(cell, out=before, mode="clip")
            np.add(before, step[i], out=after)
            counts[cell] = after
            np.minimum(after, 1, out=alive)  # 0: the type closed for good
            np.minimum(before, 1, out=was)  # 0: the type newly opened
            # Closed for good: the last listed type fills the hole; otherwise it is rewritten
            # in place. Then the cell goes to the spare slot past the list: newly opened, it
            # stays there (m grows).
            np.add(below_row, m, out=last)
            cells.take(last, out=moved, mode="clip")
            np.subtract(last, slot, out=target)
            target *= alive
            target += slot
            cells[target] = moved
            last += 1
            cells[last] = cell
            m += alive
            m -= was
        return out


def shuffle_lengths(source: ShuffleDyckSource, b: Block) -> np.ndarray:
    """Tokens of each example: its ``length`` (the block's first draw; the string is cut there)."""
    return b.param(default_length(source.length, b.context))


def make_shuffle_block(source: ShuffleDyckSource, b: Block) -> Grid:
    k, n, cap = source.k, b.n, source.max_depth
    length = shuffle_lengths(source, b)
    width = top(source.length, b.context)
    p_open = _shared(b.param(source.p_open, integer=False))
    count = np.int16 if width < 2**14 else np.int32
    state = _OpenTypes(n, k, cap)
    tokens = np.empty((n, width), np.int32)
    opened = np.zeros((CHUNK + 1, n), count)
    for start, coin, which in b.random_chunks(width):
        size = len(coin)
        t = np.arange(start, start + size, dtype=count)[:, None]
        # open at depth 0, or by the coin below the cap
        opens = _walk(opened, _thresholds(coin, p_open, count(min(cap, width)), t))
        cells = state.chunk(opens, which)
        chunk = _scratch(size, n, np.int32)
        np.subtract(cells, state.row_k, out=chunk, casting="unsafe")
        chunk += np.subtract(k, np.multiply(opens, k, dtype=np.int32), dtype=np.int32)
        tokens[:, start : start + size] = chunk.T
        opened[0] = opened[size]
    return _grid(tokens, length)


def token_names(source: DyckSource | ShuffleDyckSource):
    k = source.k

    def name(token: int) -> str:
        token = int(token)
        return f"({token}" if token < k else f"){token - k}" if token < 2 * k else "PAD"

    return name
