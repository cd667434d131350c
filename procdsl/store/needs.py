"""What a plan reads from each data source: the stores to prepare, and how many tokens each.

A :class:`Need` is one store: a data source's documents of one split (``plan_split``: the whole
source unless the plan carves a held-out split out of it), for generated sources (``dm_math``)
under one seed, and an upper bound on the tokens the plan can read from it.

* training: for every phase whose mix names the source, ``share × steps × batch × (context + 1)``
  (the largest share it reaches, ramps included, of every token the phase's rows can hold) plus
  ``batch + 2`` rows of slack per source of the mix (the interleave keeps every source within
  about one unit of its plan, and the stream pulls up to a step's rows ahead of the layout),
  summed over the phases — safe whether a phase restarts a source or continues it;
* evaluation: ``(batches + 1) × batch × (context + 1)`` plus two rows, the largest over the
  evals (every eval re-reads the same first batches; one batch of read-ahead).

A store holds whole documents until its tokens *exceed* the bound (or the source ends), so the
document after the last one a reader can consume always exists.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum n {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 16
...   batch = 2
...   source code = python_code()
...   source held = python_code()
...   source s = sort(length=4, vocab=10)
...   phase p { steps = 10  mix = { code: 25%, s: 75% }  eval every 5 steps { perplexity(held, batches=3) } }
... }''', "n.curr").plan
>>> [(n.label, n.split, n.tokens) for n in plan_needs(plan)]
[('code (train)', 'train', 222), ('held (heldout)', 'heldout', 171)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from procdsl.data.split import Role, Split, plan_split

#: source kinds whose documents depend on a seed (generated, not read)
GENERATED = frozenset({"dm_math"})


@dataclass(frozen=True)
class Need:
    """One store: ``source``'s ``split`` (under ``seed`` when generated), ``tokens`` at most."""

    source: Any
    split: Split
    seed: Optional[int]
    tokens: int
    names: tuple[str, ...]
    role: Role

    @property
    def label(self) -> str:
        """How messages name it: ``c4 (train)``."""
        return f"{'/'.join(self.names)} ({self.role})"

    @property
    def masked(self) -> bool:
        """Whether its documents carry answers (a target mask is stored beside the tokens)."""
        return self.source.default_loss == "answer_only"


def plan_needs(plan: Any) -> list[Need]:
    """Every store ``plan`` reads, in the order the plan first reads them."""
    found: dict[tuple, Need] = {}

    def add(name: str, role: Role, seed: int, tokens: int, combine) -> None:
        source = plan.sources[name]
        split = plan_split(plan, name, role)
        seed_key = seed if source.kind in GENERATED else None
        key = (source.model_dump_json(), split, seed_key)
        old = found.get(key)
        if old is None:
            found[key] = Need(source, split, seed_key, tokens, (name,), role)
        else:
            names = old.names if name in old.names else (*old.names, name)
            found[key] = Need(source, split, seed_key, combine(old.tokens, tokens), names, old.role)

    for phase in plan.phases:
        row = phase.context + 1
        for name in phase.mix:
            if plan.sources[name].procedural:
                continue
            share = max(phase.mix[name], *_ramp_shares(phase, name))
            if share > 0:
                rows = phase.steps * phase.batch
                tokens = math.ceil(share * rows * row) + (phase.batch + 2) * row * len(phase.mix) + 1
                add(name, "train", phase.seed, tokens, lambda a, b: a + b)
        for evaluation in phase.eval:
            if plan.sources[evaluation.source].procedural:
                continue
            tokens = (evaluation.batches + 1) * phase.batch * row + 2 * row + 1
            add(evaluation.source, "heldout", plan.seed, tokens, max)
    return list(found.values())


def find_need(plan: Any, name: str, role: str, *, phase: Optional[str] = None) -> Need:
    """The store of source ``name`` in ``role`` (``train``/``heldout``); for a generated source
    trained on under several phase seeds, ``phase`` says which."""
    if name not in plan.sources:
        raise KeyError(f"no source named {name!r} in the plan")
    if role not in ("train", "heldout"):
        raise ValueError(f"split must be train or heldout, got {role!r}")
    matches = [n for n in plan_needs(plan) if name in n.names and n.role == role]
    if phase is not None and plan.sources[name].kind in GENERATED and role == "train":
        seed = plan.phase(phase).seed
        matches = [n for n in matches if n.seed == seed]
    if not matches:
        raise KeyError(f"the plan does not read source {name!r} for {role}")
    if len(matches) > 1:
        raise KeyError(f"source {name!r} is read under several seeds; name the phase")
    return matches[0]


def _ramp_shares(phase: Any, name: str) -> tuple[float, float]:
    ramp = phase.mix_ramp
    if ramp is None:
        return 0.0, 0.0
    return ramp.start.get(name, 0.0), ramp.end.get(name, 0.0)
