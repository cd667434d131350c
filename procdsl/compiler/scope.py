"""Definitions in scope: ``let``, ``rule`` and ``source`` names, each its own namespace.

Imported files' definitions come first, then the file's own top level, then the curriculum's.
Defining a name twice in one namespace is E306, pointing at both definitions; the same
definition reached through two import paths is one definition.

>>> from procdsl.lang.nodes import Definition, Name
>>> from procdsl.lang.diagnostics import Span
>>> d1 = Definition("source", "a", Span("f", 1, 8, 1, 9), Name("x", Span("f", 1, 12, 1, 13)), Span("f", 1, 1, 1, 13))
>>> d2 = Definition("source", "a", Span("f", 2, 8, 2, 9), Name("y", Span("f", 2, 12, 2, 13)), Span("f", 2, 1, 2, 13))
>>> scope, found = Scope(), []
>>> scope.add(d1, found); scope.add(d2, found)
>>> [(d.code, d.span.line, d.notes[0][1].line) for d in found]
[('E306', 2, 1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from procdsl.compiler.load import Program
from procdsl.lang import codes
from procdsl.lang.diagnostics import Diagnostic
from procdsl.lang.nodes import Definition


@dataclass
class Scope:
    lets: dict[str, Definition] = field(default_factory=dict)
    rules: dict[str, Definition] = field(default_factory=dict)
    sources: dict[str, Definition] = field(default_factory=dict)

    def namespace(self, kind: str) -> dict[str, Definition]:
        return {"let": self.lets, "rule": self.rules, "source": self.sources}[kind]

    def add(self, definition: Definition, diagnostics: list[Diagnostic]) -> None:
        table = self.namespace(definition.kind)
        first = table.get(definition.name)
        if first is None:
            table[definition.name] = definition
        elif first.span != definition.span:
            diagnostics.append(
                Diagnostic(
                    codes.DUPLICATE_NAME,
                    f"{definition.kind} `{definition.name}` is defined twice",
                    definition.name_span,
                    help=f"rename one of them or remove this {definition.kind}",
                    notes=(("first defined", first.name_span),),
                )
            )


def build_scope(program: Program, diagnostics: list[Diagnostic]) -> Scope:
    """The scope of the root module's curriculum (or of the library, if it has none)."""
    scope = Scope()
    root = program.root
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen or path not in program.modules:
            return
        seen.add(path)
        for imported in program.imports.get(path, []):
            visit(imported)
        for definition in program.modules[path].definitions:
            scope.add(definition, diagnostics)

    if root is not None:
        visit(root.file)
        if root.curriculum is not None:
            for definition in root.curriculum.definitions:
                scope.add(definition, diagnostics)
    return scope
