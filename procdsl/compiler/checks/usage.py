"""Warnings: unused sources (W401), an eval period longer than its phase (W402), evaluating on
a source the model trains on (W403)."""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def unused_sources(context) -> list[Diagnostic]:
    """W401 for the compiled file's own sources; an imported library may define more than one
    curriculum uses."""
    used = {context.tokenizer_source} if context.tokenizer_source else set()
    for phase in context.phases:
        used |= phase.sources_used() | {e.source for e, _ in phase.evals}
    return [
        Diagnostic(
            codes.UNUSED_SOURCE,
            f"source `{name}` is never used",
            d.name_span,
            help="use it in a `mix` or an `eval`, or remove it",
        )
        for name, d in context.definitions.items()
        if name not in used
        and context.phases
        and context.sources.get(name) is not None
        and d.span.file == context.root_file
    ]


def eval_period_within_phase(context) -> list[Diagnostic]:
    out = []
    for phase in context.phases:
        for ev, span in phase.evals:
            if phase.steps is not None and ev.every > phase.steps:
                out.append(
                    Diagnostic(
                        codes.EVAL_PERIOD_TOO_LONG,
                        f"phase `{phase.name}` has {phase.steps} steps, fewer than one eval "
                        f"period ({ev.every} steps)",
                        span,
                        help="the eval still runs once at the end of the phase; shorten the period to see a curve",
                    )
                )
    return out


def eval_source_not_trained_on(context) -> list[Diagnostic]:
    trained = set().union(*(p.sources_used() for p in context.phases)) if context.phases else set()
    out = []
    for phase in context.phases:
        for ev, span in phase.evals:
            if ev.source in trained:
                out.append(
                    Diagnostic(
                        codes.EVAL_ON_TRAINING_SOURCE,
                        f"eval source `{ev.source}` is also used for training",
                        span,
                        help="evaluate on a held-out source (e.g. the validation split) for an honest number",
                    )
                )
    return out
