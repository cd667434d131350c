"""What a report's x-axis counts: ``real-tokens``, ``all-tokens`` or ``flops``.

* ``real-tokens`` — tokens of each run's *last* phase only, the paper's data-efficiency axis
  (every arm starts at 0; a warm-up is free);
* ``all-tokens`` — tokens of every phase, so a warm-up shifts its arm right by what it cost;
* ``flops`` — training FLOPs of every phase (``procdsl.runtime.flops``: 6 × weights + attention
  per token, with each phase's vocabulary and context), the compute-matched view.

An :class:`Axis` maps a record's ``(phase, phase_step)`` to x; phases it does not cover (a
warm-up on the ``real-tokens`` axis) map to None.

>>> plan = {"phases": [{"name": "w", "steps": 10, "batch": 2, "context": 5},
...                    {"name": "lm", "steps": 4, "batch": 2, "context": 50}]}
>>> real, every = axis_for(plan, "real-tokens"), axis_for(plan, "all-tokens")
>>> real.x("w", 3), real.x("lm", 2), every.x("w", 3), every.x("lm", 2)
(None, 200.0, 30.0, 300.0)
>>> every.boundaries()
[(100.0, 'lm')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

#: axis name -> its label on a figure
AXES = {
    "real-tokens": "real-data tokens (last phase)",
    "all-tokens": "tokens (all phases)",
    "flops": "training FLOPs (all phases)",
}


class AxisError(ValueError):
    """The axis cannot be computed for a run (e.g. FLOPs of a plan that no longer validates)."""


@dataclass(frozen=True)
class Axis:
    name: str
    start: dict[str, float]  # phase -> x at its first token
    per_step: dict[str, float]  # phase -> x per step

    @property
    def label(self) -> str:
        return AXES[self.name]

    def x(self, phase: Optional[str], phase_step: int) -> Optional[float]:
        if phase not in self.start:
            return None
        return self.start[phase] + self.per_step[phase] * phase_step

    def boundaries(self) -> list[tuple[float, str]]:
        """Where each phase after the first starts on this axis, and its name."""
        return sorted((x, phase) for phase, x in self.start.items() if x > 0)


def _tokens_per_step(phase: dict[str, Any]) -> int:
    return int(phase.get("batch", 1)) * int(phase.get("context", 1))


def _steps(phase: dict[str, Any]) -> int:
    if "steps" in phase:
        return int(phase["steps"])
    return int(phase.get("tokens", 0)) // max(_tokens_per_step(phase), 1)


def flops_per_token(plan: dict[str, Any]) -> list[float]:
    """Training FLOPs per token of each phase's model (its vocabulary, its context)."""
    from pydantic import ValidationError

    from procdsl.plan import Plan
    from procdsl.plan.table import text_vocab
    from procdsl.runtime.flops import flops_per_token as per_token
    from procdsl.stream.vocab import PhaseVocab

    try:
        model = Plan.model_validate(plan)
        reads_text = any(not model.sources[s].procedural for p in model.phases for s in p.mix)
        text = text_vocab(model) if reads_text else 0
        context = max([model.context] + [p.context for p in model.phases])
        return [
            float(
                per_token(
                    model.model,
                    vocab=PhaseVocab.sized(model, p, text).size,
                    context=context,
                    seq_len=p.context,
                )
            )
            for p in model.phases
        ]
    except (ValidationError, KeyError, OSError, ValueError) as exc:
        raise AxisError(
            f"cannot count the FLOPs of plan {plan.get('name', '?')!r}: {str(exc).splitlines()[0]}"
        ) from None


def axis_for(plan: dict[str, Any], name: str) -> Axis:
    """The axis ``name`` for runs of ``plan`` (a plan.json as a dict)."""
    if name not in AXES:
        raise AxisError(f"unknown x-axis {name!r}; choose {', '.join(AXES)}")
    phases = plan.get("phases", [])
    if not phases:
        return Axis(name, {}, {})
    if name == "real-tokens":
        last = phases[-1]
        return Axis(name, {last["name"]: 0.0}, {last["name"]: float(_tokens_per_step(last))})
    cost = flops_per_token(plan) if name == "flops" else [1.0] * len(phases)
    start, per_step, x = {}, {}, 0.0
    for phase, per_token in zip(phases, cost):
        start[phase["name"]] = x
        per_step[phase["name"]] = per_token * _tokens_per_step(phase)
        x += per_step[phase["name"]] * _steps(phase)
    return Axis(name, start, per_step)
