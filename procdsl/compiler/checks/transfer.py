"""E305: ``transfer`` and ``optimizer = continue`` need a previous phase to take from."""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic
from procdsl.plan.model import ContinueOptimizer


def transfer_needs_previous_phase(context) -> list[Diagnostic]:
    if not context.phases:
        return []
    first = context.phases[0]
    out = []
    if first.transfer_span is not None:
        out.append(
            Diagnostic(
                codes.NO_PREVIOUS_PHASE,
                f"`transfer` on the first phase `{first.name}`: there is no previous model",
                first.transfer_span,
                help="remove it; the first phase starts from a fresh model",
            )
        )
    if isinstance(first.optimizer, ContinueOptimizer):
        out.append(
            Diagnostic(
                codes.NO_PREVIOUS_PHASE,
                f"`optimizer = continue` on the first phase `{first.name}`: there is no optimizer to continue",
                first.optimizer_span,
                help="give it an optimizer, e.g. `adamw(lr=5e-4)`",
            )
        )
    return out
