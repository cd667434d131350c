"""Planned token shares of a phase, and when each source is due: the clock of the interleave.

A phase asks for token shares ``s_k(x)`` that are constant (``mix``) or move linearly from
``mix_ramp.start`` to ``mix_ramp.end`` as the phase's token progress ``x = P / T`` goes from 0
to 1 (``P`` real tokens of the stream so far — padding is not counted — and ``T`` the real
tokens the phase is expected to hold; past the end the ``end`` shares hold). Source ``k`` should have delivered ``F_k(P) = ∫₀ᴾ s_k(p / T) dp`` tokens by position
``P``. The interleave asks the inverse question — at which position ``P`` is source ``k`` owed
``y`` tokens — and serves the source whose next unit is due first (:meth:`Shares.deadline`).
With constant shares ``deadline(k, y) = y / s_k``: weighted fair queueing.

>>> shares = Shares(start=[1.0, 0.0], end=[0.0, 1.0], total=1000)     # ramp a -> b
>>> shares.share(0.25).tolist(), shares.planned(1000).tolist()
([0.75, 0.25], [500.0, 500.0])
>>> shares.deadline(1, np.array([125.0, 500.0, 600.0])).tolist()      # F_b(500) = 125
[500.0, 1000.0, 1100.0]
>>> Shares(start=[0.8, 0.2], end=[0.8, 0.2], total=1000).deadline(1, np.array([50.0])).tolist()
[250.0]
>>> shares.deadline(0, np.array([501.0])).tolist()                    # a never gets more
[inf]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np

from procdsl.plan.model import Phase


class Shares:
    """Share functions of ``K`` sources over a phase of ``total`` tokens (start → end, linear)."""

    def __init__(self, start: Sequence[float], end: Sequence[float], total: float):
        self.start = np.asarray(start, np.float64)
        self.end = np.asarray(end, np.float64)
        self.total = float(total)
        if self.start.shape != self.end.shape or self.total <= 0:
            raise ValueError("start and end need one share per source, and total must be positive")

    @classmethod
    def for_phase(cls, phase: Phase, total: Optional[float] = None) -> Shares:
        """The phase's shares, sources in ``phase.mix`` order (a ramp names no other source).

        ``total``: the real tokens a ramp runs over (default ``phase.tokens``); the stream
        passes :func:`procdsl.stream.progress.expected_real_tokens`, so that padding does not
        keep a ramp from reaching its end."""
        names = list(phase.mix)
        total = phase.tokens if total is None else total
        if phase.mix_ramp is None:
            shares = [phase.mix[n] for n in names]
            return cls(shares, shares, total)
        return cls(
            [phase.mix_ramp.start.get(n, 0.0) for n in names],
            [phase.mix_ramp.end.get(n, 0.0) for n in names],
            total,
        )

    def __len__(self) -> int:
        return len(self.start)

    def active(self, k: int) -> bool:
        """Whether source ``k`` is ever asked for (a share of 0 throughout never is)."""
        return bool(self.start[k] > 0 or self.end[k] > 0)

    def share(self, progress: float) -> np.ndarray:
        """Every source's share at token progress ``progress`` (clipped to [0, 1])."""
        x = min(max(progress, 0.0), 1.0)
        return self.start + (self.end - self.start) * x

    def planned(self, position: float) -> np.ndarray:
        """``F_k(position)``: the tokens each source should have delivered by ``position``."""
        inside = min(position, self.total)
        ramp = self.start * inside + (self.end - self.start) * inside * inside / (2 * self.total)
        return ramp + self.end * max(position - self.total, 0.0)

    def deadline(self, k: int, owed: np.ndarray) -> np.ndarray:
        """The smallest positions ``P`` with ``F_k(P) = owed`` (``inf`` where it never is).

        Elementwise numpy on float64, the same arithmetic for one value or many, so a resumed
        stream recomputes bit-identical deadlines.
        """
        s0, s1, total = self.start[k], self.end[k], self.total
        owed = np.asarray(owed, np.float64)
        if s0 == s1:
            return owed / s0 if s0 > 0 else np.full(owed.shape, np.inf)
        a = (s1 - s0) / (2 * total)  # F(P) = s0 P + a P² on [0, T]
        at_end = (s0 + s1) / 2 * total
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.sqrt(np.maximum(s0 * s0 + 4 * a * owed, 0.0))
            inside = 2 * owed / (s0 + root)  # the stable root of a P² + s0 P = owed
            after = total + (owed - at_end) / s1 if s1 > 0 else np.full(owed.shape, np.inf)
        return np.where(owed <= at_end, inside, after)
