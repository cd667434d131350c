"""Diagnostic probes (fine-tuning tasks, loss on the answer only): haystack, arithmetic, sorting.

``haystack(pairs=P, vocab=V)``. Keys are ``0 … V//2 - 1``, values ``V//2 … V-1``,
``QUERY = V``, ``PAD = V + 1`` (vocabulary ``V + 2``). An example lists ``P`` pairs ``k v``
with distinct keys (a uniform random subset, in random order) and i.i.d. uniform values, then
``QUERY q v*``: ``q`` is one of the keys (uniform) and ``v*`` the value paired with it, the only
target. ``2P + 3`` tokens; ``P <= V // 2``.

``addition(digits=D)`` / ``reversed_addition`` / ``multiplication``. Digits ``0 … 9``, the
operator (``+`` or ``*``) ``= 10``, ``"=" = 11``, ``EOS = 12``, ``PAD = 13`` (vocabulary 14).
An example is ``a OP b = c EOS``: ``a`` and ``b`` have exactly ``D`` digits each (leading
digit ``1 … 9``, the others uniform ``0 … 9``), ``c = a + b`` or ``a · b`` without leading
zeros. ``addition`` and ``multiplication`` write every number most-significant digit first,
``reversed_addition`` least-significant first. Targets: the digits of ``c`` and ``EOS``.

``sorting(length=L, vocab=V)``: ``x SEP sorted(x)`` with the algorithmic tasks' ids (symbols
``1 … V-1``, ``SEP = V``, ``PAD = V + 1``); targets: the sorted output.

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.sources import AdditionSource, HaystackSource, MultiplicationSource
>>> from procdsl.plan.sources import ReversedAdditionSource, SortingSource
>>> def show(src):
...     print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
>>> show(HaystackSource(pairs=4, vocab=20))
2 14 7 18 0 13 9 12 QUERY 0 [13]
>>> show(AdditionSource(digits=3))
6 0 0 + 6 1 1 = [1] [2] [1] [1] [EOS]
>>> show(ReversedAdditionSource(digits=3))
0 0 6 + 1 1 6 = [1] [1] [2] [1] [EOS]
>>> show(MultiplicationSource(digits=2))
9 0 * 7 5 = [6] [7] [5] [0] [EOS]
>>> show(SortingSource(length=5, vocab=10))
1 1 7 4 2 SEP [1] [1] [2] [4] [7]
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.algorithmic import unary_grid
from procdsl.generators.core import Block, Grid, namer, segments
from procdsl.plan.base import maximum
from procdsl.plan.sources import (AdditionSource, HaystackSource, MultiplicationSource,
                                  ReversedAdditionSource, SortingSource)

OP, EQUALS, EOS, PAD = 10, 11, 12, 13


def make_haystack_block(source: HaystackSource, b: Block) -> Grid:
    vocab, half = source.vocab, source.vocab // 2
    pairs, most = b.param(source.pairs), int(maximum(source.pairs))
    if most > half:
        raise ValueError(f"haystack: {most} pairs need {most} distinct keys, vocab {vocab} has {half}")
    keys = _distinct(b, most, half)
    values = b.integers(half, vocab, most)
    pick = (b.random() * pairs).astype(np.int64)
    rows = np.arange(b.n)
    listing = np.stack([keys, values], axis=2).reshape(b.n, 2 * most)
    keep = np.arange(2 * most)[None, :] < 2 * pairs[:, None]
    return segments(b.n, (listing, False, keep), (vocab, False, True),
                    (keys[rows, pick], False, True), (values[rows, pick], True, True))


def _distinct(b: Block, count: int, universe: int) -> np.ndarray:
    """Per example, ``count`` distinct values of ``0 … universe-1``: a uniform subset (Floyd's
    algorithm), in uniformly random order."""
    u, order = b.random(count), np.argsort(b.random(count), axis=1)
    picks = np.empty((b.n, count), np.int64)
    for j in range(count):
        top = universe - count + j                    # draw from 0 … top; a repeat takes top
        t = (u[:, j] * (top + 1)).astype(np.int64)
        picks[:, j] = np.where((picks[:, :j] == t[:, None]).any(axis=1), top, t)
    return np.take_along_axis(picks, order, axis=1)


def _operand(b: Block, digits: np.ndarray, width: int) -> np.ndarray:
    """Numbers of exactly ``digits`` digits as digit arrays, least significant first."""
    d = b.integers(0, 10, width).astype(np.int64)
    lead = b.integers(1, 10).astype(np.int64)
    d[np.arange(width)[None, :] >= digits[:, None]] = 0
    d[np.arange(b.n), digits - 1] = lead
    return d


def _carry(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Propagate carries in digit sums (least significant first); return digits and their count."""
    out, carry = np.empty_like(raw), 0
    for j in range(raw.shape[1]):
        total = raw[:, j] + carry
        out[:, j], carry = total % 10, total // 10
    nonzero = out != 0
    count = np.where(nonzero.any(axis=1), raw.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 1)
    return out, count


def _written(d: np.ndarray, count: np.ndarray, msd_first: bool) -> np.ndarray:
    if not msd_first:
        return d
    j = np.arange(d.shape[1])[None, :]
    return np.take_along_axis(d, np.maximum(count[:, None] - 1 - j, 0), axis=1)


def _arithmetic(source, b: Block, multiply: bool, msd_first: bool) -> Grid:
    digits, width = b.param(source.digits), int(maximum(source.digits))
    left, right = _operand(b, digits, width), _operand(b, digits, width)
    if multiply:
        raw = np.zeros((b.n, 2 * width), np.int64)
        for i in range(width):
            raw[:, i:i + width] += left[:, i:i + 1] * right
    else:
        raw = np.zeros((b.n, width + 1), np.int64)
        raw[:, :width] = left + right
    answer, count = _carry(raw)
    j = np.arange(width)[None, :]
    operand_keep = j < digits[:, None]
    k = np.arange(raw.shape[1])[None, :]
    return segments(b.n, (_written(left, digits, msd_first), False, operand_keep), (OP, False, True),
                    (_written(right, digits, msd_first), False, operand_keep), (EQUALS, False, True),
                    (_written(answer, count, msd_first), True, k < count[:, None]), (EOS, True, True))


def make_addition_block(source: AdditionSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=False, msd_first=True)


def make_reversed_addition_block(source: ReversedAdditionSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=False, msd_first=False)


def make_multiplication_block(source: MultiplicationSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=True, msd_first=True)


def make_sorting_block(source: SortingSource, b: Block) -> Grid:
    return unary_grid(("sort",), b.param(source.length), int(maximum(source.length)), source.vocab, b)


def haystack_names(source: HaystackSource):
    return namer({source.vocab: "QUERY", source.vocab + 1: "PAD"})


def arithmetic_names(source):
    operator = "*" if source.kind == "multiplication" else "+"
    return namer({OP: operator, EQUALS: "=", EOS: "EOS", PAD: "PAD"})


def sorting_names(source: SortingSource):
    return namer({source.vocab: "SEP", source.vocab + 1: "PAD"})
