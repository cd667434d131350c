"""Exact step arithmetic: every phase's length becomes a whole number of steps.

``tokens`` and ``share`` round **up** to whole steps of the phase (``batch × context`` tokens
each); ``rest`` takes what ``budget`` leaves after the other phases, rounded **down**.

>>> steps_for_tokens(100_000, batch=8, context=128)   # DESIGN.md's worked example
98
>>> 98 * 8 * 128
100352
"""

from __future__ import annotations

import math
from typing import Optional

from procdsl.compiler.phases import ElabPhase
from procdsl.compiler.values import Reader
from procdsl.lang import codes
from procdsl.lang.diagnostics import Span


def steps_for_tokens(tokens: int, *, batch: int, context: int) -> int:
    return max(1, math.ceil(tokens / (batch * context)))


def assign_lengths(
    phases: list[ElabPhase], budget: Optional[int], budget_span: Optional[Span], reader: Reader
) -> None:
    """Fill ``phase.steps`` for every phase whose length could be read; E304 if the budget cannot
    hold them. A second ``rest`` (E302) or a share without a budget (E303) is left without steps
    here and reported by :mod:`procdsl.compiler.checks.budget`."""
    rest = [(p, p.length) for p in phases if p.length is not None and p.length.kind == "rest"]
    for phase in phases:
        length = phase.length
        if length is None or (length.kind in ("share", "rest") and budget is None):
            continue
        if length.amount is None or length.kind == "rest":
            continue
        elif length.kind == "steps":
            phase.steps = int(length.amount)
        elif length.kind == "tokens":
            phase.steps = steps_for_tokens(int(length.amount), batch=phase.batch, context=phase.context)
        elif length.kind == "share" and budget is not None:
            phase.steps = steps_for_tokens(
                math.ceil(length.amount * budget), batch=phase.batch, context=phase.context
            )
    if budget is None:
        return
    fixed = [
        (p, p.steps * p.tokens_per_step)
        for p in phases
        if p.steps is not None and not (p.length is not None and p.length.kind == "rest")
    ]
    used = sum(tokens for _, tokens in fixed)
    if used > budget:
        detail = ", ".join(f"{p.name} {tokens:,}" for p, tokens in fixed)
        reader.error(
            codes.OVER_BUDGET,
            f"phases take {used:,} tokens, more than the budget of {budget:,}",
            budget_span or phases[0].node.name_span,
            help=f"raise the budget or shorten a phase ({detail})",
        )
        return
    if rest:
        phase, length = rest[0]
        left = budget - used
        steps = left // phase.tokens_per_step
        if steps < 1:
            reader.error(
                codes.OVER_BUDGET,
                f"`length = rest` leaves phase `{phase.name}` no step: the budget "
                f"of {budget:,} tokens has {left:,} left, less than one step of {phase.tokens_per_step:,}",
                length.span,
                help="raise the budget or shorten the other phases",
            )
        else:
            phase.steps = steps
