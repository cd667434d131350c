"""The engine every procedural generator shares: deterministic blocks of examples, flattened.

Contract (DESIGN.md §4). Example ``i`` of the source named ``name`` under ``seed`` is a pure
function of ``(seed, name, i)`` and of ``progress(i)``: it comes from block ``i // size``,
whose randomness is ``numpy.random.default_rng([seed, stable_hash(name), i // size])``, where
``size`` (:func:`block_size`) is ``BLOCK`` = 512 examples for sources whose examples take at
most 256 tokens and, for longer ones, as many as fit 8,192 tokens (a power of two, at least
one): a rank that needs one 2,048-token example of a k-Dyck source then draws the randomness
of four, not of 512. A family's block function draws the *whole* block's randomness with shapes
fixed by the source's parameters (their maxima), never by which rows were asked for, then
computes only the rows asked for. Hence any chunking of ``[start, start + count)``, or any
subset of indices (:func:`run_at`), yields the same examples.

Inside a block the draws come in a fixed order: first one value per example for each tunable
parameter given as a ``Range`` (in the order the family asks for them), then the family's own
draws. A ``Ramp`` draws nothing: its value is ``start + (end - start) * progress(i)``. So the
tokens of each example, a function of its parameters in every family, come from those first
draws alone (:func:`run_lengths`): a rank learns the lengths of a whole global batch without
making its examples.

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

#: Examples per random block of short examples. Part of the determinism contract (with
#: ``SHORT_EXAMPLE`` and ``LONG_BLOCK_TOKENS``): changing it changes every example.
BLOCK = 512

#: Examples of at most this many tokens (the source's maximum) come in blocks of ``BLOCK``.
SHORT_EXAMPLE = 256

#: Longer examples come in blocks of at most this many tokens (see :func:`block_size`).
LONG_BLOCK_TOKENS = 8192

#: Tokens one vectorised call aims at when several blocks are asked for (speed only: small
#: enough for the caches, large enough to amortise numpy's per-call overhead).
GROUP_TOKENS = 1 << 18

#: Positions a position loop gets per step of :meth:`Block.random_chunks` (speed only: the
#: stream of uniforms is the same for any chunking).
CHUNK = 64

#: Uniforms :meth:`Block.random_chunks` draws per call at most, over all blocks (memory only).
DRAW_VALUES = 1 << 21

Progress = Callable[[np.ndarray], np.ndarray]


def block_size(max_tokens: int) -> int:
    """Examples per random block of a source whose examples take at most ``max_tokens`` tokens.

    Short examples share blocks of ``BLOCK`` (numpy's per-call cost is spread over many); long
    ones get blocks of at most ``LONG_BLOCK_TOKENS`` tokens, a power of two examples, so that
    an example costs what it holds, not what its block holds, whichever examples a rank needs.

    >>> block_size(129), block_size(256), block_size(257), block_size(2048), block_size(5000)
    (512, 512, 16, 4, 1)
    """
    if max_tokens <= SHORT_EXAMPLE:
        return BLOCK
    return 1 << max(0, (LONG_BLOCK_TOKENS // max_tokens).bit_length() - 1)


def stable_hash(name: str) -> int:
    """A 64-bit hash of a source name that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Examples:
    """Examples concatenated: example ``j`` is ``tokens[offsets[j]:offsets[j + 1]]``.

    ``loss_mask[p]`` is True where token ``p`` is a training *target* (predicted from position
    ``p - 1``); the first token of an example is never a target.
    """

    tokens: np.ndarray  # int32
    loss_mask: np.ndarray  # bool
    offsets: np.ndarray  # int64, shape (n + 1,)

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
        return Examples(
            np.concatenate([p.tokens for p in parts]),
            np.concatenate([p.loss_mask for p in parts]),
            np.concatenate(offsets),
        )


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
    tokens, loss_mask, keep = (
        np.empty((n, sum(widths)), np.int32),
        np.empty((n, sum(widths)), bool),
        np.empty((n, sum(widths)), bool),
    )
    column = 0
    for part, width in zip(arrays, widths):
        for out, a in zip((tokens, loss_mask, keep), part):
            out[:, column : column + width] = a[:, None] if a.ndim == 1 else a
        column += width
    return Grid(tokens, loss_mask, keep)


Rows = slice | np.ndarray  # the examples asked of one block: a range, or sorted indices


class Block:
    """The randomness and per-example parameters of some RNG blocks, cut to the rows asked for.

    Each part is one RNG block ``(rng, rows, progress)``. Every draw has the full block's shape
    (``size`` examples, :func:`block_size`) and is then cut to the part's rows, so an example
    never depends on which other examples were requested; parts are stacked so that a family's
    numpy code runs once over all of them.
    """

    def __init__(
        self, parts: list[tuple[np.random.Generator, Rows, np.ndarray]], context: int, size: int = BLOCK
    ):
        self.parts, self.context, self.size = parts, context, size
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
                drawn = step * self._draw(lambda rng: rng.integers(lo, hi, self.size))
            else:
                drawn = value.low + (value.high - value.low) * self._draw(lambda rng: rng.random(self.size))
        elif isinstance(value, Ramp):
            drawn = value.start + (value.end - value.start) * np.clip(self.progress, 0.0, 1.0)
            if integer:
                drawn = step * np.rint(drawn / step)
        else:
            drawn = np.full(self.n, value)
        return drawn.astype(np.int64) if integer else drawn.astype(np.float64)

    def integers(self, low, high, *tail: int, dtype=np.int32) -> np.ndarray:
        """Uniform integers in ``[low, high)`` of shape ``(rows, *tail)`` (drawn for whole blocks)."""
        return self._draw(lambda rng: rng.integers(low, high, (self.size, *tail), dtype=dtype))

    def random(self, *tail: int) -> np.ndarray:
        """Uniform floats in ``[0, 1)`` of shape ``(rows, *tail)`` (drawn for whole blocks)."""
        return self._draw(lambda rng: rng.random((self.size, *tail)))

    def random_chunks(self, width: int):
        """Two uniforms per example and position, ``CHUNK`` positions at a time, for position loops.

        Yields ``(start, coin, which)``, each of the two of shape ``(positions, rows)``. A block
        of ``BLOCK`` short examples draws ``(width, 2, BLOCK)`` uniforms, position-major (in spans
        of positions, a multiple of ``CHUNK`` and at most ``DRAW_VALUES`` values over all parts:
        any span gives the same stream); a block of long examples draws ``(size, width, 2)``,
        example-major, so an example's uniforms are one contiguous run and the few examples a
        rank asks for are cut from its blocks without a transposing copy. Either way the stream
        depends on ``width`` alone; a family draws nothing else while it iterates.
        """
        if self.size < BLOCK:
            u = self._example_major(width)
            out = np.empty((CHUNK, 2, self.n))
            for start in range(0, width, CHUNK):
                chunk = u[:, start : start + CHUNK]
                size = chunk.shape[1]
                np.copyto(out[:size], chunk.transpose(1, 2, 0))  # one cache-friendly transpose
                yield start, out[:size, 0], out[:size, 1]
            return
        span = max(CHUNK, DRAW_VALUES // (2 * self.size * len(self.parts)) // CHUNK * CHUNK)
        for first in range(0, width, span):
            u = self._draw(partial(_uniforms, shape=(min(span, width - first), 2, self.size)), axis=2)
            for start in range(0, len(u), CHUNK):
                chunk = u[start : start + CHUNK]
                yield first + start, chunk[:, 0], chunk[:, 1]

    def _example_major(self, width: int) -> np.ndarray:
        """``(rows, width, 2)`` uniforms of blocks of long examples, each block's stream drawn
        straight into its rows when they are the whole block (no temporary, no copy)."""
        u = np.empty((self.n, width, 2))
        row = 0
        for rng, rows, _ in self.parts:
            count = _count(rows, self.size)
            if count == self.size:
                rng.random(out=u[row : row + count])
            else:
                u[row : row + count] = rng.random((self.size, width, 2))[rows]
            row += count
        return u


def _count(rows: Rows, size: int) -> int:
    """How many of a block's ``size`` examples ``rows`` asks for."""
    return len(range(size)[rows]) if isinstance(rows, slice) else len(rows)


def _uniforms(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.random(shape)


def default_length(length: Optional[Tunable], context: int) -> Tunable:
    """``length=None`` means the phase's context."""
    return context if length is None else length


def top(value: Optional[Tunable], context: int) -> int:
    """The largest value of a tunable parameter (``None`` = context): sizes the block's draws."""
    return int(maximum(default_length(value, context)))


MakeBlock = Callable[[object, Block], Grid]

#: ``(source, Block) -> tokens of each example`` from the block's parameter draws alone (the
#: family's ``make_block`` draws them first, in the same order), or None when the tokens depend
#: on the examples' content
MakeLengths = Callable[[object, Block], Optional[np.ndarray]]


def run(
    make_block: MakeBlock,
    source,
    *,
    seed: int,
    name: str,
    start: int,
    count: int,
    context: int,
    progress: Optional[Progress] = None,
    group_tokens: int = GROUP_TOKENS,
) -> Examples:
    """Examples ``[start, start + count)`` of ``source``: the blocks that hold them, cut to size.

    Blocks are computed together, as many as keep one call near ``group_tokens`` tokens (sized
    from the source's longest example, then from the last group), so short examples are
    vectorised over many blocks. The grouping
    never changes an example: each is cut from its own block's draws.
    """
    size, wanted = _range(source, seed=seed, start=start, count=count, context=context)
    return _generate(
        make_block,
        source,
        wanted,
        size,
        seed=seed,
        name=name,
        context=context,
        progress=progress,
        group_tokens=group_tokens,
    )


def run_lengths(
    lengths: MakeLengths,
    source,
    *,
    seed: int,
    name: str,
    start: int,
    count: int,
    context: int,
    progress: Optional[Progress] = None,
) -> Optional[np.ndarray]:
    """Tokens of examples ``[start, start + count)`` of ``source`` (int64), from the parameter
    draws of the blocks :func:`run` makes them from, or None when ``lengths`` cannot tell them
    without making the examples. The blocks are the same, so are the draws: one :class:`Block`
    over all of them, each a handful of values per example (no per-position randomness).

    >>> from procdsl.plan.base import Range
    >>> from procdsl.plan.sources import DyckSource
    >>> from procdsl.generators.dyck import dyck_lengths, make_dyck_block
    >>> src = DyckSource(k=2, length=Range(low=258, high=300))    # long examples: blocks of 16
    >>> ex = run(make_dyck_block, src, seed=0, name="d", start=10, count=30, context=300)
    >>> tokens = run_lengths(dyck_lengths, src, seed=0, name="d", start=10, count=30, context=300)
    >>> bool((tokens == np.diff(ex.offsets)).all()), tokens[:4].tolist()
    (True, [268, 294, 270, 286])
    """
    size, wanted = _range(source, seed=seed, start=start, count=count, context=context)
    # (no rows: still one empty block, so that a source without a lengths path says None)
    parts = _parts(wanted or [(start // size, slice(0, 0))], size, seed=seed, name=name, progress=progress)
    tokens = lengths(source, Block(parts, context, size))
    return None if tokens is None else np.asarray(tokens, np.int64)


def _range(source, *, seed: int, start: int, count: int, context: int) -> tuple[int, list[tuple[int, Rows]]]:
    """The block size of ``source`` and the ``(block, rows)`` that hold ``[start, start + count)``."""
    if seed < 0 or start < 0 or count < 0:
        raise ValueError(f"seed, start and count must be non-negative, got {seed}, {start}, {count}")
    size = block_size(source.max_tokens(context))
    wanted: list[tuple[int, Rows]] = []
    for block in range(start // size, -(-(start + count) // size) if count else 0):  # (none: no block)
        first = block * size
        wanted.append((block, slice(max(start, first) - first, min(start + count, first + size) - first)))
    return size, wanted


def run_at(
    make_block: MakeBlock,
    source,
    *,
    seed: int,
    name: str,
    indices: np.ndarray,
    context: int,
    progress: Optional[Progress] = None,
    group_tokens: int = GROUP_TOKENS,
) -> Examples:
    """Examples ``indices`` (sorted, distinct) of ``source``, in that order: the same examples as
    :func:`run` gives, each block asked for just its indices — what one rank of many needs.

    >>> from procdsl.plan.sources import DyckSource
    >>> from procdsl.generators.dyck import make_dyck_block
    >>> src = DyckSource(k=2, length=300)            # long examples: blocks of 16
    >>> some = run_at(make_dyck_block, src, seed=0, name="d", indices=np.array([3, 8, 30]), context=300)
    >>> every = run(make_dyck_block, src, seed=0, name="d", start=0, count=31, context=300)
    >>> all((some[j][0] == every[i][0]).all() for j, i in enumerate([3, 8, 30]))
    True
    """
    indices = np.asarray(indices, np.int64)
    if len(indices) and (indices[0] < 0 or (np.diff(indices) <= 0).any()):
        raise ValueError("indices must be sorted, distinct and non-negative")
    size = block_size(source.max_tokens(context))
    blocks = indices // size
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    wanted = [(int(part[0] // size), _as_rows(part % size)) for part in np.split(indices, cuts) if len(part)]
    return _generate(
        make_block,
        source,
        wanted,
        size,
        seed=seed,
        name=name,
        context=context,
        progress=progress,
        group_tokens=group_tokens,
    )


def _as_rows(rows: np.ndarray) -> Rows:
    """Consecutive rows as a slice (a view of each draw, not a copy)."""
    return slice(int(rows[0]), int(rows[-1]) + 1) if rows[-1] - rows[0] == len(rows) - 1 else rows


def _parts(
    wanted: list[tuple[int, Rows]], size: int, *, seed: int, name: str, progress: Optional[Progress]
) -> list[tuple[np.random.Generator, Rows, np.ndarray]]:
    """The :class:`Block` parts of the rows ``wanted``: each block's generator and progress."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    key = stable_hash(name)
    none = np.zeros(size)
    parts = []
    for block, rows in wanted:
        prog = none
        if progress is not None:
            prog = np.asarray(progress(np.arange(block * size, (block + 1) * size)), np.float64)
            prog = prog if prog.shape == (size,) else np.broadcast_to(prog, (size,))
        # = default_rng([seed, key, block]), without its checks: this runs for every block a
        # rank lays out (the lengths path), a few tens of microseconds each
        parts.append((np.random.Generator(np.random.PCG64([seed, key, block])), rows, prog))
    return parts


def _generate(
    make_block: MakeBlock,
    source,
    wanted: list[tuple[int, Rows]],
    size: int,
    *,
    seed: int,
    name: str,
    context: int,
    progress: Optional[Progress],
    group_tokens: int,
) -> Examples:
    """The rows ``wanted`` (``(block, rows)`` in order) of blocks of ``size`` examples."""
    parts = _parts(wanted, size, seed=seed, name=name, progress=progress)
    asked = sum(_count(rows, size) for _, rows, _ in parts)
    per_example = max(1, source.max_tokens(context))  # (until the first group says)
    done, group = [], max(1, group_tokens * len(parts) // max(1, asked * per_example))
    while parts:
        block = Block(parts[:group], context, size)
        examples = make_block(source, block).examples()
        done.append(examples)
        parts = parts[group:]
        per_example = max(1, examples.offsets[-1] // max(1, len(examples)))
        group = max(1, group_tokens * len(block.parts) // max(1, block.n * per_example))
    if not done:
        return Examples(np.zeros(0, np.int32), np.zeros(0, bool), np.zeros(1, np.int64))
    return Examples.concat(done)


def namer(specials: dict[int, str]) -> Callable[[int], str]:
    """Name special token ids for display; every other id shows as its number."""
    return lambda token: specials.get(int(token), str(int(token)))
