"""Canonical formatting of .curr files: ``procdsl fmt``.

Two-space indentation, one statement per line, ``=`` aligned across a run of consecutive
settings, one blank line kept wherever the source had any, expressions in one canonical
spelling (numbers keep the text they were written with: ``655M`` stays ``655M``). Comments are
kept: a comment on a statement's last line stays at its end, any other comment inside a
statement moves above it. Formatting is idempotent and compiles to the same plan.

>>> print(format_text('curriculum c{seed=0 # the seed\\n  batch = 8\\nphase p{steps=5 mix={a:100%}}}', "c.curr"), end="")
curriculum c {
  seed  = 0  # the seed
  batch = 8
  phase p {
    steps = 5
    mix   = { a: 100% }
  }
}
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from lark import Token

from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Span
from procdsl.lang.parse import parse_module
from procdsl.lang.strings import quote

INDENT = "  "
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the grammar's NAME: `isidentifier` takes `é`


def format_expr(expr: n.Expr) -> str:
    """The canonical spelling of an expression.

    >>> from procdsl.compiler.overrides import parse_value
    >>> format_expr(parse_value('adamw( lr=5e-4,betas=(0.9,0.95) )'))
    'adamw(lr=5e-4, betas=(0.9, 0.95))'
    >>> format_expr(parse_value('{dyck:60%,c4 : 40%}')), format_expr(parse_value('set>>sort'))
    ('{ dyck: 60%, c4: 40% }', 'set >> sort')
    """
    if isinstance(expr, (n.Number, n.Percent, n.Quantity)):
        return expr.text
    if isinstance(expr, n.String):
        return quote(expr.value)
    if isinstance(expr, n.Name):
        return expr.name
    if isinstance(expr, n.RangeExpr):
        return f"{expr.low.text}..{expr.high.text}"
    if isinstance(expr, n.ListExpr):
        return "[" + ", ".join(format_expr(i) for i in expr.items) + "]"
    if isinstance(expr, n.TupleExpr):
        inner = ", ".join(format_expr(i) for i in expr.items)
        return f"({inner},)" if len(expr.items) == 1 else f"({inner})"
    if isinstance(expr, n.MapExpr):
        if not expr.entries:
            return "{}"
        return "{ " + ", ".join(f"{_key(e.key)}: {format_expr(e.value)}" for e in expr.entries) + " }"
    if isinstance(expr, n.Call):
        args = [format_expr(a) for a in expr.args] + [f"{k.name}={format_expr(k.value)}" for k in expr.kwargs]
        return f"{expr.name}({', '.join(args)})"
    if isinstance(expr, n.Compose):
        return " >> ".join(format_expr(p) for p in expr.parts)
    raise AssertionError(f"cannot format {type(expr).__name__}")


def _key(key: str) -> str:
    return key if _NAME.fullmatch(key) else quote(key)


Statement = n.Statement


def _span(node: Statement) -> Span:
    return node.path_span.to(node.values.span) if isinstance(node, n.SweepEntry) else node.span


class _Comment(NamedTuple):
    line: int
    column: int
    text: str


def _comment(token: Token) -> _Comment:
    # the lexer places every token it makes; lark types the position Optional for hand-made ones
    assert token.line is not None and token.column is not None
    return _Comment(token.line, token.column, str(token))


class _Formatter:
    def __init__(self, text: str, comments: list[Token]):
        self.lines = text.splitlines()
        self.comments = sorted(map(_comment, comments), key=lambda c: (c.line, c.column))
        self.out: list[str] = []
        self.trailing: dict[int, str] = {}  # index in out -> its trailing comment, until aligned
        self.last_line = 0  # last source line consumed

    # ------------------------------------------------------------------------------ comments
    def _take(self, before: tuple[int, int]) -> list[_Comment]:
        taken = []
        while self.comments and (self.comments[0].line, self.comments[0].column) < before:
            taken.append(self.comments.pop(0))
        return taken

    def _blank_between(self, start: int, end: int) -> bool:
        return any(not self.lines[i - 1].strip() for i in range(start + 1, end) if 0 < i <= len(self.lines))

    def _emit_leading(self, first_line: int, before: tuple[int, int], depth: int) -> None:
        comments = self._take(before)
        top = comments[0].line if comments else first_line
        if self.out and self.last_line and self._blank_between(self.last_line, top) and self.out[-1] != "":
            self.out.append("")
        for comment in comments:
            self.out.append(INDENT * depth + comment.text.rstrip())
            self.last_line = comment.line

    def _trailing(self, line: int) -> Optional[str]:
        if self.comments and self.comments[0].line == line:
            return self.comments.pop(0).text.rstrip()
        return None

    def _append(self, code: str, comment: Optional[str] = None) -> None:
        """One output line; its trailing comment is kept aside (not marked in the text, which
        may hold any character) until its run is aligned."""
        if comment is not None:
            self.trailing[len(self.out)] = comment
        self.out.append(code)

    # ----------------------------------------------------------------------------- statements
    def statements(self, nodes: list[Statement], depth: int) -> None:
        nodes = sorted(nodes, key=lambda s: (_span(s).line, _span(s).column))
        i = 0
        while i < len(nodes):
            run = [nodes[i]]
            while (
                i + len(run) < len(nodes)
                and _alignable(run[0])
                and _alignable(nodes[i + len(run)])
                and _head(run[0])[0] == _head(nodes[i + len(run)])[0]
                and not self._separated(run[-1], nodes[i + len(run)])
            ):
                run.append(nodes[i + len(run)])
            width = max(len(_head(s)[1]) for s in run) if _alignable(run[0]) else 0
            first = len(self.out)
            for node in run:
                self.statement(node, depth, width)
            self._align_trailing_comments(first)
            i += len(run)

    def _align_trailing_comments(self, first: int) -> None:
        """Line up the trailing comments of one run of statements, as the DESIGN.md example does."""
        rows = [
            (i, (self.out[i], self.trailing.pop(i))) for i in sorted(k for k in self.trailing if k >= first)
        ]
        if len(rows) < 2:
            for i, parts in rows:
                self.out[i] = parts[0] + "  " + parts[1]
            return
        column = max(len(code) for _, (code, _c) in rows)
        for i, (code, comment) in rows:
            self.out[i] = code.ljust(column) + "  " + comment

    def _separated(self, a: Statement, b: Statement) -> bool:
        """A blank line or a comment line between two statements breaks an alignment run, and so
        does a comment inside ``b`` (it will be written above ``b``): the run is then the same
        on the formatted text, which keeps ``fmt`` idempotent."""
        end, span = _span(a).end_line, _span(b)
        stop = (span.end_line, span.end_column)
        has_comment = any(
            end < c.line and (c.line, c.column) < stop  # one on `a`'s last line trails `a`
            for c in self.comments
        )
        return self._blank_between(end, span.line) or has_comment

    def statement(self, node: Statement, depth: int, width: int = 0) -> None:
        span = _span(node)
        pad = INDENT * depth
        if isinstance(node, (n.Phase, n.Curriculum, n.RuntimeBlock, n.SweepBlock, n.EvalBlock)):
            self._emit_leading(span.line, (span.line, span.column), depth)
            children = _children(node)
            # a comment on the head's line belongs to the head only if no child shares that line
            shares_line = any(_span(c).line == span.line for c in children)
            self._append(pad + _block_head(node) + " {", None if shares_line else self._trailing(span.line))
            self.last_line = span.line
            self.statements(children, depth + 1)
            self._emit_leading(span.end_line, (span.end_line, span.end_column - 1), depth + 1)
            self._append(pad + "}", self._trailing(span.end_line))
            self.last_line = span.end_line
            return
        # comments inside a one-line-to-be statement move above it, except one at its very end
        inner_end = (span.end_line, span.end_column)
        trailing_ok = [c for c in self.comments if c.line == span.end_line and c.column >= span.end_column]
        self._emit_leading(span.line, inner_end, depth)
        keyword, head = _head(node)
        text = head.ljust(width) + " " + _sep(node) + " " + _value(node) if keyword is not None else head
        self._append(pad + text, self._trailing(span.end_line) if trailing_ok else None)
        self.last_line = span.end_line

    def finish(self) -> str:
        rest = self._take((10**9, 0))
        if rest and self.out and self._blank_between(self.last_line, rest[0].line):
            self.out.append("")
        self.out += [c.text.rstrip() for c in rest]
        return "\n".join(self.out).rstrip("\n") + "\n" if self.out else ""


def _alignable(node: Statement) -> bool:
    return isinstance(node, (n.Setting, n.Definition, n.SweepEntry)) and _head(node)[0] is not None


def _head(node: Statement) -> tuple[Optional[str], str]:
    """(kind of statement, its text left of `=`/`:`) — runs align only within one kind."""
    if isinstance(node, n.Setting):
        return ("setting", node.key) if node.value is not None else (None, node.key)
    if isinstance(node, n.Definition):
        return node.kind, f"{node.kind} {node.name}"
    if isinstance(node, n.SweepEntry):
        return "sweep", ".".join(node.path)
    if isinstance(node, n.Import):
        return None, f"import {quote(node.path)}"
    raise AssertionError(type(node).__name__)


def _sep(node: Statement) -> str:
    return ":" if isinstance(node, n.SweepEntry) else "="


def _value(node: Statement) -> str:
    """The text right of ``=``/``:`` of a statement :func:`_head` gives a kind."""
    if isinstance(node, n.SweepEntry):
        return format_expr(node.values)
    assert isinstance(node, (n.Setting, n.Definition)) and node.value is not None
    return format_expr(node.value)


def _block_head(node: Statement) -> str:
    if isinstance(node, n.Phase):
        return f"phase {node.name}"
    if isinstance(node, n.Curriculum):
        return f"curriculum {node.name}"
    if isinstance(node, n.RuntimeBlock):
        return "runtime"
    if isinstance(node, n.SweepBlock):
        return "sweep"
    assert isinstance(node, n.EvalBlock)
    return "eval" if node.every is None else f"eval every {format_expr(node.every)}"


def _children(node: Statement) -> list[Statement]:
    if isinstance(node, n.Phase):
        return [*node.settings, *node.evals]
    if isinstance(node, n.Curriculum):
        return list(node.body)
    if isinstance(node, n.RuntimeBlock):
        return list(node.settings)
    if isinstance(node, n.SweepBlock):
        return list(node.entries)
    assert isinstance(node, n.EvalBlock)
    return [n.Setting(format_expr(c), c.span, None, c.span) for c in node.calls]


def format_text(text: str, file: str) -> str:
    """Format one file's text. Raises SyntaxDiagnostic if it does not parse."""
    module, comments = parse_module(text, file)
    formatter = _Formatter(text, comments)
    formatter.statements(list(module.body), 0)
    return formatter.finish()
