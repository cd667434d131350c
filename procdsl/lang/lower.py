"""The typed AST (:mod:`procdsl.lang.nodes`), with a span on every node: built while parsing
(:class:`Builder`, the compiler's path) or lowered from Lark's tree (:func:`lower`).

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
from typing import Any, Optional, Union

from lark import Token, Tree

from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lang.strings import unquote

_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_UNITS = {"step": "steps", "steps": "steps", "token": "tokens", "tokens": "tokens"}
_INTEGER = re.compile(r"-?[0-9]+")


def read_number(text: str) -> Union[int, float]:
    """The value of a NUMBER token; whole values stay ``int`` (``2.5K`` → 2500)."""
    scale = 1
    if text[-1] in _SCALE:
        text, scale = text[:-1], _SCALE[text[-1]]
    if _INTEGER.fullmatch(text):
        return int(text) * scale
    value = float(text) * scale
    if value.is_integer() and scale > 1:
        return int(value)
    return value


def _lexed_span(file: str, token: Token) -> Span:
    """Where a lexed token is: the lexer places every token it makes (lark types the positions
    Optional, for tokens made by hand)."""
    if token.line is None or token.column is None or token.end_line is None or token.end_column is None:
        raise ValueError(f"token {token!r} has no position")
    return Span(file, token.line, token.column, token.end_line, token.end_column)


def _span(file: str, item: Union[Tree, Token]) -> Span:
    if isinstance(item, Token):
        return _lexed_span(file, item)
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
            return n.RangeExpr(
                n.Number(read_number(str(low)), str(low), self.span(low)),
                n.Number(read_number(str(high)), str(high), self.span(high)),
                span,
            )
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
            entries.append(
                n.SweepEntry(tuple(str(p) for p in path.children), self.span(path), self.expr(values))
            )
        return n.SweepBlock(tuple(entries), self.span(item))

    def curriculum(self, item: Tree) -> n.Curriculum:
        name, *body = item.children
        settings: list[n.Setting] = []
        definitions: list[n.Definition] = []
        phases: list[n.Phase] = []
        lowered: list[n.Statement] = []
        runtime: Optional[n.RuntimeBlock] = None
        sweep: Optional[n.SweepBlock] = None
        node: n.Statement
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
        return n.Curriculum(
            str(name),
            self.span(name),
            tuple(settings),
            tuple(definitions),
            tuple(phases),
            runtime,
            sweep,
            self.span(item),
            tuple(lowered),
        )

    def module(self, tree: Tree) -> n.Module:
        imports: list[n.Import] = []
        definitions: list[n.Definition] = []
        body: list[n.Statement] = []
        curricula: list[n.Curriculum] = []
        node: n.Statement
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
        return n.Module(
            self.file,
            tuple(imports),
            tuple(definitions),
            curricula[0] if curricula else None,
            tuple(body),
            extra_curricula=tuple(curricula[1:]),
        )


def lower(tree: Tree, file: str) -> n.Module:
    """Lower a parse tree of ``file`` into a :class:`~procdsl.lang.nodes.Module`."""
    return _Lowerer(file).module(tree)


# ------------------------------------------------------------------------- built while parsing


_Children = list[Any]  # a rule's children: tokens and what its subrules made
_Held = tuple[Any, ...]  # an intermediate value (`every N`, a sweep path), not a node


class _Paren:
    """``( expr )``: the expression, and the span of its outermost parentheses (the node's own
    span stays the expression's; the statement around it ends at the `)`)."""

    __slots__ = ("node", "line", "column", "end_line", "end_column")
    node: Any
    line: Any
    column: Any
    end_line: Any
    end_column: Any

    def __init__(self, node: Any, first: Token, last: Token):
        self.node = node.node if isinstance(node, _Paren) else node
        self.line, self.column = first.line, first.column
        self.end_line, self.end_column = last.end_line, last.end_column


#: children placed by their own line/column/end_line/end_column; a node is placed by its span
_PLACED = frozenset({Token, _Paren})


def _node(item: Any) -> Any:
    return item.node if isinstance(item, _Paren) else item


class Builder:
    """Lark's inline transformer for a parser with ``keep_all_tokens``: each rule's children
    (every token, keywords and brackets included) become an AST node as the rule is reduced.

    A node's span runs from the start of its first child to the end of its last one, which is
    what Lark's ``propagate_positions`` computes for the tree :func:`lower` reads: the two agree
    on every node (tests/test_parse_fast.py). ``state.file`` is the file being parsed.
    """

    def __init__(self, state: Any):
        self.state = state

    def _span(self, first: Any, last: Any) -> Span:
        """From the start of ``first`` to the end of ``last``: tokens, nodes or parentheses."""
        start = first if type(first) in _PLACED else first.span
        end = last if type(last) in _PLACED else last.span
        return Span(self.state.file, start.line, start.column, end.end_line, end.end_column)

    def _token_span(self, token: Any) -> Span:
        return Span(self.state.file, token.line, token.column, token.end_line, token.end_column)

    # --------------------------------------------------------------------------- expressions
    def number(self, c: _Children) -> n.Number:
        return n.Number(read_number(c[0].value), c[0].value, self._token_span(c[0]))

    def percent(self, c: _Children) -> n.Percent:
        text = c[0].value
        return n.Percent(read_number(text[:-1]) / 100, text, self._token_span(c[0]))

    def quantity(self, c: _Children) -> n.Quantity:
        text = c[0].value
        number, unit = text.split()
        return n.Quantity(read_number(number), _UNITS[unit], " ".join((number, unit)), self._token_span(c[0]))

    def string(self, c: _Children) -> n.String:
        return n.String(unquote(c[0].value), self._token_span(c[0]))

    def name(self, c: _Children) -> n.Name:
        return n.Name(c[0].value, self._token_span(c[0]))

    def range(self, c: _Children) -> n.RangeExpr:
        low, _, high = c
        return n.RangeExpr(self.number([low]), self.number([high]), self._span(low, high))

    def atom(self, c: _Children) -> _Paren:  # `( expr )`, the one alternative of atom left unaliased
        return _Paren(c[1], c[0], c[2])

    def compose_chain(self, c: _Children) -> n.Compose:
        return n.Compose(tuple(_node(x) for x in c if not isinstance(x, Token)), self._span(c[0], c[-1]))

    def call(self, c: _Children) -> n.Call:
        args, kwargs = [], []
        for child in c[2:-1]:
            if isinstance(child, n.KwArg):
                kwargs.append(child)
            elif not isinstance(child, Token):
                args.append(_node(child))
        return n.Call(c[0].value, self._token_span(c[0]), tuple(args), tuple(kwargs), self._span(c[0], c[-1]))

    def kwarg(self, c: _Children) -> n.KwArg:
        return n.KwArg(c[0].value, self._token_span(c[0]), _node(c[2]))

    def list(self, c: _Children) -> n.ListExpr:
        return n.ListExpr(tuple(_node(x) for x in c if not isinstance(x, Token)), self._span(c[0], c[-1]))

    def tuple(self, c: _Children) -> n.TupleExpr:
        return n.TupleExpr(tuple(_node(x) for x in c if not isinstance(x, Token)), self._span(c[0], c[-1]))

    def map(self, c: _Children) -> n.MapExpr:
        return n.MapExpr(tuple(x for x in c if not isinstance(x, Token)), self._span(c[0], c[-1]))

    def entry(self, c: _Children) -> n.Entry:
        key = c[0]
        key_text = unquote(key.value) if key.type == "STRING" else key.value
        return n.Entry(key_text, self._token_span(key), _node(c[2]))

    # ---------------------------------------------------------------------------- statements
    def _definition(self, kind: str, c: _Children) -> n.Definition:
        return n.Definition(kind, c[1].value, self._token_span(c[1]), _node(c[3]), self._span(c[0], c[3]))

    def let_stmt(self, c: _Children) -> n.Definition:
        return self._definition("let", c)

    def rule_stmt(self, c: _Children) -> n.Definition:
        return self._definition("rule", c)

    def source_stmt(self, c: _Children) -> n.Definition:
        return self._definition("source", c)

    def import_stmt(self, c: _Children) -> n.Import:
        return n.Import(unquote(c[1].value), self._span(c[0], c[1]))

    def setting(self, c: _Children) -> n.Setting:
        return n.Setting(c[0].value, self._token_span(c[0]), _node(c[2]), self._span(c[0], c[2]))

    def flag(self, c: _Children) -> n.Setting:
        span = self._token_span(c[0])
        return n.Setting(c[0].value, span, None, span)

    def eval_every(self, c: _Children) -> _Held:
        return ("every", _node(c[1]))

    def eval_block(self, c: _Children) -> n.EvalBlock:
        every = next((x[1] for x in c if isinstance(x, tuple)), None)
        calls = tuple(x for x in c if isinstance(x, n.Call))
        return n.EvalBlock(every, calls, self._span(c[0], c[-1]))

    def phase(self, c: _Children) -> n.Phase:
        settings = tuple(x for x in c[3:-1] if isinstance(x, n.Setting))
        evals = tuple(x for x in c[3:-1] if isinstance(x, n.EvalBlock))
        return n.Phase(c[1].value, self._token_span(c[1]), settings, evals, self._span(c[0], c[-1]))

    def runtime_block(self, c: _Children) -> n.RuntimeBlock:
        return n.RuntimeBlock(tuple(x for x in c if isinstance(x, n.Setting)), self._span(c[0], c[-1]))

    def path(self, c: _Children) -> _Held:
        names = [x for x in c if x.type == "NAME"]
        return ("path", tuple(x.value for x in names), self._span(names[0], names[-1]))

    def sweep_entry(self, c: _Children) -> n.SweepEntry:
        _, names, span = c[0]
        return n.SweepEntry(names, span, _node(c[2]))

    def sweep_block(self, c: _Children) -> n.SweepBlock:
        return n.SweepBlock(tuple(x for x in c if isinstance(x, n.SweepEntry)), self._span(c[0], c[-1]))

    def curriculum(self, c: _Children) -> n.Curriculum:
        settings, definitions, phases, body = [], [], [], []
        runtime = sweep = None
        for node in c[3:-1]:
            if isinstance(node, Token):
                continue
            if isinstance(node, n.Setting):
                settings.append(node)
            elif isinstance(node, n.Definition):
                definitions.append(node)
            elif isinstance(node, n.Phase):
                phases.append(node)
            elif isinstance(node, n.RuntimeBlock):
                runtime = runtime or node
            else:
                sweep = sweep or node
            body.append(node)
        return n.Curriculum(
            c[1].value,
            self._token_span(c[1]),
            tuple(settings),
            tuple(definitions),
            tuple(phases),
            runtime,
            sweep,
            self._span(c[0], c[-1]),
            tuple(body),
        )

    def start(self, c: _Children) -> n.Module:
        imports, definitions, curricula, body = [], [], [], []
        for node in c:
            if isinstance(node, Token):
                continue
            if isinstance(node, n.Import):
                imports.append(node)
            elif isinstance(node, n.Curriculum):
                curricula.append(node)
            else:
                definitions.append(node)
            body.append(node)
        return n.Module(
            self.state.file,
            tuple(imports),
            tuple(definitions),
            curricula[0] if curricula else None,
            tuple(body),
            extra_curricula=tuple(curricula[1:]),
        )
