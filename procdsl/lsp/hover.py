"""Hover: the registry's entry for a setting, key, call, parameter or word (type, default, range,
one line of doc); a definition's text for a source, rule or let name; a phase's steps, tokens and
share of the budget.

>>> from procdsl.lsp.analysis import analyse
>>> a = analyse('source d = dyck(k=4)', "/tmp/lib.curr")
>>> print(hover_at(a, 1, 17)[0])
**k** — parameter of `dyck`
<BLANKLINE>
`int` · default: 64 · range: ≥ 1
<BLANKLINE>
number of bracket types
"""

from __future__ import annotations

import os
from typing import Optional

from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lang.fmt import format_expr
from procdsl.lsp.analysis import Analysis
from procdsl.lsp.inlay import phase_summaries
from procdsl.lsp.locate import Hit, locate
from procdsl.registry.items import Item, param_hover
from procdsl.registry.lookup import find

#: the registry entry that describes a call whose own name has none (a rule's short form)
_TASK = ("task", "source kind")


def hover_at(analysis: Analysis, line: int, column: int) -> Optional[tuple[str, Span]]:
    """The markdown and the span it describes, at a 1-based position."""
    hit = locate(analysis.module, line, column)
    if hit is None:
        return None
    text = _describe(analysis, hit)
    return (text, hit.span) if text else None


def registry_item(hit: Hit) -> Optional[Item]:
    """The registry entry a hit names in its place (None for user names)."""
    if hit.kind == "param":
        return find(hit.call or "", *hit.roles) or find(*_TASK)
    return find(hit.name, *hit.roles)


def _describe(analysis: Analysis, hit: Hit) -> Optional[str]:
    if hit.kind == "phase":
        summary = phase_summaries(analysis).get(hit.name)
        return f"**phase {hit.name}** — {summary}" if summary else None
    if hit.kind == "import":
        target = os.path.normpath(os.path.join(os.path.dirname(analysis.path), hit.name))
        module = analysis.program.modules.get(target)
        if module is None:
            return f"`{target}` (not loaded)"
        names = ", ".join(f"{d.kind} `{d.name}`" for d in module.definitions) or "no definitions"
        return f"**import** `{target}`\n\n{names}"
    definition = analysis.definition(hit.name, hit.namespaces)
    if definition is not None and hit.kind != "param":
        return describe_definition(definition)
    item = registry_item(hit)
    if item is None:
        return None
    if hit.kind == "param":
        param = item.param(hit.name)
        return param_hover(item, param) if param else None
    return item.hover()


def describe_definition(d: n.Definition) -> str:
    """``source dyck = dyck(k=64)`` in a code block, where it is defined, and its kind's doc."""
    text = [
        f"```\n{d.kind} {d.name} = {format_expr(d.value)}\n```",
        f"defined in `{os.path.basename(d.span.file)}` line {d.span.line}",
    ]
    if d.kind == "source" and isinstance(d.value, n.Call):
        kind = find(d.value.name, "source kind") or find(*_TASK)
        text.append(kind.doc if kind else "")
    return "\n\n".join(t for t in text if t)
