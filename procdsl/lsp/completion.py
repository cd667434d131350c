"""Completion of what is valid at the cursor: the keys of the enclosing block not yet set, the
values a setting takes, source kinds and their parameters, the sources, rules and lets in scope,
components in ``transfer`` — every item documented from the registry.

>>> [i.label for i in complete("curriculum c {\\n  phase p { transfer = { keep: [attn], ", 2, 40, None)]
['reinit', 'freeze', 'embed_init', 'perturb']
>>> [i.label for i in complete("source d = dyck(k=4)\\ncurriculum c { phase p { mix = { ", 2, 33, None)]
['d']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional

from lsprotocol import types

from procdsl.lsp.analysis import Analysis
from procdsl.lsp.context import Context, cursor_context
from procdsl.lsp.locate import VALUE_ROLES
from procdsl.registry.items import Item
from procdsl.registry.lookup import category, find
from procdsl.registry.settings import KEYS

K = types.CompletionItemKind
_KEYWORDS = {
    "top": ("import", "let", "rule", "source", "curriculum"),
    "curriculum": ("source", "let", "rule", "phase", "runtime", "sweep"),
    "phase": ("eval",),
}
_CALL_ROLES = (
    "source kind",
    "model",
    "tokenizer",
    "optimizer",
    "schedule",
    "evaluation",
    "parallel",
    "perturbation",
)
_TYPE_WORDS = {"int", "steps", "tokens", "percentage", "number", "string"}
_DEFINITION = re.compile(r"\b(source|rule|let)\s+([A-Za-z_][A-Za-z0-9_]*)\s*=")


def complete(text: str, line: int, column: int, analysis: Optional[Analysis]) -> list[types.CompletionItem]:
    """Items at the 1-based position of ``text``; ``analysis``: the latest one that parsed (for
    imported names), or None."""
    lines = text.split("\n")
    before = "\n".join(lines[: line - 1] + [lines[line - 1][: column - 1] if line <= len(lines) else ""])
    ctx = cursor_context(before)
    return list(_items(ctx, _Names(text, analysis)))


class _Names:
    """Sources, rules and lets in scope: the last good analysis plus what the text defines now."""

    def __init__(self, text: str, analysis: Optional[Analysis]):
        self.by_kind: dict[str, list[str]] = {"source": [], "rule": [], "let": []}
        for kind in self.by_kind:
            for name in analysis.names(kind) if analysis else ():
                self._add(kind, name)
        for match in _DEFINITION.finditer(text):
            self._add(match.group(1), match.group(2))

    def _add(self, kind: str, name: str) -> None:
        if name not in self.by_kind[kind]:
            self.by_kind[kind].append(name)

    def items(self, kind: str, exclude: Iterable[str] = ()) -> list[types.CompletionItem]:
        item_kind = {"source": K.Variable, "rule": K.Function, "let": K.Constant}[kind]
        return [
            types.CompletionItem(label=name, kind=item_kind, detail=kind)
            for name in self.by_kind[kind]
            if name not in exclude
        ]


def _items(ctx: Context, names: _Names) -> Iterable[types.CompletionItem]:
    if ctx.kind == "top":
        yield from _keywords("top")
    elif ctx.kind == "key" and ctx.block in KEYS:
        yield from (_entry(i, K.Property, f"{i.name} = ") for i in KEYS[ctx.block] if i.name not in ctx.given)
        yield from _keywords(ctx.block)
    elif ctx.kind == "value":
        yield from _values(ctx.key or "", names)
    elif ctx.kind == "arg":
        yield from _arguments(ctx, names)
    elif ctx.kind == "kwarg-value":
        yield from names.items("source" if ctx.key == "train_on" else "let")
    elif ctx.kind == "list" and ctx.owner in ("keep", "reinit", "freeze"):
        yield from _role("component")
    elif ctx.kind == "map-key":
        yield from _map_keys(ctx, names)
    elif ctx.kind == "map-value":
        yield from _map_values(ctx)
    elif ctx.kind == "eval":
        yield from _role("evaluation")


def _values(key: str, names: _Names) -> Iterable[types.CompletionItem]:
    if key == "source":
        yield from _role("source kind")
        yield from _role("rule")
        yield from names.items("rule")
    elif key == "rule":
        yield from _role("rule")
        yield from names.items("rule")
    elif key in VALUE_ROLES:
        for role in VALUE_ROLES[key]:
            yield from _role(role)
    else:
        setting = next((i for table in KEYS.values() for i in table if i.name == key), None)
        yield from _words(setting)
    yield from names.items("let")


def _arguments(ctx: Context, names: _Names) -> Iterable[types.CompletionItem]:
    call = _call_item(ctx.owner or "", names)
    if call is None:
        return
    short_form = call.name == "task" and ctx.owner != "task"  # `sort(…)`: the rule is the call's name
    if ctx.index == 0 and call.params and call.params[0].positional and not short_form:
        first = call.params[0].name
        if first == "rule":
            yield from _role("rule")
            yield from names.items("rule")
        elif first == "source":
            yield from names.items("source")
    for p in call.params:
        if not p.positional and p.name not in ctx.given:  # positional ones have no `name=` form
            yield types.CompletionItem(
                label=p.name,
                kind=K.Field,
                detail=p.facts(code=False),
                insert_text=f"{p.name}=",
                documentation=_markdown(f"{p.doc}\n\n{p.facts()}"),
            )


def _map_keys(ctx: Context, names: _Names) -> Iterable[types.CompletionItem]:
    if ctx.owner == "mix":
        yield from names.items("source", exclude=ctx.given)
    elif ctx.owner == "transfer":
        yield from (_entry(i, K.Property, f"{i.name}: ") for i in KEYS["transfer"] if i.name not in ctx.given)
    elif ctx.owner == "perturb":
        yield from (
            _entry(i, K.EnumMember, f"{i.name}: ") for i in category("component") if i.name not in ctx.given
        )


def _map_values(ctx: Context) -> Iterable[types.CompletionItem]:
    if ctx.owner == "perturb":
        yield from _role("perturbation")
    elif ctx.owner == "transfer" and ctx.key in ("keep", "reinit", "freeze"):
        yield from _role("component")
    elif ctx.owner == "transfer":
        yield from _words(next((i for i in KEYS["transfer"] if i.name == ctx.key), None))


def _call_item(name: str, names: _Names) -> Optional[Item]:
    """The registry entry of a call by its name; a rule's short form is ``task``."""
    if find(name, "rule") or name in names.by_kind["rule"]:
        return find("task", "source kind")
    return next((i for role in _CALL_ROLES for i in category(role) if i.name == name and i.callable), None)


def _role(role: str) -> Iterable[types.CompletionItem]:
    return (_entry(i, K.Function if i.callable else K.EnumMember) for i in category(role))


def _words(setting: Optional[Item]) -> Iterable[types.CompletionItem]:
    """The bare words a key's type lists (``float32 | bf16``), as values."""
    if setting is None:
        return
    for word in setting.type.split(" | "):
        if re.fullmatch(r"[a-z_][a-z0-9_]*", word) and word not in _TYPE_WORDS:
            yield types.CompletionItem(
                label=word, kind=K.EnumMember, detail=f"{setting.name}: {setting.type}"
            )


def _keywords(block: str) -> Iterable[types.CompletionItem]:
    return (types.CompletionItem(label=word, kind=K.Keyword) for word in _KEYWORDS.get(block, ()))


def _entry(item: Item, kind: types.CompletionItemKind, insert: Optional[str] = None) -> types.CompletionItem:
    facts = (
        item.signature()
        if item.callable
        else ", ".join(x for x in (item.type, item.default and f"default {item.default}") if x)
    )
    return types.CompletionItem(
        label=item.name,
        kind=kind,
        detail=facts or item.category,
        documentation=_markdown(item.hover()),
        insert_text=insert,
    )


def _markdown(text: str) -> types.MarkupContent:
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
