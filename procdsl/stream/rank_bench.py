"""What one rank of a larger world pays for its rows: ``procdsl bench --pipeline FILE``.

Simulates rank ``R`` of ``W`` of a phase of a plan — no torch, no process group — and measures
what that rank's stream costs per step: the global layout every rank computes plus the content
of its own rows. The stream is first positioned at step ``K`` (a state taken from a stream that
ran there, as a checkpoint would hold it); then a fresh stream of rank ``R`` loads that state
(``resume_ms``: the load and the first step) and runs ``N`` more steps (``step_ms``: their mean,
first step excluded). ``rank_tokens_per_s`` counts the real tokens (padding excluded) of this
rank's own rows per CPU second; ``global_tokens_per_s`` the whole batch's. ``data`` says whether
data sources were read from the token store or streamed.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum b {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 64
...   batch = 8
...   source s = sort(length=8..20, vocab=50)
...   phase p { steps = 100  mix = { s: 100% } }
... }''', "b.curr").plan
>>> out = rank_pipeline_bench(plan, "p", world=4, rank=1, start_step=10, steps=5)
>>> sorted(out)
['data', 'global_tokens_per_s', 'layout', 'phase', 'rank', 'rank_tokens_per_s', 'resume_ms', 'start_step', 'step_ms', 'steps', 'world']
>>> out["world"], out["start_step"], out["steps"], out["step_ms"] > 0
(4, 10, 5, True)
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from procdsl.errors import UsageError
from procdsl.plan.model import Plan
from procdsl.stream.stream import PhaseStream


def state_at(
    plan: Plan, phase: str, step: int, *, cache_dir: Optional[str] = None, store: Optional[str] = None
) -> dict[str, Any]:
    """The stream state of ``phase`` before step ``step`` (what a checkpoint there holds)."""
    batch = plan.phase(phase).batch
    stream = PhaseStream(plan, phase, rank=0, world=batch, cache_dir=cache_dir, store=store)  # one row
    for _ in range(step):
        stream.next_batch()
    return stream.state_dict()


def rank_pipeline_bench(
    plan: Plan,
    phase: str,
    *,
    world: int,
    rank: int,
    start_step: int = 0,
    steps: int = 20,
    cache_dir: Optional[str] = None,
    store: Optional[str] = None,
) -> dict[str, Any]:
    """One JSON-able record for rank ``rank`` of ``world`` (module docstring); ``store``: read
    data from the token store under that root (prepared beforehand), else streaming."""
    if steps < 1:
        raise ValueError("--steps must be at least 1")
    state = state_at(plan, phase, start_step, cache_dir=cache_dir, store=store) if start_step else None
    began = time.process_time()
    stream = PhaseStream(plan, phase, rank=rank, world=world, cache_dir=cache_dir, store=store)
    if state is not None:
        stream.load_state_dict(state)
    stream.next_batch()
    resume = time.process_time() - began
    own = total = 0
    began = time.process_time()
    for _ in range(steps):
        batch = stream.next_batch()
        own += int((~batch.padding).sum())
        total += sum(batch.source_tokens)
    elapsed = max(time.process_time() - began, 1e-9)
    return {
        "phase": phase,
        "layout": stream.layout,
        "data": "stream" if store is None else "store",
        "world": world,
        "rank": rank,
        "start_step": start_step,
        "steps": steps,
        "resume_ms": resume * 1e3,
        "step_ms": elapsed / steps * 1e3,
        "rank_tokens_per_s": own / elapsed,
        "global_tokens_per_s": total / elapsed,
    }


def bench_rank(
    plan: Plan,
    phase: Optional[str],
    *,
    world: int,
    rank: int,
    start_step: int = 0,
    steps: int = 20,
    stream: bool = False,
    file: str = "the file",
) -> dict[str, Any]:
    """``procdsl bench --pipeline FILE``: :func:`rank_pipeline_bench` of ``phase`` (default: the
    first), its data read as ``procdsl run`` reads it — from the token store, prepared first —
    or, with ``stream``, from the files as it goes. UsageError for an unknown phase or a rank
    outside the world; DataError when the data cannot be read."""
    from procdsl.store.runs import data_store, prepare_stores

    name = phase or plan.phases[0].name
    if name not in {p.name for p in plan.phases}:
        raise UsageError(f"no phase {name!r} in {file} (phases: {', '.join(p.name for p in plan.phases)})")
    store = None if stream else data_store(os.environ)  # as `procdsl run` reads it
    try:
        if store is not None:
            prepare_stores(plan, store, announce=False)
        return rank_pipeline_bench(
            plan, name, world=world, rank=rank, start_step=start_step, steps=steps, store=store
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def format_record(record: dict[str, Any]) -> str:
    """A record on one line: ``key value`` pairs, floats with two decimals.

    >>> format_record({"phase": "p", "step_ms": 1234.5})
    'phase p  step_ms 1,234.50'
    """
    return "  ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
