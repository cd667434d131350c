"""The typed AST of a .curr file: plain frozen dataclasses, each with the span it came from.

Expressions are what may stand right of ``=``; statements are the lines of a file, a
curriculum or a phase. Later stages read only these classes, never Lark's tree.

>>> Number(2501, "2501", Span.point("x.curr")).value
2501
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from procdsl.lang.diagnostics import Span

# ------------------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Number:
    """``2501``, ``5e-4``, ``655M`` (scale suffix already applied to ``value``)."""

    value: Union[int, float]
    text: str
    span: Span


@dataclass(frozen=True)
class Percent:
    """``60%``; ``value`` is the fraction 0.6, ``text`` the written form."""

    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Quantity:
    """``2501 steps`` or ``655M tokens``; ``unit`` is ``steps`` or ``tokens``."""

    value: Union[int, float]
    unit: str
    text: str
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Name:
    """A bare word: a reference to a let, source, rule or component, or a keyword value."""

    name: str
    span: Span


@dataclass(frozen=True)
class RangeExpr:
    """``8..64``, inclusive on both ends."""

    low: Number
    high: Number
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class TupleExpr:
    """``(0.9, 0.95)``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Entry:
    """One ``key: value`` of a map."""

    key: str
    key_span: Span
    value: Expr


@dataclass(frozen=True)
class MapExpr:
    entries: tuple[Entry, ...]
    span: Span


@dataclass(frozen=True)
class KwArg:
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True)
class Call:
    """``name(positional…, key=value…)``; ``ramp(a, b)`` is a call too."""

    name: str
    name_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span


@dataclass(frozen=True)
class Compose:
    """``a >> b >> c``: rules applied left to right."""

    parts: tuple[Expr, ...]
    span: Span


Expr = Union[Number, Percent, Quantity, String, Name, RangeExpr, ListExpr, TupleExpr, MapExpr, Call, Compose]


# ------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True)
class Definition:
    """``let``, ``rule`` or ``source``: ``kind NAME = expr``."""

    kind: str  # "let" | "rule" | "source"
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass(frozen=True)
class Setting:
    """``key = value``; a runtime flag such as ``activation_checkpoint`` has ``value=None``."""

    key: str
    key_span: Span
    value: Optional[Expr]
    span: Span

    @property
    def expr(self) -> Expr:
        """The value of ``key = value``: outside runtime blocks the grammar has no flags."""
        if self.value is None:
            raise ValueError(f"`{self.key}` is a flag, not a `key = value` setting")
        return self.value


@dataclass(frozen=True)
class EvalBlock:
    """``eval every N steps { call… }``, or ``eval { call… }`` (``every`` None): once, at the
    phase's end."""

    every: Optional[Expr]
    calls: tuple[Call, ...]
    span: Span


@dataclass(frozen=True)
class Phase:
    name: str
    name_span: Span
    settings: tuple[Setting, ...]
    evals: tuple[EvalBlock, ...]
    span: Span


@dataclass(frozen=True)
class SweepEntry:
    """``warmup.mix: [ … ]`` — a plan path and the values it takes."""

    path: tuple[str, ...]
    path_span: Span
    values: Expr


@dataclass(frozen=True)
class RuntimeBlock:
    """``runtime { dtype = bf16 … }``: runtime knobs of a curriculum."""

    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True)
class SweepBlock:
    """``sweep { key: [values] … }``: the variants one file expands into."""

    entries: tuple[SweepEntry, ...]
    span: Span


@dataclass(frozen=True)
class Curriculum:
    name: str
    name_span: Span
    settings: tuple[Setting, ...]
    definitions: tuple[Definition, ...]
    phases: tuple[Phase, ...]
    runtime: Optional[RuntimeBlock]
    sweep: Optional[SweepBlock]
    span: Span
    #: every statement in source order (settings, definitions, phases, blocks), for the formatter
    body: tuple[Statement, ...] = ()


@dataclass(frozen=True)
class Module:
    """One .curr file. Without a curriculum it is a library of definitions."""

    file: str
    imports: tuple[Import, ...]
    definitions: tuple[Definition, ...]
    curriculum: Optional[Curriculum]
    #: every top-level statement in source order, for the formatter
    body: tuple[Statement, ...] = ()
    #: curricula after the first: an error (one curriculum per file), kept to point at them
    extra_curricula: tuple[Curriculum, ...] = ()


#: any statement of a file or block, as the formatter walks them in source order
Statement = Union[
    Import, Definition, Setting, EvalBlock, Phase, Curriculum, RuntimeBlock, SweepBlock, SweepEntry
]
