"""Procedural data generators: one module per family, one registry, one entry point.

``generate(source, seed=, name=, start=, count=, context=, progress=)`` returns examples
``[start, start + count)`` of a plan source as :class:`Examples` (tokens, loss mask, offsets).
Example ``i`` depends only on ``(seed, name, i)`` and ``progress(i)`` (see
:mod:`procdsl.generators.core`), so any chunking of the index range, on any worker, gives the
same data. ``GENERATORS[kind]`` holds each kind's block function, its independent checker
(:mod:`procdsl.checkers`), the names of its special tokens and its lengths path:
``generate_lengths`` gives the tokens of each example from the parameters the examples draw,
without making them (what a rank needs to lay out a global batch it holds a few rows of).

>>> from procdsl.plan.base import Range
>>> from procdsl.plan.sources import TaskSource
>>> src = TaskSource(rule=("reverse",), length=Range(low=2, high=4), vocab=10)
>>> ex = generate(src, seed=1, name="rev", start=0, count=3, context=64)
>>> ex.offsets.tolist()
[0, 5, 10, 19]
>>> for j in range(3): print(render(src, *ex[j]))
1 7 SEP [7] [1]
6 4 SEP [4] [6]
9 6 6 8 SEP [8] [6] [6] [9]
>>> part = generate(src, seed=1, name="rev", start=2, count=1, context=64)
>>> part.tokens.tolist() == ex[2][0].tolist()
True
>>> GENERATORS["task"].check(src, *ex[0], context=64)
[]
>>> generate_lengths(src, seed=1, name="rev", start=0, count=3, context=64).tolist()
[5, 5, 9]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

from procdsl import checkers
from procdsl.generators import algorithmic, dyck, eca, probes, ww
from procdsl.generators.core import (
    BLOCK,
    GROUP_TOKENS,
    Examples,
    MakeBlock,
    MakeLengths,
    Progress,
    run,
    run_at,
    run_lengths,
    stable_hash,
)

__all__ = [
    "BLOCK",
    "Examples",
    "GENERATORS",
    "GeneratorSpec",
    "generate",
    "generate_at",
    "generate_lengths",
    "render",
    "stable_hash",
]


@dataclass(frozen=True)
class GeneratorSpec:
    """What procdsl knows about one procedural source kind."""

    kind: str
    make_block: MakeBlock  # (source, Block) -> Grid
    check: Callable[..., list[str]]  # (source, tokens, mask, context) -> problems
    token_names: Callable[[object], Callable[[int], str]]
    lengths: Optional[MakeLengths] = None  # (source, Block) -> tokens per example, or None
    group_tokens: int = GROUP_TOKENS  # tokens per vectorised call (speed only)

    def generate(
        self,
        source,
        *,
        seed: int,
        name: str,
        start: int,
        count: int,
        context: int,
        progress: Optional[Progress] = None,
    ) -> Examples:
        return run(
            self.make_block,
            source,
            seed=seed,
            name=name,
            start=start,
            count=count,
            context=context,
            progress=progress,
            group_tokens=self.group_tokens,
        )


def _spec(kind, make_block, token_names, **options) -> GeneratorSpec:
    return GeneratorSpec(kind, make_block, checkers.check_example, token_names, **options)


GENERATORS: dict[str, GeneratorSpec] = {
    spec.kind: spec
    for spec in (
        _spec("task", algorithmic.make_block, algorithmic.token_names, lengths=algorithmic.lengths),
        # position loops: the more examples per numpy call the better, up to a few blocks
        _spec(
            "dyck", dyck.make_dyck_block, dyck.token_names, lengths=dyck.dyck_lengths, group_tokens=1 << 23
        ),
        _spec(
            "shuffle_dyck",
            dyck.make_shuffle_block,
            dyck.token_names,
            lengths=dyck.shuffle_lengths,
            group_tokens=1 << 23,
        ),
        _spec("eca", eca.make_block, eca.token_names, lengths=eca.lengths),
        _spec("ww", ww.make_block, ww.token_names, lengths=ww.lengths),
        _spec("haystack", probes.make_haystack_block, probes.haystack_names, lengths=probes.haystack_lengths),
        _spec(
            "addition", probes.make_addition_block, probes.arithmetic_names, lengths=probes.arithmetic_lengths
        ),
        _spec(
            "reversed_addition",
            probes.make_reversed_addition_block,
            probes.arithmetic_names,
            lengths=probes.arithmetic_lengths,
        ),
        _spec(
            "multiplication",
            probes.make_multiplication_block,
            probes.arithmetic_names,
            lengths=probes.arithmetic_lengths,
        ),
        _spec("sorting", probes.make_sorting_block, probes.sorting_names, lengths=probes.sorting_lengths),
    )
}


def generate(
    source, *, seed: int, name: str, start: int, count: int, context: int, progress: Optional[Progress] = None
) -> Examples:
    """Examples ``[start, start + count)`` of the procedural ``source`` named ``name``."""
    return _spec_of(source).generate(
        source, seed=seed, name=name, start=start, count=count, context=context, progress=progress
    )


def _spec_of(source) -> GeneratorSpec:
    spec = GENERATORS.get(source.kind)
    if spec is None:
        raise ValueError(f"{source.kind!r} is not a procedural source")
    return spec


def generate_at(
    source, *, seed: int, name: str, indices: np.ndarray, context: int, progress: Optional[Progress] = None
) -> Examples:
    """Examples ``indices`` (sorted, distinct) of ``source``: the same as :func:`generate` gives
    them, each computed with just the examples of its block that are asked for."""
    spec = _spec_of(source)
    return run_at(
        spec.make_block,
        source,
        seed=seed,
        name=name,
        indices=indices,
        context=context,
        progress=progress,
        group_tokens=spec.group_tokens,
    )


def generate_lengths(
    source, *, seed: int, name: str, start: int, count: int, context: int, progress: Optional[Progress] = None
) -> Optional[np.ndarray]:
    """Tokens of examples ``[start, start + count)`` (int64), the lengths :func:`generate`'s
    examples have, from the parameters each example draws — none of the examples is made — or
    None when the family cannot tell them without making the examples (``GeneratorSpec.lengths``).
    """
    spec = _spec_of(source)
    if spec.lengths is None:
        return None
    return run_lengths(
        spec.lengths,
        source,
        seed=seed,
        name=name,
        start=start,
        count=count,
        context=context,
        progress=progress,
    )


def render(source, tokens: np.ndarray, loss_mask: np.ndarray) -> str:
    """One example as text, special tokens named, targets in brackets."""
    name = GENERATORS[source.kind].token_names(source)
    return " ".join(f"[{name(t)}]" if m else name(t) for t, m in zip(tokens, loss_mask))
