"""``procdsl fmt``: canonical, idempotent, comments kept, and the same plan before and after."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CURRICULA

from procdsl.compiler import compile_text
from procdsl.lang.fmt import format_text

FILES = sorted(CURRICULA.rglob("*.curr")) + sorted((Path(__file__).parent / "golden").glob("*.curr"))
PARSEABLE = [f for f in FILES if "syntax_error" not in f.name]


@pytest.mark.parametrize("path", PARSEABLE, ids=lambda p: p.name)
def test_format_is_idempotent_and_keeps_every_comment(path):
    text = path.read_text()
    once = format_text(text, str(path))
    assert format_text(once, str(path)) == once
    comments = lambda t: sorted(m.group(0).rstrip() for m in re.finditer(r"#[^\n]*", t))  # noqa: E731
    assert comments(once) == comments(text)


@pytest.mark.parametrize("path", PARSEABLE, ids=lambda p: p.name)
def test_format_round_trips_to_the_same_plan(path):
    text = path.read_text()
    before = compile_text(text, str(path))
    after = compile_text(format_text(text, str(path)), str(path))
    assert [p.hash for p in before.plans] == [p.hash for p in after.plans]
    assert [d.code for d in before.diagnostics] == [d.code for d in after.diagnostics]


def test_shipped_curricula_are_formatted():
    for path in CURRICULA.rglob("*.curr"):
        assert format_text(path.read_text(), str(path)) == path.read_text(), f"run: procdsl fmt {path}"


def test_comment_inside_an_expression_moves_above_its_statement():
    text = "curriculum c {\n  mix_note = 1\n  model = gpt2(layers=2, # two\n    heads=2)\n}\n"
    out = format_text(text, "c.curr")
    # the moved comment separates `model` from `mix_note`, as it will on the next run (idempotent)
    assert out.splitlines()[2:4] == ["  # two", "  model = gpt2(layers=2, heads=2)"]
    assert format_text(out, "c.curr") == out
