"""One rank of ``procdsl run``: set up the process, run the phases, write the summary, report.

:func:`execute` is the whole life of one training process: resolve the device, create the
process group (gloo on the CPU, NCCL on CUDA; a single process needs no launcher), route
TorchTitan's log to ``DIR/logs/rank_R.log``, optionally claim the run directory for the plan
(rank 0 decides, every rank learns the outcome), run :class:`~procdsl.runtime.phases.PhaseRunner`,
write ``summary.json`` (rank 0; also when the run fails), and leave the process as found
(process group destroyed, launcher variables and log handlers removed).

:func:`run_and_report` wraps it for command lines: it prints one ``error: …`` line for the
failures a user can act on (another plan in the directory, a diverged loss, a batch the world
size does not divide, a missing data file) and returns the exit code, 0 or 1 — never a
traceback (the rank's log file has it). :func:`dry_run` describes the run without training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Optional

from procdsl.data import DataError
from procdsl.plan import Plan, to_json

from . import flops, rundir
from .jobconfig import ConfigError, max_context, phase_job_config


class RunFailed(Exception):
    """The run stopped for a reason the message states (no traceback is shown)."""


# Exceptions whose message is the whole story for a user; anything else is an internal error.
USER_ERRORS = (RunFailed, rundir.PlanMismatch, ConfigError, DataError, ValueError, KeyError,
               FileNotFoundError, PermissionError)
# Raised alike on every rank (decided from shared state): reported by rank 0 only.
COLLECTIVE_ERRORS = (RunFailed, rundir.PlanMismatch, ConfigError)


def _log_to_file(out: str, rank: int) -> list[logging.Handler]:
    """Send the root logger (TorchTitan's) to ``DIR/logs/rank_R.log``; errors also to stderr on rank 0."""
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    handler = logging.FileHandler(os.path.join(out, "logs", f"rank_{rank}.log"))
    handler.setFormatter(logging.Formatter("[titan] %(asctime)s - %(levelname)s - %(message)s"))
    handlers: list[logging.Handler] = [handler]
    if rank == 0:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.ERROR)
        handlers.append(console)
    root = logging.getLogger()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(logging.INFO)
    return handlers


def execute(plan: Plan, *, out: str, device: str = "auto", force_replan: bool = False,
            claim: bool = False) -> dict[str, Any]:
    """Train ``plan`` as one rank of the job this process belongs to; returns the summary."""
    import torch
    import torch.distributed as dist

    from . import platform
    from .phases import PhaseRunner, TrainingDiverged, summarize

    device = platform.resolve_device(device, cuda_available=torch.cuda.is_available())
    added = platform.single_process_env(os.environ)
    os.environ.update(added)
    rank = int(os.environ["RANK"])
    handlers = _log_to_file(out, rank)
    root = logging.getLogger()
    level = root.level
    try:
        platform.adapt_torchtitan(device)
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        platform.init_process_group(device, timeout_seconds=600, trace_buf_size=20000,
                                    dump_folder=out)
        rank, world = dist.get_rank(), dist.get_world_size()
        if claim:
            _claim_everywhere(plan, out, force_replan, rank)
        runner = PhaseRunner(plan, out=out, device=device, rank=rank, world=world,
                             force_replan=force_replan)
        started = time.perf_counter()
        status, error, summary = "failed", None, {}
        try:
            runner.run()
            status = "done"
        except TrainingDiverged as diverged:
            last = _last_checkpoint(out)
            error = (f"{diverged}: training stopped. The last good checkpoint is {last or 'none'}; "
                     "a rerun would diverge again — change the plan (e.g. a lower lr) and rerun "
                     "with --force-replan to continue from it")
            status = "diverged"
            raise RunFailed(error) from None
        except rundir.PlanMismatch:
            status = None   # not this run's directory: leave its summary alone
            raise
        except BaseException as failure:
            error = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            if rank == 0 and status is not None:
                summary = summarize(out, plan, status=status, error=error,
                                    wall_time=time.perf_counter() - started,
                                    resumed_from=runner.resumed_from)
        return summary
    except BaseException:
        # the traceback goes to the rank's log file only; the command line prints one line
        handlers[0].handle(logging.LogRecord("procdsl", logging.ERROR, __file__, 0,
                                             "run failed:\n%s", (traceback.format_exc(),), None))
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        for name in added:
            os.environ.pop(name, None)
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(level)


def _claim_everywhere(plan: Plan, out: str, force: bool, rank: int) -> None:
    """Rank 0 claims the directory; every rank raises the same error if it may not."""
    import torch.distributed as dist

    outcome: list[Any] = [None]
    if rank == 0:
        try:
            diff = rundir.claim(out, to_json(plan), plan.hash, force=force)
            outcome[0] = ("ok", diff)
        except rundir.PlanMismatch as mismatch:
            outcome[0] = ("mismatch", (mismatch.where, mismatch.old_hash, mismatch.new_hash, mismatch.diff))
    dist.broadcast_object_list(outcome, src=0)
    kind, payload = outcome[0]
    if kind == "mismatch":
        raise rundir.PlanMismatch(*payload)


def _last_checkpoint(out: str) -> Optional[str]:
    from .checkpoint import checkpoint_path, latest_step

    folder = os.path.join(out, rundir.CHECKPOINTS)
    step = latest_step(folder)
    return None if step is None else checkpoint_path(folder, step)


def run_and_report(plan: Plan, *, out: str, device: str = "auto", force_replan: bool = False,
                   claim: bool = False) -> int:
    """:func:`execute`, then 0 on success, 1 with one ``error:`` line on failure."""
    try:
        summary = execute(plan, out=out, device=device, force_replan=force_replan, claim=claim)
    except USER_ERRORS as failure:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if isinstance(failure, COLLECTIVE_ERRORS) and rank != 0:
            return 1                                  # every rank has it; rank 0 says it once
        message = failure.args[0] if isinstance(failure, KeyError) and failure.args else failure
        where = f"[rank {rank}] " if world > 1 and not isinstance(failure, COLLECTIVE_ERRORS) else ""
        print(f"{where}error: {message}", file=sys.stderr)
        return 1
    except Exception as failure:  # a bug: say where the traceback is
        if os.environ.get("PROCDSL_DEBUG"):
            raise
        print(f"internal error: {type(failure).__name__}: {failure} (traceback in "
              f"{os.path.join(out, 'logs')}; set PROCDSL_DEBUG=1 to see it here)", file=sys.stderr)
        return 1
    if summary:
        print(format_summary(summary, out), file=sys.stderr)
    return 0


def format_summary(summary: dict[str, Any], out: str) -> str:
    """The closing lines of a run: per phase its final loss and phase-end evals."""
    lines = [f"done: {summary['plan']} — {summary['steps']} steps, {summary['tokens']:,} tokens "
             f"in {summary['wall_time_s']:.0f} s → {out}"]
    for name, phase in summary["phases"].items():
        text = f"  {name}: loss {phase.get('final_loss', float('nan')):.4f}"
        for key, values in phase.get("eval", {}).items():
            if key.startswith("attention_entropy/"):
                text += f", {key} {values['attention_entropy']:.3f} nats"
            else:
                text += f", {key} ppl {values['perplexity']:.3f} acc {values['accuracy']:.3f}"
        lines.append(text)
    return "\n".join(lines)


# ------------------------------------------------------------------------------ dry run


def dry_run(plan: Plan, *, out: str, world: int, device: str) -> str:
    """What ``procdsl run --dry-run`` prints: per phase the resolved TorchTitan job config, the
    parameter count, FLOPs per token and per step, and memory per rank."""
    from procdsl.stream import PhaseVocab

    from .titan import job_config_from_dict

    cache_dir = os.path.join(out, "cache")
    lines = [f"plan {plan.name} (hash {plan.hash[:12]}…): {len(plan.phases)} phases, "
             f"{plan.total_steps:,} steps, {plan.total_tokens:,} tokens; {world} rank(s) on {device}; "
             f"run directory {out}"]
    for index, phase in enumerate(plan.phases):
        vocab = PhaseVocab.for_phase(plan, phase, cache_dir=cache_dir)
        job = phase_job_config(plan, index, vocab_size=vocab.size, out=out, device=device,
                               world=world, cache_dir=cache_dir)
        resolved = dataclasses.asdict(job_config_from_dict(job))
        count = flops.count_params(plan.model, vocab=vocab.size, context=max_context(plan))
        per_token = flops.flops_per_token(plan.model, vocab=vocab.size, context=max_context(plan),
                                          seq_len=phase.context)
        shard = _shard_degree(plan, world)
        memory = flops.memory_estimate(plan.model, vocab=vocab.size, context=max_context(plan),
                                       seq_len=phase.context, local_batch=phase.batch // world,
                                       shard=shard, activation_bytes=2 if plan.runtime.dtype == "bf16" else 4,
                                       activation_checkpoint=plan.runtime.activation_checkpoint)
        per_step = per_token * phase.batch * phase.context
        lines += [
            "",
            f"phase {phase.name}: {phase.steps:,} steps × {phase.batch} × {phase.context} = "
            f"{phase.tokens:,} tokens; vocabulary {vocab.size} ({vocab!r})",
            f"  parameters       {count.params:,} ({count.embedding:,} in embeddings, "
            f"{count.dense:,} dense)",
            f"  FLOPs per token  {per_token:,}",
            f"  FLOPs per step   {per_step:,} ({per_step * phase.steps:.3e} for the phase)",
            "  memory per rank  " + ", ".join(f"{k} {flops.human_bytes(v)}" for k, v in memory.as_dict().items())
            + f"  (FSDP shard group of {shard})",
            "  TorchTitan job config:",
            "    " + json.dumps(resolved, indent=2, default=str).replace("\n", "\n    "),
        ]
    return "\n".join(lines)


def _shard_degree(plan: Plan, world: int) -> int:
    shard = plan.runtime.parallel.shard
    return world if shard is None or shard >= world else shard
