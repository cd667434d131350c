"""The TorchTitan job config of one phase of a plan, as plain nested dicts (no torch needed).

``procdsl.runtime.titan.job_config_from_dict`` turns the dict into TorchTitan's ``JobConfig``
(plus procdsl's section); ``procdsl run --dry-run`` prints it resolved. What comes from where:

==========================  ===============================================================
``model``                   ``procdsl_gpt2`` / ``procdsl_llama`` with a flavor spelling the
                            plan's shape, the phase's vocabulary size (``PhaseVocab.size``) and
                            the plan's largest context (one position table for every phase)
``training``                ``global_batch_size`` = the phase's batch; ``local_batch_size`` =
                            ``runtime.microbatch``, or the whole batch / data-parallel ranks
                            (TorchTitan accumulates gradients over batch / (local × ranks)
                            microbatches); ``seq_len`` = the phase's context; ``steps``;
                            ``max_norm`` = the optimizer's ``clip``; ``mixed_precision_param``
                            from ``runtime.dtype``
``optimizer``               fused AdamW (a NaN step is skipped on the device) with the phase's
                            hyper-parameters (``continue``: the nearest earlier phase's)
``lr_scheduler``            the phase's schedule (:func:`schedule_config`); TorchTitan's, so the
                            lr of phase step ``s`` (0-based, after warm-up) decays as
                            ``f(s / steps)`` and reaches ``min`` one step after the phase
``parallelism``             FSDP over all ranks, or HSDP with ``runtime.parallel = fsdp(shard=k)``:
                            shard groups of ``k`` ranks, replicated; ``tp(n)``: tensor
                            parallelism of degree ``n`` (the data-parallel ranks are world / n)
``checkpoint``              full (model, optimizer, scheduler, stream); ``interval`` 1 because
                            ``procdsl.runtime.saving`` decides when to save (phase ends,
                            ``checkpoint_every``, ``checkpoint_minutes``, signals) and what to
                            keep; ``async_mode`` "async" with ``runtime.async_checkpoint``
``activation_checkpoint``,  ``runtime.activation_checkpoint`` / ``runtime.compile``
``compile``
``debug.seed``              the phase's seed (every phase starts from its own seeded init)
==========================  ===============================================================

>>> from procdsl.compiler import compile_text
>>> plan = compile_text('''curriculum j {
...   model = gpt2(layers=2, heads=2, dim=32)
...   context = 64
...   batch = 8
...   runtime { dtype = bf16  checkpoint_every = 50 steps  microbatch = 2 }
...   source s = sort(length=8, vocab=10)
...   phase a { steps = 100  mix = { s: 100% }  schedule = cosine(warmup=10, min=0.1) }
... }''', "j.curr").plan
>>> job = phase_job_config(plan, 0, vocab_size=12, out="runs/j", device="cpu", world=2)
>>> job["model"]
{'name': 'procdsl_gpt2', 'flavor': 'layers=2,heads=2,dim=32,vocab_size=12,context=64,mlp_ratio=4.0,tie_embeddings=true,dropout=0.1'}
>>> job["training"]["local_batch_size"], job["training"]["mixed_precision_param"]
(2, 'bfloat16')
>>> try:
...     check_world(plan, 8)
... except ConfigError as e:
...     print(e)
phase 'a': runtime.microbatch = 2 does not divide the 1 rows per rank (8 rows over 8 data-parallel ranks)
>>> job["lr_scheduler"], job["checkpoint"]["async_mode"]
({'warmup_steps': 10, 'decay_ratio': None, 'decay_type': 'cosine', 'min_lr_factor': 0.1}, 'disabled')
"""

from __future__ import annotations

import os
from typing import Any, Optional

from procdsl.plan.model import AdamW, Plan
from procdsl.rundir import CHECKPOINTS

#: the dataloader factory plan-driven jobs use
STREAM_FACTORY = "procdsl.runtime.batches:build_stream"
CHECKPOINT_FOLDER = CHECKPOINTS
GPT2_SPEC, LLAMA_SPEC = "procdsl_gpt2", "procdsl_llama"


class ConfigError(ValueError):
    """A plan that cannot run in the requested setting (world size, shard groups)."""


def resolve_optimizer(plan: Plan, index: int) -> AdamW:
    """The AdamW settings phase ``index`` trains with (``continue`` looks back).

    >>> from procdsl.plan import ContinueOptimizer
    >>> plan = Plan.model_construct(phases=[type("P", (), {"optimizer": AdamW(lr=0.1)})(),
    ...                                     type("P", (), {"optimizer": ContinueOptimizer()})()])
    >>> resolve_optimizer(plan, 1).lr
    0.1
    """
    for phase in reversed(plan.phases[: index + 1]):
        if isinstance(phase.optimizer, AdamW):
            return phase.optimizer
    return AdamW()


def schedule_config(schedule: Any, steps: int) -> dict[str, Any]:
    """TorchTitan's ``lr_scheduler`` section for a plan schedule over ``steps`` steps.

    TorchTitan's schedule is warm-up (linear), stable, decay (``decay_ratio`` of the steps,
    ``None`` = all after warm-up) to ``min_lr_factor``. ``constant`` is a decay of zero steps;
    ``wsd`` decays over its last ``decay`` steps.

    >>> from procdsl.plan import Constant, Wsd
    >>> schedule_config(Constant(warmup=5), 100)["decay_ratio"], schedule_config(Wsd(decay=20), 100)["decay_ratio"]
    (0.0, 0.2)
    """
    kind = schedule.kind
    config = {
        "warmup_steps": int(schedule.warmup),
        "decay_ratio": None,
        "decay_type": "linear",
        "min_lr_factor": float(getattr(schedule, "min", 0.0)),
    }
    if kind == "constant":
        config["decay_ratio"] = 0.0
    elif kind == "cosine":
        config["decay_type"] = "cosine"
    elif kind == "wsd":
        config["decay_ratio"] = min(schedule.decay / steps, 1.0)
    elif kind != "linear":
        raise ConfigError(f"unknown schedule {kind!r}")
    return config


def max_context(plan: Plan) -> int:
    """Rows of the position table: the largest context any phase trains or evaluates at."""
    return max([plan.context] + [p.context for p in plan.phases])


def model_section(plan: Plan, vocab_size: int, *, packed: bool = False) -> dict[str, str]:
    """``{"name", "flavor"}``: the registered TrainSpec and the shape spelled as a flavor
    (``packed``: the phase lays out packed rows, which llama attends to with flex attention)."""
    m = plan.model
    shape = {
        "layers": m.layers,
        "heads": m.heads,
        "dim": m.dim,
        "vocab_size": vocab_size,
        "context": max_context(plan),
    }
    if m.kind == "gpt2":
        shape |= {"mlp_ratio": m.mlp_ratio, "tie_embeddings": m.tie_embeddings, "dropout": m.dropout}
        name = GPT2_SPEC
    else:
        shape |= {"multiple_of": m.multiple_of, "rope_theta": m.rope_theta}
        if m.kv_heads is not None:
            shape["kv_heads"] = m.kv_heads
        if m.ffn_dim_multiplier is not None:
            shape["ffn_dim_multiplier"] = m.ffn_dim_multiplier
        if packed:
            shape["flex"] = True
        name = LLAMA_SPEC
    flavor = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in shape.items())
    return {"name": name, "flavor": flavor}


def data_parallel(plan: Plan, world: int) -> int:
    """The data-parallel ranks (those that read different rows): world / tensor-parallel degree."""
    tp = plan.runtime.parallel.tp
    if world % tp:
        raise ConfigError(f"tp({tp}) needs a world size divisible by {tp}, not {world}")
    return world // tp


def check_world(plan: Plan, world: int) -> None:
    """What ``world`` ranks need of the plan, checked before training (``ConfigError`` names
    the phase): the data-parallel ranks divide every batch, and ``runtime.microbatch`` divides
    each rank's share of it."""
    dp, microbatch = data_parallel(plan, world), plan.runtime.microbatch
    parallelism_section(plan, world)
    for phase in plan.phases:
        if phase.batch % dp:
            raise ConfigError(
                f"phase {phase.name!r}: the batch of {phase.batch} rows cannot be split "
                f"over {dp} ranks (the data-parallel ranks must divide the batch)"
            )
        if microbatch is not None and (phase.batch // dp) % microbatch:
            raise ConfigError(
                f"phase {phase.name!r}: runtime.microbatch = {microbatch} does not "
                f"divide the {phase.batch // dp} rows per rank ({phase.batch} rows "
                f"over {dp} data-parallel ranks)"
            )


def parallelism_section(plan: Plan, world: int) -> dict[str, Any]:
    """FSDP over the data-parallel ranks, or HSDP when ``fsdp(shard=k)`` names smaller shard
    groups; tensor parallelism of ``tp(n)`` (loss parallelism off: the per-source losses need
    whole logits).

    >>> from procdsl.plan import Fsdp, Runtime
    >>> plan = Plan.model_construct(runtime=Runtime(parallel=Fsdp(shard=2)))
    >>> parallelism_section(plan, 4)["data_parallel_replicate_degree"]
    2
    """
    parallel = plan.runtime.parallel
    dp, shard = data_parallel(plan, world), parallel.shard
    section: dict[str, Any] = {"tensor_parallel_degree": parallel.tp, "disable_loss_parallel": True}
    if shard is None or shard >= dp:
        return section | {"data_parallel_shard_degree": -1, "data_parallel_replicate_degree": 1}
    if dp % shard:
        raise ConfigError(f"fsdp(shard={shard}) needs data-parallel ranks divisible by {shard}, not {dp}")
    return section | {"data_parallel_shard_degree": shard, "data_parallel_replicate_degree": dp // shard}


def phase_job_config(
    plan: Plan,
    index: int,
    *,
    vocab_size: int,
    out: str,
    device: str,
    world: int,
    plan_path: str = "",
    cache_dir: str = "",
    store: Optional[str] = None,
) -> dict[str, Any]:
    """The job config (nested dicts) for training phase ``index`` of ``plan`` on ``world`` ranks."""
    phase = plan.phases[index]
    check_world(plan, world)
    optimizer = resolve_optimizer(plan, index)
    runtime = plan.runtime
    return {
        "job": {"dump_folder": out, "description": f"procdsl {plan.name} / {phase.name}"},
        "model": model_section(plan, vocab_size, packed=phase.layout == "packed"),
        "training": {
            "local_batch_size": runtime.microbatch or phase.batch // data_parallel(plan, world),
            "global_batch_size": phase.batch,
            "seq_len": phase.context,
            "steps": phase.steps,
            "max_norm": float(optimizer.clip) if optimizer.clip is not None else float("inf"),
            "dtype": "float32",
            "mixed_precision_param": "bfloat16" if runtime.dtype == "bf16" else "float32",
            "gc_freq": 50,
        },
        "optimizer": {
            "name": "AdamW",
            "lr": optimizer.lr,
            "beta1": optimizer.betas[0],
            "beta2": optimizer.betas[1],
            "eps": optimizer.eps,
            "weight_decay": optimizer.weight_decay,
            "implementation": "fused",
        },
        "lr_scheduler": schedule_config(phase.schedule, phase.steps),
        "parallelism": parallelism_section(plan, world),
        "checkpoint": {
            "enable": True,
            "folder": CHECKPOINT_FOLDER,
            "interval": 1,
            "last_save_model_only": False,
            "keep_latest_k": 0,
            "async_mode": "async" if runtime.async_checkpoint else "disabled",
        },
        "activation_checkpoint": {"mode": runtime.activation_checkpoint},
        "compile": {"enable": runtime.compile, "components": ["model"]},
        "metrics": {"log_freq": 1, "enable_tensorboard": False},
        "debug": {"seed": phase.seed},
        "procdsl": {
            "device": device,
            "dataloader": STREAM_FACTORY,
            "plan": plan_path or os.path.join(out, "plan.json"),
            "phase": phase.name,
            "cache_dir": cache_dir,
            "store": "-" if store is None else store,
        },
    }
