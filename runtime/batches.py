"""Feeding TorchTitan from procdsl's mixture stream: ``PhaseStream`` batches → ``(input_dict, labels)``.

:class:`StreamBatches` is a TorchTitan ``BaseDataLoader`` (the contract is spelled out in
``procdsl.runtime.dataloader``) over one rank's :class:`procdsl.stream.PhaseStream`. Each
stream batch (``phase.batch / world`` rows) is one microbatch:

* ``input_dict["input"]``: ``[b, context]`` int64 token ids (``Batch.inputs``);
* ``input_dict["source"]``: ``[b, context]`` int64, the mix index of each label's source
  (``Batch.label_source``). The phase trainer pops it before the forward pass and uses it for
  the per-source losses;
* ``labels``: ``[b, context]`` int64 next tokens, ``-100`` where there is no loss.

State: the stream's ``state_dict()`` is small, JSON-able and *the same on every rank* (the
stream is computed globally and sliced per rank), so it is stored once, as a JSON string
under ``dataloader.stream`` — and a checkpoint resumes on any world size that divides the
batch. ``totals`` (labels and target labels per source so far, global) feed the achieved
shares in the metrics without any communication.

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum b {
...   model = gpt2(layers=1, heads=1, dim=8)
...   context = 16
...   batch = 4
...   source s = sort(length=4, vocab=10)
...   phase p { steps = 3  mix = { s: 100% } }
... }''', "b.curr").plan
>>> from procdsl.stream import PhaseStream
>>> loader = StreamBatches(PhaseStream(plan, "p", rank=1, world=2))
>>> inputs, labels = next(iter(loader))
>>> inputs["input"].shape, inputs["source"].dtype, labels.dtype
(torch.Size([2, 16]), torch.int64, torch.int64)
>>> state = loader.state_dict()
>>> resumed = StreamBatches(PhaseStream(plan, "p"))
>>> resumed.load_state_dict(state)
>>> resumed.stream.step, loader.achieved_shares()
(1, {'s': 1.0})
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torchtitan.components.dataloader import BaseDataLoader

STATE_KEY = "stream"


class StreamBatches(BaseDataLoader):
    """One rank's batches of a phase stream, as TorchTitan microbatches (module docstring)."""

    def __init__(self, stream: Any, *, strict: bool = True):
        self.stream = stream
        self.strict = strict   # False: accept a stream state of another plan (--force-replan)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.stream.sources)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        for batch in self.stream:
            inputs = torch.from_numpy(np.ascontiguousarray(batch.inputs, dtype=np.int64))
            source = torch.from_numpy(np.ascontiguousarray(batch.label_source, dtype=np.int64))
            yield {"input": inputs, "source": source}, torch.from_numpy(batch.labels)

    def achieved_shares(self) -> dict[str, float]:
        """Each source's share of the labels delivered so far in this phase (global)."""
        tokens = self.stream.totals["tokens"]
        total = sum(tokens)
        return {name: (t / total if total else 0.0) for name, t in zip(self.sources, tokens)}

    def state_dict(self) -> dict[str, Any]:
        return {STATE_KEY: json.dumps(self.stream.state_dict(), sort_keys=True)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self.stream.load_state_dict(json.loads(state_dict[STATE_KEY]), strict=self.strict)


@functools.lru_cache(maxsize=4)
def _load_plan(path: str) -> Any:
    from procdsl.plan import load_plan

    return load_plan(path)


def build_stream(*, dp_world_size: int, dp_rank: int, job_config: Any) -> StreamBatches:
    """Dataloader factory (``procdsl.dataloader``): the stream of ``procdsl.phase`` of ``procdsl.plan``."""
    from procdsl.stream import PhaseStream

    section = job_config.procdsl
    plan = _load_plan(section.plan)
    stream = PhaseStream(plan, section.phase, rank=dp_rank, world=dp_world_size,
                         cache_dir=section.cache_dir or None)
    return StreamBatches(stream)
