"""Lark's lexer and parser loops, written out: the adaptations of Lark internals, in one place.

Lark spends most of a parse in two loops that call a method per token:
``ContextualLexer.lex`` → ``BasicLexer.next_token`` and ``_Parser.parse_from_state`` →
``ParserState.feed_token``. :class:`FastContextualLexer` and :class:`FastParser` are the same
loops inlined, over Lark's own per-state scanners, keyword callbacks, parse table and tree
callbacks; they plug in through Lark's ``_plugins`` option (as lark-cython does). Whatever the
fast loops do not handle, Lark's own code does from the same state: a character no terminal
matches, a token the table refuses, the end of input. So tokens, trees and errors are Lark's.

>>> from lark import Lark
>>> from lark.exceptions import UnexpectedToken
>>> grammar = 'start: NAME "=" NAME ";"\\n%import common.CNAME -> NAME\\n%ignore " "'
>>> fast, plain = Lark(grammar, parser="lalr", _plugins=PLUGINS), Lark(grammar, parser="lalr")
>>> fast.parse("a = b;") == plain.parse("a = b;")
True
>>> try:
...     fast.parse("a = b c")
... except UnexpectedToken as error:
...     print(error.token, error.line, error.column, sorted(error.expected))
c 1 7 ['SEMICOLON']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, Optional

import lark.utils
from lark import Token
from lark.exceptions import UnexpectedInput
from lark.lexer import ContextualLexer, LexerState
from lark.parse_tree_builder import ExpandSingleChild
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_interactive_parser import InteractiveParser
from lark.parsers.lalr_parser import LALR_Parser
from lark.parsers.lalr_parser import _Parser as LarkParser

try:
    # re's private parser module (3.11+): the stubs do not list it
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse

#: the text type of lark ≥ 1.2 lexers; before it, Lark's own loops run (PLUGINS is empty)
_TEXT_SLICE: Any = getattr(lark.utils, "TextSlice", None)


class FastContextualLexer(ContextualLexer):
    """Lark's contextual lexer, its per-token loop written out: the same per-state scanners
    (Lark's regexes, priorities and keyword callbacks), the same tokens and positions, with none of
    the method calls per token, and blanks skipped in the step of the token after them where that
    is sure to be what Lark's regex does (:func:`_blank`). At a character no terminal of the state
    matches, Lark's own loop takes over from that position, so lexical errors are Lark's."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.by_state: dict[int, tuple] = {}  # parser state -> what the loop needs of its lexer

    def _state(self, state: int) -> tuple:
        lexer: Any = self.lexers[state]
        scanner = lexer.scanner  # built on first use, and with it lexer.callback
        patterns = scanner._mres
        skipped = frozenset(lexer.ignore_types) - set(lexer.callback)  # ignored, no callback to see it
        blank, blank_chars = _blank(lexer, skipped)
        found = self.by_state[state] = (
            patterns[0] if len(patterns) == 1 else None,
            patterns,
            skipped,
            lexer.ignore_types,
            lexer.newline_types,
            lexer.callback,
            blank,
            blank_chars,
        )
        return found

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text = lexer_state.text
        if not isinstance(text, _TEXT_SLICE) or text.start != 0:  # pragma: no cover - another lark
            yield from super().lex(lexer_state, parser_state)
            return
        source, end = text.text, text.end
        counter = lexer_state.line_ctr
        pos, line, line_start = counter.char_pos, counter.line, counter.line_start_pos
        stack, by_state, last = parser_state.state_stack, self.by_state, lexer_state.last_token
        make, token_class = str.__new__, Token
        refused = False
        try:  # the counter and last token are written back when the loop stops (or is dropped)
            while pos < end:
                state = by_state.get(stack[-1]) or self._state(stack[-1])
                pattern, patterns, skipped, ignore, newline_types, callbacks, blank, blank_chars = state
                if blank is not None and source[pos] in blank_chars:  # the blank Lark would skip, at once
                    start, pos = pos, blank.match(source, pos, end).end()
                    newlines = source.count("\n", start, pos)
                    if newlines:
                        line += newlines
                        line_start = source.rindex("\n", start, pos) + 1
                    if pos == end:
                        break
                if pattern is not None:
                    match = pattern.match(source, pos, end)
                else:  # pragma: no cover - over 100 terminals in a state: Lark splits its regex
                    match = next(filter(None, (p.match(source, pos, end) for p in patterns)), None)
                if match is None:
                    refused = True
                    break
                kind, start, pos = match.lastgroup, pos, match.end()
                column, token_line = start - line_start + 1, line
                if kind in newline_types:
                    newlines = source.count("\n", start, pos)
                    if newlines:
                        line += newlines
                        line_start = source.rindex("\n", start, pos) + 1
                if kind in skipped:
                    continue
                value = match.group(0)
                token = make(token_class, value)  # Token(kind, value, ...) without its two calls
                token.type, token.start_pos, token.value, token.line, token.column = (
                    kind,
                    start,
                    value,
                    token_line,
                    column,
                )
                token.end_line, token.end_column, token.end_pos = line, pos - line_start + 1, pos
                if kind in callbacks:
                    token = callbacks[kind](token)
                if kind in ignore:
                    continue
                last = token
                yield token
        finally:
            counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
            counter.column = pos - line_start + 1
            lexer_state.last_token = last
        if refused:  # Lark reports the character (and, from the root lexer, a token it could start)
            yield from super().lex(lexer_state, parser_state)


def _blank(lexer: Any, skipped: frozenset) -> tuple[Any, frozenset]:
    """The whitespace terminal of a state, when the loop may skip it without the state's regex:
    it is the one terminal the state ignores unseen, and no other terminal of the state can start
    with a character it starts with (so at such a character Lark's regex matches it, and only it).
    Else (None, ∅): every blank goes through the state's regex, as in Lark."""
    if len(skipped) != 1 or lexer.g_regex_flags:
        return None, frozenset()
    blank = lexer.terminals_by_name[next(iter(skipped))]
    chars = _first_chars(blank.pattern.to_regexp())
    if not chars:
        return None, frozenset()
    for terminal in lexer.terminals:
        first = _first_chars(terminal.pattern.to_regexp())
        if terminal is not blank and (first is None or not first.isdisjoint(chars)):
            return None, frozenset()
    return re.compile(blank.pattern.to_regexp()), chars


@functools.cache
def _first_chars(regex: str) -> Optional[frozenset]:
    """The characters a match of ``regex`` can start with, or None when this cannot tell
    (a negated or very wide class, a category such as ``\\s``, a flag, an unknown construct)."""
    try:
        found = _first(list(sre_parse.parse(regex)))
    except Exception:  # pragma: no cover - not a regex this reads
        return None
    return None if found is None else frozenset(found)


def _first(items: list) -> Optional[set]:
    if not items:
        return set()
    (op, arg), rest = items[0], items[1:]
    if op is sre_parse.LITERAL:
        return {chr(arg)}
    if op is sre_parse.IN:
        chars: set = set()
        for kind, value in arg:
            if kind is sre_parse.LITERAL:
                chars.add(chr(value))
            elif kind is sre_parse.RANGE and value[1] - value[0] < 4096:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return chars
    if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
        low, _, body = arg
        first = _first(list(body) + rest)
        if low == 0 and first is not None:
            after = _first(rest)
            return None if after is None else first | after
        return first
    if op is sre_parse.SUBPATTERN and not arg[1] and not arg[2]:  # a group without flags
        return _first(list(arg[-1]) + rest)
    if op is sre_parse.BRANCH:
        branches = [_first(list(branch) + rest) for branch in arg[1]]
        known = [b for b in branches if b is not None]
        return None if len(known) < len(branches) else set().union(*known)
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT, sre_parse.AT):  # zero-width: a wider answer
        return _first(rest)
    return None


class FastParser(LarkParser):
    """Lark's LALR loop with its per-token step (``ParserState.feed_token``) written out, and each
    rule's size, callback and left side looked up once (:func:`_rule`). The end of input, and any token the table
    refuses, go through Lark's own ``feed_token``: Lark raises the error, from the same state."""

    def parse_from_state(self, state: Any, last_token: Optional[Token] = None) -> Any:
        table, callbacks = state.parse_conf.states, state.parse_conf.callbacks
        states, values = state.state_stack, state.value_stack
        rules: dict[int, tuple[int, Any, str]] = {}
        try:
            token = last_token
            for token in state.lexer.lex(state):
                kind = token.type
                while True:
                    action, arg = table[states[-1]].get(kind, _REFUSED)
                    if action is Shift:
                        states.append(arg)
                        values.append(token if kind not in callbacks else callbacks[kind](token))
                        break
                    if action is None:
                        state.feed_token(token)  # raises UnexpectedToken
                    rule = rules.get(id(arg))
                    if rule is None:
                        rule = rules[id(arg)] = _rule(arg, callbacks[arg])
                    size, callback, origin = rule
                    if callback is None:  # `?rule: one_symbol`: the child stands for the rule
                        del states[-1]
                        states.append(table[states[-1]][origin][1])
                        continue
                    if size:
                        children = values[-size:]
                        del states[-size:]
                        del values[-size:]
                    else:
                        children = []
                    value = callback(children)
                    states.append(table[states[-1]][origin][1])
                    values.append(value)
            end = Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)
            return state.feed_token(end, True)
        except UnexpectedInput as exc:  # as Lark's loop: the error can resume or list what fits
            exc.interactive_parser = InteractiveParser(self, state, state.lexer)
            raise exc


_REFUSED = (None, None)


def _rule(rule: Any, callback: Any) -> tuple[int, Any, str]:
    """What a reduction by ``rule`` needs: its size, its callback (None when the callback is
    Lark's ExpandSingleChild over one symbol, which returns that child), and its left side as a
    plain str (Lark's is a Token, whose Python ``__eq__`` each table lookup would call)."""
    size = len(rule.expansion)
    if size == 1 and type(callback) is ExpandSingleChild:
        callback = None
    return size, callback, str(rule.origin.name)


class FastLALR(LALR_Parser):
    """Lark's LALR parser, running :class:`FastParser`."""

    def __init__(self, parser_conf: Any, debug: bool = False, strict: bool = False):
        super().__init__(parser_conf, debug=debug, strict=strict)
        self.parser = FastParser(self._parse_table, parser_conf.callbacks, debug)


#: ``Lark(..., _plugins=PLUGINS)`` runs the loops of this module
PLUGINS: dict[str, type] = (
    {"ContextualLexer": FastContextualLexer, "LALR_Parser": FastLALR} if _TEXT_SLICE is not None else {}
)
