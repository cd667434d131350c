"""Parallelising GPT-2 the TorchTitan way: activation checkpointing, per-block compile, FSDP2/DDP.

``parallelize_gpt2(model, parallel_dims, job_config)`` is a TorchTitan ``ParallelizeFunction``:
called by the Trainer on the meta-device model before ``to_empty``/``init_weights``, it returns
the model to train. Order as in TorchTitan's ``parallelize_llama``: activation checkpointing
(``activation_checkpoint.mode``: none | selective | full) wraps each block, then
``torch.compile`` per block (``compile.enable`` with ``"model"`` in ``compile.components``),
then data parallelism — FSDP2 units as llama's (``apply_fsdp``) when ``dp_shard > 1``, or DDP
when only ``dp_replicate > 1``. Tensor, context and pipeline parallelism are not implemented
for GPT-2 (its fused QKV projection would need re-laying out per head first).

FSDP's ``gradient_divide_factor`` is set to 1 because the Trainer already divides the loss by
the global number of valid tokens. Backend-specific FSDP settings (SUM-only reductions on gloo)
are applied by ``procdsl.runtime.platform``, for every model, not here.
"""

from __future__ import annotations

import torch.nn as nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard
from torchtitan.config import TORCH_DTYPE_MAP
from torchtitan.distributed.activation_checkpoint import apply_ac
from torchtitan.models.llama3.infra.parallelize import (
    _op_sac_save_list,  # ops whose outputs selective AC keeps; the same set suits GPT-2
    apply_compile,
    apply_ddp,
    disable_fsdp_gradient_division,
)
from torchtitan.tools.logging import logger


def parallelize_gpt2(model: nn.Module, parallel_dims, job_config) -> nn.Module:
    """Apply activation checkpointing, compile and FSDP2/DDP as ``job_config`` asks."""
    unsupported = [
        name
        for name, on in (
            ("tensor", parallel_dims.tp_enabled),
            ("context", parallel_dims.cp_enabled),
            ("pipeline", parallel_dims.pp_enabled),
        )
        if on
    ]
    if unsupported:
        raise NotImplementedError(
            f"GPT-2 supports data parallelism only, not {' / '.join(unsupported)} parallelism"
        )

    compile_model = job_config.compile.enable and "model" in job_config.compile.components
    if job_config.activation_checkpoint.mode != "none":
        apply_ac(
            model,
            job_config.activation_checkpoint,
            model_compile_enabled=compile_model,
            op_sac_save_list=_op_sac_save_list,
            base_folder=job_config.job.dump_folder,
        )
    if compile_model:
        apply_compile(model, job_config.compile)

    if parallel_dims.fsdp_enabled:
        names = ["dp_replicate", "fsdp"] if parallel_dims.dp_replicate_enabled else ["fsdp"]
        training = job_config.training
        apply_fsdp(
            model,
            parallel_dims.get_mesh(names),
            param_dtype=TORCH_DTYPE_MAP[training.mixed_precision_param],
            reduce_dtype=TORCH_DTYPE_MAP[training.mixed_precision_reduce],
            cpu_offload=training.enable_cpu_offload,
            reshard_after_forward=job_config.parallelism.fsdp_reshard_after_forward != "never",
        )
        logger.info("Applied %s to GPT-2", "HSDP" if parallel_dims.dp_replicate_enabled else "FSDP")
    elif parallel_dims.dp_replicate_enabled:
        apply_ddp(model, parallel_dims.get_mesh("dp_replicate"), enable_compile=compile_model)
    return model


def apply_fsdp(
    model: nn.Module,
    mesh: DeviceMesh,
    *,
    param_dtype,
    reduce_dtype,
    cpu_offload: bool = False,
    reshard_after_forward: bool = True,
) -> None:
    """FSDP2 units as TorchTitan gives llama: the embeddings (token and position tables), each
    block, then the final norm with the head — not resharded after forward, since the backward
    starts there — and the root. Each unit's all-gather overlaps the previous unit's compute.

    A tied head multiplies by the token embedding matrix after the last block, so with
    ``tie_embeddings`` the embeddings and the final norm are one unit that is not resharded
    after forward: gathered when the embeddings run, still whole when the head reads the matrix,
    its gradient (from the head and the lookup) reduce-scattered once after backward. The
    blocks' parameters — most of the model — are gathered one unit at a time as untied.
    """
    config = {
        "mesh": mesh,
        "mp_policy": MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype),
    }
    if cpu_offload:
        config["offload_policy"] = CPUOffloadPolicy()
    tied = model.output is None
    if tied:
        fully_shard(
            [model.tok_embeddings, model.pos_embeddings, model.norm], **config, reshard_after_forward=False
        )
    else:
        fully_shard(
            [model.tok_embeddings, model.pos_embeddings],
            **config,
            reshard_after_forward=reshard_after_forward,
        )
    for block in model.layers.values():
        fully_shard(block, **config, reshard_after_forward=reshard_after_forward)
    if not tied:
        fully_shard([model.norm, model.output], **config, reshard_after_forward=False)
    fully_shard(model, **config)
    disable_fsdp_gradient_division(model)
