"""A phase's ``eval every N steps { … }`` blocks: held-out perplexity and answer-token accuracy.

Each plan ``Eval`` runs at phase steps ``every, 2·every, …`` and at the phase's last step
(:func:`due`). It reads ``batches`` batches of ``EvalStream(plan, source, …)`` in the phase's
vocabulary (rank ``r`` of ``W`` gets its ``batch / W`` rows of each, so FSDP ranks stay in
step), runs the model without gradients in eval mode, and reduces over ranks:

* ``loss``: mean cross-entropy over the target tokens; ``perplexity = exp(loss)``;
* ``accuracy``: the share of target tokens whose arg-max prediction is the label. Targets
  follow the source's loss mode, so for algorithmic tasks (``output_only``) it is accuracy on
  the answer tokens; for text (``full``) it is next-token accuracy.

Both numbers come from one pass, so every record carries both; ``kind`` says which the plan
asked for. ``attention_entropy`` adds, from the same pass, the mean entropy of the attention
rows of every layer and head (``procdsl.runtime.attention``). The batches never change, so they
are built once per phase and kept.

>>> from procdsl.plan import Eval
>>> [e.source for e in due((Eval(kind="perplexity", source="a", every=10),
...                         Eval(kind="accuracy", source="b", every=25)), step=50, steps=60)]
['a', 'b']
>>> [e.source for e in due((Eval(kind="perplexity", source="a", every=10),), step=55, steps=60)]
[]
>>> [e.source for e in due((Eval(kind="perplexity", source="a", every=100),), step=60, steps=60)]
['a']
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from . import attention
from .batches import input_dict, model_kwargs
from .losses import means, source_sums, token_losses


def due(evals: Sequence[Any], *, step: int, steps: int) -> list[Any]:
    """The evals to run after phase step ``step`` of ``steps``."""
    return [e for e in evals if step % e.every == 0 or step == steps]


class Evaluator:
    """Runs one phase's evals on one rank; collective (every rank must call :meth:`run`)."""

    def __init__(
        self,
        plan: Any,
        phase: Any,
        *,
        rank: int,
        world: int,
        cache_dir: str | None,
        tokenizer: Any = None,
        store: str | None = None,
    ):
        self.plan, self.phase, self.rank, self.world = plan, phase, rank, world
        self.cache_dir, self.tokenizer, self.store = cache_dir, tokenizer, store
        self._batches: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def batches(self, source: str, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if source not in self._batches or len(self._batches[source]) < count:
            from procdsl.stream import EvalStream

            stream = EvalStream(
                self.plan,
                source,
                count,
                self.phase.context,
                self.phase.batch,
                phase=self.phase.name,
                rank=self.rank,
                world=self.world,
                cache_dir=self.cache_dir,
                tokenizer=self.tokenizer,
                store=self.store,
            )
            packed = stream.layout == "packed"
            self._batches[source] = [
                (input_dict(b, packed=packed), torch.from_numpy(b.labels)) for b in stream
            ]
        return self._batches[source][:count]

    @torch.no_grad()
    def run(
        self,
        model: torch.nn.Module,
        evaluation: Any,
        *,
        device: torch.device,
        amp: Any = None,
        reduce: Any = None,
        kind: str = "gpt2",
    ) -> dict[str, float]:
        """``{"loss", "perplexity", "accuracy", "targets"}`` of one eval, over all ranks
        (``attention_entropy`` adds the entropies of ``procdsl.runtime.attention``)."""
        reduce = reduce or (lambda tensor: tensor)
        was_training = model.training
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        entropy = (
            attention.recording(model, kind)
            if evaluation.kind == "attention_entropy"
            else contextlib.nullcontext()
        )
        try:
            with entropy as recorded:
                for batch, labels in self.batches(evaluation.source, evaluation.batches):
                    inputs, labels = batch["input"].to(device), labels.to(device)
                    with amp if amp is not None else contextlib.nullcontext():
                        logits = model(inputs, **model_kwargs(batch, device))
                    losses = token_losses(logits, labels)
                    sums += source_sums(losses, labels, torch.zeros_like(labels), 1, logits=logits).cpu()
                    del logits
        finally:
            model.train(was_training)
            _reshard(model)
        stats = means(reduce(sums), 1)
        loss = stats["loss"][0]
        out = {
            "loss": loss,
            "perplexity": math.exp(loss) if math.isfinite(loss) and loss < 700 else float("inf"),
            "accuracy": stats["accuracy"][0],
            "targets": int(stats["targets"][0]),
        }
        if recorded is not None:
            out |= attention.entropy_stats(reduce(recorded.tensor()))
        return out


def _reshard(model: torch.nn.Module) -> None:
    """Put FSDP2 modules back in their sharded state.

    A forward pass without backward leaves the root module's parameters unsharded (FSDP2 keeps
    the root unsharded after forward, expecting the backward); the checkpointer and the
    optimizer would then see parameters other than the ones they hold.
    """
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()
