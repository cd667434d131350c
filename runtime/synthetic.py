"""The synthetic dataloader: a learnable stand-in for the plan's stream (tests, dry runs), and the
TorchTitan dataloader contract it and :mod:`procdsl.runtime.batches` follow: rows →
``(input_dict, labels)`` batches, loss mask in labels.

Contract with TorchTitan 0.2.2's ``Trainer`` (``train.py``):

* The dataloader is a ``BaseDataLoader``: ``Stateful`` (``state_dict``/``load_state_dict``)
  plus ``__iter__`` yielding ``({"input": LongTensor[B, T]}, labels: LongTensor[B, T])`` on the CPU.
  Extra keys of the input dict become keyword arguments of ``model.forward``.
* ``Trainer.train`` calls ``iter(dataloader)`` once and then ``next`` exactly
  ``gradient_accumulation_steps`` times per step, with no prefetch; ``StopIteration`` ends
  training early ("Ran out of data"). So a checkpoint taken after step ``n`` sees the state of a
  loader that has produced exactly ``n × accumulation`` batches.
* Labels equal to ``IGNORE_INDEX`` (-100) are masked: the stock loss sums cross-entropy over
  the other positions, and the Trainer divides that sum by the number of unmasked labels
  across all microbatches and data-parallel ranks.
* The ``CheckpointManager`` stores ``state_dict()`` under the key ``dataloader`` of the DCP
  checkpoint, flattened (``dataloader.dp_rank_0.index``). DCP keeps one copy of each non-tensor
  key across ranks, so each rank's state sits under its own ``dp_rank_<r>`` key; loading
  asks only for this rank's key.

A row stream is any iterable of ``(tokens, loss_mask)`` pairs of length ``seq_len + 1`` that is
itself ``Stateful``; ``loss_mask[j]`` says whether token ``j`` is a training target.

>>> rows = SyntheticRows(seed=0, dp_rank=0, dp_world_size=1, seq_len=6, vocab_size=10)
>>> inputs, labels = next(iter(TitanBatches(rows, batch_size=2, seq_len=6, dp_rank=0, dp_world_size=1)))
>>> inputs["input"].shape, labels.shape, rows.state_dict()
(torch.Size([2, 6]), torch.Size([2, 6]), {'index': 2})
>>> labels[0, :PROMPT - 1].tolist()
[-100]
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torchtitan.components.dataloader import BaseDataLoader
from torchtitan.components.loss import IGNORE_INDEX

PROMPT = 2  # SyntheticRows: tokens before the first target (the stride is unknown until then)


class TitanBatches(BaseDataLoader):
    """Batches ``batch_size`` rows of a row stream into TorchTitan's ``(input_dict, labels)``."""

    def __init__(self, rows: Any, *, batch_size: int, seq_len: int, dp_rank: int, dp_world_size: int):
        self.rows = rows
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.dp_rank = dp_rank
        self.dp_world_size = dp_world_size

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        rows = iter(self.rows)
        while len(batch := list(islice(rows, self.batch_size))) == self.batch_size:
            tokens = torch.from_numpy(np.stack([t for t, _ in batch]).astype(np.int64))
            mask = torch.from_numpy(np.stack([m for _, m in batch]).astype(bool))
            if tokens.shape[1] != self.seq_len + 1:
                raise ValueError(
                    f"rows have {tokens.shape[1]} tokens, expected seq_len + 1 = {self.seq_len + 1}"
                )
            labels = tokens[:, 1:].masked_fill(~mask[:, 1:], IGNORE_INDEX)
            yield {"input": tokens[:, :-1].contiguous()}, labels

    def state_dict(self) -> dict[str, Any]:
        return {f"dp_rank_{self.dp_rank}": self.rows.state_dict(), "world_size": self.dp_world_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if state_dict["world_size"] != self.dp_world_size:
            raise ValueError(
                f"checkpoint was written by {state_dict['world_size']} data-parallel "
                f"ranks, this run has {self.dp_world_size}; resharding is unsupported"
            )
        self.rows.load_state_dict(state_dict[f"dp_rank_{self.dp_rank}"])


class SyntheticRows:
    """A learnable stand-in for procdsl's mixture stream (tests, dry runs).

    Row ``i`` of rank ``r`` is example ``i × world + r``: an arithmetic progression modulo
    ``vocab_size`` with a random start and stride 1–4, a pure function of ``(seed, example)``.
    The first ``PROMPT`` tokens are not targets.
    """

    def __init__(self, *, seed: int, dp_rank: int, dp_world_size: int, seq_len: int, vocab_size: int):
        self.seed, self.dp_rank, self.dp_world_size = seed, dp_rank, dp_world_size
        self.seq_len, self.vocab_size = seq_len, vocab_size
        self.index = 0

    def row(self, example: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, example])
        start, stride = rng.integers(self.vocab_size), rng.integers(1, 5)
        tokens = (start + stride * np.arange(self.seq_len + 1)) % self.vocab_size
        return tokens, np.arange(self.seq_len + 1) >= PROMPT

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            example = self.index * self.dp_world_size + self.dp_rank
            self.index += 1  # before yielding: a checkpoint taken now must skip this row
            yield self.row(example)

    def state_dict(self) -> dict[str, int]:
        return {"index": self.index}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.index = int(state_dict["index"])


def build_synthetic(*, dp_world_size: int, dp_rank: int, job_config: Any) -> TitanBatches:
    """Dataloader factory (``procdsl.dataloader`` config value) serving :class:`SyntheticRows`."""
    from torchtitan.protocols.train_spec import get_train_spec

    model_args = get_train_spec(job_config.model.name).model_args[job_config.model.flavor]
    training = job_config.training
    rows = SyntheticRows(
        seed=job_config.debug.seed or 0,
        dp_rank=dp_rank,
        dp_world_size=dp_world_size,
        seq_len=training.seq_len,
        vocab_size=model_args.vocab_size,
    )
    return TitanBatches(
        rows,
        batch_size=training.local_batch_size,
        seq_len=training.seq_len,
        dp_rank=dp_rank,
        dp_world_size=dp_world_size,
    )
