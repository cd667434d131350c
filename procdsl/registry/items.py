"""The two shapes of registry entries: an :class:`Item` (a setting, key, call or word) and the
:class:`Param` of a call, each with its type, default, allowed range and one line of doc.

>>> item = Item("context", "curriculum setting", "tokens per sequence", type="int",
...             default="required", range="≥ 1")
>>> print(item.hover())
**context** — curriculum setting
<BLANKLINE>
`int` · default: required · range: ≥ 1
<BLANKLINE>
tokens per sequence
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One parameter of a call: ``length`` of ``dyck(…)``."""

    name: str
    type: str
    default: str
    range: str
    doc: str
    positional: bool = False

    def facts(self, code: bool = True) -> str:
        """```int`` · default: 64 · range: ≥ 1`` — what hover shows (the type as code unless not ``code``)."""
        return _facts(self.type, self.default, self.range, code)


@dataclass(frozen=True)
class Item:
    """A name a .curr file can use, in one role (``gpt2`` is a model and a tokenizer: two items)."""

    name: str
    category: str
    doc: str
    type: str = ""
    default: str = ""
    range: str = ""
    #: the parameters of a call; empty for settings and bare words
    params: tuple[Param, ...] = ()
    #: whether the item is written as a call (``cosine(…)``) rather than a bare word
    callable: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def signature(self) -> str:
        """``dyck(k=64, length=none, …)``; positional parameters come first, unnamed."""
        if not self.callable:
            return self.name
        args = [p.name.upper() if p.positional else f"{p.name}={p.default}" for p in self.params]
        return f"{self.name}({', '.join(args)})"

    def hover(self) -> str:
        """The hover text (markdown): name and role, facts, doc, then the parameters."""
        lines = [f"**{self.name}** — {self.category}", ""]
        facts = _facts(self.type, self.default, self.range)
        if facts:
            lines += [facts, ""]
        lines.append(self.doc)
        if self.callable:
            lines += ["", f"`{self.signature()}`"]
            lines += [f"- `{p.name}`: {p.facts()} — {p.doc}" for p in self.params]
        return "\n".join(lines)


def param_hover(item: Item, param: Param) -> str:
    """Hover text of one parameter of a call.

    >>> p = Param("k", "int", "64", "≥ 1", "bracket types")
    >>> print(param_hover(Item("dyck", "source kind", "balanced strings", params=(p,), callable=True), p))
    **k** — parameter of `dyck`
    <BLANKLINE>
    `int` · default: 64 · range: ≥ 1
    <BLANKLINE>
    bracket types
    """
    return "\n".join([f"**{param.name}** — parameter of `{item.name}`", "", param.facts(), "", param.doc])


def _facts(type_: str, default: str, range_: str, code: bool = True) -> str:
    parts = [f"`{type_}`" if code else type_] if type_ else []
    if default:
        parts.append(f"default: {default}")
    if range_:
        parts.append(f"range: {range_}")
    return " · ".join(parts)
