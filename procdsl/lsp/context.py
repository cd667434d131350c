"""Where the cursor is, read from the text before it — which usually does not parse while the user
types, so this is a small scanner of its own rather than the compiler's parser.

It tracks the open blocks (``curriculum``, ``phase``, ``runtime``, ``eval``), maps, lists and
calls, and says what may be written at the cursor: a key of a block, the value of a setting, a
key or value of a map, an argument of a call.

>>> cursor_context("curriculum c {\\n  phase p {\\n    steps = 5\\n    ")
Context(kind='key', block='phase', key=None, owner=None, index=0, given=('steps',), prefix='')
>>> cursor_context("curriculum c { source d = dyck(k=4, p_")
Context(kind='arg', block='curriculum', key=None, owner='dyck', index=1, given=('k',), prefix='p_')
>>> cursor_context("curriculum c { phase p { mix = { d: 50%, ")
Context(kind='map-key', block='phase', key=None, owner='mix', index=0, given=('d',), prefix='')
>>> cursor_context('curriculum c { phase p { schedule = cos').kind, cursor_context('x = "a b').kind
('value', 'none')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

_TOKEN = re.compile(
    r"""(?P<comment>\#[^\n]*)
  |(?P<string>"(?:\\.|[^"\\\n])*("|$))
  |(?P<number>-?[0-9][0-9]*(\.[0-9]+)?([eE][-+]?[0-9]+)?[KMBT%]?)
  |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
  |(?P<punct>\.\.|>>|[{}()\[\]=:,;.])
  |(?P<space>\s+)
  |(?P<other>.)""",
    re.VERBOSE,
)
_DEFINERS = {"source", "let", "rule"}
_BLOCKS = {"curriculum", "phase", "runtime", "sweep"}


@dataclass
class Context:
    """What the cursor may complete. ``kind``: top, key, value, map-key, map-value, list, arg,
    kwarg-value, eval or none. ``block``: the enclosing block; ``key``: the setting, map key,
    keyword argument or definition kind (``source``) whose value is written; ``owner``: the key
    owning a map or list, or the name of a call; ``given``: keys/arguments already written."""

    kind: str
    block: str = "top"
    key: Optional[str] = None
    owner: Optional[str] = None
    index: int = 0
    given: tuple[str, ...] = ()
    prefix: str = ""


@dataclass
class _Frame:
    kind: str  # top | curriculum | phase | runtime | sweep | eval | map | list | call | paren
    owner: Optional[str] = None  # the key owning a map/list, the name of a call
    key: Optional[str] = None  # the setting/map key/keyword argument being written
    expect: str = "key"  # key | value | done
    index: int = 0  # argument index of a call
    given: list[str] = field(default_factory=list)


def cursor_context(before: str) -> Context:
    """The context at the end of ``before`` (the text of the file up to the cursor)."""
    prefix = re.search(r"[A-Za-z_][A-Za-z0-9_]*\Z", before)
    word = prefix.group(0) if prefix else ""
    # every alternative of _TOKEN is a named group, so lastgroup is never None
    tokens = [
        (m.lastgroup or "other", m.group(0)) for m in _TOKEN.finditer(before[: len(before) - len(word)])
    ]
    if tokens and (tokens[-1][0] == "comment" or (tokens[-1][0] == "string" and not _closed(tokens[-1][1]))):
        return Context("none", prefix=word)
    stack = [_Frame("top")]
    significant = [(k, t) for k, t in tokens if k not in ("space", "comment")]
    for i, (kind, text) in enumerate(significant):
        _feed(stack, significant, i, kind, text, tokens)
    return _context(stack, significant, word)


def _closed(string: str) -> bool:
    return len(string) >= 2 and string.endswith('"') and not string.endswith('\\"')


def _block(stack: list[_Frame]) -> _Frame:
    return next(f for f in reversed(stack) if f.kind in _BLOCKS | {"top", "eval"})


def _feed(stack: list[_Frame], toks: list[tuple[str, str]], i: int, kind: str, text: str, raw) -> None:
    frame = stack[-1]
    prev = toks[i - 1][1] if i else ""
    if text == "{":
        stack.append(_open_brace(stack, toks, i))
    elif text == "(":
        stack.append(_Frame("call", owner=prev) if i and toks[i - 1][0] == "name" else _Frame("paren"))
    elif text == "[":
        stack.append(_Frame("list", owner=frame.key))
    elif text in "})]" and len(stack) > 1:
        stack.pop()
        stack[-1].expect = "done" if stack[-1].kind not in ("map", "call", "list") else stack[-1].expect
    elif text == "=":
        if frame.kind == "call":
            frame.key = prev
            frame.given.append(prev)
        else:
            frame.key, frame.expect = prev, "value"
            if i >= 2 and toks[i - 2][1] in _DEFINERS:
                frame.key = toks[i - 2][1]
            elif prev not in frame.given:
                frame.given.append(prev)
    elif text == ":" and frame.kind == "map":
        frame.key, frame.expect = prev, "value"
        frame.given.append(prev)
    elif text == ",":
        if frame.kind == "map":
            frame.key, frame.expect = None, "key"
        elif frame.kind == "call":
            frame.index, frame.key = frame.index + 1, None
    elif frame.kind in _BLOCKS | {"top", "eval"} and text in (">>", ".."):
        frame.expect = "value"  # the value goes on: `set >> sort`, `8..64`
    elif frame.kind in _BLOCKS | {"top", "eval"} and frame.expect == "value":
        frame.expect = "done"


def _open_brace(stack: list[_Frame], toks: list[tuple[str, str]], i: int) -> _Frame:
    """A block (after ``curriculum NAME``, ``phase NAME``, ``runtime``, ``sweep``, ``eval every …``)
    or a map (owned by the key it is the value of)."""
    frame = stack[-1]
    words = [t for _, t in toks[max(0, i - 2) : i]]
    if words[-1:] in (["runtime"], ["sweep"]) and frame.expect != "value":
        return _Frame(words[-1])
    if len(words) == 2 and words[0] in ("curriculum", "phase"):
        return _Frame(words[0])
    if frame.kind == "phase" and frame.expect != "value" and _statement_starts_with(toks, i, "eval"):
        return _Frame("eval")
    # a map inside a call (`ramp({…}, {…})`) belongs to the setting the call is the value of
    owner = next((f.key for f in reversed(stack) if f.kind not in ("call", "paren")), None)
    return _Frame("map", owner=owner)


def _statement_starts_with(toks: list[tuple[str, str]], i: int, word: str) -> bool:
    for j in range(i - 1, -1, -1):
        if toks[j][1] == word:
            return True
        if toks[j][1] in ("{", "}", "="):
            return False
    return False


def _context(stack: list[_Frame], toks: list[tuple[str, str]], word: str) -> Context:
    frame, block = stack[-1], _block(stack).kind
    last = toks[-1][1] if toks else ""
    if last in _DEFINERS | {"curriculum", "phase", "import"}:
        return Context("none", block, prefix=word)  # naming something new
    if frame.kind == "map":
        if frame.expect == "key":
            return Context("map-key", block, owner=frame.owner, given=tuple(frame.given), prefix=word)
        return Context("map-value", block, key=frame.key, owner=frame.owner, prefix=word)
    if frame.kind == "list":
        return Context("list", block, owner=frame.owner, prefix=word)
    if frame.kind == "call":
        if frame.key is not None and last == "=":
            return Context("kwarg-value", block, key=frame.key, owner=frame.owner, prefix=word)
        if last in ("(", ","):
            return Context(
                "arg", block, owner=frame.owner, index=frame.index, given=tuple(frame.given), prefix=word
            )
        return Context("none", block, prefix=word)
    if frame.kind == "paren":
        return Context("none", block, prefix=word)
    if frame.kind == "eval":
        return Context("eval", block, prefix=word)
    if frame.expect == "value" and last in ("=", ">>"):
        return Context("value", block, key=frame.key, prefix=word)
    if frame.expect == "value":
        return Context("none", block, prefix=word)
    return Context("key" if block != "top" else "top", block, given=tuple(frame.given), prefix=word)
