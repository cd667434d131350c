"""Difficulty progress of a procedural source inside a phase: a pure function of the plan.

A ``ramp(start, end)`` parameter takes its value from ``progress(i)`` of example ``i``
(:mod:`procdsl.generators.core`). The stream sets ``progress(i) = clip(i / E, 0, 1)`` where
``E`` is the number of examples the phase is *expected* to draw from the source:

    E = expected real tokens of the phase × share / mean example length

The expected real tokens (:func:`expected_real_tokens`) are the phase's capacity
(``steps × batch`` rows of ``context + 1``) less the padding its layout is expected to leave:
in a ``padded`` phase one unit fills each row, in a ``packed`` one a row closes, on average,
half a unit short. A mix ramp moves on the same clock (:class:`procdsl.stream.shares.Shares`).

``share`` is the source's mean share (``phase.mix``), and the mean example length is measured
on a fixed probe — the first generator block of the source under the phase's name, seed and
context, with progress spread evenly over [0, 1]. ``E`` depends on the plan alone, never on
what a run has done, so example ``i`` is the same on every rank and after every resume.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum p {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 64
...   batch = 4
...   source s = sort(length=ramp(2, 8), vocab=10)
...   phase warm { steps = 100  mix = { s: 100% } }
... }''', "p.curr").plan
>>> phase = plan.phase("warm")
>>> round(mean_example_tokens(plan.sources["s"], seed=0, name="s/warm", context=64), 2)
11.0
>>> progress = phase_progress(phase, "s", plan.sources["s"])
>>> phase.layout, round(expected_examples(phase, "s", plan.sources["s"]))   # one example a row
('padded', 400)
>>> progress(np.array([0, 200, 5000])).round(2).tolist()
[0.0, 0.5, 1.0]
>>> phase_progress(phase, "s", plan.sources["s"].model_copy(update={"length": 8})) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

import numpy as np

from procdsl.generators import BLOCK, generate, generate_lengths
from procdsl.plan.base import Ramp
from procdsl.plan.model import Phase
from procdsl.plan.sources import SourceBase

#: example indices -> progress in [0, 1] (what ``generate(progress=…)`` takes)
Progress = Callable[[np.ndarray], np.ndarray]


def has_ramp(source: SourceBase) -> bool:
    """Whether any parameter of the source is a ``ramp(…)`` (else progress changes nothing)."""
    return any(isinstance(getattr(source, field), Ramp) for field in type(source).model_fields)


def mean_example_tokens(source: SourceBase, *, seed: int, name: str, context: int) -> float:
    """Mean tokens per example over the probe block (progress evenly spread over [0, 1]): from
    the examples' lengths alone where the generator has a lengths path, else by making them."""
    spread = lambda index: index / (BLOCK - 1)  # noqa: E731
    lengths = generate_lengths(
        source, seed=seed, name=name, start=0, count=BLOCK, context=context, progress=spread
    )
    if lengths is None:
        lengths = np.diff(
            generate(
                source, seed=seed, name=name, start=0, count=BLOCK, context=context, progress=spread
            ).offsets
        )
    return float(lengths.sum()) / BLOCK


def training_key(name: str, phase: Phase) -> str:
    """The generator name of a procedural source trained in ``phase``: distinct per phase."""
    return f"{name}/{phase.name}"


def mean_unit_tokens(phase: Phase, name: str, source: SourceBase) -> float:
    """Mean tokens of a unit of ``source`` in ``phase``: measured for a procedural source; a
    data source's pieces are taken to fill a row (an estimate: it only moves ramps)."""
    if not source.procedural:
        return float(phase.context + 1)
    return mean_example_tokens(source, seed=phase.seed, name=training_key(name, phase), context=phase.context)


def expected_real_tokens(phase: Phase, sources: Mapping[str, SourceBase]) -> float:
    """Tokens of real units the phase is expected to hold (module docstring).

    With units drawn by token share ``s_k`` and mean length ``m_k``, the mean unit holds
    ``m = 1 / Σ s_k / m_k`` tokens: a padded phase holds ``rows × m`` tokens, a packed one
    ``rows × (context + 1 − m_p / 2)``, ``m_p`` the same mean over its procedural sources.
    """
    rows = phase.steps * phase.batch
    means = {name: mean_unit_tokens(phase, name, sources[name]) for name in phase.mix}
    if phase.layout == "padded":
        return rows / sum(share / means[name] for name, share in phase.mix.items() if share > 0)
    procedural = {n: s for n, s in phase.mix.items() if s > 0 and sources[n].procedural}
    if not procedural:
        return float(rows * (phase.context + 1))
    weight = sum(procedural.values())
    mean = weight / sum(share / means[name] for name, share in procedural.items())
    return rows * (phase.context + 1 - mean / 2)


def expected_examples(
    phase: Phase, name: str, source: SourceBase, sources: Optional[Mapping[str, SourceBase]] = None
) -> float:
    """How many examples of ``source`` the phase should draw (at least one)."""
    real = expected_real_tokens(phase, sources or {name: source})
    mean = mean_unit_tokens(phase, name, source)
    return max(real * phase.mix.get(name, 0.0) / mean, 1.0)


def phase_progress(
    phase: Phase, name: str, source: SourceBase, sources: Optional[Mapping[str, SourceBase]] = None
) -> Optional[Progress]:
    """``progress(i)`` for the source in ``phase`` (whose sources are ``sources``); None when
    no parameter ramps."""
    if not has_ramp(source):
        return None
    expected = expected_examples(phase, name, source, sources)
    return lambda index: np.clip(np.asarray(index, np.float64) / expected, 0.0, 1.0)


def final_progress(index: np.ndarray) -> np.ndarray:
    """Progress 1 for every example: held-out examples use the end of every ramp."""
    return np.ones(len(index))
