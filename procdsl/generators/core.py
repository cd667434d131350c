"""The engine every procedural generator shares: deterministic blocks of examples, flattened.

Contract (DESIGN.md §4). Example ``i`` of the source named ``name`` under ``seed`` is a pure
function of ``(seed, name, i)`` and of ``progress(i)``: it comes from block ``i // BLOCK``,
whose randomness is ``numpy.random.default_rng([seed, stable_hash(name), i // BLOCK])``. A
family's block function draws the *whole* block's randomness with shapes fixed by the source's
parameters (their maxima), never by which rows were asked for, then computes only the rows
asked for. Hence any chunking of ``[start, start + count)`` yields the same examples.

Inside a block the draws come in a fixed order: first one value per example for each tunable
parameter given as a ``Range`` (in the order the family asks for them), then the family's own
draws. A ``Ramp`` draws nothing: its value is ``start + (end - start) * progress(i)``.

A block function returns a :class:`Grid`: one row per example, ``keep`` marking the cells that
belong to it. Flattening the kept cells row by row concatenates the examples:

>>> grid = Grid(tokens=np.array([[5, 6, 7], [8, 9, 0]]), loss_mask=np.array([[0, 1, 1], [0, 1, 0]]) > 0,
...             keep=np.array([[1, 1, 1], [1, 1, 0]]) > 0)
>>> ex = grid.examples()
>>> ex.tokens.tolist(), ex.loss_mask.tolist(), ex.offsets.tolist()
([5, 6, 7, 8, 9], [False, True, True, False, True], [0, 3, 5])
>>> ex[1]
(array([8, 9], dtype=int32), array([False,  True]))
>>> stable_hash("dyck") == stable_hash("dyck") != stable_hash("dyck2")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np

from procdsl.plan.base import Ramp, Range, Tunable, maximum

#: Examples per random block. Part of the determinism contract: changing it changes every example.
BLOCK = 512

#: Tokens one vectorised call aims at when several blocks are asked for (speed only: small
#: enough for the caches, large enough to amortise numpy's per-call overhead).
GROUP_TOKENS = 1 << 18

#: Positions drawn per call in :meth:`Block.random_chunks` (also part of the contract).
CHUNK = 64

Progress = Callable[[np.ndarray], np.ndarray]


def stable_hash(name: str) -> int:
    """A 64-bit hash of a source name that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Examples:
    """Examples concatenated: example ``j`` is ``tokens[offsets[j]:offsets[j + 1]]``.

    ``loss_mask[p]`` is True where token ``p`` is a training *target* (predicted from position
    ``p - 1``); the first token of an example is never a target.
    """

    tokens: np.ndarray     # int32
    loss_mask: np.ndarray  # bool
    offsets: np.ndarray    # int64, shape (n + 1,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[j], self.offsets[j + 1]
        return self.tokens[a:b], self.loss_mask[a:b]

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        if len(parts) == 1:
            return parts[0]
        ends = np.cumsum([p.offsets[-1] for p in parts])
        offsets = [np.zeros(1, np.int64)]
        offsets += [p.offsets[1:] + (end - p.offsets[-1]) for p, end in zip(parts, ends)]
        return Examples(np.concatenate([p.tokens for p in parts]),
                        np.concatenate([p.loss_mask for p in parts]), np.concatenate(offsets))


@dataclass(frozen=True)
class Grid:
    """One block's examples as rows; ``keep`` (None = every cell) marks each example's cells."""

    tokens: np.ndarray
    loss_mask: np.ndarray
    keep: Optional[np.ndarray] = None

    def examples(self) -> Examples:
        n, width = self.tokens.shape
        if self.keep is None or self.keep.all():
            lengths = np.full(n, width, np.int64)
            tokens, mask = self.tokens.ravel(), self.loss_mask.ravel()
        else:
            lengths = self.keep.sum(axis=1, dtype=np.int64)
            tokens, mask = self.tokens[self.keep], self.loss_mask[self.keep]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Examples(tokens.astype(np.int32, copy=False), mask.astype(bool, copy=False), offsets)


def segments(n: int, *parts) -> Grid:
    """Lay segments side by side; each is ``(tokens, loss_mask, keep)`` for ``n`` examples.

    Each of the three is a scalar (the same for every example), a vector (one value per
    example: a one-cell segment) or an ``(n, width)`` array. Cells not kept are dropped when the
    grid is flattened, so a segment of per-example length is a fixed-width block with
    ``keep = column < length``.
    """
    arrays = [[np.asarray(a) for a in part] for part in parts]
    widths = [max(a.shape[1] if a.ndim == 2 else 1 for a in part) for part in arrays]
    tokens, loss_mask, keep = (np.empty((n, sum(widths)), np.int32), np.empty((n, sum(widths)), bool),
                               np.empty((n, sum(widths)), bool))
    column = 0
    for part, width in zip(arrays, widths):
        for out, a in zip((tokens, loss_mask, keep), part):
            out[:, column:column + width] = a[:, None] if a.ndim == 1 else a
        column += width
    return Grid(tokens, loss_mask, keep)


class Block:
    """The randomness and per-example parameters of some RNG blocks, cut to the rows asked for.

    Each part is one RNG block ``(rng, rows, progress)``. Every draw has the full block's shape
    (``BLOCK`` examples) and is then cut to the part's rows, so an example never depends on
    which other examples were requested; parts are stacked so that a family's numpy code runs
    once over all of them.
    """

    def __init__(self, parts: list[tuple[np.random.Generator, slice, np.ndarray]], context: int):
        self.parts, self.context = parts, context
        self.progress = np.concatenate([progress[rows] for _, rows, progress in parts])
        self.n = len(self.progress)

    def _draw(self, draw: Callable[[np.random.Generator], np.ndarray], axis: int = 0) -> np.ndarray:
        cut = lambda a, rows: a[(slice(None),) * axis + (rows,)]  # noqa: E731
        pieces = [cut(draw(rng), rows) for rng, rows, _ in self.parts]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=axis)

    def param(self, value: Tunable, *, integer: bool = True, even: bool = False) -> np.ndarray:
        """Per-example values of a tunable parameter (``Range`` draws here, in call order)."""
        step = 2 if even else 1
        if isinstance(value, Range):
            if integer:
                lo, hi = int(value.low // step), int(value.high // step) + 1
                drawn = step * self._draw(lambda rng: rng.integers(lo, hi, BLOCK))
            else:
                drawn = value.low + (value.high - value.low) * self._draw(lambda rng: rng.random(BLOCK))
        elif isinstance(value, Ramp):
            drawn = value.start + (value.end - value.start) * np.clip(self.progress, 0.0, 1.0)
            if integer:
                drawn = step * np.rint(drawn / step)
        else:
            drawn = np.full(self.n, value)
        return drawn.astype(np.int64) if integer else drawn.astype(np.float64)

    def integers(self, low, high, *tail: int, dtype=np.int32) -> np.ndarray:
        """Uniform integers in ``[low, high)`` of shape ``(rows, *tail)`` (drawn for whole blocks)."""
        return self._draw(lambda rng: rng.integers(low, high, (BLOCK, *tail), dtype=dtype))

    def random(self, *tail: int) -> np.ndarray:
        """Uniform floats in ``[0, 1)`` of shape ``(rows, *tail)`` (drawn for whole blocks)."""
        return self._draw(lambda rng: rng.random((BLOCK, *tail)))

    def random_chunks(self, width: int):
        """Two uniforms per example and position, ``CHUNK`` positions at a time, for position loops.

        Yields ``(start, coin, which)``, each of the two of shape ``(positions, rows)``; drawn
        as ``(positions, 2, BLOCK)`` per chunk, so the stream depends on ``width`` alone and
        memory stays small for long sequences.
        """
        for start in range(0, width, CHUNK):
            size = min(CHUNK, width - start)
            u = self._draw(partial(_uniforms, shape=(size, 2, BLOCK)), axis=2)
            yield start, u[:, 0], u[:, 1]


def _uniforms(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.random(shape)


def default_length(length: Optional[Tunable], context: int) -> Tunable:
    """``length=None`` means the phase's context."""
    return context if length is None else length


def top(value: Optional[Tunable], context: int) -> int:
    """The largest value of a tunable parameter (``None`` = context): sizes the block's draws."""
    return int(maximum(default_length(value, context)))


MakeBlock = Callable[[object, Block], Grid]


def run(make_block: MakeBlock, source, *, seed: int, name: str, start: int, count: int,
        context: int, progress: Optional[Progress] = None, group_tokens: int = GROUP_TOKENS) -> Examples:
    """Examples ``[start, start + count)`` of ``source``: the blocks that hold them, cut to size.

    Blocks are computed together, as many as keep one call near ``group_tokens`` tokens (sized
    from the first block), so short examples are vectorised over many blocks. The grouping
    never changes an example: each is cut from its own block's draws.
    """
    if seed < 0 or start < 0 or count < 0:
        raise ValueError(f"seed, start and count must be non-negative, got {seed}, {start}, {count}")
    key = stable_hash(name)
    parts = []
    for block in range(start // BLOCK, -(-(start + count) // BLOCK)):
        first = block * BLOCK
        rows = slice(max(start, first) - first, min(start + count, first + BLOCK) - first)
        prog = 0.0 if progress is None else progress(np.arange(first, first + BLOCK))
        prog = np.broadcast_to(np.asarray(prog, np.float64), (BLOCK,))
        parts.append((np.random.default_rng([seed, key, block]), rows, prog))
    done, group = [], 1
    while parts:
        examples = make_block(source, Block(parts[:group], context)).examples()
        done.append(examples)
        parts = parts[group:]
        per_example = max(1, examples.offsets[-1] // max(1, len(examples)))
        group = max(1, group_tokens // (BLOCK * per_example))
    if not done:
        return Examples(np.zeros(0, np.int32), np.zeros(0, bool), np.zeros(1, np.int64))
    return Examples.concat(done)


def namer(specials: dict[int, str]) -> Callable[[int], str]:
    """Name special token ids for display; every other id shows as its number."""
    return lambda token: specials.get(int(token), str(int(token)))
