"""Text → AST (or Lark's tree), with syntax errors rewritten into plain-language diagnostics (E0xx).

The grammar ships inside the wheel (``procdsl/grammar/procdsl.lark``) and the parser is built
once per process. Lark's terminal names never reach the user: each expected terminal is shown
as the text a person would type.

Two entry points share the grammar. :func:`parse_module` is the compiler's: one pass of the
lexer and parser builds the typed AST directly (Lark's inline transformer,
:class:`procdsl.lang.lower.Builder`), comments collected on the way, Lark's lexer and parser
loops inlined (:mod:`procdsl.lang.lark_loops`). :func:`parse_text` returns Lark's own tree,
positioned by Lark's ``propagate_positions``, for tools that want the tree; ``lower`` of it
equals what ``parse_module`` builds, spans included (tests/test_parse_fast.py).

>>> tree, comments = parse_text('curriculum c { seed = 1 }  # hi', "c.curr")
>>> str(tree.data), [c.value for c in comments]
('start', ['# hi'])
>>> module, comments = parse_module('curriculum c { seed = 1 }  # hi', "c.curr")
>>> module.curriculum.settings[0].span, [c.value for c in comments]
(Span(file='c.curr', line=1, column=16, end_line=1, end_column=24), ['# hi'])
>>> parse_text('phase warmup steps = 2', "p.curr")
Traceback (most recent call last):
  ...
procdsl.lang.parse.SyntaxDiagnostic: p.curr:1:1: E001 a phase must be inside a `curriculum NAME { … }` block
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import threading
from collections.abc import Iterable
from typing import Optional, Union, cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from procdsl.lang import codes
from procdsl.lang import nodes as n
from procdsl.lang.diagnostics import Diagnostic, Span
from procdsl.lang.lark_loops import PLUGINS
from procdsl.lang.lower import Builder, read_number
from procdsl.lang.strings import EscapeError, unquote
from procdsl.limits import MAX_LITERAL, MAX_NESTING

GRAMMAR_RESOURCE = ("procdsl.grammar", "procdsl.lark")

# How each terminal is named to a person. Keyword and punctuation terminals are shown by their
# text (`{`); these are the pattern terminals.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "QUANTITY": "a quantity such as `100 steps`",
    "STRING": "a string",
    "$END": "the end of the file",
    "VALUE": "a value (number, string, name, list, map or call)",
}


class SyntaxDiagnostic(Exception):
    """A syntax error as a Diagnostic (raised by :func:`parse_text`)."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        s = diagnostic.span
        super().__init__(f"{s.file}:{s.line}:{s.column}: {diagnostic.code} {diagnostic.message}")


def grammar_text() -> str:
    """The grammar, read from the installed package (not from the source tree)."""
    package, name = GRAMMAR_RESOURCE
    return importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")


class _BadToken(Exception):
    """Raised by a lexer callback: a token that lexes but cannot mean anything (E006, E008)."""

    def __init__(
        self,
        token: Token,
        code: str,
        message: str,
        offset: int = 0,
        width: Optional[int] = None,
        help: Optional[str] = None,
    ):
        self.token, self.code, self.message, self.help = token, code, message, help
        self.offset, self.width = offset, width if width is not None else len(str(token))

    def diagnostic(self, file: str) -> Diagnostic:
        t = self.token
        if t.line is None or t.column is None:  # the lexer places every token it makes
            raise ValueError(f"token {t!r} has no position")
        column = t.column + self.offset
        return Diagnostic(
            self.code, self.message, Span(file, t.line, column, t.line, column + self.width), help=self.help
        )


def _check_string(token: Token) -> Token:
    """Lexer callback: a string with an unknown escape is a syntax error (E006) at the escape."""
    if "\\" not in token:
        return token  # no escape at all
    try:
        unquote(str(token))
    except EscapeError as error:
        raise _BadToken(
            token, codes.UNKNOWN_ESCAPE, error.message, error.offset, error.width, error.help
        ) from None
    return token


_NUMBER_PART = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?(?:[eE][-+]?([0-9]+))?")
# Without an exponent and with at most 280 digits before the point, a number is below 1e292 even
# scaled by T: in range, whatever follows it (a unit, `%`).
_SURELY_IN_RANGE = re.compile(r"-?[0-9]{1,280}(?:\.[0-9]+)?[KMBT]?(?![eE0-9.])")


def _check_number(token: Token) -> Token:
    """Lexer callback: a number must be one a setting can hold (E008): finite, at most 1e300."""
    if _SURELY_IN_RANGE.match(token):
        return token
    match = _NUMBER_PART.match(str(token))
    assert match is not None  # a NUMBER token starts with one
    text = str(token)[: match.end()]
    suffix = str(token)[len(text) : len(text) + 1]
    text += suffix if suffix in ("K", "M", "B", "T") else ""
    if len(match.group(1)) > 301 or not abs(read_number(text)) <= MAX_LITERAL:
        shown = text if len(text) <= 24 else text[:20] + "…"
        raise _BadToken(
            token,
            codes.NUMBER_OUT_OF_RANGE,
            f"number `{shown}` is out of range",
            0,
            len(text),
            help="a number is at most 1e300 in size; every setting has a far smaller maximum",
        )
    return token


# Per-call state of the shared, cached parsers: the comments of the text being parsed (lexed as
# an ignored terminal, so only a lexer callback sees them) and, for the AST builder, its file.
_CALL = threading.local()


def _keep_comment(token: Token) -> Token:
    """Lexer callback on the ignored COMMENT terminal: keep it for the formatter."""
    found = getattr(_CALL, "comments", None)
    if found is not None:
        found.append(token)
    return token


def _options() -> dict:
    callbacks = {
        "STRING": _check_string,
        "NUMBER": _check_number,
        "PERCENT": _check_number,
        "QUANTITY": _check_number,
        "COMMENT": _keep_comment,
    }
    return {
        "parser": "lalr",
        "lexer": "contextual",
        "maybe_placeholders": False,
        "lexer_callbacks": callbacks,
    }


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    """Builds the AST while parsing: every token kept (the spans of nodes start and end at keywords
    and brackets), no Tree and no propagated positions; the lexer's and the parser's loops written out."""
    return Lark(
        grammar_text(), keep_all_tokens=True, transformer=Builder(_CALL), _plugins=PLUGINS, **_options()
    )


@functools.lru_cache(maxsize=1)
def _tree_parser() -> Lark:
    """Lark's own tree, every node placed by ``propagate_positions``, lexed by Lark's own loop."""
    return Lark(grammar_text(), propagate_positions=True, **_options())


BOM = "\ufeff"
_BRACKETS = re.compile(r'"(?:\\.|[^"\\\n])*"|#[^\n]*|[\[\]{}()]')


def _check_nesting(text: str, file: str) -> None:
    """E007 before parsing: brackets nested deeper than MAX_NESTING (every later stage recurses)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group(0)
        if char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                pos = match.start()
                line = text.count("\n", 0, pos) + 1
                column = pos - (text.rfind("\n", 0, pos) + 1) + 1
                raise SyntaxDiagnostic(
                    Diagnostic(
                        codes.NESTING_TOO_DEEP,
                        f"brackets nested more than {MAX_NESTING} deep",
                        Span(file, line, column, line, column + 1),
                        help="name the inner value with `let` and refer to it",
                    )
                )
        elif char in ")]}":
            depth = max(0, depth - 1)


def parse_module(text: str, file: str, comments: bool = True) -> tuple[n.Module, list[Token]]:
    """Parse one file's text into its AST and, if asked, its comments (for the formatter).

    Raises SyntaxDiagnostic for the first syntax error. A leading UTF-8 byte-order mark is
    skipped (editors on Windows write one). The last few results are kept (the AST and the
    diagnostic are immutable): the language server formats, and every analysis reloads the
    imports, from a parse it just made.
    """
    key = (text, file)
    with _RECENT_LOCK:
        hit = _RECENT.pop(key, None)
        if hit is not None:
            _RECENT[key] = hit
    if hit is None:
        try:
            result, collected = _run(_parser(), text, file, True)
            hit = (cast(n.Module, result), collected)
        except SyntaxDiagnostic as exc:
            hit = exc.diagnostic
        if len(text) <= _RECENT_TEXT:
            with _RECENT_LOCK:
                _RECENT[key] = hit
                while len(_RECENT) > _RECENT_SIZE:
                    del _RECENT[next(iter(_RECENT))]
    if isinstance(hit, Diagnostic):
        raise SyntaxDiagnostic(hit)
    module, found = hit
    return module, list(found) if comments else []


# (text, file) -> the module and comments, or the syntax error, of the latest parses, oldest first
_RECENT: dict[tuple[str, str], Union[tuple[n.Module, list[Token]], Diagnostic]] = {}
_RECENT_LOCK = threading.Lock()
_RECENT_SIZE, _RECENT_TEXT = 8, 100_000  # an editor's files; a big AST kept alive slows every GC pass


def parse_text(text: str, file: str, comments: bool = True) -> tuple[Tree, list[Token]]:
    """Parse one file's text into Lark's tree (nodes placed by Lark) and, if asked, its comments.
    The compiler uses :func:`parse_module`; errors are the same."""
    tree, found = _run(_tree_parser(), text, file, comments)
    return cast(Tree, tree), found  # the tree parser builds Lark's tree


def _run(parser: Lark, text: str, file: str, comments: bool) -> tuple[object, list[Token]]:
    text = text[1:] if text.startswith(BOM) else text
    _check_nesting(text, file)
    found: list[Token] = []
    outer = getattr(_CALL, "comments", None), getattr(_CALL, "file", None)
    _CALL.comments, _CALL.file = (found if comments else None), file
    try:
        result = parser.parse(text)
    except UnexpectedInput as exc:
        raise SyntaxDiagnostic(_describe(exc, text, file)) from None
    except _BadToken as bad:
        raise SyntaxDiagnostic(bad.diagnostic(file)) from None
    finally:
        _CALL.comments, _CALL.file = outer
    return result, found


def _terminal_text(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for terminal in _parser().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return f"`{terminal.pattern.value}`"
    return name.lower()


_VALUE_START = {"NUMBER", "STRING", "NAME", "LSQB"}


def _expected_list(names: Iterable[str]) -> str:
    names = set(names)
    if _VALUE_START <= names:
        # the start of an expression: name the idea, not the dozen tokens that can begin one
        names = (names - _VALUE_START - {"PERCENT", "QUANTITY", "LPAR", "LBRACE"}) | {"VALUE"}
    shown = sorted({_terminal_text(n) for n in names if n not in {"COMMENT"}})
    # keep keywords/punctuation first: they are what the user most likely forgot
    shown.sort(key=lambda s: (not s.startswith("`"), s))
    if len(shown) > 6:
        shown = shown[:6] + ["…"]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _context_before(text: str, line: int, column: int) -> str:
    """The last words before a position (same line, else the previous non-empty line)."""
    lines = text.splitlines()
    before = lines[line - 1][: column - 1] if 0 < line <= len(lines) else ""
    before = before.split("#")[0].strip()
    k = line - 2
    while not before and k >= 0:
        before = lines[k].split("#")[0].strip()
        k -= 1
    words = re.findall(r'"[^"]*"|[^\s]+', before)
    return " ".join(words[-3:])


def _token_width(token: Optional[Token]) -> int:
    if token is None or token.type == "$END":
        return 1
    return max(1, len(str(token).splitlines()[0]) if str(token) else 1)


def _describe(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line, column = max(1, exc.line or 1), max(1, exc.column or 1)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        expected = getattr(exc, "expected", None) or getattr(exc, "accepts", None) or set()
        open_braces = text.count("{") - text.count("}")
        help_ = "add the missing `}`" if open_braces > 0 else None
        return Diagnostic(
            codes.UNEXPECTED_END,
            f"unexpected end of file; expected {_expected_list(expected)}",
            Span(file, line, column, line, column + 1),
            help=help_,
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos] if pos is not None and pos < len(text) else ""
        if char == '"':
            return Diagnostic(
                codes.UNEXPECTED_CHARACTER,
                "unterminated string",
                Span(file, line, column, line, column + 1),
                help='close the string with `"` on the same line',
            )
        shown = repr(char)[1:-1] if char.isprintable() else f"U+{ord(char):04X}" if char else "?"
        allowed = _expected_list(exc.allowed) if exc.allowed else None
        message = f"unexpected character `{shown}`" + (f"; expected {allowed}" if allowed else "")
        return Diagnostic(
            codes.UNEXPECTED_CHARACTER,
            message,
            Span(file, line, column, line, column + 1),
            help=_character_help(char),
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    exc.expected = _precise_expected(exc)
    span = Span(file, line, column, line, column + _token_width(token))
    special = _special_case(exc, text, file, span)
    if special is not None:
        return special
    after = _context_before(text, line, column)
    where = f" after `{after}`" if after else ""
    return Diagnostic(
        codes.UNEXPECTED_TOKEN,
        f"expected {_expected_list(exc.expected)}{where}, found `{token}`",
        span,
        help=None,
    )


def _precise_expected(exc: UnexpectedToken) -> set[str]:
    """LALR merges states, so ``exc.expected`` may list tokens that cannot really follow;
    replaying the parser on each candidate keeps only those that can."""
    try:
        return set(exc.interactive_parser.accepts()) or set(exc.expected)
    except Exception:  # pragma: no cover - accepts() is best effort
        return set(exc.expected)


def _character_help(char: str) -> Optional[str]:
    if char in "'":
        return 'strings use double quotes: "…"'
    if char == "%":
        return "a percentage is written right after its number: `60%`"
    if char == ":":
        return "`key: value` pairs go inside a map `{ … }`; settings use `key = value`"
    return None


def _special_case(exc: UnexpectedToken, text: str, file: str, span: Span) -> Optional[Diagnostic]:
    """Common mistakes that deserve a sentence of their own rather than a list of tokens."""
    token = exc.token
    expected = set(exc.expected)
    before = _context_before(text, span.line, span.column)
    if token.type == "PHASE" and "CURRICULUM" in expected:
        return Diagnostic(
            codes.UNEXPECTED_TOKEN,
            "a phase must be inside a `curriculum NAME { … }` block",
            span,
            help="wrap the phases and settings in `curriculum NAME { … }`",
        )
    if token.type == "NAME" and "CURRICULUM" in expected and "EQUAL" not in expected:
        return Diagnostic(
            codes.UNEXPECTED_TOKEN,
            f"`{token}` cannot stand at the top level of a file",
            span,
            help="top level holds `import`, `let`, `rule`, `source` and `curriculum NAME { … }`",
        )
    if token.type == "COLON" and "EQUAL" in expected:
        return Diagnostic(
            codes.UNEXPECTED_TOKEN,
            f"expected `=` after `{before}`, found `:`",
            span,
            help="settings are written `key = value`; `key: value` is for maps",
        )
    if token.type == "EQUAL" and "COLON" in expected:
        return Diagnostic(
            codes.UNEXPECTED_TOKEN,
            f"expected `:` after `{before}` in a map, found `=`",
            span,
            help="map entries are written `key: value`",
        )
    return None
