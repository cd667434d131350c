"""One rank of ``procdsl run``: set up the process, run the phases, write the summary, report.

:func:`execute` is the whole life of one training process: route ``SIGTERM``/``SIGINT``/
``SIGUSR1`` to a stop request (``procdsl.runtime.preempt``), resolve the device, create the
process group (gloo on the CPU, NCCL on CUDA; a single process needs no launcher; timeout
``runtime.comm_timeout``), optionally lock and claim the run directory for the plan (rank 0
decides, every rank learns the outcome; nothing is written before), route TorchTitan's log to
``DIR/logs/rank_R.log``, run :class:`~procdsl.runtime.phases.PhaseRunner`, write
``summary.json`` (rank 0; also when the run fails or stops), and leave the process as found
(signal handlers, process group, launcher variables and log handlers restored).

:func:`run_and_report` wraps it for command lines and returns the exit code: 0 done; 1 failed,
with one ``error: …`` line for the failures a user can act on (another plan in the directory, a
diverged loss, a batch the world size does not divide, a missing data file, a full disk) —
never a traceback (the rank's log file has it); :data:`~procdsl.runtime.preempt.EXIT_STOPPED`
(3) stopped by a signal after saving a checkpoint, whose path it prints: rerun to continue.
:func:`dry_run` describes the run without training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Optional

from procdsl import rundir
from procdsl.data import DataError
from procdsl.plan import Plan, to_json

from . import flops, ownership
from .harness import LmEvalFailed
from .jobconfig import ConfigError, max_context, phase_job_config
from .preempt import EXIT_STOPPED, Stopped, StopRequest
from .safeload import UnsafeCheckpoint
from .saving import SaveFailed


class RunFailed(Exception):
    """The run stopped for a reason the message states (no traceback is shown)."""


# Exceptions whose message is the whole story for a user; anything else is an internal error.
USER_ERRORS = (
    RunFailed,
    ownership.PlanMismatch,
    ownership.RunLocked,
    ConfigError,
    DataError,
    ValueError,
    KeyError,
    SaveFailed,
    UnsafeCheckpoint,
    OSError,
    LmEvalFailed,
)
# Raised alike on every rank (decided from shared state): reported by rank 0 only.
COLLECTIVE_ERRORS = (RunFailed, ownership.PlanMismatch, ownership.RunLocked, ConfigError, LmEvalFailed)
#: process group timeout when the plan's ``runtime.comm_timeout`` is unset
DEFAULT_COMM_TIMEOUT = 600


class QuietFileHandler(logging.FileHandler):
    """A log file that never prints "--- Logging error ---" tracebacks (a full disk must not
    bury the one-line error under them): the log is best effort, the run reports its own errors."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _log_to_file(out: str, rank: int) -> list[logging.Handler]:
    """Send the root logger (TorchTitan's) to ``DIR/logs/rank_R.log``; errors also to stderr on rank 0."""
    os.makedirs(os.path.join(out, rundir.LOGS), exist_ok=True)
    handler = QuietFileHandler(os.path.join(out, rundir.rank_log(rank)))
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


def execute(
    plan: Plan, *, out: str, device: str = "auto", force_replan: bool = False, claim: bool = False
) -> dict[str, Any]:
    """Train ``plan`` as one rank of the job this process belongs to; returns the summary.

    With ``claim`` rank 0 locks ``out`` (``ownership.locked``) and claims it for the plan; without,
    the caller has done both (``procdsl run`` holds the lock while its ranks run).
    """
    import torch
    import torch.distributed as dist

    from . import platform

    stop = StopRequest().install()
    device = platform.resolve_device(device, cuda_available=torch.cuda.is_available())
    added = platform.single_process_env(os.environ)
    os.environ.update(added)
    rank = int(os.environ["RANK"])
    handlers: list[logging.Handler] = []
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.ExitStack() as held:
            platform.adapt_torchtitan(device)
            if device == "cuda":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            timeout = getattr(plan.runtime, "comm_timeout", None) or DEFAULT_COMM_TIMEOUT
            platform.init_process_group(
                device, timeout_seconds=timeout, trace_buf_size=20000, dump_folder=out
            )
            rank, world = dist.get_rank(), dist.get_world_size()
            if claim:
                _claim_everywhere(plan, out, force_replan, rank, held)
            handlers = _log_to_file(out, rank)
            if device == "cuda":
                os.makedirs(os.path.join(out, "comm_traces"), exist_ok=True)  # NCCL's flight recorder
            return _train(
                plan, out=out, device=device, rank=rank, world=world, force_replan=force_replan, stop=stop
            )
    except BaseException:
        # the traceback goes to the rank's log file only; the command line prints one line
        if handlers:
            handlers[0].handle(
                logging.LogRecord(
                    "procdsl", logging.ERROR, __file__, 0, "run failed:\n%s", (traceback.format_exc(),), None
                )
            )
        raise
    finally:
        stop.restore()
        if dist.is_initialized():
            dist.destroy_process_group()
        for name in added:
            os.environ.pop(name, None)
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(level)


def _train(
    plan: Plan, *, out: str, device: str, rank: int, world: int, force_replan: bool, stop: StopRequest
) -> dict[str, Any]:
    """Run the phases and write ``summary.json`` (rank 0) whatever the outcome."""
    from .phases import PhaseRunner, TrainingDiverged, summarize

    runner = PhaseRunner(
        plan, out=out, device=device, rank=rank, world=world, force_replan=force_replan, stop=stop
    )
    status, error, summary = "failed", None, {}
    try:
        runner.run()
        status = "done"
    except TrainingDiverged as diverged:
        last = _last_checkpoint(out)
        error = (
            f"{diverged}: training stopped. The last good checkpoint is {last or 'none'}; "
            "a rerun would diverge again — change the plan (e.g. a lower lr) and rerun "
            "with --force-replan to continue from it"
        )
        status = "diverged"
        raise RunFailed(error) from None
    except Stopped as stopped:
        status, error = "stopped", str(stopped)
        raise
    except ownership.PlanMismatch:
        status = None  # not this run's directory: leave its summary alone
        raise
    except BaseException as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        if rank == 0 and status is not None:
            try:
                summary = summarize(
                    out,
                    plan,
                    status=status,
                    error=error,
                    wall_time=runner.wall_time(),
                    resumed_from=runner.resumed_from,
                    segment_time=time.monotonic() - runner.segment_start,
                )
            except OSError as failure:  # e.g. the disk is full: the run's own error comes first
                runner.console.note(
                    f"warning: cannot write {out}/summary.json: {failure.strerror or failure}"
                )
    return summary


def _claim_everywhere(plan: Plan, out: str, force: bool, rank: int, held: contextlib.ExitStack) -> None:
    """Rank 0 locks the directory (held until ``held`` closes) and claims it; every rank raises
    the same error if it may not."""
    import torch.distributed as dist

    outcome: list[Any] = [None]
    if rank == 0:
        try:
            held.enter_context(ownership.locked(out))
            diff = ownership.claim(out, to_json(plan), plan.hash, force=force)
            outcome[0] = ("ok", diff)
        except ownership.PlanMismatch as mismatch:
            outcome[0] = ("mismatch", (mismatch.where, mismatch.old_hash, mismatch.new_hash, mismatch.diff))
        except ownership.RunLocked as busy:
            outcome[0] = ("locked", str(busy))
    dist.broadcast_object_list(outcome, src=0)
    kind, payload = outcome[0]
    if kind == "mismatch":
        raise ownership.PlanMismatch(*payload)
    if kind == "locked":
        raise ownership.RunLocked(payload)


def _last_checkpoint(out: str) -> Optional[str]:
    from .checkpoint import latest_step
    from .sidecar import checkpoint_path

    folder = os.path.join(out, rundir.CHECKPOINTS)
    step = latest_step(folder)
    return None if step is None else checkpoint_path(folder, step)


def run_and_report(
    plan: Plan, *, out: str, device: str = "auto", force_replan: bool = False, claim: bool = False
) -> int:
    """:func:`execute`, then 0 on success, 1 with one ``error:`` line on failure, 3 when stopped."""
    try:
        summary = execute(plan, out=out, device=device, force_replan=force_replan, claim=claim)
    except Stopped as stopped:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"{stopped} (exit {EXIT_STOPPED})", file=sys.stderr)
        return EXIT_STOPPED
    except USER_ERRORS as failure:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if isinstance(failure, COLLECTIVE_ERRORS) and rank != 0:
            return 1  # every rank has it; rank 0 says it once
        message = failure.args[0] if isinstance(failure, KeyError) and failure.args else failure
        where = f"[rank {rank}] " if world > 1 and not isinstance(failure, COLLECTIVE_ERRORS) else ""
        print(f"{where}error: {message}", file=sys.stderr)
        return 1
    except Exception as failure:  # a bug: say where the traceback is
        if os.environ.get("PROCDSL_DEBUG"):
            raise
        print(
            f"internal error: {type(failure).__name__}: {failure} (traceback in "
            f"{os.path.join(out, 'logs')}; set PROCDSL_DEBUG=1 to see it here)",
            file=sys.stderr,
        )
        return 1
    if summary:
        print(format_summary(summary, out), file=sys.stderr)
    return 0


def format_summary(summary: dict[str, Any], out: str) -> str:
    """The closing lines of a run: per phase its final loss and phase-end evals."""
    lines = [
        f"done: {summary['plan']} — {summary['steps']} steps, {summary['tokens']:,} tokens "
        f"in {summary['wall_time_s']:.0f} s → {out}"
    ]
    for name, phase in summary["phases"].items():
        text = f"  {name}: loss {phase.get('final_loss', float('nan')):.4f}"
        for key, values in phase.get("eval", {}).items():
            if key.startswith("attention_entropy/"):
                text += f", {key} {values['attention_entropy']:.3f} nats"
            elif key.startswith("lm_eval/"):
                text += f", {key} " + " ".join(
                    f"{k} {v:.3f}" for k, v in values.items() if isinstance(v, float) and "stderr" not in k
                )
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
    lines = [
        f"plan {plan.name} (hash {plan.hash[:12]}…): {len(plan.phases)} phases, "
        f"{plan.total_steps:,} steps, {plan.total_tokens:,} tokens; {world} rank(s) on {device}; "
        f"run directory {out}"
    ]
    for index, phase in enumerate(plan.phases):
        vocab = PhaseVocab.for_phase(plan, phase, cache_dir=cache_dir)
        job = phase_job_config(
            plan, index, vocab_size=vocab.size, out=out, device=device, world=world, cache_dir=cache_dir
        )
        resolved = dataclasses.asdict(job_config_from_dict(job))
        count = flops.count_params(plan.model, vocab=vocab.size, context=max_context(plan))
        per_token = flops.flops_per_token(
            plan.model, vocab=vocab.size, context=max_context(plan), seq_len=phase.context
        )
        shard = _shard_degree(plan, world)
        # activations live for one microbatch at a time (gradient accumulation frees them)
        memory = flops.memory_estimate(
            plan.model,
            vocab=vocab.size,
            context=max_context(plan),
            seq_len=phase.context,
            local_batch=job["training"]["local_batch_size"],
            shard=shard,
            activation_bytes=2 if plan.runtime.dtype == "bf16" else 4,
            activation_checkpoint=plan.runtime.activation_checkpoint,
        )
        per_step = per_token * phase.batch * phase.context
        lines += [
            "",
            f"phase {phase.name}: {phase.steps:,} steps × {phase.batch} × {phase.context} = "
            f"{phase.tokens:,} tokens; vocabulary {vocab.size} ({vocab!r})",
            f"  parameters       {count.params:,} ({count.embedding:,} in embeddings, {count.dense:,} dense)",
            f"  FLOPs per token  {per_token:,}",
            f"  FLOPs per step   {per_step:,} ({per_step * phase.steps:.3e} for the phase)",
            "  memory per rank  "
            + ", ".join(f"{k} {flops.human_bytes(v)}" for k, v in memory.as_dict().items())
            + f"  (FSDP shard group of {shard})",
            "  TorchTitan job config:",
            "    " + json.dumps(resolved, indent=2, default=str).replace("\n", "\n    "),
        ]
    return "\n".join(lines)


def _shard_degree(plan: Plan, world: int) -> int:
    shard = plan.runtime.parallel.shard
    return world if shard is None or shard >= world else shard
