"""What is under the cursor: every name of a module as a :class:`Hit` with the role its place
gives it, so hover and go-to-definition can ask the registry or the scope about it.

A name's role comes from where it stands: right of ``schedule =`` a name is a schedule, a key of
``mix`` names a source, a keyword argument is a parameter of its call.

>>> from procdsl.lang.lower import lower
>>> from procdsl.lang.parse import parse_text
>>> text = 'source d = dyck(k=4)\\ncurriculum c { phase p { schedule = cosine(min=0.1)  mix = { d: 100% } } }'
>>> module = lower(parse_text(text, "c.curr")[0], "c.curr")
>>> [(h.kind, h.name, h.roles or h.namespaces) for h in (locate(module, 1, 18), locate(module, 2, 38), locate(module, 2, 62))]
[('param', 'k', ('source kind',)), ('call', 'cosine', ('schedule',)), ('word', 'd', ('source',))]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lsp.positions import contains
from procdsl.plan.sources import SOURCE_KINDS

#: registry roles of the value of a setting, by key
VALUE_ROLES = {
    "model": ("model",),
    "tokenizer": ("tokenizer",),
    "optimizer": ("optimizer",),
    "schedule": ("schedule",),
    "loss": ("loss",),
    "parallel": ("parallel",),
    "length": ("length",),
}
_BLOCK_ROLE = {"curriculum": "curriculum setting", "runtime": "runtime setting", "phase": "phase key"}
_LETS = ("let",)


@dataclass(frozen=True)
class Hit:
    """A name at a span. ``kind``: key, call, word, param, definition, phase or import."""

    span: Span
    name: str
    kind: str
    #: registry categories the name may belong to, most likely first
    roles: tuple[str, ...] = ()
    #: scope namespaces (``let``, ``rule``, ``source``) the name may refer to
    namespaces: tuple[str, ...] = ()
    #: for a parameter: the call it belongs to (``task`` for a rule's short form)
    call: Optional[str] = None


def locate(module: Optional[n.Module], line: int, column: int) -> Optional[Hit]:
    """The innermost hit at the 1-based position, or None."""
    if module is None:
        return None
    found = [h for h in hits(module) if contains(h.span, line, column)]
    return min(
        found, key=lambda h: (h.span.end_line - h.span.line, h.span.end_column - h.span.column), default=None
    )


def hits(module: n.Module) -> Iterator[Hit]:
    """Every hit of the module, in source order within each block."""
    for imp in module.imports:
        yield Hit(imp.span, imp.path, "import")
    for definition in module.definitions:
        yield from _definition(definition)
    c = module.curriculum
    if c is None:
        return
    for setting in c.settings:
        yield from _setting(setting, "curriculum")
    for definition in c.definitions:
        yield from _definition(definition)
    for phase in c.phases:
        yield Hit(phase.name_span, phase.name, "phase")
        for setting in phase.settings:
            yield from _setting(setting, "phase")
        for block in phase.evals:
            if block.every is not None:
                yield from _expr(block.every, ())
            for call in block.calls:
                yield from _call(call, ("evaluation",), first=("source", "let"))
    if c.runtime is not None:
        for setting in c.runtime.settings:
            yield from _setting(setting, "runtime")


def _definition(d: n.Definition) -> Iterator[Hit]:
    yield Hit(d.name_span, d.name, "definition", namespaces=(d.kind,))
    if d.kind == "rule":
        yield from _expr(d.value, ("rule",), ("rule", "let"))
    elif d.kind == "source" and isinstance(d.value, n.Call):
        call = d.value
        if call.name == "task":
            yield from _call(call, ("source kind",), first=("rule", "let"), first_roles=("rule",))
        elif call.name in SOURCE_KINDS:
            yield from _call(call, ("source kind",))
        else:  # a rule's short form: `sort(length=8)` is `task(sort, length=8)`
            yield Hit(call.name_span, call.name, "call", ("rule",), ("rule",))
            yield from _arguments(call, "task", ())
    else:
        yield from _expr(d.value, ())


def _setting(s: n.Setting, block: str) -> Iterator[Hit]:
    yield Hit(s.key_span, s.key, "key", (_BLOCK_ROLE[block],))
    if s.value is None:
        return
    value = s.value
    if s.key == "mix":
        maps = value.args if isinstance(value, n.Call) and value.name == "ramp" else (value,)
        for m in maps:
            yield from _map(m, (), ("source",), ())
    elif s.key == "transfer":
        yield from _transfer(value)
    else:
        yield from _expr(value, VALUE_ROLES.get(s.key, ()))


def _transfer(value: n.Expr) -> Iterator[Hit]:
    if not isinstance(value, n.MapExpr):
        yield from _expr(value, ())
        return
    for entry in value.entries:
        yield Hit(entry.key_span, entry.key, "key", ("transfer key",))
        if entry.key == "perturb":
            yield from _map(entry.value, ("component",), (), ("perturbation",))
        else:
            yield from _expr(entry.value, ("component",) if entry.key in ("keep", "reinit", "freeze") else ())


def _map(
    value: n.Expr, key_roles: tuple[str, ...], key_namespaces: tuple[str, ...], value_roles: tuple[str, ...]
) -> Iterator[Hit]:
    if not isinstance(value, n.MapExpr):
        yield from _expr(value, ())
        return
    for entry in value.entries:
        yield Hit(entry.key_span, entry.key, "word", key_roles, key_namespaces)
        yield from _expr(entry.value, value_roles)


def _expr(expr: n.Expr, roles: tuple[str, ...], namespaces: tuple[str, ...] = _LETS) -> Iterator[Hit]:
    if isinstance(expr, n.Name):
        yield Hit(expr.span, expr.name, "word", roles, namespaces)
    elif isinstance(expr, n.Call):
        yield from _call(expr, roles)
    elif isinstance(expr, (n.ListExpr, n.TupleExpr, n.Compose)):
        for item in expr.items if not isinstance(expr, n.Compose) else expr.parts:
            yield from _expr(item, roles, namespaces)
    elif isinstance(expr, n.MapExpr):
        for entry in expr.entries:
            yield from _expr(entry.value, ())


def _call(
    call: n.Call, roles: tuple[str, ...], first: tuple[str, ...] = _LETS, first_roles: tuple[str, ...] = ()
) -> Iterator[Hit]:
    """A call's name, its arguments; ``first``: what its first positional argument names."""
    yield Hit(call.name_span, call.name, "call", roles, _LETS)
    if call.args:
        yield from _expr(call.args[0], first_roles, first)
    yield from _arguments(call, call.name, roles, skip_first=True)


def _arguments(call: n.Call, owner: str, roles: tuple[str, ...], skip_first: bool = False) -> Iterator[Hit]:
    for arg in call.args[1:] if skip_first else call.args:
        yield from _expr(arg, ())
    for kw in call.kwargs:
        yield Hit(kw.name_span, kw.name, "param", roles or ("source kind",), call=owner)
        yield from _expr(kw.value, (), ("source", "let") if kw.name == "train_on" else _LETS)
