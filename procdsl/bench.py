"""Generator throughput: tokens per second on one core, beside a naive per-example reference.

``run_generator_bench()`` times every procedural generator at the paper's settings (vocab 100,
length 64 for the rules; k = 64, length 2048 for the bracket languages, shuffle-Dyck max_depth
16) and the naive reference of ``procdsl.naive_generators`` (per-example random state and
Python loops, as in the paper's public code) on the same sources. Times are CPU time of this
process (``time.process_time``), the best of a few runs, so other processes on the machine
disturb them little. Targets (reported, not asserted): at least 5M tokens/s per generator and
20x the naive reference (shipped in the wheel, so ``procdsl bench`` works from any install).

>>> rows = run_generator_bench(seconds=0.01, cases=CASES[:1])
>>> sorted(rows[0])
['generator', 'naive_tokens_per_s', 'ratio', 'tokens_per_s']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from procdsl.generators import generate
from procdsl.naive_generators import naive_generate
from procdsl.plan.base import Range
from procdsl.plan.sources import (
    AdditionSource,
    DyckSource,
    EcaSource,
    HaystackSource,
    MultiplicationSource,
    ReversedAdditionSource,
    ShuffleDyckSource,
    SortingSource,
    SourceBase,
    TaskSource,
    WwSource,
)

CONTEXT = 2048
TARGET_TOKENS_PER_S = 5e6
TARGET_RATIO = 20.0

CASES = [
    (f"task({rule})", TaskSource(rule=(rule,), length=64, vocab=100))
    for rule in ("identity", "reverse", "sort", "set", "union", "delete", "stack")
] + [
    ("task(set >> sort)", TaskSource(rule=("set", "sort"), length=64, vocab=100)),
    ("dyck(k=64, length=2048)", DyckSource(k=64, length=2048)),
    ("shuffle_dyck(k=64, length=2048, max_depth=16)", ShuffleDyckSource(k=64, length=2048, max_depth=16)),
    ("eca(rule=110, width=64, length=2048)", EcaSource(rule=110, width=64, length=2048)),
    ("ww(length=64, vocab=100)", WwSource(length=64, vocab=100)),
    ("haystack(pairs=1..30, vocab=256)", HaystackSource(pairs=Range(low=1, high=30), vocab=256)),
    ("addition(digits=5)", AdditionSource(digits=5)),
    ("reversed_addition(digits=10)", ReversedAdditionSource(digits=10)),
    ("multiplication(digits=5)", MultiplicationSource(digits=5)),
    ("sorting(length=10, vocab=100)", SortingSource(length=10, vocab=100)),
]


def _rate(run: Callable[[int], int], seconds: float, repeats: int = 3) -> float:
    """Tokens per CPU second: grow the count until a run takes ``seconds``, then best of repeats."""
    count = 1
    while True:
        start = time.process_time()
        tokens = run(count)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
        count = count * 2 if elapsed < seconds / 8 else int(count * 1.2 * seconds / max(elapsed, 1e-9)) + 1
    best = elapsed
    for _ in range(repeats - 1):
        start = time.process_time()
        run(count)
        best = min(best, time.process_time() - start)
    return tokens / best


def _tokens(source: SourceBase, count: int) -> int:
    return len(generate(source, seed=0, name="bench", start=0, count=count, context=CONTEXT).tokens)


def _naive_tokens(source: SourceBase, count: int) -> int:
    return sum(len(t) for t, _ in naive_generate(source, 0, 0, count, CONTEXT))


def run_generator_bench(seconds: float = 0.3, cases=CASES) -> list[dict]:
    """One row per generator: ``generator, tokens_per_s, naive_tokens_per_s, ratio``."""
    rows = []
    for label, source in cases:
        ours = _rate(partial(_tokens, source), seconds)
        theirs = _rate(partial(_naive_tokens, source), seconds / 2, repeats=1)
        rows.append(
            {"generator": label, "tokens_per_s": ours, "naive_tokens_per_s": theirs, "ratio": ours / theirs}
        )
    return rows


def run_benches(quick: bool = False) -> dict[str, list[dict]]:
    """``procdsl bench``: the generators' rows and the data pipeline's
    (:mod:`procdsl.stream.bench`); ``quick``: shorter measurements, noisier."""
    from procdsl.stream.bench import run_pipeline_bench

    return {
        "generators": run_generator_bench(seconds=0.1 if quick else 0.3),
        "pipeline": run_pipeline_bench(batches=100 if quick else 1000),
    }


def format_benches(result: dict[str, list[dict]]) -> str:
    """:func:`run_benches`' result as two plain-text tables."""
    from procdsl.stream.bench import format_table as format_pipeline

    return format_table(result["generators"]) + "\n\n" + format_pipeline(result["pipeline"])


def format_table(rows: list[dict]) -> str:
    """The bench rows as a plain-text table, flagging rows below the targets."""
    lines = [f"{'generator':48s} {'tokens/s':>10s} {'naive':>10s} {'ratio':>8s}"]
    for row in rows:
        naive = "-" if row["naive_tokens_per_s"] is None else f"{row['naive_tokens_per_s'] / 1e6:8.2f}M"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:7.1f}x"
        flag = ""
        if row["tokens_per_s"] < TARGET_TOKENS_PER_S or (row["ratio"] or TARGET_RATIO) < TARGET_RATIO:
            flag = "  (below target)"
        lines.append(
            f"{row['generator']:48s} {row['tokens_per_s'] / 1e6:9.1f}M {naive:>10s} {ratio:>8s}{flag}"
        )
    return "\n".join(lines)
