"""The compiler's diagnostics as LSP diagnostics, grouped by the file they are in, and the board
that decides what each file shows when several open documents report on it.

Each diagnostic keeps its code, severity and exact range; its help line and notes ("first defined
here") travel as related information. An error inside an imported library is reported on the
library's own file; a failed import is reported at the ``import``.

>>> from procdsl.lsp.analysis import analyse
>>> from procdsl.lsp.positions import Converter
>>> a = analyse('source d = dyk(k=4)', "/tmp/lib.curr")
>>> (d,) = by_file(a, Converter(a.result.texts))["/tmp/lib.curr"]
>>> d.code, d.message, d.range.start.character, d.related_information[0].message
('E106', 'unknown source kind `dyk`', 11, 'did you mean `dyck`?')
"""

from __future__ import annotations

from lsprotocol import types

from procdsl.lang.diagnostics import Diagnostic
from procdsl.lsp.analysis import Analysis
from procdsl.lsp.positions import Converter

SOURCE = "procdsl"


def to_lsp(d: Diagnostic, conv: Converter) -> types.Diagnostic:
    """One diagnostic; the help line first among its related information."""
    location = conv.location(d.span)
    related = [types.DiagnosticRelatedInformation(location=location, message=d.help)] if d.help else []
    related += [
        types.DiagnosticRelatedInformation(location=conv.location(span), message=note)
        for note, span in d.notes
    ]
    severity = types.DiagnosticSeverity.Warning if d.severity == "warning" else types.DiagnosticSeverity.Error
    return types.Diagnostic(
        range=location.range,
        message=d.message,
        severity=severity,
        code=d.code,
        source=SOURCE,
        related_information=related or None,
    )


def by_file(analysis: Analysis, conv: Converter) -> dict[str, list[types.Diagnostic]]:
    """File path → its diagnostics; the analysed file is always present (maybe with none)."""
    out: dict[str, list[types.Diagnostic]] = {analysis.path: []}
    for d in analysis.result.diagnostics:
        out.setdefault(d.span.file, []).append(to_lsp(d, conv))
    return out


class Board:
    """What each file shows. A file open in the editor shows its own analysis (its unsaved text);
    a closed file shows the union of what the open documents importing it report.

    >>> b = Board()
    >>> b.report("root", {"root": ["r"], "lib": ["l"]})
    {'root': ['r'], 'lib': ['l']}
    >>> b.report("lib", {"lib": []})      # once open, the library speaks for itself
    {'lib': []}
    >>> b.close("lib")                    # closed again: back to what its importers say
    {'lib': ['l']}
    >>> b.report("root", {"root": []})    # the root no longer reports on the library
    {'root': [], 'lib': []}
    """

    def __init__(self) -> None:
        self._reports: dict[str, dict[str, list]] = {}

    def shown(self, target: str) -> list:
        if target in self._reports:
            return list(self._reports[target].get(target, []))
        out: list = []
        for report in self._reports.values():
            out += [d for d in report.get(target, []) if d not in out]
        return out

    def _targets(self, owner: str) -> set[str]:
        return set(self._reports.get(owner, {}))

    def report(self, owner: str, per_file: dict[str, list]) -> dict[str, list]:
        """Record ``owner``'s findings; the files whose display may have changed, with what to show."""
        touched = self._targets(owner) | set(per_file) | {owner}
        self._reports[owner] = per_file
        return {target: self.shown(target) for target in sorted(touched, key=lambda t: t != owner)}

    def close(self, owner: str) -> dict[str, list]:
        touched = self._targets(owner) | {owner}
        self._reports.pop(owner, None)
        return {target: self.shown(target) for target in touched}
