"""Quick fixes: every "did you mean `X`?" of a diagnostic becomes a code action that replaces the
misspelled word with ``X``.

>>> from procdsl.lsp.analysis import analyse
>>> from procdsl.lsp.positions import Converter
>>> a = analyse('source d = dyk(k=4)', "/tmp/lib.curr")
>>> (action,) = quick_fixes(a, Converter(a.result.texts), 1, 1, 1, 20)
>>> action.title, action.edit.changes["file:///tmp/lib.curr"][0].new_text
('Replace `dyk` with `dyck`', 'dyck')
"""

from __future__ import annotations

import re

from lsprotocol import types

from procdsl.lsp.analysis import Analysis
from procdsl.lsp.diagnostics import to_lsp
from procdsl.lsp.positions import Converter, file_uri

_SUGGESTION = re.compile(r"did you mean `([A-Za-z_][A-Za-z0-9_]*)`\?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quick_fixes(
    analysis: Analysis, conv: Converter, line: int, column: int, end_line: int, end_column: int
) -> list[types.CodeAction]:
    """Fixes for this file's diagnostics that touch the 1-based range."""
    lines = analysis.text.splitlines()
    out = []
    for d in analysis.result.diagnostics:
        s = d.span
        match = _SUGGESTION.search(d.help or "")
        if match is None or s.file != analysis.path or s.line != s.end_line or not 0 < s.line <= len(lines):
            continue
        if (s.end_line, s.end_column) < (line, column) or (s.line, s.column) > (end_line, end_column):
            continue
        word = lines[s.line - 1][s.column - 1 : s.end_column - 1]
        if not _WORD.fullmatch(word):  # the span is more than the misspelled name: no safe edit
            continue
        edit = types.TextEdit(range=conv.range(s), new_text=match.group(1))
        out.append(
            types.CodeAction(
                title=f"Replace `{word}` with `{match.group(1)}`",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[to_lsp(d, conv)],
                edit=types.WorkspaceEdit(changes={file_uri(s.file): [edit]}),
                is_preferred=True,
            )
        )
    return out
