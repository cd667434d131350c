"""The copy language ``w w`` (``ww(length=L, vocab=V)``).

Token ids: symbols ``1 … V-1`` (i.i.d. uniform); ``V`` (SEP) and ``V + 1`` (PAD) are reserved,
as for the algorithmic tasks, and never appear in an example (vocabulary ``V + 2``). An example
is ``w`` (``L`` symbols) followed by ``w`` again: ``2L`` tokens, no separator. Loss on the second
copy (``output_only``), all ``L`` of its tokens.

>>> from procdsl.generators import generate, render
>>> from procdsl.plan.sources import WwSource
>>> src = WwSource(length=5, vocab=10)
>>> print(render(src, *generate(src, seed=0, name="demo", start=0, count=1, context=64)[0]))
1 1 7 4 2 [1] [1] [7] [4] [2]
"""

from __future__ import annotations

import numpy as np

from procdsl.generators.core import Block, Grid, namer, segments
from procdsl.plan.base import maximum
from procdsl.plan.sources import WwSource


def lengths(source: WwSource, b: Block) -> np.ndarray:
    """Tokens of each example: ``w`` twice."""
    return 2 * b.param(source.length)


def make_block(source: WwSource, b: Block) -> Grid:
    length, width = b.param(source.length), int(maximum(source.length))
    w = b.integers(1, source.vocab, width)
    keep = np.arange(width)[None, :] < length[:, None]
    return segments(b.n, (w, False, keep), (w, True, keep))


def token_names(source: WwSource):
    return namer({source.vocab: "SEP", source.vocab + 1: "PAD"})
