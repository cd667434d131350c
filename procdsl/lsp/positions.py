"""Between the compiler's spans (1-based lines and columns in characters, end exclusive) and LSP
ranges (0-based, in the client's code units — UTF-16 unless negotiated otherwise).

>>> from procdsl.lang.diagnostics import Span
>>> conv = Converter({"a.curr": "x = \\"😀\\" y\\n"})
>>> r = conv.range(Span("a.curr", 1, 9, 1, 10))
>>> (r.start.line, r.start.character, r.end.character)
(0, 9, 10)
>>> conv.cursor("a.curr", types.Position(line=0, character=9))
(1, 9)
>>> file_uri("/tmp/a b.curr"), uri_path("file:///tmp/a%20b.curr")
('file:///tmp/a%20b.curr', '/tmp/a b.curr')
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Optional
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from procdsl.lang.diagnostics import Span


def file_uri(path: str) -> str:
    return pathlib.Path(path).absolute().as_uri()


def uri_path(uri: str) -> str:
    """The file system path of a ``file:`` URI (other schemes keep their path part)."""
    return unquote(urlparse(uri).path)


class Converter:
    """Converts spans of any file the analysis read, using that file's text for code units."""

    def __init__(
        self,
        texts: dict[str, str],
        codec: Optional[PositionCodec] = None,
        read: Optional[Callable[[str], Optional[str]]] = None,
    ):
        self.texts, self.codec, self.read = texts, codec or PositionCodec(), read
        self._lines: dict[str, list[str]] = {}

    def lines(self, file: str) -> list[str]:
        if file not in self._lines:
            text = self.texts.get(file)
            if text is None and self.read is not None:
                text = self.read(file)
            self._lines[file] = (text or "").splitlines(keepends=True)
        return self._lines[file]

    def range(self, span: Span) -> types.Range:
        raw = types.Range(
            start=types.Position(line=max(0, span.line - 1), character=max(0, span.column - 1)),
            end=types.Position(line=max(0, span.end_line - 1), character=max(0, span.end_column - 1)),
        )
        return self.codec.range_to_client_units(self.lines(span.file), raw)

    def location(self, span: Span) -> types.Location:
        return types.Location(uri=file_uri(span.file), range=self.range(span))

    def cursor(self, file: str, position: types.Position) -> tuple[int, int]:
        """The 1-based (line, column) of a client position in ``file``."""
        server = self.codec.position_from_client_units(self.lines(file), position)
        return server.line + 1, server.character + 1


def contains(span: Span, line: int, column: int) -> bool:
    """Whether the 1-based position lies in the span (its end included: the cursor after a word)."""
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)
