"""Rows never cut an example: every target token belongs to a unit that lies whole in its row.

Checked with the independent checkers (:mod:`procdsl.checkers`): a procedural unit of a row must
be a complete, valid example of its source — inputs included — with the generator's targets.
Over every procedural rule in both layouts, and over every phase of every shipped curriculum
whose data is available offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from procdsl.checkers import check_example
from procdsl.compiler import compile_file, compile_text
from procdsl.data import DataError, validate
from procdsl.stream import PhaseStream

REPO = Path(__file__).resolve().parents[1]

RULES = {
    "identity": "identity(length=8..24, vocab=20)",
    "reverse": "reverse(length=8..24, vocab=20)",
    "sort": "sort(length=8..24, vocab=20)",
    "set": "set(length=16, vocab=20)",
    "union": "union(length=16, vocab=20)",
    "delete": "delete(length=16, vocab=20)",
    "stack": "stack(length=16, vocab=20)",
    "dyck": "dyck(k=4, length=8..40)",
    "shuffle_dyck": "shuffle_dyck(k=4, length=40)",
    "eca": "eca(rule=110, width=8, steps=3)",
    "ww": "ww(length=4..12, vocab=10)",
    "haystack": "haystack(pairs=1..6, vocab=32)",
    "addition": "addition(digits=5)",
    "reversed_addition": "reversed_addition(digits=10)",
    "multiplication": "multiplication(digits=3)",
    "sorting": "sorting(length=10, vocab=100)",
}


def units_of(batch):
    """``(row, start, stop)`` of every unit of a batch's rows (padding excluded)."""
    for r in range(len(batch.tokens)):
        starts = np.flatnonzero(batch.starts[r])
        end = int((~batch.padding[r]).sum())
        for a, b in zip(starts, list(starts[1:]) + [end]):
            yield r, int(a), int(b)


def assert_whole_units(stream, steps: int) -> int:
    """Check ``steps`` batches of ``stream``; returns the number of procedural units checked."""
    checked = 0
    it = iter(stream)
    for _ in range(steps):
        batch = next(it)
        assert not batch.targets[batch.padding].any()
        covered = np.zeros_like(batch.targets)
        for r, a, b in units_of(batch):
            covered[r, a:b] = True
            k = int(batch.source[r, a])
            assert (batch.source[r, a:b] == k).all(), "a unit mixes sources"
            assert (batch.document[r, a:b] == batch.document[r, a]).all()
            assert (batch.positions[r, a:b] == np.arange(b - a)).all()
            name = stream.sources[k]
            source = stream.plan.sources[name]
            if source.procedural:
                tokens = batch.tokens[r, a:b] - stream.vocab.offset(name)
                mask = batch.targets[r, a:b]
                problems = check_example(source, tokens.tolist(), mask.tolist(), stream.phase.context)
                if (stream.phase.loss or source.default_loss) == "full":
                    # every token but the first is a target: the generator's mask does not apply
                    assert mask[1:].all() and not mask[0]
                    problems = [p for p in problems if not p.startswith("loss mask")]
                assert problems == [], (name, problems, tokens.tolist())
                checked += 1
        assert not batch.targets[~covered].any(), "a target outside every unit"
    return checked


@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_lays_out_whole_examples(rule, layout):
    text = f"""curriculum r {{
  model = gpt2(layers=1, heads=1, dim=8)
  context = 96
  batch = 8
  source code = python_code()
  source s = {RULES[rule]}
  phase p {{ steps = 4  layout = {layout}  mix = {{ s: 60%, code: 40% }} }}
}}"""
    result = compile_text(text, "r.curr")
    assert result.plan is not None, [str(d) for d in result.diagnostics]
    assert result.plan.phases[0].layout == layout
    assert assert_whole_units(PhaseStream(result.plan, "p"), 4) > 0


def offline(plan, phase) -> bool:
    for name in [*phase.mix, *(e.source for e in phase.eval)]:
        source = plan.sources[name]
        if not source.procedural:
            try:
                validate(source)
            except (DataError, OSError, ValueError):
                return False
    return True


CURRICULA = sorted((REPO / "curricula").rglob("*.curr"))


@pytest.mark.parametrize("path", CURRICULA, ids=lambda p: str(p.relative_to(REPO / "curricula")))
def test_every_shipped_curriculum_keeps_examples_whole(path):
    result = compile_file(str(path))
    if result.is_library:
        pytest.skip(f"{path.name} is a library: no phases")
    assert result.plan is not None
    plan = result.plan
    ran = 0
    for phase in plan.phases:
        if not offline(plan, phase):
            continue
        # one row per rank of a world as large as the batch: the layout is still global
        stream = PhaseStream(plan, phase.name, rank=0, world=phase.batch)
        assert_whole_units(stream, 2)
        ran += 1
    if ran == 0:
        pytest.skip(f"{path.name}: every phase reads data that is not available offline")


def test_an_eval_source_that_does_not_fit_a_row_is_e308_at_check_time():
    result = compile_text(
        """curriculum e {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 32
  batch = 2
  source s = sort(length=8, vocab=10)
  source long = sort(length=40, vocab=10)
  phase p { steps = 4  mix = { s: 100% }  eval every 2 steps { accuracy(long, batches=1) } }
}""",
        "e.curr",
    )
    codes = [(d.code, d.span.line) for d in result.diagnostics]
    assert ("E308", 7) in codes, codes
