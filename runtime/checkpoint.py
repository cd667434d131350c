"""What a procdsl checkpoint holds beyond TorchTitan's, and how a run finds where to resume.

TorchTitan's ``CheckpointManager`` writes ``DIR/checkpoints/step-N/`` with DCP: the model
(flattened parameter names), ``optimizer``, ``lr_scheduler``, ``dataloader`` (the stream state,
``procdsl.runtime.batches``) and ``train_state`` (the phase's own step count and tokens seen).
The phase trainer adds :class:`RunState` under the key ``procdsl``:

* ``plan_hash`` and ``plan_json``: the plan that wrote the checkpoint (a different plan is
  refused with the diff of the two, see ``procdsl.runtime.rundir``);
* ``phase`` / ``phase_index`` and ``global_step`` (``N`` of ``step-N``, counted over all phases);
* ``rng_rank_R``: rank ``R``'s torch RNG states (CPU, and CUDA when in use), restored on
  resume so that dropout continues exactly. A checkpoint written by another world size lacks
  some ranks' keys: those ranks keep the phase's seeded state (logged).

DCP writes ``.metadata`` last, so a checkpoint interrupted by ``kill -9`` has none and
:func:`latest_step` skips it: a run resumes from the newest *complete* checkpoint.

>>> latest_step("/nonexistent") is None
True
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from typing import Any, Optional

import torch
from torch.distributed.checkpoint.stateful import Stateful

KEY = "procdsl"
_STEP = re.compile(r"step-(\d+)")


def checkpoint_path(folder: str, step: int) -> str:
    return os.path.join(folder, f"step-{step}")


def latest_step(folder: str) -> Optional[int]:
    """The newest complete checkpoint's step under ``folder`` (None when there is none)."""
    if not os.path.isdir(folder):
        return None
    steps = [int(m.group(1)) for name in os.listdir(folder)
             if (m := _STEP.fullmatch(name)) and os.path.isfile(os.path.join(folder, name, ".metadata"))]
    return max(steps, default=None)


def stored_keys(path: str) -> set[str]:
    """Flattened keys of a DCP checkpoint (``procdsl.plan_hash``, ``tok_embeddings.weight``, …)."""
    from torch.distributed.checkpoint import FileSystemReader

    return set(FileSystemReader(path).read_metadata().state_dict_metadata)


def read_run_state(path: str) -> dict[str, Any]:
    """``plan_hash``, ``plan_json``, ``phase``, ``phase_index``, ``global_step`` of a checkpoint.

    Reads only those entries, on this rank alone (no collective).
    """
    import torch.distributed.checkpoint as dcp

    fields = {"plan_hash": "", "plan_json": "", "phase": "", "phase_index": 0, "global_step": 0}
    keys = stored_keys(path)
    missing = [f for f in fields if f"{KEY}.{f}" not in keys]
    if missing:
        raise ValueError(f"{path} is not a procdsl checkpoint (no {KEY}.{missing[0]})")
    state = {KEY: dict(fields)}
    with warnings.catch_warnings():   # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=path, no_dist=True)
    return state[KEY]


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
    """The ``procdsl`` entry of a checkpoint (module docstring)."""

    def __init__(self, *, plan_hash: str, plan_json: str, phase: str, phase_index: int,
                 step_offset: int, rank: int, device: str, trainer: Any):
        self.plan_hash, self.plan_json = plan_hash, plan_json
        self.phase, self.phase_index, self.step_offset = phase, phase_index, step_offset
        self.rank, self.device, self.trainer = rank, device, trainer
        self.available: Optional[set[str]] = None   # keys of the checkpoint being loaded
        self.restored_rng = False
        self.loaded: dict[str, Any] = {}

    @property
    def rng_key(self) -> str:
        return f"rng_rank_{self.rank}"

    def state_dict(self) -> dict[str, Any]:
        state = {"plan_hash": self.plan_hash, "plan_json": self.plan_json, "phase": self.phase,
                 "phase_index": self.phase_index,
                 "global_step": self.step_offset + self.trainer.step}
        if self.available is None or f"{KEY}.{self.rng_key}" in self.available:
            state[self.rng_key] = rng_state(self.device)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loaded = dict(state_dict)
        if self.rng_key in state_dict:
            set_rng_state(state_dict[self.rng_key])
            self.restored_rng = True


def truncate_records(path: str, step: int) -> int:
    """Drop the records of ``path`` (JSON lines) past ``step``, and a torn last line; returns kept.

    A run killed after logging step 12 but resuming from the checkpoint of step 10 relogs
    steps 11 and 12; this keeps the log to one record per step.
    """
    if not os.path.isfile(path):
        return 0
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break                      # torn by a kill mid-write: nothing after it is valid
            if record.get("step", 0) <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)
    return len(kept)
