"""E308: every phase's context holds at least one whole example of each procedural source it trains on."""

from __future__ import annotations

from procdsl.lang.diagnostics import Diagnostic


def context_holds_an_example(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        for entry in phase.mix + (phase.mix_end or []):
            source = context.sources.get(entry.source)
            if source is None or not source.procedural:
                continue
            needed = source.min_tokens(phase.context)
            if needed > phase.context:
                out.append(Diagnostic(
                    "E308", f"context {phase.context} of phase `{phase.name}` is shorter than one example of "
                    f"`{entry.source}` ({needed} tokens)", entry.span,
                    help=f"raise `context` to at least {needed} or shorten the source's examples"))
    return out
