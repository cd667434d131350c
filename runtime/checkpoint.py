"""What a procdsl checkpoint holds beyond TorchTitan's, and how a run finds and loads it.

TorchTitan's ``CheckpointManager`` writes ``DIR/checkpoints/step-N/`` with DCP: the model
(flattened parameter names), ``optimizer``, ``lr_scheduler``, ``dataloader`` (the stream state,
``procdsl.runtime.batches``) and ``train_state`` (the phase's own step count and tokens seen).
The phase trainer adds :class:`RunState` under the key ``procdsl``: ``rng_rank_R``, rank ``R``'s
torch RNG states (CPU, and CUDA when in use), restored on resume so that dropout continues
exactly. A checkpoint written by another world size lacks some ranks' keys: those ranks keep
the phase's seeded state (noted).

Everything else the run needs to know about a checkpoint — the plan that wrote it (hash and
JSON), phase, step, data fingerprints, and a SHA-256 of each file — is in its JSON sidecar,
``step-N/procdsl.json``, written last (``procdsl.runtime.sidecar``). :func:`latest_step` is the
newest checkpoint whose sidecar checks out: one cut by ``kill -9``, a full disk or a flipped
byte is skipped, and the run resumes from the one before. Loading goes through
``procdsl.runtime.safeload`` (no unpickling of anything but DCP's own metadata classes).

>>> latest_step("/nonexistent") is None
True
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Optional

import torch
from torch.distributed.checkpoint.stateful import Stateful

from . import safeload, sidecar
from .sidecar import checkpoint_path

KEY = "procdsl"


def latest_step(
    folder: str, *, skipped: Callable[[str, str], None] = lambda path, why: None
) -> Optional[int]:
    """The newest complete checkpoint's step under ``folder`` (None when there is none)."""
    newest = sidecar.newest_complete(folder, skipped=skipped)
    return None if newest is None else newest[0]


def stored_keys(path: str) -> set[str]:
    """Flattened keys of a DCP checkpoint (``procdsl.rng_rank_0``, ``tok_embeddings.weight``, …)."""
    return set(safeload.read_metadata(path).state_dict_metadata)


def stored_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the tensors of a DCP checkpoint (read from its metadata only)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    return {
        key: tuple(meta.size)
        for key, meta in safeload.read_metadata(path).state_dict_metadata.items()
        if isinstance(meta, TensorStorageMetadata)
    }


def read_run_state(path: str) -> dict[str, Any]:
    """``plan_hash``, ``plan_json``, ``phase``, ``phase_index``, ``global_step``, … of a complete
    checkpoint, from its sidecar (ValueError naming the checkpoint when it is not complete)."""
    try:
        return sidecar.read(path)
    except sidecar.Damaged as damage:
        raise ValueError(f"{path} is not a complete procdsl checkpoint: {damage}") from None


def load(checkpointer: Any, path: str) -> None:
    """Load every state of TorchTitan's ``checkpointer`` from ``path`` through ``safeload``
    (``CheckpointManager.load`` calls ``dcp.load`` with DCP's unrestricted reader and planner;
    the states are flattened as it does: ``procdsl.runtime.internals.load_checkpoint``)."""
    from .internals import load_checkpoint

    load_checkpoint(checkpointer, path, safeload.load)


def rng_state(device: str) -> bytes:
    """This process's torch RNG states, serialised."""
    states = {"cpu": torch.get_rng_state()}
    if device == "cuda" and torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    buffer = io.BytesIO()
    torch.save(states, buffer)
    return buffer.getvalue()


def set_rng_state(data: bytes) -> None:
    states = torch.load(io.BytesIO(data), weights_only=True)
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


class RunState(Stateful):
    """The ``procdsl`` entry of a checkpoint: this rank's RNG states (module docstring)."""

    def __init__(self, *, rank: int, device: str):
        self.rank, self.device = rank, device
        self.available: Optional[set[str]] = None  # keys of the checkpoint being loaded
        self.restored_rng = False

    @property
    def rng_key(self) -> str:
        return f"rng_rank_{self.rank}"

    def state_dict(self) -> dict[str, Any]:
        if self.available is not None and f"{KEY}.{self.rng_key}" not in self.available:
            return {}
        return {self.rng_key: rng_state(self.device)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.rng_key in state_dict:
            set_rng_state(state_dict[self.rng_key])
            self.restored_rng = True


__all__ = [
    "KEY",
    "RunState",
    "checkpoint_path",
    "latest_step",
    "load",
    "read_run_state",
    "rng_state",
    "set_rng_state",
    "stored_keys",
    "stored_shapes",
]
