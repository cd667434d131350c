"""Lark tree → typed AST (:mod:`procdsl.lang.nodes`), with a span on every node.

Numbers are read here, once: scale suffixes ``K M B T`` multiply by 10³…10¹², a percentage
becomes a fraction, a quantity keeps its unit.

>>> from procdsl.lang.parse import parse_text
>>> module = lower(parse_text('let budget = 655M tokens', 'x.curr')[0], 'x.curr')
>>> module.definitions[0].value
Quantity(value=655000000, unit='tokens', text='655M tokens', span=Span(file='x.curr', line=1, column=14, end_line=1, end_column=25))
>>> read_number("5e-4"), read_number("2.5K"), read_number("100")
(0.0005, 2500, 100)
"""

from __future__ import annotations

import re
from typing import Union

from lark import Token, Tree

from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lang.strings import unquote

_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_UNITS = {"step": "steps", "steps": "steps", "token": "tokens", "tokens": "tokens"}


def read_number(text: str) -> Union[int, float]:
    """The value of a NUMBER token; whole values stay ``int`` (``2.5K`` → 2500)."""
    scale = 1
    if text[-1] in _SCALE:
        text, scale = text[:-1], _SCALE[text[-1]]
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text) * scale
    value = float(text) * scale
    if value.is_integer() and scale > 1:
        return int(value)
    return value


def _span(file: str, item: Union[Tree, Token]) -> Span:
    if isinstance(item, Token):
        return Span(file, item.line, item.column, item.end_line, item.end_column)
    meta = item.meta
    if getattr(meta, "empty", True):
        return Span.point(file)
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


class _Lowerer:
    def __init__(self, file: str):
        self.file = file

    def span(self, item) -> Span:
        return _span(self.file, item)

    # --------------------------------------------------------------------------- expressions
    def expr(self, item) -> n.Expr:
        if isinstance(item, Token):  # inlined single-token atoms never reach here, but be safe
            return n.Name(str(item), self.span(item))
        kind, children, span = item.data, item.children, self.span(item)
        if kind == "number":
            return n.Number(read_number(str(children[0])), str(children[0]), span)
        if kind == "percent":
            text = str(children[0])
            return n.Percent(read_number(text[:-1]) / 100, text, span)
        if kind == "quantity":
            text = str(children[0])
            number, unit = text.split()
            return n.Quantity(read_number(number), _UNITS[unit], " ".join((number, unit)), span)
        if kind == "string":
            return n.String(unquote(str(children[0])), span)
        if kind == "name":
            return n.Name(str(children[0]), span)
        if kind == "range":
            low, high = children
            return n.RangeExpr(n.Number(read_number(str(low)), str(low), self.span(low)),
                               n.Number(read_number(str(high)), str(high), self.span(high)), span)
        if kind == "compose_chain":
            return n.Compose(tuple(self.expr(c) for c in children), span)
        if kind == "call":
            return self.call(item)
        if kind == "list":
            return n.ListExpr(tuple(self.expr(c) for c in children if c is not None), span)
        if kind == "tuple":
            return n.TupleExpr(tuple(self.expr(c) for c in children if c is not None), span)
        if kind == "map":
            entries = []
            for entry in children:
                if entry is None:
                    continue
                key, value = entry.children
                key_text = unquote(str(key)) if key.type == "STRING" else str(key)
                entries.append(n.Entry(key_text, self.span(key), self.expr(value)))
            return n.MapExpr(tuple(entries), span)
        raise AssertionError(f"unhandled expression node {kind}")  # grammar and lowerer disagree

    def call(self, item: Tree) -> n.Call:
        name, *rest = item.children
        args, kwargs = [], []
        for child in rest:
            if child is None:
                continue
            if isinstance(child, Tree) and child.data == "kwarg":
                key, value = child.children
                kwargs.append(n.KwArg(str(key), self.span(key), self.expr(value)))
            else:
                args.append(self.expr(child))
        return n.Call(str(name), self.span(name), tuple(args), tuple(kwargs), self.span(item))

    # ---------------------------------------------------------------------------- statements
    def definition(self, item: Tree) -> n.Definition:
        name, value = item.children
        kind = item.data.removesuffix("_stmt")
        return n.Definition(kind, str(name), self.span(name), self.expr(value), self.span(item))

    def setting(self, item: Tree) -> n.Setting:
        if item.data == "flag":
            key = item.children[0]
            return n.Setting(str(key), self.span(key), None, self.span(item))
        key, value = item.children
        return n.Setting(str(key), self.span(key), self.expr(value), self.span(item))

    def phase(self, item: Tree) -> n.Phase:
        name, *body = item.children
        settings = tuple(self.setting(c) for c in body if c.data == "setting")
        evals = tuple(self.eval_block(c) for c in body if c.data == "eval_block")
        return n.Phase(str(name), self.span(name), settings, evals, self.span(item))

    def eval_block(self, item: Tree) -> n.EvalBlock:
        every = next((c.children[0] for c in item.children if c.data == "eval_every"), None)
        calls = tuple(self.call(c) for c in item.children if c.data == "call")
        return n.EvalBlock(self.expr(every) if every is not None else None, calls, self.span(item))

    def sweep(self, item: Tree) -> n.SweepBlock:
        entries = []
        for entry in item.children:
            path, values = entry.children
            entries.append(n.SweepEntry(tuple(str(p) for p in path.children), self.span(path),
                                        self.expr(values)))
        return n.SweepBlock(tuple(entries), self.span(item))

    def curriculum(self, item: Tree) -> n.Curriculum:
        name, *body = item.children
        settings, definitions, phases, lowered = [], [], [], []
        runtime = sweep = None
        for child in body:
            if child.data == "setting":
                node = self.setting(child)
                settings.append(node)
            elif child.data in ("let_stmt", "rule_stmt", "source_stmt"):
                node = self.definition(child)
                definitions.append(node)
            elif child.data == "phase":
                node = self.phase(child)
                phases.append(node)
            elif child.data == "runtime_block":
                node = n.RuntimeBlock(tuple(self.setting(c) for c in child.children), self.span(child))
                runtime = runtime or node
            else:
                node = self.sweep(child)
                sweep = sweep or node
            lowered.append(node)
        return n.Curriculum(str(name), self.span(name), tuple(settings), tuple(definitions),
                            tuple(phases), runtime, sweep, self.span(item), tuple(lowered))

    def module(self, tree: Tree) -> n.Module:
        imports, definitions, body = [], [], []
        curricula: list[n.Curriculum] = []
        for child in tree.children:
            if child.data == "import_stmt":
                node = n.Import(unquote(str(child.children[0])), self.span(child))
                imports.append(node)
            elif child.data == "curriculum":
                node = self.curriculum(child)
                curricula.append(node)
            else:
                node = self.definition(child)
                definitions.append(node)
            body.append(node)
        return n.Module(self.file, tuple(imports), tuple(definitions),
                        curricula[0] if curricula else None, tuple(body),
                        extra_curricula=tuple(curricula[1:]))


def lower(tree: Tree, file: str) -> n.Module:
    """Lower a parse tree of ``file`` into a :class:`~procdsl.lang.nodes.Module`."""
    return _Lowerer(file).module(tree)
