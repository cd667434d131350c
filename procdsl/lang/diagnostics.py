"""Diagnostics are values: a code, a message, a span and a help line, rendered only by the CLI.

Rendering follows rustc (a source frame with carets and a help line) and ruff (one
``path:line:col: CODE message`` header per diagnostic):

>>> src = "phase p {\\n  mix = { a: 60%, b: 30% }\\n}\\n"
>>> d = Diagnostic("E301", "mix shares sum to 90%, not 100%",
...                Span("x.curr", 2, 9, 2, 27), help="add 10% to a source, or change the shares")
>>> print(render_text(d, src))
x.curr:2:9: E301 mix shares sum to 90%, not 100%
  |
2 |   mix = { a: 60%, b: 30% }
  |         ^^^^^^^^^^^^^^^^^^ add 10% to a source, or change the shares
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Optional

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Span:
    """A region of a file: 1-based lines and columns, ``end_column`` exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(file: str, line: int = 1, column: int = 1) -> Span:
        """A one-character span, for diagnostics that concern a position rather than a region."""
        return Span(file, line, column, line, column + 1)

    def to(self, other: Span) -> Span:
        """The span from the start of self to the end of other."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler. Codes: E0xx syntax, E1xx names, E2xx types, E3xx structure, W warnings;
    each is named in :mod:`procdsl.lang.codes`, which call sites pass (``codes.MIX_SHARES``)."""

    code: str
    message: str
    span: Span
    help: Optional[str] = None
    notes: tuple[tuple[str, Span], ...] = field(default=())  # secondary spans ("first defined here")

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    def to_json(self) -> dict:
        """The machine form of ``procdsl check --format json`` (one object per diagnostic)."""
        s = self.span
        out = {
            "file": s.file,
            "line": s.line,
            "column": s.column,
            "end_line": s.end_line,
            "end_column": s.end_column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }
        if self.help:
            out["help"] = self.help
        return out


class CompileError(Exception):
    """Raised by APIs that need a plan when the source has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else None
        super().__init__(
            f"{len(diagnostics)} error(s); first: {first.code} {first.message}" if first else "errors"
        )


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def sort_key(d: Diagnostic) -> tuple:
    return (d.span.file, d.span.line, d.span.column, d.code)


def visible(text: str) -> str:
    """``text`` safe to print on a terminal: each unprintable character becomes one visible one
    (C0 controls their Unicode control picture, others U+FFFD), so a file cannot ring the bell,
    move the cursor or forge output lines, and carets stay under their columns.

    >>> visible("a\\x07b\\x00c\\x1b[2Jd\\u202ee")
    'a␇b␀c␛[2Jd�e'
    """
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable()
        else chr(0x2400 + ord(ch))
        if ord(ch) < 0x20
        else "\u2421"
        if ch == "\x7f"
        else "\ufffd"
        for ch in text
    )


def _frame(span: Span, source: str, label: str) -> list[str]:
    lines = source.split("\n")  # the lexer counts lines by \n alone (a lone \r or \f is not a line break)
    if not 1 <= span.line <= len(lines):
        return []
    text = visible(lines[span.line - 1].rstrip("\r").expandtabs(1))
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    gutter = " " * len(str(span.line))
    caret = " " * (span.column - 1) + "^" * width
    return [
        f"{gutter} |",
        f"{span.line} | {text}",
        f"{gutter} | {caret}{(' ' + visible(label)) if label else ''}",
    ]


def render_text(d: Diagnostic, source: Optional[str]) -> str:
    """The human form: ruff-style header, then a rustc-style frame when the source is known."""
    s = d.span
    out = [visible(f"{s.file}:{s.line}:{s.column}: {d.code} {d.message}")]
    frame = _frame(s, source, d.help or "") if source is not None else []
    out += frame
    if not frame and d.help:
        out.append(visible(f"  = help: {d.help}"))
    for note, span in d.notes:
        out.append(visible(f"  = note: {note} at {span.file}:{span.line}:{span.column}"))
    return "\n".join(out)


def _github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(d: Diagnostic) -> str:
    """A GitHub Actions workflow command, which shows the diagnostic inline on a pull request.

    Escaped as GitHub's toolkit does: ``% \\r \\n`` in the message, and ``: ,`` too in properties,
    so a file name cannot end the command early or inject another annotation.

    >>> print(render_github(Diagnostic("E301", "sum is 90%", Span("a,b:\\n.curr", 1, 2, 1, 3))))
    ::error file=a%2Cb%3A%0A.curr,line=1,col=2,endLine=1,endColumn=3,title=E301::E301 sum is 90%25
    """
    s = d.span
    level = "warning" if d.severity == "warning" else "error"
    message = _github_data(f"{d.code} {d.message}" + (f" ({d.help})" if d.help else ""))
    return (
        f"::{level} file={_github_property(s.file)},line={s.line},col={s.column},endLine={s.end_line},"
        f"endColumn={s.end_column},title={_github_property(d.code)}::{message}"
    )


def render_json(d: Diagnostic) -> str:
    """One JSON line; DEL and C1 controls escaped too (JSON leaves them raw), so it is terminal-safe."""
    return re.sub(
        "[\x7f-\x9f]", lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(d.to_json(), ensure_ascii=False)
    )


__all__ = [
    "Span",
    "Diagnostic",
    "CompileError",
    "Severity",
    "errors",
    "sort_key",
    "render_text",
    "render_github",
    "render_json",
    "visible",
]
