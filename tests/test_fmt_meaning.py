"""``fmt`` preserves meaning: over the fuzz corpus (shipped curricula mutated, plus comments and
strings of every character), whatever parses formats to text that compiles to the same plans
and the same diagnostic codes, and formatting the result changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import SEEDS, mutated

from procdsl.compiler import compile_text
from procdsl.lang.fmt import format_text
from procdsl.lang.parse import SyntaxDiagnostic
from procdsl.lang.strings import quote

#: what hostile text puts where fmt must be careful: comments inside calls and maps, control
#: characters and backslashes inside strings
PIECES = [
    " # note\n",
    "  # c\n    ",
    "\n\n",
    '"\\t\\r\\u{1b}"',
    '"a\tb\x0bc\x1b"',
    '"\\\\"',
    '"\\""',
    '"é😀"',
    ",\n",
]


@st.composite
def hostile(draw):
    text = draw(st.one_of(mutated(), st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(PIECES)) + text[i:]
    return text


def _meaning(text: str):
    result = compile_text(text, "m.curr")
    return [p.hash for p in result.plans], sorted(d.code for d in result.diagnostics)


def _assert_fmt_keeps_meaning(text: str) -> None:
    try:
        once = format_text(text, "m.curr")
    except SyntaxDiagnostic:
        return  # fmt refuses what does not parse; nothing to preserve
    assert format_text(once, "m.curr") == once
    assert _meaning(once) == _meaning(text)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(hostile())
def test_fmt_keeps_meaning_and_is_idempotent(text):
    _assert_fmt_keeps_meaning(text)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(hostile())
def test_fmt_keeps_meaning_and_is_idempotent_long(text):
    _assert_fmt_keeps_meaning(text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text())
def test_every_string_round_trips_through_fmt(value):
    text = f"let s = {quote(value)}\n"
    assert compile_text(format_text(text, "s.curr"), "s.curr").ok
    from procdsl.lang.lower import lower
    from procdsl.lang.parse import parse_text

    module = lower(parse_text(format_text(text, "s.curr"), "s.curr")[0], "s.curr")
    assert module.definitions[0].value.value == value
