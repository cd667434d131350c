"""Driving TorchTitan 0.2.2's own ``Trainer`` for procdsl: job config, trainer subclass, entry point.

Entry points:

* :func:`run` ``(job_config) -> ProcdslTrainer`` trains in this process (a single process needs
  no launcher), then closes the trainer and destroys the process group; it returns the closed
  trainer so callers can read ``step``, ``ntokens_seen`` and ``dataloader.state_dict()``.
  It leaves logging alone (TorchTitan logs through the *root* logger), and leaves the process
  as it found it (gc state, environment), apart from the rebinding of TorchTitan's device.
* ``python -m procdsl.runtime.titan JOB.json`` does the same from a JSON job config after
  TorchTitan's ``init_logger()``; ``torchrun --standalone --nproc_per_node N -m
  procdsl.runtime.titan JOB.json`` runs it on N ranks (gloo FSDP on the CPU).

The job config is TorchTitan's ``JobConfig`` plus a ``procdsl`` section (:class:`Procdsl`):
``device`` (auto | cpu | cuda), ``dataloader`` (the factory ``"module:function"`` that
``procdsl.runtime.spec.build_dataloader`` calls) and, for plan-driven runs, the ``plan`` file,
``phase`` and tokenizer ``cache_dir`` that factory reads (``procdsl.runtime.jobconfig``). :func:`job_config_from_dict` builds one from
nested dicts and rejects unknown keys.

What the 0.2.2 Trainer does (``torchtitan/train.py``) and where we step in:

* ``__init__``: device from the module global ``torchtitan.tools.utils.device_type`` and
  ``LOCAL_RANK`` → ``init_distributed()`` → ``GarbageCollection`` (disables gc) → seed →
  TrainSpec builders (see ``procdsl.runtime.spec``) → model on meta → parallelize →
  ``to_empty`` + ``init_weights`` → optimizers, lr schedulers → ``CheckpointManager`` with
  states ``{"train_state": trainer, "model", "optimizer", "dataloader", "lr_scheduler"}``.
  :class:`ProcdslTrainer` first applies ``procdsl.runtime.platform`` (device rebinding,
  launcher variables, float32 FSDP parameters on the CPU), creates the process group in
  ``init_distributed`` before TorchTitan's (which then only warns "already initialized" and
  builds the meshes), re-enables gc per platform policy (``platform.PROCESS`` restores it when
  the last trainer closes), then gives the model its seeded full-tensor init, the same on any
  world size (``procdsl.runtime.internals.initialise_full``).
* ``batch_generator`` yields the dataloader's batches in ``training.local_batch_size``-row
  microbatches (:func:`microbatches`): a loader that serves a rank's whole batch per call (the
  plan's stream) then feeds TorchTitan's gradient accumulation unchanged, one loader batch per
  step, so its state at a step boundary does not depend on the microbatch.
* ``train()``: ``checkpointer.load(step=checkpoint.load_step)`` (the newest ``step-N`` under
  ``<dump_folder>/<checkpoint.folder>`` when it exists: model, optimizer, lr schedulers,
  dataloader, ``train_state`` = step and tokens seen), then per step: ``gc_handler.run``,
  ``train_step`` (``gradient_accumulation_steps`` microbatches of
  ``training.local_batch_size`` each, where ``accumulation = global_batch_size /
  (local_batch_size × dp_degree)``; loss = sum over valid tokens / global valid tokens;
  clip to ``training.max_norm``; optimizer and scheduler step; metrics on
  ``metrics.log_freq``), ``checkpointer.save(step, last_step=step == training.steps)`` (every
  ``checkpoint.interval`` steps; the last save is model-only unless
  ``checkpoint.last_save_model_only`` is false). After the loop rank 0 sleeps 2 s.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torchtitan.config import JobConfig
from torchtitan.distributed import ParallelDims
from torchtitan.tools.logging import init_logger
from torchtitan.train import Trainer

from . import internals, platform, spec


@dataclass
class Procdsl:
    """The ``procdsl`` section of the job config."""

    device: str = "auto"
    """auto | cpu | cuda (auto: CUDA when torch sees it)"""

    dataloader: str = "procdsl.runtime.synthetic:build_synthetic"
    """factory "module:function" called as factory(dp_world_size=, dp_rank=, job_config=)"""

    plan: str = ""
    """path of the plan.json a plan-driven dataloader reads (procdsl.runtime.batches)"""

    phase: str = ""
    """the phase of that plan this job trains"""

    cache_dir: str = ""
    """where tokenizers trained for the plan are cached ("" = none)"""

    store: str = "-"
    """the token store's cache root the data is read from ("-" = read and tokenize as it goes)"""

    broadcast_init_above: int = 2**30
    """bytes of parameters from which rank 0 alone builds the initial weights and broadcasts them"""


@dataclass
class ProcdslJobConfig(JobConfig):
    """TorchTitan's ``JobConfig`` with procdsl's section."""

    procdsl: Procdsl = field(default_factory=Procdsl)


def job_config_from_dict(data: Mapping[str, Any]) -> ProcdslJobConfig:
    """A job config from nested dicts (``{"training": {"steps": 8}}``); unknown keys are errors."""
    config = ProcdslJobConfig()
    _update(config, data, "")
    return config


def _update(obj: Any, data: Mapping[str, Any], prefix: str) -> None:
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in known:
            raise KeyError(f"unknown job config field {prefix + key!r}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            _update(current, value, f"{prefix}{key}.")
        else:
            setattr(obj, key, value)


def _sharded(job_config: JobConfig, world_size: int) -> bool:
    p = job_config.parallelism
    return ParallelDims(
        dp_replicate=p.data_parallel_replicate_degree,
        dp_shard=p.data_parallel_shard_degree,
        cp=p.context_parallel_degree,
        tp=p.tensor_parallel_degree,
        pp=p.pipeline_parallel_degree,
        ep=p.expert_parallel_degree,
        etp=p.expert_tensor_parallel_degree,
        world_size=world_size,
    ).fsdp_enabled


def microbatches(
    input_dict: dict[str, torch.Tensor], labels: torch.Tensor, rows: int
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """A batch in ``rows``-row pieces along the first dimension (every tensor of ``input_dict``).

    >>> pieces = list(microbatches({"input": torch.arange(8).view(4, 2)}, torch.zeros(4, 2), 2))
    >>> [(d["input"].tolist(), l.shape[0]) for d, l in pieces]
    [([[0, 1], [2, 3]], 2), ([[4, 5], [6, 7]], 2)]
    """
    total = labels.shape[0]
    if total <= rows:
        yield input_dict, labels
        return
    if total % rows:
        raise ValueError(f"a batch of {total} rows does not split into microbatches of {rows}")
    for start in range(0, total, rows):
        piece = {
            k: v[start : start + rows] if isinstance(v, torch.Tensor) else v for k, v in input_dict.items()
        }
        yield piece, labels[start : start + rows]


class ProcdslTrainer(Trainer):
    """TorchTitan's ``Trainer``, adapted to the machine by ``procdsl.runtime.platform``.

    The job config is copied, never modified in place. Launcher variables a single process
    lacks (``RANK``, ``WORLD_SIZE``, …) are set while any trainer lives and removed, with the
    gc state found before the first, when the last one closes (``platform.PROCESS``).
    """

    def __init__(self, job_config: ProcdslJobConfig):
        spec.register()
        job_config = copy.deepcopy(job_config)
        device = platform.resolve_device(job_config.procdsl.device, cuda_available=torch.cuda.is_available())
        platform.adapt_torchtitan(device)
        platform.PROCESS.hold()
        self._holding = True
        training = job_config.training
        training.mixed_precision_param = platform.mixed_precision_param(
            device,
            training.mixed_precision_param,
            sharded=_sharded(job_config, int(os.environ["WORLD_SIZE"])),
        )
        try:
            super().__init__(job_config)
            platform.PROCESS.apply_gc(device)
            self.initialise_weights()
        except BaseException:
            self._restore_process_state()
            raise

    def initialise_weights(self) -> None:
        """The seeded full-tensor init of ``debug.seed``, then sharded (``internals.initialise_full``)."""
        config = self.job_config
        model_args = self.model_args

        def build() -> torch.nn.Module:
            with torch.device("meta"):
                full = self.train_spec.model_cls(model_args)
            full.to_empty(device="cpu")
            full.init_weights()
            return full

        size = sum(p.numel() * p.element_size() for m in self.model_parts for p in m.parameters())
        for model in self.model_parts:
            internals.initialise_full(
                model,
                build,
                seed=config.debug.seed or 0,
                rank=dist.get_rank(),
                broadcast=dist.get_world_size() > 1 and size >= config.procdsl.broadcast_init_above,
            )

    def batch_generator(self, data_iterable):
        """TorchTitan's batches, cut into ``training.local_batch_size``-row microbatches."""
        rows = self.job_config.training.local_batch_size
        for input_dict, labels in super().batch_generator(data_iterable):
            yield from microbatches(input_dict, labels, rows)

    def init_distributed(self) -> ParallelDims:
        comm = self.job_config.comm
        platform.init_process_group(
            self.device.type,
            timeout_seconds=comm.init_timeout_seconds,
            trace_buf_size=comm.trace_buf_size,
            dump_folder=self.job_config.job.dump_folder,
        )
        return super().init_distributed()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._restore_process_state()

    def _restore_process_state(self) -> None:
        if getattr(self, "_holding", False):
            self._holding = False
            platform.PROCESS.release()


def run(job_config: ProcdslJobConfig) -> ProcdslTrainer:
    """Train as ``job_config`` says, in this process; returns the closed trainer."""
    trainer = None
    try:
        trainer = ProcdslTrainer(job_config)
        trainer.train()
    finally:
        if trainer is not None:
            trainer.close()
        if dist.is_initialized():
            dist.destroy_process_group()
    return trainer


def main(argv: list[str] | None = None) -> int:
    """``python -m procdsl.runtime.titan JOB.json`` (one process per rank under torchrun)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m procdsl.runtime.titan JOB.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        job_config = job_config_from_dict(json.load(f))
    init_logger()
    run(job_config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
