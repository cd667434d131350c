"""Pipeline throughput: packed batches per CPU second, beside the raw generator, and memory.

``run_pipeline_bench()`` streams whole phases that mix ``python_code()`` (the bytes tokenizer)
with procedural ``sort(length=64, vocab=100)`` — 50/50, 99.8/0.2 and all-procedural — through
:class:`procdsl.stream.PhaseStream` (one rank) and reports for each: tokens per CPU second of
packed batches (generation, reading and tokenizing, interleaving and packing included), the
ratio to the raw ``sort`` generator measured in the same run, and the resident memory after 10
and after ``batches`` batches (flat: the stream keeps one block per source, whatever the
length of the phase). Times are CPU time of this process (``time.process_time``). Target,
reported and not asserted: at least 2M tokens/s on one core. ``python -m procdsl.stream.bench``
prints the table.

>>> rows = run_pipeline_bench(batches=12, context=256, batch=2, cases=CASES[:1])
>>> sorted(rows[0])
['case', 'generator_tokens_per_s', 'ratio', 'rss_mb_at_10', 'rss_mb_at_end', 'tokens_per_s']
"""

from __future__ import annotations

import os
import resource
import time
from typing import Optional

from procdsl.generators import generate
from procdsl.plan import AdamW, BytesTokenizer, Constant, Gpt2Model, Phase, Plan
from procdsl.plan.sources import PythonCodeSource, TaskSource
from procdsl.stream.stream import PhaseStream

TARGET_TOKENS_PER_S = 2e6

SORT = TaskSource(rule=("sort",), length=64, vocab=100)
CASES = [
    ("code 50% + sort 50%", {"code": 0.5, "sort": 0.5}),
    ("code 99.8% + sort 0.2%", {"code": 0.998, "sort": 0.002}),
    ("sort 100%", {"sort": 1.0}),
]


def bench_plan(mix: dict[str, float], *, context: int, batch: int, steps: int) -> Plan:
    """A one-phase plan of ``mix`` over ``code = python_code()`` and ``sort``."""
    phase = Phase(
        name="bench",
        steps=steps,
        tokens=steps * batch * context,
        batch=batch,
        context=context,
        seed=0,
        mix=mix,
        optimizer=AdamW(),
        schedule=Constant(),
    )
    return Plan(
        name="bench",
        seed=0,
        model=Gpt2Model(),
        tokenizer=BytesTokenizer(),
        context=context,
        batch=batch,
        sources={"code": PythonCodeSource(), "sort": SORT},
        phases=(phase,),
        total_steps=steps,
        total_tokens=phase.tokens,
    )


def rss_mb() -> float:
    """Resident memory of this process now (Linux ``/proc``; else the peak, from ``getrusage``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generator_rate(context: int, tokens: int) -> float:
    """Tokens per CPU second of the raw ``sort`` generator (no packing), over ~``tokens``."""
    count = max(tokens // (2 * 64 + 1), 1)
    start = time.process_time()
    made = len(generate(SORT, seed=0, name="bench", start=0, count=count, context=context).tokens)
    return made / max(time.process_time() - start, 1e-9)


def run_pipeline_bench(batches: int = 1000, context: int = 2048, batch: int = 8, cases=CASES) -> list[dict]:
    """One row per case: throughput, ratio to the generator, RSS after 10 and ``batches``."""
    rows = []
    per_batch = context * batch
    raw = generator_rate(context, min(batches * per_batch, 1 << 24))
    for label, mix in cases:
        stream = PhaseStream(bench_plan(mix, context=context, batch=batch, steps=batches), "bench")
        it = iter(stream)
        at_10: Optional[float] = None
        start = time.process_time()
        for index in range(batches):
            next(it)
            if index == 9:
                at_10 = rss_mb()
        elapsed = max(time.process_time() - start, 1e-9)
        rate = batches * per_batch / elapsed
        rows.append(
            {
                "case": label,
                "tokens_per_s": rate,
                "generator_tokens_per_s": raw,
                "ratio": rate / raw,
                "rss_mb_at_10": at_10,
                "rss_mb_at_end": rss_mb(),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """The bench rows as plain text, flagging rows below the target."""
    lines = [
        f"{'pipeline':28s} {'tokens/s':>10s} {'generator':>10s} {'ratio':>7s} {'RSS@10':>8s} {'RSS@end':>8s}"
    ]
    for row in rows:
        flag = "  (below target)" if row["tokens_per_s"] < TARGET_TOKENS_PER_S else ""
        at_10 = "-" if row["rss_mb_at_10"] is None else f"{row['rss_mb_at_10']:.0f}MB"
        lines.append(
            f"{row['case']:28s} {row['tokens_per_s'] / 1e6:9.1f}M "
            f"{row['generator_tokens_per_s'] / 1e6:9.1f}M {row['ratio']:6.2f}x "
            f"{at_10:>8s} {row['rss_mb_at_end']:7.0f}MB{flag}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run_pipeline_bench()))
