"""One open document, compiled: its AST, its imports, every diagnostic, the definitions in scope
and the plan — what every feature of the server reads. Built once per edit, then only looked up.

>>> a = analyse('source d = dyck(k=4)\\ncurriculum c { model = gpt2(layers=1, heads=1, dim=8)  context = 16'
...             '  batch = 2  phase p { steps = 3  mix = { d: 100% } } }', "/tmp/c.curr")
>>> a.ok, a.plan.phases[0].tokens, a.definition("d", ("source",)).name_span.column
(True, 96, 8)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from procdsl.compiler.compile import CompileResult, compile_program
from procdsl.compiler.load import Program, load_text
from procdsl.compiler.scope import Scope, build_scope
from procdsl.lang import nodes as n
from procdsl.plan import Plan


@dataclass
class Analysis:
    path: str
    text: str
    program: Program
    result: CompileResult
    scope: Scope

    @property
    def module(self) -> Optional[n.Module]:
        """This file's AST, or None when it does not parse."""
        return self.program.root

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def plan(self) -> Optional[Plan]:
        return self.result.plan

    def definition(self, name: str, namespaces: tuple[str, ...]) -> Optional[n.Definition]:
        """The ``let``/``rule``/``source`` called ``name``, in the first namespace that has one."""
        for kind in namespaces:
            found = self.scope.namespace(kind).get(name)
            if found is not None:
                return found
        return None

    def names(self, kind: str) -> list[str]:
        """Every name of one namespace in scope, imported ones included."""
        return list(self.scope.namespace(kind))


def analyse(text: str, path: str, open_files: Optional[Mapping[str, str]] = None) -> Analysis:
    """Load, compile and index ``text`` as the file ``path``; its imports come from
    ``open_files`` (real path → text of a document open in the editor) or else from disk."""
    program = load_text(text, path, open_files=open_files)
    result = compile_program(program, path)
    scope = build_scope(program, []) if program.root is not None else Scope()
    return Analysis(path, text, program, result, scope)
