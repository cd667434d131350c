"""W404: a mix share the phase cannot deliver within 10%, because the source's units are too coarse.

The stream delivers whole units (an example, or a piece of a document), each due when the
source's planned tokens reach the unit's middle (:mod:`procdsl.stream.interleave`). Over a phase
holding ``T`` real tokens, source ``k`` with share ``s`` and units of about ``u`` tokens gets
``round(s·T / u)`` units, so a share worth a few units comes out visibly off: 0.3% of a phase
that holds 1.5 units of the source is realised as one unit, 0.2%.

The estimate reads only the plan's numbers — no example is generated, no file is read (``procdsl
check`` stays light): a procedural unit is the mean of its smallest and largest example
(:meth:`~procdsl.plan.sources.SourceBase.min_tokens`/``max_tokens``), a document piece fills a
row (``context + 1`` tokens; a ``dm_math`` problem about ``DM_MATH_TOKENS``). A padded phase
holds one unit per row, a packed one fills its rows. A mix ramp is not estimated (its shares
move; a ramp is followed unit by unit).

>>> estimate_shares({"a": 0.997, "b": 0.003}, {"a": 129.0, "b": 129.0}, rows=400, row_len=129, padded=True)
{'a': 0.9975, 'b': 0.0025}
>>> estimate_shares({"a": 0.5, "b": 0.5}, {"a": 9.0, "b": 9.0}, rows=400, row_len=65, padded=False)
{'a': 0.5, 'b': 0.5}
"""

from __future__ import annotations

from typing import Optional

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic
from procdsl.plan.model import default_layout
from procdsl.plan.sources import SourceBase

#: how far off (relative to the share asked) a realised share may come out before W404
TOLERANCE = 0.10
#: tokens of a ``dm_math`` problem, question and answer (a short line of text)
DM_MATH_TOKENS = 40.0


def unit_tokens(source: SourceBase, context: int) -> float:
    """About how many tokens one unit of ``source`` takes in a phase of ``context`` tokens.

    >>> from procdsl.plan.sources import TaskSource, PythonCodeSource
    >>> unit_tokens(TaskSource(rule=("sort",), length=64), 2048), unit_tokens(PythonCodeSource(), 2048)
    (129.0, 2049.0)
    """
    if source.procedural:
        return (source.min_tokens(context) + source.max_tokens(context)) / 2
    if source.kind == "dm_math":
        return min(DM_MATH_TOKENS, context + 1.0)
    return context + 1.0


def estimate_units(
    shares: dict[str, float], units: dict[str, float], *, rows: int, row_len: int, padded: bool
) -> dict[str, int]:
    """How many whole units each source gets: ``round(s·T / u)``, ``T`` the phase's real tokens."""
    asked = {name: s for name, s in shares.items() if s > 0}
    if padded:  # one unit per row: T = rows × the mean unit, 1 / Σ s/u
        real = rows / sum(s / units[name] for name, s in asked.items())
    else:
        real = float(rows * row_len)
    return {name: int(s * real / units[name] + 0.5) for name, s in asked.items()}


def estimate_shares(
    shares: dict[str, float], units: dict[str, float], *, rows: int, row_len: int, padded: bool
) -> dict[str, float]:
    """The token shares the phase delivers in whole units (:func:`estimate_units`)."""
    counts = estimate_units(shares, units, rows=rows, row_len=row_len, padded=padded)
    delivered = {name: count * units[name] for name, count in counts.items()}
    total = sum(delivered.values())
    return {name: (d / total if total else 0.0) for name, d in delivered.items()}


def share_is_realised(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        found: dict[str, Optional[SourceBase]] = {e.source: context.sources.get(e.source) for e in phase.mix}
        sources = {name: source for name, source in found.items() if source is not None}
        if (
            phase.steps is None
            or phase.mix_end is not None
            or not phase.mix
            or len(sources) < len(found)
            or abs(sum(e.share for e in phase.mix) - 1) > 1e-9
        ):  # E301's to report
            continue
        layout = phase.layout or default_layout(sources.values())
        units = {name: unit_tokens(source, phase.context) for name, source in sources.items()}
        shape = {
            "rows": phase.steps * phase.batch,
            "row_len": phase.context + 1,
            "padded": layout == "padded",
        }
        asked = {e.source: e.share for e in phase.mix}
        counts, got = estimate_units(asked, units, **shape), estimate_shares(asked, units, **shape)
        for entry in phase.mix:
            if entry.share <= 0 or abs(got[entry.source] - entry.share) <= TOLERANCE * entry.share:
                continue
            count = counts[entry.source]
            out.append(
                Diagnostic(
                    codes.SHARE_NOT_REALISED,
                    f"`{entry.source}` gets about {count:,} unit{'s' * (count != 1)} of "
                    f"~{units[entry.source]:,.0f} tokens in phase `{phase.name}`, so its {entry.share * 100:.4g}% "
                    f"comes out near {got[entry.source] * 100:.3g}%",
                    entry.span,
                    help="lengthen the phase, raise the share, or give this source smaller examples",
                )
            )
    return out
