"""The TextMate grammar of editors/vscode agrees with the compiler's lexer on every shipped
curriculum: each comment, string, number (with its scale suffix), percentage, quantity and
keyword Lark finds is coloured as one, and no plain name is coloured as a keyword."""

from __future__ import annotations

import functools
import json
import re

import pytest
from conftest import REPO
from lark import Lark, Token
from textmate import Grammar

from procdsl.lang.parse import grammar_text, parse_text

EDITOR = REPO / "editors" / "vscode"
GRAMMAR = Grammar(json.loads((EDITOR / "syntaxes" / "curr.tmLanguage.json").read_text(encoding="utf-8")))
KEYWORDS = {"IMPORT", "LET", "RULE", "SOURCE", "CURRICULUM", "PHASE", "RUNTIME", "SWEEP", "EVAL", "EVERY"}
#: Lark token type → the scope every one of its characters must carry
SCOPE = {
    "COMMENT": "comment.line.number-sign.curr",
    "STRING": "string.quoted.double.curr",
    "NUMBER": "constant.numeric.curr",
    "PERCENT": "constant.numeric.percentage.curr",
    **{k: "keyword.control.curr" for k in KEYWORDS},
}
SHIPPED = sorted(
    p
    for p in list(REPO.glob("curricula/**/*.curr")) + list(REPO.glob("tests/golden/*.curr"))
    if p.name != "syntax_error.curr"
)


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    """The compiler's grammar, keeping every token: with its contextual lexer, `rule` in
    `eca(rule=30)` is a NAME, as the grammar must colour it."""
    return Lark(grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True)


def tokens(text: str) -> list[Token]:
    tree = _parser().parse(text)
    return list(tree.scan_values(lambda v: isinstance(v, Token))) + parse_text(text, "x.curr")[1]


def scopes_of(scopes, token, start=0, end=None):
    """The scope stacks of a (one-line) token's characters from ``start`` to ``end``."""
    line = scopes[token.line - 1]
    begin = token.column - 1
    return line[begin + start : begin + (len(str(token)) if end is None else end)]


def check(text: str) -> dict[str, int]:
    """Assert the grammar colours ``text`` as Lark lexes it; count what was checked, by kind."""
    scopes = GRAMMAR.scopes(text)
    seen: dict[str, int] = {}
    for t in tokens(text):
        kind = "KEYWORD" if t.type in KEYWORDS else t.type
        if t.type in SCOPE:
            assert all(SCOPE[t.type] in s for s in scopes_of(scopes, t)), (t.type, str(t), t.line, t.column)
        elif t.type == "QUANTITY":
            number = len(str(t).split()[0])
            unit = str(t).split()[-1]
            assert all("constant.numeric.curr" in s for s in scopes_of(scopes, t, 0, number)), str(t)
            assert all(
                "keyword.other.unit.curr" in s for s in scopes_of(scopes, t, len(str(t)) - len(unit))
            ), str(t)
        elif t.type == "NAME":
            assert not any(
                "keyword.control.curr" in s or "comment.line.number-sign.curr" in s
                for s in scopes_of(scopes, t)
            ), (str(t), t.line, t.column)
        if t.type == "STRING":
            for escape in re.finditer(r"\\.", str(t)):
                assert all(
                    "constant.character.escape.curr" in s
                    for s in scopes_of(scopes, t, escape.start(), escape.end())
                ), str(t)
                seen["ESCAPE"] = seen.get("ESCAPE", 0) + 1
        if t.type == "NUMBER" and str(t)[-1] in "KMBT":
            seen["SUFFIX"] = seen.get("SUFFIX", 0) + 1
        seen[kind] = seen.get(kind, 0) + 1
    return seen


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_grammar_colours_every_shipped_curriculum_as_the_lexer_reads_it(path):
    check(path.read_text(encoding="utf-8"))


def test_the_shipped_curricula_exercise_every_kind_of_token():
    seen: dict[str, int] = {}
    for path in SHIPPED:
        for kind, count in check(path.read_text(encoding="utf-8")).items():
            seen[kind] = seen.get(kind, 0) + count
    for kind in ("COMMENT", "STRING", "NUMBER", "PERCENT", "QUANTITY", "KEYWORD", "SUFFIX"):
        assert seen.get(kind, 0) > 0, f"no {kind} in the shipped curricula"


def test_escapes_suffixes_ranges_and_units_on_one_line():
    text = (
        'let s = "say \\"hi\\" \\\\ # not a comment"  # a comment\n'
        "curriculum c { budget = 1.5K tokens  phase p { steps = 5e-4  x = 8..64  share = 10% } }\n"
    )
    seen = check(text)
    assert seen["ESCAPE"] == 3 and seen["COMMENT"] == 1 and seen["QUANTITY"] == 1 and seen["PERCENT"] == 1
    line = GRAMMAR.scopes(text)[1]
    dots = text.splitlines()[1].index("..")
    assert "keyword.operator.curr" in line[dots]


def test_vscode_extension_wires_the_grammar_the_language_and_the_server():
    package = json.loads((EDITOR / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".curr"] and grammar["language"] == language["id"]
    assert (EDITOR / grammar["path"]).is_file() and grammar["scopeName"] == "source.curr"
    config = json.loads((EDITOR / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"
    assert (
        ["{", "}"] in config["brackets"]
        and ["(", ")"] in config["brackets"]
        and ["[", "]"] in config["brackets"]
    )
    assert "procdsl" in (EDITOR / package["main"].removeprefix("./")).read_text(encoding="utf-8")
