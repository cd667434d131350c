"""Document formatting through ``procdsl fmt``'s formatter: one edit replacing the whole text, no
edit when it is already canonical, and none while the file has a syntax error (the diagnostic
already says where).

>>> text = "curriculum c {  seed=1 }\\n"
>>> edits = format_edits(text, "c.curr", Converter({"c.curr": text}))
>>> edits[0].new_text, (edits[0].range.end.line, edits[0].range.end.character)
('curriculum c {\\n  seed = 1\\n}\\n', (1, 0))
>>> format_edits("curriculum c {\\n  seed = 1\\n}\\n", "c.curr", Converter({})), format_edits("phase {", "c.curr", Converter({}))
([], [])
"""

from __future__ import annotations

from lsprotocol import types

from procdsl.lang.diagnostics import Span
from procdsl.lang.fmt import format_text
from procdsl.lang.parse import SyntaxDiagnostic
from procdsl.lsp.positions import Converter


def format_edits(text: str, path: str, conv: Converter) -> list[types.TextEdit]:
    try:
        formatted = format_text(text, path)
    except SyntaxDiagnostic:
        return []
    if formatted == text:
        return []
    lines = text.split("\n")
    whole = Span(path, 1, 1, len(lines), len(lines[-1]) + 1)
    return [types.TextEdit(range=conv.range(whole), new_text=formatted)]
