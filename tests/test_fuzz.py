"""Bad input never gives a traceback: random and mutated .curr text always ends in a plan or
in diagnostics whose line and column lie inside the file (or the import that failed)."""

from __future__ import annotations

import pytest
from conftest import CURRICULA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procdsl.compiler import compile_text

SEEDS = [p.read_text() for p in sorted(CURRICULA.rglob("*.curr"))]
TOKENS = [
    "curriculum",
    "phase",
    "source",
    "rule",
    "let",
    "import",
    "eval",
    "every",
    "runtime",
    "sweep",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "=",
    ":",
    ",",
    ";",
    ">>",
    "..",
    "%",
    "#",
    '"',
    "\n",
    " ",
    "steps",
    "tokens",
    "rest",
    "mix",
    "ramp",
    "task",
    "dyck",
    "sort",
    "0",
    "-1",
    "5e-4",
    "100K",
    "60%",
    "1..9",
    "x",
    "gpt2",
    "transfer",
    "keep",
    "attn",
    "continue",
    "\\",
    "\t",
    "é",
    "\x00",
]


def _assert_well_formed(text: str) -> None:
    result = compile_text(text, "fuzz.curr")
    lines = text.split("\n")
    for d in result.diagnostics:
        assert d.code[0] in "EW" and d.message
        if d.span.file == "fuzz.curr":
            assert 1 <= d.span.line <= max(1, len(lines)), d
            assert 1 <= d.span.column, d
            assert (d.span.end_line, d.span.end_column) >= (d.span.line, d.span.column), d
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert not (errors and result.plans), errors  # never a plan beside an error
    assert errors or result.plans or result.is_library  # else a plan, or a library


@st.composite
def mutated(draw):
    base = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "swap"]))
        if not base:
            break
        i = draw(st.integers(0, len(base) - 1))
        j = min(len(base), i + draw(st.integers(1, 12)))
        piece = draw(st.sampled_from(TOKENS))
        if op == "delete":
            base = base[:i] + base[j:]
        elif op == "insert":
            base = base[:i] + piece + base[i:]
        elif op == "replace":
            base = base[:i] + piece + base[j:]
        else:
            k = draw(st.integers(0, len(base) - 1))
            base = base[:i] + base[k : k + 5] + base[i:]
    return base


token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join)

FUZZ = settings(max_examples=5_000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.slow
@FUZZ
@given(mutated())
def test_mutated_curricula_end_in_plans_or_diagnostics(text):
    _assert_well_formed(text)


@pytest.mark.slow
@FUZZ
@given(st.one_of(token_soup, st.text(max_size=200)))
def test_random_text_ends_in_plans_or_diagnostics(text):
    _assert_well_formed(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(mutated())
def test_quick_fuzz(text):
    _assert_well_formed(text)
