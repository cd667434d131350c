"""E302, E303: lengths that depend on the curriculum's ``budget`` — one ``rest`` phase at most,
and a ``budget`` whenever a phase takes a ``share`` or the ``rest``.

(E304, phases exceeding the budget, stays in :mod:`procdsl.compiler.lengths`: it is the outcome
of the arithmetic that gives ``rest`` its steps.)

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 ' \\
...        'source a = sort(length=3) phase p { length = rest mix = { a: 100% } } ' \\
...        'phase q { length = rest mix = { a: 100% } } }'
>>> [(d.code, d.message) for d in compile_text(text, "x.curr").diagnostics]
[('E303', '`length = rest` needs a curriculum `budget`'), ('E302', 'two phases take `length = rest` (`p` and `q`)'), ('E303', '`length = rest` needs a curriculum `budget`')]
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic


def one_rest_phase(context) -> list[Diagnostic]:
    rest = [(p, p.length) for p in context.phases if p.length is not None and p.length.kind == "rest"]
    return [
        Diagnostic(
            codes.TWO_REST_PHASES,
            f"two phases take `length = rest` (`{rest[0][0].name}` and `{extra.name}`)",
            length.span,
            help="give this phase an explicit length",
            notes=((f"`{rest[0][0].name}` takes the rest", rest[0][1].span),),
        )
        for extra, length in rest[1:]
    ]


def shares_need_a_budget(context) -> list[Diagnostic]:
    if context.budget is not None:
        return []
    out = []
    for phase in context.phases:
        if phase.length is not None and phase.length.kind in ("share", "rest"):
            what = "`share`" if phase.length.kind == "share" else "`length = rest`"
            out.append(
                Diagnostic(
                    codes.NEEDS_BUDGET,
                    f"{what} needs a curriculum `budget`",
                    phase.length.span,
                    help="add e.g. `budget = 655M tokens` to the curriculum",
                )
            )
    return out
