"""procdsl's probes against the paper's own task files, side by side.

``tests/fixtures/paper_probes/paper_probes.json`` holds examples and statistics produced by running
the paper's ``downstream/algorithmic_tasks/task_*.py`` (unmodified, in a throwaway venv; see
``make_fixture.py`` there). Here:

* every paper example passes procdsl's independent checker (the formats are the same), and so
  does every procdsl example;
* per sequence position, procdsl's token distribution and the paper's are the same (a two-sample
  chi-square test per position, over 20,000 examples each), and so are the haystack's number of
  pairs, queried pair and answer — and a source that differs a little is caught;
* each probe curriculum trains with its task file's protocol (model, batch, steps, lr schedule,
  weight decay, sequence length, 4,000 held-out examples).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from procdsl.checkers import check_example
from procdsl.compiler import compile_file
from procdsl.generators import generate
from procdsl.plan.base import Range
from procdsl.plan.sources import AdditionSource, HaystackSource, MultiplicationSource, ReversedAdditionSource

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "paper_probes" / "paper_probes.json").read_text())
TASKS = FIXTURE["tasks"]

SOURCES = {
    "condattendstream_30": HaystackSource(pairs=Range(low=1, high=30), vocab=256),
    "forwardaddition_5": AdditionSource(digits=5),
    "additionstream_10": ReversedAdditionSource(digits=10),
    "multiplication_5": MultiplicationSource(digits=5),
}
#: task -> probe curriculum, its probe source, its eval source
CURRICULA = {
    "condattendstream_30": ("haystack", "haystack", "haystack_test"),
    "forwardaddition_5": ("addition", "addition", "addition_test"),
    "additionstream_10": ("reversed_addition", "reversed", "reversed_test"),
    "multiplication_5": ("multiplication", "multiply", "multiply_test"),
}
#: the task files' eval period (``eval_steps``) and learning rate (experiment_stream.py's, for a transformer)
EVAL_STEPS = {
    "condattendstream_30": 50,
    "forwardaddition_5": 40,
    "additionstream_10": 50,
    "multiplication_5": 40,
}
LEARNING_RATE = 1e-3


def _ours(task: str, count: int = None) -> list[list[int]]:
    n = count or FIXTURE["tasks"][task]["sample"]
    ex = generate(SOURCES[task], seed=0, name=task, start=0, count=n, context=4096)
    return [ex[j][0].tolist() for j in range(len(ex))], ex


def _paper_mask(task: str, tokens: list[int]) -> list[bool]:
    """Targets as the task file scores them: the token after one whose id passes its threshold."""
    settings = TASKS[task]["settings"]
    threshold = 30 + settings["vocab_size"] // 2 if task.startswith("condattend") else 20
    return [j > 0 and tokens[j - 1] >= threshold for j in range(len(tokens))]


def _same_distribution(ours: Counter, theirs: dict) -> bool:
    """Two-sample chi-square test of homogeneity, at a level far below 1e-6 (no flakes)."""
    theirs = Counter({int(k): v for k, v in theirs.items()})
    cells = sorted(set(ours) | set(theirs))
    a = np.array([ours[c] for c in cells], float)
    b = np.array([theirs[c] for c in cells], float)
    a, b = a * (b.sum() / a.sum()), b  # (equal totals here; scale if not)
    stat = ((a - b) ** 2 / (a + b)).sum()
    df = max(len(cells) - 1, 1)
    return stat < df + 7 * np.sqrt(2 * df) + 10


def _positions(examples: list[list[int]]) -> dict[int, Counter]:
    out: dict[int, Counter] = {}
    for ex in examples:
        for p, t in enumerate(ex):
            out.setdefault(p, Counter())[t] += 1
    return out


@pytest.mark.parametrize("task", sorted(TASKS))
def test_paper_examples_pass_our_checker(task):
    source = SOURCES[task]
    for tokens in TASKS[task]["examples"]:
        assert check_example(source, tokens, _paper_mask(task, tokens), context=len(tokens)) == []


@pytest.mark.parametrize("task", sorted(TASKS))
def test_our_examples_have_the_papers_format(task):
    examples, ex = _ours(task, 2000)
    lengths = {len(t) for t in examples} | {len(t) for t in TASKS[task]["examples"]}
    assert len(lengths) == 1  # one fixed, padded length
    for j, tokens in enumerate(examples):
        assert ex[j][1].tolist() == _paper_mask(task, tokens)
        assert check_example(SOURCES[task], tokens, ex[j][1], context=len(tokens)) == []
    assert max(max(t) for t in examples) < TASKS[task]["settings"]["vocab_size"]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_token_distribution_per_position_is_the_papers(task):
    ours = _positions(_ours(task)[0])
    theirs = TASKS[task]["positions"]
    assert set(ours) == {int(p) for p in theirs}
    different = [p for p in ours if not _same_distribution(ours[p], theirs[str(p)])]
    assert not different, f"positions whose token distribution differs from the paper's: {different}"


def test_haystack_statistics_are_the_papers():
    task, half, most = "condattendstream_30", 128, 30
    pairs, asked, answers = Counter(), Counter(), Counter()
    for ex in _ours(task)[0]:
        at = next(i for i, t in enumerate(ex) if t >= half + most)
        pairs[at // 2] += 1
        asked[ex[0:at:2].index(ex[at] - most)] += 1
        answers[ex[at + 1]] += 1
    for name, counts in (("pairs", pairs), ("asked", asked), ("answer", answers)):
        assert _same_distribution(counts, TASKS[task][name]), name


@pytest.mark.parametrize(
    "task, near",
    [
        ("condattendstream_30", HaystackSource(pairs=Range(low=2, high=30), vocab=256)),
        ("forwardaddition_5", AdditionSource(digits=Range(low=4, high=5))),
    ],
)
def test_a_slightly_different_source_is_caught(task, near):
    """The comparison can fail: one pair fewer at the low end, or 4-digit operands, is seen."""
    ex = generate(near, seed=0, name=task, start=0, count=TASKS[task]["sample"], context=4096)
    ours = _positions([ex[j][0].tolist() for j in range(len(ex))])
    theirs = TASKS[task]["positions"]
    assert any(not _same_distribution(ours.get(int(p), Counter()), theirs[p]) for p in theirs)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_probe_curricula_follow_the_task_files(task):
    settings = TASKS[task]["settings"]
    name, train, test = CURRICULA[task]
    for path in (
        ROOT / "curricula" / "probes" / f"{name}.curr",
        ROOT / "curricula" / "probes" / "baselines" / f"{name}.curr",
    ):
        result = compile_file(str(path))
        assert result.ok, [d.message for d in result.diagnostics]
        plan = result.plans[0]
        m = plan.model
        assert (m.layers, m.heads, m.dim) == (settings["n_layer"], settings["n_head"], settings["n_embd"])
        assert (m.tie_embeddings, m.dropout) == (False, settings["dropout"])
        probe = plan.phase("probe")
        batch = settings["per_device_train_batch_size"]
        assert probe.batch == batch
        assert probe.steps == settings["train_steps"] * settings["train_size"] // batch
        assert probe.context == len(TASKS[task]["examples"][0])  # one example per sequence
        assert plan.sources[train] == plan.sources[test] == SOURCES[task]
        assert probe.mix == {train: 1.0} and probe.loss == "answer_only"
        opt, schedule = probe.optimizer, probe.schedule
        assert (opt.lr, opt.weight_decay, opt.betas, opt.clip) == (
            LEARNING_RATE,
            settings["weight_decay"],
            (0.9, 0.999),
            1.0,
        )
        assert (schedule.kind, schedule.warmup, schedule.min) == ("cosine", settings["warmup_steps"], 0.0)
        (accuracy,) = probe.eval
        assert (accuracy.kind, accuracy.source, accuracy.every) == ("accuracy", test, EVAL_STEPS[task])
        held_out = accuracy.batches * batch
        assert settings["eval_size"] <= held_out < settings["eval_size"] + batch
