"""The protocol side: a pygls server that keeps one :class:`Analysis` per open document (rebuilt
on every change, before any request reads it) and answers each request from it. An import of a
file that is open reads the editor's text of it, saved or not; a change to an open library
re-analyses the open documents that import it.

Run it with ``procdsl lsp`` (stdio). Capabilities: diagnostics pushed on open/change/save,
hover, completion, go-to-definition, document formatting, quick fixes, inlay hints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from procdsl import __version__
from procdsl.compiler.load import read_source, real_path
from procdsl.lang.parse import parse_module
from procdsl.lsp.actions import quick_fixes
from procdsl.lsp.analysis import Analysis, analyse
from procdsl.lsp.completion import complete
from procdsl.lsp.definition import definition_span
from procdsl.lsp.diagnostics import Board, by_file
from procdsl.lsp.formatting import format_edits
from procdsl.lsp.hover import hover_at
from procdsl.lsp.inlay import inlay_hints
from procdsl.lsp.positions import Converter, file_uri, uri_path

#: characters after which an editor asks for completions without a keystroke of a word
TRIGGERS = ["=", "(", "{", "[", ",", ":", " "]


class CurrServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "procdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental
        )
        self.analyses: dict[str, Analysis] = {}  # uri -> analysis of the current text
        self.parsed: dict[str, Analysis] = {}  # uri -> the latest analysis whose text parsed
        self.uris: dict[str, str] = {}  # path -> the URI the client uses for it
        self.board = Board()

    # ------------------------------------------------------------------------ documents
    def converter(self, analysis: Analysis) -> Converter:
        return Converter(
            analysis.result.texts, self.workspace.position_codec, read=lambda p: read_source(p)[0]
        )

    def uri(self, path: str) -> str:
        return self.uris.get(path) or file_uri(path)

    def open_files(self, closing: Optional[str] = None) -> dict[str, str]:
        """Real path → text of every open file (but ``closing``): what an import of it reads,
        saved or not. Buffers that are not files (``untitled:``) cannot be imported."""
        return {
            real_path(uri_path(uri)): document.source
            for uri, document in self.workspace.text_documents.items()
            if uri != closing and uri.startswith("file:")
        }

    def refresh(self, uri: str, closing: Optional[str] = None) -> None:
        """Re-analyse an open document and publish what changed."""
        path = uri_path(uri)
        self.uris[path] = uri
        analysis = analyse(self.workspace.get_text_document(uri).source, path, self.open_files(closing))
        self.analyses[uri] = analysis
        if analysis.module is not None:
            self.parsed[uri] = analysis
        self.publish(self.board.report(path, by_file(analysis, self.converter(analysis))))

    def refresh_importers(self, uri: str, closing: bool = False) -> None:
        """An edited, saved or closed library changes what the open documents importing it see."""
        key = real_path(uri_path(uri))
        for other, analysis in list(self.analyses.items()):
            imported = (target for targets in analysis.program.imports.values() for target in targets)
            if other != uri and any(real_path(target) == key for target in imported):
                self.refresh(other, closing=uri if closing else None)

    def close(self, uri: str) -> None:
        self.analyses.pop(uri, None)
        self.parsed.pop(uri, None)
        self.publish(self.board.close(uri_path(uri)))
        self.refresh_importers(uri, closing=True)  # they read the file from disk again

    def publish(self, shown: dict[str, list[types.Diagnostic]]) -> None:
        for path, diagnostics in shown.items():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=self.uri(path), diagnostics=diagnostics)
            )

    def at(self, uri: str, position: types.Position) -> Optional[Cursor]:
        """The analysis of a document, its converter and the 1-based cursor."""
        analysis = self.analyses.get(uri)
        if analysis is None:
            return None
        conv = self.converter(analysis)
        return Cursor(analysis, conv, *conv.cursor(analysis.path, position))


@dataclass
class Cursor:
    analysis: Analysis
    conv: Converter
    line: int
    column: int


def at_cursor(default: Any) -> Callable:
    """Turns ``fn(ls, cursor, params)`` into a handler; ``default`` answers for an unknown document."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(ls: CurrServer, params: Any) -> Any:
            position = params.position if hasattr(params, "position") else params.range.start
            cursor = ls.at(params.text_document.uri, position)
            return default if cursor is None else fn(ls, cursor, params)

        return handler

    return wrap


server = CurrServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_open_change_or_save(ls: CurrServer, params: Any) -> None:
    ls.refresh(params.text_document.uri)
    ls.refresh_importers(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CurrServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.close(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
@at_cursor(None)
def hover(ls: CurrServer, c: Cursor, params: types.HoverParams) -> Optional[types.Hover]:
    result = hover_at(c.analysis, c.line, c.column)
    if result is None:
        return None
    text, span = result
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text), range=c.conv.range(span)
    )


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
@at_cursor(None)
def completion(ls: CurrServer, c: Cursor, params: types.CompletionParams) -> types.CompletionList:
    items = complete(c.analysis.text, c.line, c.column, ls.parsed.get(params.text_document.uri))
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@at_cursor(None)
def definition(ls: CurrServer, c: Cursor, params: types.DefinitionParams) -> Optional[types.Location]:
    span = definition_span(c.analysis, c.line, c.column)
    return types.Location(uri=ls.uri(span.file), range=c.conv.range(span)) if span else None


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
@at_cursor([])
def code_action(ls: CurrServer, c: Cursor, params: types.CodeActionParams) -> list[types.CodeAction]:
    end_line, end_column = c.conv.cursor(c.analysis.path, params.range.end)
    return quick_fixes(c.analysis, c.conv, c.line, c.column, end_line, end_column)


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: CurrServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
    analysis = ls.analyses.get(params.text_document.uri)
    return format_edits(analysis.text, analysis.path, ls.converter(analysis)) if analysis else []


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hint(ls: CurrServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    analysis = ls.analyses.get(params.text_document.uri)
    return inlay_hints(analysis, ls.converter(analysis)) if analysis else []


def serve() -> None:
    """Serve over stdin/stdout until the client exits. The parser is built first (tens of ms),
    with the rest of start-up, rather than while the first opened document waits for diagnostics."""
    parse_module("", "<start-up>")
    server.start_io()
