"""An inlay hint after each phase name: its steps, tokens and share of the budget, from the plan —
the numbers of ``procdsl plan``'s table (:func:`procdsl.plan.table.phase_rows`).

>>> from procdsl.lsp.analysis import analyse
>>> a = analyse('curriculum c { model = gpt2(layers=1, heads=1, dim=8)  context = 16  batch = 2  budget = 640 tokens'
...             '  source d = dyck(k=4)  phase p { share = 10%  mix = { d: 100% } }  phase q { length = rest  mix = { d: 100% } } }',
...             "/tmp/c.curr")
>>> phase_summaries(a)
{'p': '2 steps · 64 tokens · 10.0% of budget', 'q': '18 steps · 576 tokens · 90.0% of budget'}
"""

from __future__ import annotations

from lsprotocol import types

from procdsl.lsp.analysis import Analysis
from procdsl.lsp.positions import Converter
from procdsl.plan.table import phase_rows


def phase_summaries(analysis: Analysis) -> dict[str, str]:
    """Phase name → ``N steps · N tokens · P% of budget``; empty while the file has errors."""
    plans = analysis.result.plans
    if not plans:
        return {}
    variants = f" (first of {len(plans)} sweep variants)" if len(plans) > 1 else ""
    out = {}
    for name, steps, tokens, share, *_ in phase_rows(plans[0]):
        budget = f" · {share} of budget" if share != "—" else ""
        out[name] = f"{steps} steps · {tokens} tokens{budget}{variants}"
    return out


def inlay_hints(analysis: Analysis, conv: Converter) -> list[types.InlayHint]:
    module = analysis.module
    summaries = phase_summaries(analysis)
    if module is None or module.curriculum is None or not summaries:
        return []
    return [
        types.InlayHint(
            position=conv.range(phase.name_span).end, label=summaries[phase.name], padding_left=True
        )
        for phase in module.curriculum.phases
        if phase.name in summaries
    ]
