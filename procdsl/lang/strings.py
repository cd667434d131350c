"""String literals: the escape set, read by the lexer and written by ``procdsl fmt``.

A string is ``"…"`` on one line. Its escapes are exactly ``\\"`` ``\\\\`` ``\\n`` ``\\t`` ``\\r`` and
``\\u{HEX}`` (1–6 hex digits naming any Unicode scalar value); any other backslash sequence is an
error (E006), so ``"C:\\data"`` is refused instead of silently becoming ``C:data``. Every other
character stands for itself, control characters included. :func:`quote` writes the shortest
form that reads back to the same value, escaping what a terminal or an editor would not show
(``str.isprintable`` is false), so ``fmt`` never changes a string's meaning:

>>> value = unquote(r'"C:\\\\data\\t\\u{1F600} é"')
>>> value
'C:\\\\data\\t😀 é'
>>> quote(value), quote("bell\\x07 nul\\x00")
('"C:\\\\\\\\data\\\\t😀 é"', '"bell\\\\u{7} nul\\\\u{0}"')
>>> all(unquote(quote(chr(c))) == chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000)
True
>>> unquote(r'"C:\\data"')
Traceback (most recent call last):
  ...
procdsl.lang.strings.EscapeError: unknown escape `\\d` in a string
"""

from __future__ import annotations

import re
from typing import Optional

#: escape letter -> the character it stands for (``\\u{…}`` is handled apart)
ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_SHORT = {v: "\\" + k for k, v in ESCAPES.items()}
_ESCAPE = re.compile(r"\\(u\{([0-9A-Fa-f]{1,6})\}|.?)", re.DOTALL)


class EscapeError(ValueError):
    """A bad escape; ``offset`` and ``width`` locate it within the quoted token."""

    def __init__(self, message: str, offset: int, width: int, help: Optional[str] = None):
        super().__init__(message)
        self.message, self.offset, self.width, self.help = message, offset, width, help


def unquote(token: str) -> str:
    """The value of a STRING token (quotes included), or :class:`EscapeError`."""
    body, out, last = token[1:-1], [], 0
    for match in _ESCAPE.finditer(body):
        out.append(body[last : match.start()])
        last = match.end()
        letter, digits = match.group(1), match.group(2)
        offset, width = match.start() + 1, len(match.group(0))
        if digits is not None:
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise EscapeError(
                    f"`\\u{{{digits}}}` is not a Unicode character",
                    offset,
                    width,
                    help="use a code point up to 10FFFF outside D800–DFFF",
                )
            out.append(chr(code))
        elif letter in ESCAPES:
            out.append(ESCAPES[letter])
        else:
            shown = letter if letter.isprintable() else f"U+{ord(letter):04X}" if letter else ""
            help_ = (
                'write `\\\\` for a backslash (`"C:\\\\data"`)'
                if letter != "u"
                else "write a code point as `\\u{HEX}`, e.g. `\\u{e9}`"
            )
            raise EscapeError(
                f"unknown escape `\\{shown}` in a string",
                offset,
                max(1, width),
                help=f'{help_}; escapes are \\" \\\\ \\n \\t \\r \\u{{HEX}}',
            )
    out.append(body[last:])
    return "".join(out)


def quote(value: str) -> str:
    """The canonical literal of ``value``: ``unquote(quote(v)) == v`` for every string."""
    out = ['"']
    for ch in value:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    out.append('"')
    return "".join(out)


__all__ = ["ESCAPES", "EscapeError", "quote", "unquote"]
