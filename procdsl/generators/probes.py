"""Diagnostic probes (fine-tuning tasks, loss on the answer only): haystack, arithmetic, sorting.

The haystack and arithmetic probes are the paper's task files
(``downstream/algorithmic_tasks/task_*.py`` of ``zlshinnick/procedural-pretraining``) token for
token: the same ids, the same distributions, the same padding to one fixed sequence length, and
the same targets. ``tests/fixtures/paper_probes/`` holds examples of the paper's own code and
``tests/test_probes_paper.py`` compares the two.

``haystack(pairs=P, vocab=V)`` — ``condattendstream_M`` with ``M`` = the largest ``P`` (paper:
``pairs=1..30, vocab=256``). With ``H = V // 2``: ``PAD = 0``, values ``1 … H-1``, keys
``H … H+M-1``, queries ``H+M … H+2M-1``. An example draws its number of pairs ``P`` (a range:
uniform), takes the first ``P`` keys of a uniform permutation of ``0 … M-1``, i.i.d. uniform
values, and a query uniform among its keys: ``k1+H v1 … kP+H vP q+H+M v* PAD…``, padded to
``2M + 3`` tokens. The only target is ``v*``, the value of the queried key (the paper scores the
prediction made at the query token).

``addition(digits=D)`` / ``reversed_addition`` / ``multiplication`` — ``forwardaddition_D``,
``additionstream_D``, ``multiplication_D``. Operand digits ``0 … 9``, the operator (``+`` or
``*``) ``= 10``, ``"=" = 11``, ``PAD = 12``, answer digits ``20 … 29`` (digit + 20), ``STOP = 30``
(vocabulary 31). Each operand draws its own number of digits ``o`` (a range: uniform) and is
uniform among the ``o``-digit numbers; ``a OP b = c STOP PAD…`` is padded to ``3·D + 4`` tokens
(multiplication ``5·D + 4``, ``D`` the largest ``digits``). ``addition`` and ``multiplication``
write numbers most-significant digit first, ``reversed_addition`` least-significant first.
Targets, as the task files score them, are the tokens *following* an answer token or STOP:
every answer digit but the first, STOP, and the PAD right after STOP when there is one.

``sorting(length=L, vocab=V)``: ``x SEP sorted(x)`` with the algorithmic tasks' ids (symbols
``1 … V-1``, ``SEP = V``, ``PAD = V + 1``); targets: the sorted output.

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.base import Range
>>> from procdsl.plan.sources import AdditionSource, HaystackSource, MultiplicationSource
>>> from procdsl.plan.sources import ReversedAdditionSource, SortingSource
>>> def show(src, j=0):
...     print(render(src, *generate(src, seed=0, name="demo", start=0, count=j + 1, context=64)[j]))
>>> show(HaystackSource(pairs=Range(low=1, high=4), vocab=20), j=2)   # keys 10-13, queries 14-17
12 1 13 5 10 6 16 [1] PAD PAD PAD
>>> show(AdditionSource(digits=3))
6 0 0 + 6 1 1 = 1 [2] [1] [1] [STOP]
>>> show(ReversedAdditionSource(digits=3))
0 0 6 + 1 1 6 = 1 [1] [2] [1] [STOP]
>>> show(MultiplicationSource(digits=2))
9 0 * 7 5 = 6 [7] [5] [0] [STOP] [PAD] PAD PAD
>>> show(SortingSource(length=5, vocab=10))
1 1 7 4 2 SEP [1] [1] [2] [4] [7]
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.algorithmic import unary_grid
from procdsl.generators.core import Block, Grid, namer, segments
from procdsl.plan.base import maximum
from procdsl.plan.sources import (
    AdditionSource,
    HaystackSource,
    MultiplicationSource,
    ReversedAdditionSource,
    SortingSource,
)

OP, EQUALS, PAD, ANSWER, STOP = 10, 11, 12, 20, 30
HAYSTACK_PAD = 0


def haystack_lengths(source: HaystackSource, b: Block) -> np.ndarray:
    """Tokens of each example: always ``2M + 3`` (every example padded to the longest)."""
    return np.full(b.n, 2 * int(maximum(source.pairs)) + 3, np.int64)


def make_haystack_block(source: HaystackSource, b: Block) -> Grid:
    half, most = source.vocab // 2, int(maximum(source.pairs))
    pairs = b.param(source.pairs)
    keys = np.argsort(b.random(most), axis=1)  # a uniform permutation of 0 … most-1
    values = b.integers(1, half, most)
    pick = (b.random() * pairs).astype(np.int64)  # uniform among the example's own keys
    rows = np.arange(b.n)
    listing = np.stack([keys + half, values], axis=2).reshape(b.n, 2 * most)
    keep = np.arange(2 * most)[None, :] < 2 * pairs[:, None]
    padding = np.arange(2 * most + 1)[None, :] < (2 * (most - pairs) + 1)[:, None]
    return segments(
        b.n,
        (listing, False, keep),
        (keys[rows, pick] + half + most, False, True),
        (values[rows, pick], True, True),
        (HAYSTACK_PAD, False, padding),
    )


def _operand(b: Block, digits: np.ndarray, width: int) -> np.ndarray:
    """Numbers of exactly ``digits`` digits as digit arrays, least significant first."""
    d = b.integers(0, 10, width).astype(np.int64)
    lead = b.integers(1, 10).astype(np.int64)
    d[np.arange(width)[None, :] >= digits[:, None]] = 0
    d[np.arange(b.n), digits - 1] = lead
    return d


def _carry(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Propagate carries in digit sums (least significant first); return digits and their count."""
    out = np.empty_like(raw)
    carry: np.ndarray | int = 0
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


def arithmetic_lengths(source, b: Block) -> np.ndarray:
    """Tokens of each example: always ``per_digit·D + 4`` — the padding takes up whatever the
    operands and the answer (its carries) leave, so content never changes the length."""
    return np.full(b.n, _arithmetic_tokens(source), np.int64)


def _arithmetic_tokens(source) -> int:
    return source.per_digit * int(maximum(source.digits)) + 4


def _arithmetic(source, b: Block, multiply: bool, msd_first: bool) -> Grid:
    width = int(maximum(source.digits))
    da, db = b.param(source.digits), b.param(source.digits)  # each operand its own length
    left, right = _operand(b, da, width), _operand(b, db, width)
    if multiply:
        raw = np.zeros((b.n, 2 * width), np.int64)
        for i in range(width):
            raw[:, i : i + width] += left[:, i : i + 1] * right
    else:
        raw = np.zeros((b.n, width + 1), np.int64)
        raw[:, :width] = left + right
    answer, count = _carry(raw)
    j, k = np.arange(width)[None, :], np.arange(raw.shape[1])[None, :]
    total = _arithmetic_tokens(source)
    pads = total - (da + db + count + 3)
    p = np.arange(total - 5)[None, :]
    return segments(
        b.n,
        (_written(left, da, msd_first), False, j < da[:, None]),
        (OP, False, True),
        (_written(right, db, msd_first), False, j < db[:, None]),
        (EQUALS, False, True),
        (_written(answer, count, msd_first) + ANSWER, k >= 1, k < count[:, None]),
        (STOP, True, True),
        (PAD, p == 0, p < pads[:, None]),
    )


def make_addition_block(source: AdditionSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=False, msd_first=True)


def make_reversed_addition_block(source: ReversedAdditionSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=False, msd_first=False)


def make_multiplication_block(source: MultiplicationSource, b: Block) -> Grid:
    return _arithmetic(source, b, multiply=True, msd_first=True)


def sorting_lengths(source: SortingSource, b: Block) -> np.ndarray:
    """Tokens of each example: ``x SEP sorted(x)``, ``2L + 1``."""
    return 2 * b.param(source.length) + 1


def make_sorting_block(source: SortingSource, b: Block) -> Grid:
    return unary_grid(("sort",), b.param(source.length), int(maximum(source.length)), source.vocab, b)


def haystack_names(source: HaystackSource):
    return namer({HAYSTACK_PAD: "PAD"})


def arithmetic_names(source):
    operator = "*" if source.kind == "multiplication" else "+"
    answers = {ANSWER + d: str(d) for d in range(10)}
    return namer({OP: operator, EQUALS: "=", PAD: "PAD", STOP: "STOP", **answers})


def sorting_names(source: SortingSource):
    return namer({source.vocab: "SEP", source.vocab + 1: "PAD"})
