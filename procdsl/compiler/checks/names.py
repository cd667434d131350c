"""E306: phase names are unique within a curriculum (the note points at the first).

Sources, rules and lets get the same code from :mod:`procdsl.compiler.scope`, which needs it
while it builds the namespaces.

>>> from procdsl.compiler import compile_text
>>> text = 'curriculum c { model = gpt2(layers=1, heads=1, dim=8) context = 8 batch = 1 ' \\
...        'source a = sort(length=3) phase p { steps = 1 mix = { a: 100% } } phase p { steps = 1 mix = { a: 100% } } }'
>>> [(d.code, d.message, d.notes[0][0]) for d in compile_text(text, "x.curr").diagnostics]
[('E306', 'phase `p` is defined twice', 'first defined')]
"""

from __future__ import annotations

from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic, Span


def phase_names_are_unique(context) -> list[Diagnostic]:
    first: dict[str, Span] = {}
    out = []
    for phase in context.phases:
        node = phase.node
        if node.name in first:
            out.append(
                Diagnostic(
                    codes.DUPLICATE_NAME,
                    f"phase `{node.name}` is defined twice",
                    node.name_span,
                    help="phase names must be unique",
                    notes=(("first defined", first[node.name]),),
                )
            )
        first.setdefault(node.name, node.name_span)
    return out
