"""Elementary cellular automata (``eca(rule=110, width=W, steps=T, length=N)``).

Token ids: cells ``0``/``1``, ``SEP = 2``, ``PAD = 3`` (vocabulary 4). An example is a random
row of ``W`` cells (i.i.d. fair bits), then ``T`` successive rows of the automaton, each row
followed by ``SEP``: ``(T + 1) · (W + 1)`` tokens. The boundary is periodic: cell ``j`` of the
next row is bit ``4·left + 2·centre + right`` of ``rule``, reading cells ``j-1, j, j+1`` mod
``W``. Without ``steps``, ``T + 1 = length // (W + 1)`` rows (``length`` defaults to the
phase's context; at least two rows must fit). Loss on rows ``2 … T + 1`` and their ``SEP`` —
everything after the random first row, which is not predictable.

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.sources import EcaSource
>>> src = EcaSource(rule=110, width=6, steps=3)
>>> print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
1 1 1 0 1 0 SEP [1] [0] [1] [1] [1] [1] [SEP] [1] [1] [1] [0] [0] [0] [SEP] [1] [0] [1] [0] [0] [1] [SEP]
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.core import Block, Grid, default_length, namer, top
from procdsl.plan.base import maximum, minimum
from procdsl.plan.sources import EcaSource

SEP, PAD = 2, 3


def _shape(source: EcaSource, b: Block) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per example its width and steps (the block's first draws), and their largest values."""
    width, max_width = b.param(source.width), int(maximum(source.width))
    if source.steps is not None:
        return width, b.param(source.steps), max_width, int(maximum(source.steps))
    length = b.param(default_length(source.length, b.context))
    steps = length // (width + 1) - 1
    if steps.size and steps.min() < 1:
        raise ValueError("eca: the length must hold at least two rows of width + 1 tokens")
    return width, steps, max_width, top(source.length, b.context) // (int(minimum(source.width)) + 1) - 1


def lengths(source: EcaSource, b: Block) -> np.ndarray:
    """Tokens of each example: ``steps + 1`` rows of ``width + 1``."""
    width, steps = _shape(source, b)[:2]
    return (steps + 1) * (width + 1)


def make_block(source: EcaSource, b: Block) -> Grid:
    width, steps, max_width, max_steps = _shape(source, b)
    rows = np.empty((b.n, max_steps + 1, max_width), np.int8)
    rows[:, 0] = b.integers(0, 2, max_width, dtype=np.int8)
    j = np.arange(max_width)[None, :]
    left, right = (j - 1) % width[:, None], (j + 1) % width[:, None]
    table = np.array([(source.rule >> i) & 1 for i in range(8)], np.int8)
    uniform = (width == max_width).all()
    for t in range(max_steps):
        row = rows[:, t]
        if uniform:  # the common case: a plain rotation
            index = 4 * np.roll(row, 1, axis=1) + 2 * row + np.roll(row, -1, axis=1)
        else:
            index = (
                4 * np.take_along_axis(row, left, axis=1) + 2 * row + np.take_along_axis(row, right, axis=1)
            )
        rows[:, t + 1] = table[index]
    wide = width[:, None, None]
    tokens = np.full((b.n, max_steps + 1, max_width + 1), SEP, np.int32)
    tokens[:, :, :max_width] = np.where(j[None] < wide, rows, SEP)  # SEP lands at column W
    row_index = np.arange(max_steps + 1)[None, :, None]
    keep = (np.arange(max_width + 1)[None, None, :] <= wide) & (row_index <= steps[:, None, None])
    mask = np.broadcast_to(row_index >= 1, tokens.shape)
    flat = (b.n, -1)
    return Grid(tokens.reshape(flat), np.ascontiguousarray(mask).reshape(flat), keep.reshape(flat))


def token_names(source: EcaSource):
    return namer({SEP: "SEP", PAD: "PAD"})
