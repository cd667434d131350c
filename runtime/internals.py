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

>>> import torch
>>> optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], fused=True)
>>> skip_update_if([optimizer], torch.tensor(True))
>>> optimizer.found_inf
tensor(1.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def _is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def initialise_full(model: torch.nn.Module, build: Callable[[], torch.nn.Module], *, seed: int,
                    broadcast: bool, rank: int) -> None:
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
    set_model_state_dict(model, full, options=StateDictOptions(
        full_state_dict=True, broadcast_from_rank0=broadcast and sharded, strict=False))


def skip_update_if(optimizers: Iterable[Any], flag: torch.Tensor) -> None:
    """Make the next ``step()`` of every (fused AdamW) optimizer a no-op where ``flag`` is true."""
    found_inf = flag.to(torch.float32).reshape(())
    for optimizer in optimizers:
        if not optimizer.defaults.get("fused"):
            raise ValueError("skipping a step on the device needs fused AdamW "
                             "(optimizer.implementation = 'fused')")
        optimizer.found_inf = found_inf
