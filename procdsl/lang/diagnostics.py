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
from dataclasses import dataclass, field
from typing import Iterable, Literal, Optional

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
    def point(file: str, line: int = 1, column: int = 1) -> "Span":
        """A one-character span, for diagnostics that concern a position rather than a region."""
        return Span(file, line, column, line, column + 1)

    def to(self, other: "Span") -> "Span":
        """The span from the start of self to the end of other."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler. Codes: E0xx syntax, E1xx names, E2xx types, E3xx structure, W warnings."""

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
        out = {"file": s.file, "line": s.line, "column": s.column, "end_line": s.end_line,
               "end_column": s.end_column, "code": self.code, "severity": self.severity,
               "message": self.message}
        if self.help:
            out["help"] = self.help
        return out


class CompileError(Exception):
    """Raised by APIs that need a plan when the source has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else None
        super().__init__(f"{len(diagnostics)} error(s); first: {first.code} {first.message}" if first else "errors")


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def sort_key(d: Diagnostic) -> tuple:
    return (d.span.file, d.span.line, d.span.column, d.code)


def _frame(span: Span, source: str, label: str) -> list[str]:
    lines = source.splitlines()
    if not 1 <= span.line <= len(lines):
        return []
    text = lines[span.line - 1].expandtabs(1)
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    gutter = " " * len(str(span.line))
    caret = " " * (span.column - 1) + "^" * width
    return [f"{gutter} |", f"{span.line} | {text}", f"{gutter} | {caret}{(' ' + label) if label else ''}"]


def render_text(d: Diagnostic, source: Optional[str]) -> str:
    """The human form: ruff-style header, then a rustc-style frame when the source is known."""
    s = d.span
    out = [f"{s.file}:{s.line}:{s.column}: {d.code} {d.message}"]
    if source is not None:
        frame = _frame(s, source, d.help or "")
        out += frame
        if not frame and d.help:
            out.append(f"  = help: {d.help}")
    elif d.help:
        out.append(f"  = help: {d.help}")
    for note, span in d.notes:
        out.append(f"  = note: {note} at {span.file}:{span.line}:{span.column}")
    return "\n".join(out)


def render_github(d: Diagnostic) -> str:
    """A GitHub Actions workflow command, which shows the diagnostic inline on a pull request."""
    s = d.span
    level = "warning" if d.severity == "warning" else "error"
    message = f"{d.code} {d.message}" + (f" ({d.help})" if d.help else "")
    message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return (f"::{level} file={s.file},line={s.line},col={s.column},endLine={s.end_line},"
            f"endColumn={s.end_column},title={d.code}::{message}")


def render_json(d: Diagnostic) -> str:
    return json.dumps(d.to_json(), ensure_ascii=False)


__all__ = ["Span", "Diagnostic", "CompileError", "Severity", "errors", "sort_key",
           "render_text", "render_github", "render_json"]
