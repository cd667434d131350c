"""A small TextMate tokenizer for tests: runs a ``.tmLanguage.json`` grammar's regexes with
Python's ``re`` and gives every character of a text its stack of scope names.

It implements what editors/vscode/syntaxes/curr.tmLanguage.json uses — ``match`` with
``captures``, ``begin``/``end`` with their captures and inner ``patterns``, ``include`` of
``#repository`` rules and ``$self`` — with TextMate's rules: the earliest match wins, a tie goes
to the end pattern, then to the pattern listed first.

>>> g = Grammar({"scopeName": "s", "patterns": [{"match": "[0-9]+", "name": "num"}], "repository": {}})
>>> [s[-1] for s in g.scopes("a 12")[0]]
['s', 's', 'num', 'num']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional


@dataclass
class _Open:
    rule: dict
    end: re.Pattern
    scopes: tuple[str, ...]


class Grammar:
    def __init__(self, data: dict):
        self.data, self.repository = data, data.get("repository", {})
        self._compiled: dict[str, re.Pattern] = {}

    def _re(self, pattern: str) -> re.Pattern:
        if pattern not in self._compiled:
            self._compiled[pattern] = re.compile(pattern)
        return self._compiled[pattern]

    def _expand(self, patterns: list[dict]) -> list[dict]:
        out = []
        for p in patterns:
            if "include" in p:
                target = self.data if p["include"] == "$self" else self.repository[p["include"].lstrip("#")]
                out += (
                    self._expand(target["patterns"])
                    if "match" not in target and "begin" not in target
                    else [target]
                )
            else:
                out.append(p)
        return out

    def scopes(self, text: str) -> list[list[tuple[str, ...]]]:
        """Per line, per character: the scope names from the outermost in."""
        stack: list[_Open] = []
        base = (self.data["scopeName"],)
        out = []
        for line in text.split("\n"):
            chars: list[tuple[str, ...]] = [base] * len(line)
            pos = 0
            while pos <= len(line):
                top = stack[-1] if stack else None
                current = top.scopes if top else base
                found = self._next(line, pos, top)
                if found is None:
                    chars[pos:] = [current] * (len(line) - pos)
                    break
                rule, m, is_end = found
                chars[pos : m.start()] = [current] * (m.start() - pos)
                if is_end:
                    _paint(chars, m, current, top.rule.get("endCaptures", {}))
                    stack.pop()
                elif "begin" in rule:
                    opened = current + ((rule["name"],) if "name" in rule else ())
                    _paint(chars, m, opened, rule.get("beginCaptures", {}))
                    stack.append(_Open(rule, self._re(rule["end"]), opened))
                else:
                    _paint(
                        chars,
                        m,
                        current + ((rule["name"],) if "name" in rule else ()),
                        rule.get("captures", {}),
                    )
                if m.end() == pos and not is_end and "begin" not in rule:
                    pos += 1  # an empty match must not stall
                else:
                    pos = m.end()
                if is_end and m.end() == len(line) and m.start() == m.end():
                    break
            out.append(chars)
        return out

    def _next(self, line: str, pos: int, top: Optional[_Open]):
        best = None
        if top is not None:
            m = top.end.search(line, pos)
            if m:
                best = (m.start(), 0, (top.rule, m, True))
        patterns = self._expand(top.rule.get("patterns", []) if top else self.data["patterns"])
        for order, rule in enumerate(patterns, 1):
            m = self._re(rule.get("match") or rule["begin"]).search(line, pos)
            if m and (best is None or (m.start(), order) < best[:2]):
                best = (m.start(), order, (rule, m, False))
        return best[2] if best else None


def _paint(chars: list, m: re.Match, scopes: tuple[str, ...], captures: dict) -> None:
    chars[m.start() : m.end()] = [scopes] * (m.end() - m.start())
    for group, capture in captures.items():
        g = int(group)
        if m.group(g) is not None and "name" in capture:
            chars[m.start(g) : m.end(g)] = [scopes + (capture["name"],)] * (m.end(g) - m.start(g))
