"""The one place where procdsl reaches into TorchTitan 0.2.2's and torch's internals to train right.

``procdsl.runtime.platform`` adapts TorchTitan to the *machine*; this module adapts its
*training semantics*, each adaptation named and small:

1. **One init for every world size** (:func:`initialise_full`). TorchTitan materialises the
   sharded model and calls ``init_weights`` on its DTensors, so every rank draws its shard from
   the same seeded generator: on 2 ranks the top and bottom halves of each weight are equal and
   the init depends on the world size. Instead an unsharded copy is built on the CPU from the
   seed (under ``fork_rng``: the global RNG is left as TorchTitan seeded it) and loaded with
   ``set_model_state_dict(full_state_dict=True)``, which keeps each rank's shard;
   ``broadcast_from_rank0`` lets rank 0 alone build it (large models). An unsharded model on the
   CPU is initialised in place: the same generator in the same order gives the same values.
2. **Skipping an optimizer step on the device** (:func:`skip_update_if`). Fused AdamW reads
   ``optimizer.found_inf`` (the attribute ``GradScaler`` sets) and, when it is 1, leaves the
   parameters, moments and step count as they were — with no host sync. TorchTitan's
   optimizers are built fused (``optimizer.implementation``) for this.
3. **No autocast for float32** (:func:`disable_float32_autocast`). TorchTitan builds
   ``torch.autocast("cpu", float32)`` for float32 runs, which warns and does nothing; the
   trainer's ``maybe_enable_amp`` becomes a null context (:func:`autocast_of` reads it back).
4. **Optimizers over the trainable parameters** (:func:`rebuild_optimizers`). After freezing,
   the optimizer and schedule are rebuilt with the TrainSpec's builders and rewired where the
   Trainer holds them: ``metrics_processor.optimizers`` and the checkpointer's ``optimizer`` and
   ``lr_scheduler`` states.
5. **The checkpointer's states** (:func:`add_checkpoint_state`, :func:`checkpointed_model_shapes`,
   :func:`load_checkpoint`, :func:`wait_for_staging`, :func:`pending_save`). procdsl's own state rides in
   ``CheckpointManager.states``; a checkpoint is loaded through ``procdsl.runtime.safeload``
   with the states flattened as ``CheckpointManager.load``/``dcp_load`` flatten them
   (``_states_to_load``), then the model's own ``load_state_dict``, as ``dcp_load`` does.
6. **One step's pieces** (:func:`current_lr`, :func:`clip_gradients`, :func:`batch_group`,
   :func:`data_loading_times`): the learning rate the step will use, gradient clipping as
   ``Trainer.train_step`` does it (no pipeline, no experts), the data-parallel process group,
   and the dataloader wait times ``batch_generator`` records.
7. **What was compiled** (:func:`compiled_modules`): modules ``torch.compile`` wrapped.

``tests/test_runtime_internals.py`` checks each against the pinned TorchTitan (0.2.2): the
attributes, signatures and constants these functions rely on.

>>> import torch
>>> optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], fused=True)
>>> skip_update_if([optimizer], torch.tensor(True))
>>> optimizer.found_inf
tensor(1.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch


def _is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def initialise_full(
    model: torch.nn.Module, build: Callable[[], torch.nn.Module], *, seed: int, broadcast: bool, rank: int
) -> None:
    """Give ``model``'s parameters the values ``build()`` draws after ``manual_seed(seed)``.

    ``build`` returns an unsharded model of the same class on the CPU with ``init_weights``
    applied. Collective when ``model`` is sharded: every rank calls it.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from .models.kinds import canonical

    sharded = _is_sharded(model)
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        if not sharded and device.type == "cpu":
            model.init_weights()
            return
        if broadcast and rank != 0:
            full: dict[str, torch.Tensor] = {}
        else:
            names = {canonical(n) for n, _ in model.named_parameters()}
            full = {k: v for k, v in build().state_dict().items() if k in names}
    set_model_state_dict(
        model,
        full,
        options=StateDictOptions(
            full_state_dict=True, broadcast_from_rank0=broadcast and sharded, strict=False
        ),
    )


def disable_float32_autocast(trainer: Any) -> None:
    """Adaptation 3: the trainer's ``maybe_enable_amp`` becomes a null context."""
    trainer.maybe_enable_amp = contextlib.nullcontext()


def autocast_of(trainer: Any) -> Any:
    """The trainer's autocast context, or None where there is none (adaptation 3)."""
    amp = trainer.maybe_enable_amp
    return None if isinstance(amp, contextlib.nullcontext) else amp


def rebuild_optimizers(trainer: Any) -> None:
    """Adaptation 4: optimizers and lr schedulers over the model's trainable parameters."""
    from torchtitan.components.checkpoint import LR_SCHEDULER, OPTIMIZER

    config = trainer.job_config
    trainer.optimizers = trainer.train_spec.build_optimizers_fn(
        trainer.model_parts, config.optimizer, trainer.parallel_dims
    )
    trainer.lr_schedulers = trainer.train_spec.build_lr_schedulers_fn(
        trainer.optimizers, config.lr_scheduler, config.training.steps
    )
    trainer.metrics_processor.optimizers = trainer.optimizers
    trainer.checkpointer.states[OPTIMIZER] = trainer.optimizers
    trainer.checkpointer.states[LR_SCHEDULER] = trainer.lr_schedulers


def add_checkpoint_state(trainer: Any, key: str, state: Any) -> None:
    """Adaptation 5: ``state`` (a ``Stateful``) saved and loaded with every checkpoint under ``key``."""
    trainer.checkpointer.states[key] = state


def checkpointed_model_shapes(trainer: Any) -> dict[str, tuple[int, ...]]:
    """Adaptation 5: the shapes of the model tensors a checkpoint of ``trainer`` holds."""
    from torchtitan.components.checkpoint import MODEL

    return {k: tuple(v.shape) for k, v in trainer.checkpointer.states[MODEL].state_dict().items()}


def load_checkpoint(checkpointer: Any, path: str, load: Callable[[dict[str, Any], str], None]) -> None:
    """Adaptation 5: every state of ``checkpointer`` from ``path`` through ``load(states, path)``."""
    from torchtitan.components.checkpoint import MODEL

    states = checkpointer._states_to_load(model_only=False)
    load(states, path)
    if MODEL in checkpointer.states:
        checkpointer.states[MODEL].load_state_dict(states)


def wait_for_staging(trainer: Any) -> None:
    """Adaptation 5: an asynchronous save's staging is finished before the optimizer changes weights."""
    trainer.checkpointer.maybe_wait_for_staging()


def pending_save(checkpointer: Any) -> Any:
    """Adaptation 5: the future of the asynchronous save in flight, or None (a synchronous save)."""
    return getattr(checkpointer, "save_future", None)


def current_lr(trainer: Any) -> float:
    """Adaptation 6: the learning rate the next optimizer step uses."""
    return trainer.lr_schedulers.schedulers[0].get_last_lr()[0]


def clip_gradients(trainer: Any) -> torch.Tensor:
    """Adaptation 6: clip to ``training.max_norm`` as ``Trainer.train_step`` does; the total norm."""
    from torchtitan.distributed import utils as dist_utils

    return dist_utils.clip_grad_norm_(
        [p for m in trainer.model_parts for p in m.parameters()],
        trainer.job_config.training.max_norm,
        foreach=True,
        pp_mesh=None,
        ep_enabled=False,
    )


def batch_group(trainer: Any) -> Any:
    """Adaptation 6: the process group of the data-parallel ranks (the ``batch`` mesh)."""
    return trainer.parallel_dims.get_mesh("batch").get_group()


def data_loading_times(trainer: Any) -> list[float]:
    """Adaptation 6: the list ``batch_generator`` appends each wait for the dataloader to."""
    return trainer.metrics_processor.data_loading_times


def compiled_modules(model: torch.nn.Module) -> int:
    """Adaptation 7: how many of ``model``'s modules ``torch.compile`` wrapped."""
    from torch._dynamo.eval_frame import OptimizedModule

    return sum(isinstance(m, OptimizedModule) for m in model.modules())


def skip_update_if(optimizers: Iterable[Any], flag: torch.Tensor) -> None:
    """Make the next ``step()`` of every (fused AdamW) optimizer a no-op where ``flag`` is true."""
    found_inf = flag.to(torch.float32).reshape(())
    for optimizer in optimizers:
        if not optimizer.defaults.get("fused"):
            raise ValueError(
                "skipping a step on the device needs fused AdamW (optimizer.implementation = 'fused')"
            )
        optimizer.found_inf = found_inf
