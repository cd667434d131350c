"""Feeding TorchTitan from procdsl's mixture stream: ``PhaseStream`` batches → ``(input_dict, labels)``.

:class:`StreamBatches` is a TorchTitan ``BaseDataLoader`` (the contract is spelled out in
``procdsl.runtime.synthetic``) over one rank's :class:`procdsl.stream.PhaseStream`. Each
stream batch (``phase.batch / world`` rows) is one microbatch:

* ``input_dict["input"]``: ``[b, context]`` int64 token ids (``Batch.inputs``);
* ``input_dict["source"]``: ``[b, context]`` int64, the mix index of each label's source
  (``Batch.label_source``). The phase trainer pops it before the forward pass and uses it for
  the per-source losses;
* ``input_dict["positions"]``, ``input_dict["document"]``: ``[b, context]`` int64, only for a
  ``packed`` layout: each input's position within its unit and its unit's number in the row
  (``Batch.input_positions``/``input_document``). The trainer passes every key but ``input``
  and ``source`` to the model as keyword arguments (:func:`model_kwargs`), so the model
  restarts positions per unit and masks attention between units. A ``padded`` row holds one
  unit from position 0 with padding after it, which plain causal attention already gets right
  (and fast), so it carries neither;
* ``labels``: ``[b, context]`` int64 next tokens, ``-100`` where there is no loss.

State: the stream's ``state_dict()`` is small, JSON-able and *the same on every rank* (the
stream is computed globally and sliced per rank), so it is stored once, as a JSON string
under ``dataloader.stream`` — and a checkpoint resumes on any world size that divides the
batch. ``totals`` (labels and target labels per source so far, global) feed the achieved
shares in the metrics without any communication: :meth:`StreamBatches.step_shares` of the step
just served (and its padding), :meth:`StreamBatches.achieved_shares` of the phase so far.

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
>>> {k: round(v, 3) for k, v in loader.step_shares().items()}   # 4 rows × 17 tokens: 9 of a sort example
{'s': 1.0, 'pad': 0.471}
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torchtitan.components.dataloader import BaseDataLoader

from .prefetch import Consumed, prefetched

STATE_KEY = "stream"


class StreamBatches(BaseDataLoader):
    """One rank's batches of a phase stream, as TorchTitan microbatches (module docstring).

    ``prefetch`` batches are made ahead in a background thread (:mod:`.prefetch`; 0: in the
    training thread); ``pin``: their tensors in pinned memory, for asynchronous copies to a GPU.
    The state, the shares and ``last`` are those of the batches the trainer has taken, however
    far the thread has run ahead.
    """

    def __init__(self, stream: Any, *, strict: bool = True, prefetch: int = 2, pin: bool = False):
        self.stream = stream
        self.strict = strict  # False: accept a stream state of another plan (--force-replan)
        self.prefetch, self.pin = prefetch, pin
        self._consumed = Consumed()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.stream.sources)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        return prefetched(self._produce, depth=self.prefetch, consumed=self._consumed)

    def _produce(self) -> Iterator[tuple[tuple[dict[str, torch.Tensor], torch.Tensor], Any]]:
        """``((inputs, labels), (stream state after the batch, the batch))`` per step."""
        packed = self.stream.layout == "packed"
        for batch in self.stream:
            inputs, labels = input_dict(batch, packed=packed), torch.from_numpy(batch.labels)
            if self.pin:
                inputs = {key: value.pin_memory() for key, value in inputs.items()}
                labels = labels.pin_memory()
            yield (inputs, labels), (self.stream.state_dict(), batch)

    @property
    def last(self) -> Any:
        """The stream batch served last (the step just trained: one stream batch per step)."""
        return None if self._consumed.state is None else self._consumed.state[1]

    def _state(self) -> dict[str, Any]:
        return self.stream.state_dict() if self._consumed.state is None else self._consumed.state[0]

    def achieved_shares(self) -> dict[str, float]:
        """Each source's share of the real tokens delivered so far in this phase (global)."""
        return _shares(self.sources, self._state()["totals"]["tokens"])

    def step_shares(self) -> dict[str, float]:
        """Each source's share of the real tokens of the step just served (global; padding
        excluded), and ``pad``: the padding's share of all that step's tokens."""
        batch = self.last
        if batch is None:
            return {}
        real = sum(batch.source_tokens)
        return {
            **_shares(self.sources, batch.source_tokens),
            "pad": batch.pad_tokens / (real + batch.pad_tokens) if real + batch.pad_tokens else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {STATE_KEY: json.dumps(self._state(), sort_keys=True)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self.stream.load_state_dict(json.loads(state_dict[STATE_KEY]), strict=self.strict)
        self._consumed = Consumed()


def _shares(sources: tuple[str, ...], tokens) -> dict[str, float]:
    total = sum(tokens)
    return {name: (t / total if total else 0.0) for name, t in zip(sources, tokens)}


def _long(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


def input_dict(batch: Any, *, packed: bool) -> dict[str, torch.Tensor]:
    """The model's inputs of a stream batch (module docstring), on the CPU."""
    out = {"input": _long(batch.inputs), "source": _long(batch.label_source)}
    if packed:
        out |= {"positions": _long(batch.input_positions), "document": _long(batch.input_document)}
    return out


#: keys of an input dict that are not the model's keyword arguments
NOT_MODEL_INPUTS = ("input", "source")


def model_kwargs(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword arguments of the model's forward for ``inputs`` (``positions``,
    ``document`` of a packed layout), moved to ``device``."""
    return {
        key: value.to(device, non_blocking=True)
        for key, value in inputs.items()
        if key not in NOT_MODEL_INPUTS
    }


@functools.lru_cache(maxsize=4)
def _load_plan(path: str) -> Any:
    from procdsl.plan import load_plan

    return load_plan(path)


def build_stream(*, dp_world_size: int, dp_rank: int, job_config: Any) -> StreamBatches:
    """Dataloader factory (``procdsl.dataloader``): the stream of ``procdsl.phase`` of ``procdsl.plan``."""
    from procdsl.stream import PhaseStream

    section = job_config.procdsl
    plan = _load_plan(section.plan)
    stream = PhaseStream(
        plan,
        section.phase,
        rank=dp_rank,
        world=dp_world_size,
        cache_dir=section.cache_dir or None,
        store=None if section.store == "-" else section.store,
    )
    return StreamBatches(stream, pin=section.device == "cuda")
