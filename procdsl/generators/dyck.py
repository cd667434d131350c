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
the ``m`` open types in the order they were first opened, which is still uniform).

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


def _chunks(b: Block, width: int, k: int, p_open: np.ndarray):
    """Per chunk of positions: its first position, the coins (open?) and the drawn open types."""
    for start, coin, which in b.random_chunks(width):
        yield start, coin < p_open, (which * k).astype(np.int64), which


class _Output:
    """Collects position-major chunks of (type, opened?) into example rows with loss masks."""

    def __init__(self, n: int, width: int, k: int):
        self.tokens = np.empty((n, width), np.int32)
        self.chunk = np.empty((CHUNK, n), np.int32)
        self.opens = np.empty((CHUNK, n), bool)
        self.k = np.int32(k)

    def flush(self, start: int, size: int) -> None:
        chunk = self.chunk[:size]
        chunk += self.k * ~self.opens[:size]          # closing brackets are type + k
        self.tokens[:, start:start + size] = chunk.T

    def grid(self, length: np.ndarray) -> Grid:
        mask = np.ones(self.tokens.shape, bool)
        mask[:, 0] = False
        width = self.tokens.shape[1]
        keep = None if (length == width).all() else np.arange(width)[None, :] < length[:, None]
        return Grid(self.tokens, mask, keep)


def make_dyck_block(source: DyckSource, b: Block) -> Grid:
    k, n = source.k, b.n
    length = b.param(default_length(source.length, b.context), even=True)
    width = top(source.length, b.context)
    p_open = b.param(source.p_open, integer=False)
    cap = source.max_depth if source.max_depth is not None else width
    # One flat stack per example: stack[base + d] holds the type opened at depth d + 1, and
    # ptr = base + depth points just above the top.
    size = width // 2 + 2
    stack = np.zeros(n * size, np.int64)
    base = np.arange(n, dtype=np.int64) * size
    ptr = base.copy()
    out = _Output(n, width, k)
    for start, coins, kinds, _ in _chunks(b, width, k, p_open):
        # Open at depth 0; otherwise when the coin says so, depth < length - 1 - t (room to
        # close it) and depth < cap. As one threshold per position: open iff ptr < below[t].
        t = np.arange(start, start + len(coins))[:, None]
        below = base + np.where(coins, np.maximum(np.minimum(length - 1 - t, cap), 1), 1)
        for i in range(len(coins)):
            o = ptr < below[i]
            kind = np.where(o, kinds[i], stack.take(ptr - 1))
            stack.put(ptr, kind)      # harmless above the top when closing
            out.chunk[i], out.opens[i] = kind, o
            ptr += 2 * o - 1
        out.flush(start, len(coins))
    return out.grid(length)


def make_shuffle_block(source: ShuffleDyckSource, b: Block) -> Grid:
    k, n, cap = source.k, b.n, source.max_depth
    length = b.param(default_length(source.length, b.context))
    width = top(source.length, b.context)
    p_open = b.param(source.p_open, integer=False)
    counts = np.zeros(n * k, np.int64)                    # counts[row * k + type]
    row_k = np.arange(n, dtype=np.int64) * k
    # opened[row * slots + j], j < m: the types with an open bracket; the last slot is scratch.
    slots = min(cap, k) + 1
    opened = np.zeros(n * slots, np.int64)
    row_s = np.arange(n, dtype=np.int64) * slots
    scratch = row_s + slots - 1
    m = np.zeros(n, np.int64)
    depth = np.zeros(n, np.int64)
    out = _Output(n, width, k)
    for start, coins, kinds, which in _chunks(b, width, k, p_open):
        below = np.where(coins, cap, 1)   # open iff depth < below: at 0, or by coin below the cap
        for i in range(len(coins)):
            o = depth < below[i]
            slot = row_s + (which[i] * m).astype(np.int64)
            kind = np.where(o, kinds[i], opened.take(slot))
            step = 2 * o - 1
            before = counts.take(row_k + kind)
            counts.put(row_k + kind, before + step)
            new = o & (before == 0)           # a type starts being open: append it
            gone = ~o & (before == 1)         # a type stops being open: last slot fills its hole
            last = row_s + m - 1
            opened.put(np.where(new, last + 1, np.where(gone, slot, scratch)),
                       np.where(new, kind, opened.take(last)))
            m += new
            m -= gone
            out.chunk[i], out.opens[i] = kind, o
            depth += step
        out.flush(start, len(coins))
    return out.grid(length)


def token_names(source: DyckSource | ShuffleDyckSource):
    k = source.k

    def name(token: int) -> str:
        token = int(token)
        return f"({token}" if token < k else f"){token - k}" if token < 2 * k else "PAD"

    return name
