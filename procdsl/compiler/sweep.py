"""``sweep { key: [values…] … }`` → one variant per element of the cross product.

Each variant is a set of overrides (the same mechanism as ``--set``) and a name
``<curriculum>/<key>=<value>,…``; it compiles to its own plan with its own hash. A sweep of
more than :data:`~procdsl.limits.MAX_SWEEP_VARIANTS` variants is E313, counted before any is built.

>>> from procdsl.compiler import compile_text
>>> text = '''curriculum c { model = gpt2(layers=2, heads=2, dim=8) context = 32 batch = 2
...   source a = sort(length=4)  source b = reverse(length=4)
...   phase warm { steps = 10 mix = { a: 100% } }
...   sweep { seed: [0, 1], warm.mix: [{a: 100%}, {b: 100%}] } }'''
>>> for plan in compile_text(text, "c.curr").plans:
...     print(plan.name)
c/seed=0,warm.mix={ a: 100% }
c/seed=0,warm.mix={ b: 100% }
c/seed=1,warm.mix={ a: 100% }
c/seed=1,warm.mix={ b: 100% }
"""

from __future__ import annotations

import itertools
import math

from procdsl.compiler.overrides import Override
from procdsl.compiler.values import describe
from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Diagnostic
from procdsl.lang.fmt import format_expr
from procdsl.limits import MAX_SWEEP_VARIANTS


def expand_sweep(
    curriculum: n.Curriculum, diagnostics: list[Diagnostic]
) -> list[tuple[str, dict[str, str], list[Override]]]:
    """[(variant name, {key: value text}, overrides)] — empty after reporting a malformed sweep."""
    assert curriculum.sweep is not None
    axes = []
    for entry in curriculum.sweep.entries:
        if not isinstance(entry.values, n.ListExpr) or not entry.values.items:
            diagnostics.append(
                Diagnostic(
                    codes.WRONG_TYPE,
                    f"sweep `{'.'.join(entry.path)}` expects a non-empty list of values, "
                    f"found {describe(entry.values)}",
                    entry.values.span,
                    help="write e.g. `seed: [0, 1, 2]`",
                )
            )
            return []
        axes.append([(entry, value) for value in entry.values.items])
    size = math.prod(len(axis) for axis in axes)
    if size > MAX_SWEEP_VARIANTS:
        shape = " × ".join(str(len(axis)) for axis in axes)
        diagnostics.append(
            Diagnostic(
                codes.SWEEP_TOO_LARGE,
                f"sweep expands to {size:,} variants ({shape}), more than the limit of "
                f"{MAX_SWEEP_VARIANTS:,}",
                curriculum.sweep.span,
                help="sweep fewer values, or split the sweep across files",
            )
        )
        return []
    variants = []
    for combo in itertools.product(*axes):
        values = {".".join(entry.path): format_expr(value) for entry, value in combo}
        name = curriculum.name + "/" + ",".join(f"{key}={text}" for key, text in values.items())
        variants.append((name, values, [Override(e.path, v, e.path_span) for e, v in combo]))
    return variants
