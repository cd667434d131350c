"""E308: a row of a phase holds every whole example of each procedural source it trains on.

A row is ``context + 1`` tokens (the model reads the first ``context``; the last is only a
label), and no layout ever splits a procedural example across rows, so it is the *longest*
example that must fit: ``max_tokens ≤ context + 1``. The paper's ``x SEP y`` SORT example of
129 tokens (L = 64) therefore trains at ``context = 128``, one example per row, like the
paper's 129-token sequences.
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def context_holds_an_example(context) -> list[Diagnostic]:
    """Every procedural source a phase trains on or evaluates (evals run at the phase's
    context) fits a row of that phase."""
    out = []
    for phase in context.phases:
        used = [(entry.source, entry.span) for entry in phase.mix + (phase.mix_end or [])]
        used += [(evaluation.source, span) for evaluation, span in phase.evals]
        for name, span in used:
            source = context.sources.get(name)
            if source is None or not source.procedural:
                continue
            needed = source.max_tokens(phase.context)
            if needed > phase.context + 1:
                out.append(
                    Diagnostic(
                        codes.CONTEXT_TOO_SHORT,
                        f"a row of phase `{phase.name}` (context {phase.context} + 1 tokens) is shorter "
                        f"than the longest example of `{name}` ({needed} tokens)",
                        span,
                        help=f"raise `context` to at least {needed - 1} or shorten the source's examples",
                    )
                )
    return out
