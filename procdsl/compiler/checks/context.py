"""E308: a phase's context holds every whole example of each procedural source it trains on.

The stream never splits a procedural example across rows (another source's tokens could land
between its halves), so it is the *longest* example that must fit.
"""

from __future__ import annotations

from procdsl.lang.diagnostics import Diagnostic


def context_holds_an_example(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        for entry in phase.mix + (phase.mix_end or []):
            source = context.sources.get(entry.source)
            if source is None or not source.procedural:
                continue
            needed = source.max_tokens(phase.context)
            if needed > phase.context:
                out.append(Diagnostic(
                    "E308", f"context {phase.context} of phase `{phase.name}` is shorter than the longest example "
                    f"of `{entry.source}` ({needed} tokens)", entry.span,
                    help=f"raise `context` to at least {needed} or shorten the source's examples"))
    return out
