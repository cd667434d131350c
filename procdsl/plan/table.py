"""A plan as a person reads it: a rich table of phases, steps, tokens, budget share, mix and lr.

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 2 ' \\
...        'source s = sort(length=3) phase p { steps = 4 mix = { s: 100% } } }'
>>> print(phase_rows(compile_text(text, "c.curr").plan)[0])
('p', '4', '64', '—', 's 100%', 'adamw 5e-04, constant')
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from procdsl.plan.model import Plan


def _mix(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.4g}%" for name, share in shares.items())


def _lr(phase) -> str:
    opt = phase.optimizer
    head = "continue" if opt.kind == "continue" else f"{opt.kind} {opt.lr:.0e}"
    sched = phase.schedule
    extra = ", ".join(f"{k}={v}" for k, v in sched.model_dump().items() if k != "kind" and v)
    return f"{head}, {sched.kind}" + (f"({extra})" if extra else "")


def phase_rows(plan: Plan) -> list[tuple[str, ...]]:
    rows = []
    for phase in plan.phases:
        share = f"{phase.tokens / plan.budget * 100:.1f}%" if plan.budget else "—"
        mix = _mix(phase.mix) if phase.mix_ramp is None else f"{_mix(phase.mix_ramp.start)} → {_mix(phase.mix_ramp.end)}"
        rows.append((phase.name, f"{phase.steps:,}", f"{phase.tokens:,}", share, mix, _lr(phase)))
    return rows


def print_plan(plan: Plan, console: Console | None = None) -> None:
    console = console or Console()
    model = plan.model
    table = Table(title=f"{plan.name}  ·  {model.kind} {model.layers}L/{model.heads}H/{model.dim}d  ·  "
                        f"tokenizer {plan.tokenizer.kind}  ·  seed {plan.seed}", title_justify="left")
    for column, justify in (("phase", "left"), ("steps", "right"), ("tokens", "right"),
                            ("of budget", "right"), ("mix", "left"), ("lr schedule", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in phase_rows(plan):
        table.add_row(*row)
    table.add_section()
    budget = f"{plan.total_tokens / plan.budget * 100:.1f}%" if plan.budget else "—"
    table.add_row("total", f"{plan.total_steps:,}", f"{plan.total_tokens:,}", budget, "", "")
    console.print(table)
    console.print(f"hash {plan.hash}", style="dim")
