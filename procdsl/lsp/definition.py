"""Go to definition: a source, rule or let name jumps to its definition (in an imported file too);
an ``import`` path opens the imported file.

>>> from procdsl.lsp.analysis import analyse
>>> a = analyse('let n = 4\\nsource d = dyck(k=n)', "/tmp/lib.curr")
>>> definition_span(a, 2, 19)
Span(file='/tmp/lib.curr', line=1, column=5, end_line=1, end_column=6)
"""

from __future__ import annotations

import os
from typing import Optional

from procdsl.lang.diagnostics import Span
from procdsl.lsp.analysis import Analysis
from procdsl.lsp.locate import locate


def definition_span(analysis: Analysis, line: int, column: int) -> Optional[Span]:
    """Where the name at the 1-based position is defined (the start of an imported file)."""
    hit = locate(analysis.module, line, column)
    if hit is None:
        return None
    if hit.kind == "import":
        target = os.path.normpath(os.path.join(os.path.dirname(analysis.path), hit.name))
        return Span(target, 1, 1, 1, 1) if os.path.isfile(target) else None
    if hit.kind == "param":
        return None
    found = analysis.definition(hit.name, hit.namespaces)
    return found.name_span if found is not None else None
