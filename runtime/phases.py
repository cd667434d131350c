"""Executing a plan's phases in one process: one TorchTitan trainer per phase, handed over in turn.

:class:`PhaseTrainer` is ``procdsl.runtime.titan.ProcdslTrainer`` (TorchTitan's ``Trainer``)
for one phase — its job config from ``procdsl.runtime.jobconfig``, its data from the phase's
``PhaseStream`` — with four additions: the frozen components of the phase's ``transfer``
(``requires_grad = False``, and the optimizer rebuilt over the rest); a training step that
also yields the per-source losses; the evals of the phase; and
:class:`~procdsl.runtime.checkpoint.RunState` in every checkpoint.

**The step** is TorchTitan's: ``gradient_accumulation_steps`` microbatches of
``runtime.microbatch`` rows (``forward_backward_step``), loss = sum over target tokens / the
global count of target tokens, so the gradient, the loss and every metric are those of the
whole batch whatever the microbatch. It never waits for the device: the per-source sums, the
gradient norm and the finiteness check stay there, the update of a step with a NaN/inf loss or
gradient norm is skipped there (fused AdamW's ``found_inf``; every later step too), and the
metrics of all steps since the last read are copied to the host in one go every
``runtime.log_every`` steps, before an eval or a checkpoint, and at the phase's end
(:meth:`PhaseTrainer.read_metrics`). That read writes one record per step and raises
:class:`TrainingDiverged` at the first skipped step, so no checkpoint ever holds one.

:class:`PhaseRunner` runs the plan, phase by phase::

    for each phase i:                     global steps (start_i, end_i]
        trainer_i = PhaseTrainer(i)       fresh model, seeded with the phase's seed
        if the checkpoint to resume is in (start_i, end_i]:  trainer_i.resume(step)
        elif i > 0:                       trainer_i.take_over(trainer_{i-1})   (transfer)
        trainer_i.train()                 steps → metrics, evals, checkpoints; at end_i an
                                          eval of every block and a full checkpoint
        lm_eval at end_i                  the phase's `eval { lm_eval(…) }`, if any (below)
        close trainer_{i-1}

**Checkpoints** (``procdsl.runtime.saving``): at every phase end, every
``runtime.checkpoint_every`` steps, every ``runtime.checkpoint_minutes`` of wall time, and when a
signal asks the run to stop (``procdsl.runtime.preempt``: the step finishes, the checkpoint is
saved, :class:`~procdsl.runtime.preempt.Stopped` ends the run). Each is complete once its
sidecar is written (``procdsl.runtime.sidecar``).

**lm-eval at a phase's end** (``phase.lm_eval``): once the phase-end checkpoint is complete,
rank 0 exports it and runs the tasks in a child process (``procdsl.runtime.harness``), then
logs one record per task — ``{"kind": "eval", "eval": "lm_eval", "task": …, "acc": …}`` at
the phase's last step — which ``summary.json`` lists under ``lm_eval/<task>``. The other ranks
wait for rank 0's outcome in a broadcast, which fails after ``runtime.comm_timeout`` seconds
(600 by default): a multi-rank run whose tasks take longer needs a larger ``comm_timeout``. A
run resumed from that checkpoint finds the records in ``metrics.jsonl`` and does not evaluate
again; one stopped or killed during lm-eval has none, and evaluates on resume.

**Resume.** The newest complete checkpoint ``step-N`` decides (``procdsl.runtime.resume``: rank 0
checks its plan and data, every rank learns the outcome). Phases ending before ``N`` are
skipped; the phase holding ``N`` is built and loads everything (model, optimizer, schedule,
stream, RNG, step). If ``N`` ends that phase (a boundary checkpoint), the phase has nothing
left to do and the next one takes over from it exactly as in an uninterrupted run: the next
model's initialisation depends only on its seed, and what it takes comes from weights that
the checkpoint restored bit for bit. Hence a run killed at any step and rerun logs the same
losses, bit for bit, on the CPU. Records past ``N`` in ``metrics.jsonl`` (logged after the
last checkpoint) are dropped before training resumes, and TensorBoard hides its events past
``N``; a rerun without a checkpoint starts a fresh log (the old one kept as ``metrics.jsonl.1``).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from typing import Any, Optional

import torch
import torch.distributed as dist
from torchtitan.components.loss import IGNORE_INDEX
from torchtitan.tools.logging import logger

from procdsl import rundir
from procdsl.atomic import atomic_write
from procdsl.plan import ContinueOptimizer, Plan, to_json
from procdsl.store.runs import data_store, prepare_stores

from . import checkpoint, flops, harness, internals, preflight, resume, tracking, transfer
from .checkpoint import KEY, RunState, checkpoint_path, stored_keys, stored_shapes
from .console import RunConsole
from .evaluate import Evaluator, due
from .jobconfig import CHECKPOINT_FOLDER, ConfigError, check_world, max_context, phase_job_config
from .losses import source_sums, token_losses
from .metrics import RunLog
from .ownership import PlanMismatch
from .preempt import Agreement, Stopped, StopRequest
from .saving import Saver, due_by_step
from .titan import ProcdslTrainer, job_config_from_dict


class TrainingDiverged(RuntimeError):
    """The loss (or gradient norm) stopped being finite."""


class PhaseTrainer(ProcdslTrainer):
    """TorchTitan's trainer for phase ``index`` of the runner's plan (module docstring)."""

    def __init__(self, runner: PhaseRunner, index: int):
        self.runner, self.index = runner, index
        self.plan: Plan = runner.plan
        self.phase = self.plan.phases[index]
        self.offset = runner.offsets[index]
        config = job_config_from_dict(runner.job_dict(index))
        with warnings.catch_warnings():
            # TorchTitan builds torch.autocast("cpu", float32) for float32 runs, which warns and
            # does nothing; we replace it with a null context below.
            warnings.filterwarnings("ignore", message="In CPU autocast, but the target dtype")
            # DTensor's RNG works on CPU meshes (it is what initialises sharded parameters)
            warnings.filterwarnings("ignore", message=r"DTensor .* may not have complete support on cpu")
            super().__init__(config)
        self.kind = self.plan.model.kind
        if config.training.mixed_precision_param == "float32":
            internals.disable_float32_autocast(self)  # CPU autocast cannot do float32
        spec = self.phase.transfer
        self.frozen = transfer.freeze(self.model, spec.freeze, kind=self.kind) if spec else []
        if self.frozen:  # optimizer and schedule over the trainable parameters only
            internals.rebuild_optimizers(self)
        self.dataloader.strict = not runner.force_replan
        self.sources = self.dataloader.sources
        self.vocab = self.dataloader.stream.vocab
        self.run_state = RunState(rank=runner.rank, device=self.device.type)
        internals.add_checkpoint_state(self, KEY, self.run_state)
        self.flops_per_token = flops.flops_per_token(
            self.plan.model, vocab=self.vocab.size, context=max_context(self.plan), seq_len=self.phase.context
        )
        self.evaluator = Evaluator(
            self.plan,
            self.phase,
            rank=runner.rank,
            world=runner.world,
            cache_dir=runner.cache_dir,
            tokenizer=self.vocab.tokenizer,
            store=runner.store,
        )
        self.log_every = self.plan.runtime.log_every
        self._unread: list[tuple[dict[str, Any], torch.Tensor]] = []  # (host fields, device stats)
        self._diverged = torch.zeros((), dtype=torch.bool, device=self.device)
        self._read_at = time.perf_counter()
        self.last_loss = float("nan")
        logger.info("procdsl: phase %s: %s", self.phase.name, self.precision_and_compile())

    def precision_and_compile(self) -> str:
        """What this trainer actually does with ``runtime.dtype`` and ``runtime.compile``, read
        from the objects that train (the autocast context, the FSDP policy, the model's blocks)."""
        amp = self.maybe_enable_amp
        if isinstance(amp, torch.autocast):
            compute = f"autocast {amp.fast_dtype}"
        elif self.parallel_dims.fsdp_enabled:
            compute = f"FSDP param dtype {self.job_config.training.mixed_precision_param}"
        else:
            compute = "float32"
        compiled = internals.compiled_modules(self.model)
        return f"compute {compute}; compiled modules {compiled}"

    @property
    def model(self) -> torch.nn.Module:
        return self.model_parts[0]

    @property
    def global_step(self) -> int:
        return self.offset + self.step

    # ---------------------------------------------------------------------- start of phase

    def take_over(self, previous: PhaseTrainer) -> dict[str, Any]:
        """Apply this phase's ``transfer`` from the previous phase's trainer."""
        spec = self.phase.transfer
        if spec is None:
            from procdsl.plan import Transfer

            spec = Transfer()
        previous.optimizers.zero_grad()  # the last step's gradients: never needed again
        rows = transfer.row_map(previous.vocab.ranges, self.vocab.ranges)
        transfer.apply_transfer(
            previous.model, self.model, spec, kind=self.kind, rows=rows, seed=self.phase.seed
        )
        carried: list[str] = []
        if isinstance(self.phase.optimizer, ContinueOptimizer):
            # moments of perturbed weights describe other values: those start fresh
            unchanged = set(spec.keep) - set(getattr(spec, "perturb", {}))
            carried = transfer.continue_optimizer(
                previous.optimizers,
                previous.model,
                self.optimizers,
                self.model,
                keep=unchanged,
                kind=self.kind,
            )
        return {
            "kept": list(spec.keep),
            "reinit": list(spec.reinit),
            "frozen": self.frozen,
            "perturbed": {c: p.kind for c, p in getattr(spec, "perturb", {}).items()},
            "optimizer_state_carried": len(carried),
        }

    def resume(self, global_step: int) -> None:
        """Load the checkpoint of ``global_step`` (inside this phase) completely."""
        path = checkpoint_path(self.checkpointer.folder, global_step)
        if self.runner.force_replan:  # the plan changed: would its tensors still fit?
            model = internals.checkpointed_model_shapes(self)
            problem = resume.shape_error(stored_shapes(path), model, path=path)
            if problem:
                raise ConfigError(problem)
        self.run_state.available = stored_keys(path)
        try:
            checkpoint.load(self.checkpointer, path)
        finally:
            self.run_state.available = None
        if self.global_step != global_step:
            raise RuntimeError(
                f"{path} holds phase step {self.step}, expected "
                f"{global_step - self.offset} of phase {self.phase.name!r}"
            )
        if not self.run_state.restored_rng:
            self.runner.console.note(
                f"note: {path} has no RNG state for rank {self.runner.rank}; continuing from the phase's seed"
            )

    # ------------------------------------------------------------------------ training

    def _reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over the data-parallel ranks, on ``tensor``'s device."""
        if not self.parallel_dims.dp_enabled:
            return tensor
        reduced = tensor.to(self.device)
        dist.all_reduce(reduced, group=internals.batch_group(self))
        return reduced.to(tensor.device)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host batch tensor on the device without a host sync (pinned, asynchronous on CUDA)."""
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def post_dataloading_process(self, input_dict: dict[str, torch.Tensor], labels: torch.Tensor):
        """TorchTitan's hook, without its tokenizer-made attention masks: a packed row's
        ``positions`` and ``document`` travel as model inputs and each procdsl model builds its
        own document mask from them (``models.gpt2.document_mask``, ``models.llama``)."""
        if self.parallel_dims.cp_enabled:
            raise ConfigError("context parallelism is not supported by procdsl's rows yet")
        inputs = input_dict["input"]
        return inputs, labels, {k: v for k, v in input_dict.items() if k != "input"}, {}

    def forward_backward_step(
        self, *, input_dict: dict[str, torch.Tensor], labels: torch.Tensor, global_valid_tokens: torch.Tensor
    ) -> torch.Tensor:
        """TorchTitan's hook for one microbatch: forward (every key of ``input_dict`` but
        ``input`` and ``source`` is a keyword argument of the model), the loss over the global
        count of target tokens, backward; adds the microbatch's per-source sums on the device."""
        source = input_dict.pop("source")
        inputs, labels, extra_inputs, extra_kwargs = self.post_dataloading_process(input_dict, labels)
        with self.train_context(), self.maybe_enable_amp:
            logits = self.model(inputs, **extra_inputs, **extra_kwargs)
            losses = token_losses(logits, labels)
            loss = losses.sum() / global_valid_tokens
        del logits
        loss.backward()
        self._sums += source_sums(losses, labels, source, len(self.sources))
        return loss.detach()

    def train_step(self, data_iterator) -> dict[str, Any]:  # type: ignore[override]
        """One optimizer step, without a host sync: ``{"lr", "stats"}``, where ``stats`` (on the
        device) holds the global per-source sums, the gradient norm and whether the step was
        skipped as non-finite (:meth:`read_metrics` turns it into a record)."""
        self.optimizers.zero_grad()
        lr = internals.current_lr(self)
        microbatches = [next(data_iterator) for _ in range(self.gradient_accumulation_steps)]
        local_valid = sum((labels != IGNORE_INDEX).sum() for _, labels in microbatches)
        global_valid = self._reduce(self._to_device(local_valid.to(torch.float32)))
        self._sums = torch.zeros(3 * len(self.sources), dtype=torch.float64, device=self.device)
        for input_dict, labels in microbatches:
            input_dict = {
                k: self._to_device(v) if isinstance(v, torch.Tensor) else v for k, v in input_dict.items()
            }
            self.forward_backward_step(
                input_dict=input_dict,
                labels=self._to_device(labels),
                global_valid_tokens=global_valid.clamp(min=1.0),
            )
        grad_norm = internals.clip_gradients(self)
        sums = self._reduce(self._sums)
        self._diverged |= ~(torch.isfinite(sums[: len(self.sources)].sum()) & torch.isfinite(grad_norm))
        internals.skip_update_if(self.optimizers, self._diverged)
        internals.wait_for_staging(self)
        self.optimizers.step()
        self.lr_schedulers.step()
        stats = torch.cat(
            [
                sums,
                grad_norm.detach().to(torch.float64).reshape(1),
                self._diverged.to(torch.float64).reshape(1),
            ]
        )
        return {"lr": lr, "stats": stats}

    def state_dict(self) -> dict[str, Any]:
        """TorchTitan's ``train_state``, which every checkpoint saves: the unread metrics are read
        first, so a checkpoint never holds a step skipped as non-finite (the read raises)."""
        self.read_metrics()
        return super().state_dict()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Copy the metrics of the steps since the last read to the host (one transfer), write
        a record per step and return them; raise :class:`TrainingDiverged` at a skipped step.
        Every checkpoint reads first (:meth:`state_dict`)."""
        if not self._unread:
            return []
        unread, self._unread = self._unread, []
        rows = torch.stack([stats for _, stats in unread]).cpu().tolist()
        now = time.perf_counter()
        tokens_per_step = self.phase.batch * self.phase.context
        tokens_per_s = len(rows) * tokens_per_step / max(now - self._read_at, 1e-9)
        self._read_at = now
        n, runner = len(self.sources), self.runner
        peak = runner.peak_flops * runner.world if runner.peak_flops else None
        records = []
        for (fields, _), row in zip(unread, rows):
            loss_sums, targets, norm, skipped = row[:n], row[n : 2 * n], row[3 * n], row[3 * n + 1]
            total = sum(targets)
            loss = sum(loss_sums) / total if total else float("nan")
            if skipped:
                runner.log.flush()
                what = (
                    f"the loss is {loss}"
                    if not math.isfinite(loss)
                    else f"the gradient norm is {norm}"
                    if not math.isfinite(norm)
                    else "training diverged at an earlier step; skipped"
                )
                raise TrainingDiverged(
                    f"{what} at step {fields['step']} (phase {self.phase.name!r}, "
                    f"step {fields['phase_step']} of {self.phase.steps}); that "
                    "update was not applied"
                )
            record = {
                "kind": "train",
                "step": fields["step"],
                "phase": self.phase.name,
                "phase_step": fields["phase_step"],
                "loss": loss,
            }
            record |= {
                f"loss/{s}": (total / t if t else float("nan"))
                for s, total, t in zip(self.sources, loss_sums, targets)
            }
            step_shares = dict(fields["shares"])  # of real tokens; padding on its own
            pad = step_shares.pop("pad", 0.0)
            record |= {f"share/{s}": v for s, v in step_shares.items()}
            record |= {f"share_total/{s}": v for s, v in fields["shares_total"].items()}
            record["pad"] = pad
            record |= {
                "lr": fields["lr"],
                "grad_norm": norm,
                "tokens": fields["tokens"],
                "tokens_per_s": tokens_per_s,
                "mfu": flops.mfu(self.flops_per_token, tokens_per_s=tokens_per_s, peak_flops=peak),
                "step_time_s": fields["step_time_s"],
                "data_wait_s": fields["data_wait_s"],
                "time": fields["time"],
            }
            runner.log.write(record)
            records.append(record)
        self.last_loss = records[-1]["loss"]
        runner.console.advance(records[-1]["phase_step"], self.last_loss, tokens_per_s)
        return records

    def train(self) -> None:  # type: ignore[override]
        """Train the phase's remaining steps: metrics, progress, evals, checkpoints."""
        runner, phase = self.runner, self.phase
        if self.step >= phase.steps:
            return
        runner.console.start_phase(phase.name, phase.steps, self.step)
        tokens_per_step = phase.batch * phase.context
        data_iterator = self.batch_generator(self.dataloader)
        began, first = time.perf_counter(), self.step
        self._read_at = began
        while self.step < phase.steps:
            self.step += 1
            self.gc_handler.run(self.step)
            loading = internals.data_loading_times(self)  # filled by batch_generator
            loading.clear()  # (only TorchTitan's log empties it)
            start = time.perf_counter()
            result = self.train_step(data_iterator)
            fields = {
                "step": self.global_step,
                "phase_step": self.step,
                "lr": result["lr"],
                "shares": self.dataloader.step_shares(),
                "shares_total": self.dataloader.achieved_shares(),
                "tokens": runner.tokens_before(self.index) + self.step * tokens_per_step,
                "step_time_s": time.perf_counter() - start,
                "data_wait_s": sum(loading),
                "time": time.time(),
            }
            self._unread.append((fields, result["stats"]))
            last = self.step == phase.steps
            evaluations = due(phase.eval, step=self.step, steps=phase.steps)
            # also right after the first step, so a log without a terminal shows progress at once
            if last or evaluations or self.step % self.log_every == 0 or self.step == first + 1:
                self.read_metrics()
            for evaluation in evaluations:
                self.evaluate(evaluation)
            runner.after_step(self)  # checkpoints and stops: procdsl.runtime.saving, .preempt
        wall = time.perf_counter() - began
        rate = (self.step - first) * tokens_per_step / wall if wall > 0 else 0.0
        runner.log.flush()
        runner.console.end_phase(
            f"{phase.name}  {self.step}/{phase.steps}  loss "
            f"{self.last_loss:.4f}  {rate:,.0f} tok/s  {wall:.0f} s"
        )

    def evaluate(self, evaluation: Any) -> dict[str, Any]:
        amp = internals.autocast_of(self)
        stats = self.evaluator.run(
            self.model, evaluation, device=self.device, amp=amp, reduce=self._reduce, kind=self.kind
        )
        record = {
            "kind": "eval",
            "step": self.global_step,
            "phase": self.phase.name,
            "phase_step": self.step,
            "eval": evaluation.kind,
            "source": evaluation.source,
            **stats,
        }
        self.runner.log.write(record)
        return record


class PhaseRunner:
    """Runs every phase of ``plan`` in this process (one rank of ``world``); see the module docstring."""

    def __init__(
        self,
        plan: Plan,
        *,
        out: str,
        device: str,
        rank: int,
        world: int,
        force_replan: bool = False,
        console: Optional[RunConsole] = None,
        stop: Optional[StopRequest] = None,
    ):
        self.plan, self.out, self.device = plan, out, device
        self.rank, self.world, self.force_replan = rank, world, force_replan
        self.plan_json = to_json(plan)
        self.plan_path = os.path.join(out, rundir.PLAN_FILE)
        self.cache_dir = os.path.join(out, "cache")
        self.store = data_store(os.environ)
        self.checkpoints = os.path.join(out, CHECKPOINT_FOLDER)
        self.offsets = [sum(p.steps for p in plan.phases[:i]) for i in range(len(plan.phases))]
        self.console = console or RunConsole(enabled=rank == 0)
        self.log = RunLog(out, enabled=False)  # the real one once resume is decided
        self.peak_flops = flops.peak_flops(device, plan.runtime.dtype)
        self.resumed_from: Optional[int] = None
        self.stop = stop or StopRequest()
        self.segment_start, self.wall_before = time.monotonic(), 0.0
        self.data: dict[str, Any] = {}  # data fingerprints (rank 0)
        self.saver: Optional[Saver] = None
        self.agreement: Optional[Agreement] = None

    def wall_time(self) -> float:
        """Seconds of wall time of the run: earlier segments (up to the resumed checkpoint) + this one."""
        return self.wall_before + time.monotonic() - self.segment_start

    def job_dict(self, index: int) -> dict[str, Any]:
        from procdsl.stream import PhaseVocab

        vocab = PhaseVocab.for_phase(self.plan, self.plan.phases[index], cache_dir=self.cache_dir)
        return phase_job_config(
            self.plan,
            index,
            vocab_size=vocab.size,
            out=self.out,
            device=self.device,
            world=self.world,
            plan_path=self.plan_path,
            cache_dir=self.cache_dir,
            store=self.store,
        )

    def tokens_before(self, index: int) -> int:
        return sum(p.tokens for p in self.plan.phases[:index])

    def checkpoint_to_resume(self) -> Optional[int]:
        """The step of the checkpoint to resume (``procdsl.runtime.resume``), or None. Rank 0
        decides; every rank gets its step or raises the same error (collective)."""
        outcome: list[Any] = [None]
        refusal: Optional[Exception] = None
        if self.rank == 0:
            try:
                chosen = resume.choose(
                    self.checkpoints,
                    self.plan,
                    self.plan_json,
                    data=self.data,
                    force=self.force_replan,
                    note=self.console.note,
                )
                outcome[0] = (
                    "ok",
                    None if chosen is None else (chosen[0], chosen[1].get("wall_time_s", 0.0)),
                )
            except (PlanMismatch, ConfigError) as refused:  # DataChanged is a ConfigError
                outcome[0], refusal = ("refused", str(refused)), refused
        if self.world > 1:
            dist.broadcast_object_list(outcome, src=0)
        kind, payload = outcome[0]
        if kind == "refused":
            raise refusal if refusal is not None else ConfigError(payload)
        if payload is None:
            return None
        step, wall = payload
        self.wall_before = float(wall) if isinstance(wall, (int, float)) else 0.0
        return step

    def preflight(self) -> None:
        """Fail before training, not at phase 3: every phase's batch splits over the ranks, every
        data source opens and every eval has held-out documents (``procdsl.runtime.preflight``:
        a DataError names the file otherwise); rank 0 fingerprints the data for the checkpoints."""
        check_world(self.plan, self.world)
        packed = [p.name for p in self.plan.phases if p.layout == "packed"]
        if self.plan.model.kind == "llama" and packed and self.device != "cuda":
            raise ConfigError(
                f"phase {packed[0]!r} packs rows, which llama attends to with flex "
                "attention, and PyTorch runs flex attention's backward on CUDA only: "
                "train it on a GPU, or set `layout = padded` in that phase, or use gpt2"
            )
        infos = preflight.check_data(self.plan, note=self.console.note)
        if self.store is not None:
            prepare_stores(self.plan, self.store, announce=self.rank == 0)
        if self.rank == 0:
            self.data = preflight.fingerprints(
                self.plan, infos, os.path.join(self.cache_dir, "fingerprints.json")
            )

    def open_log(self, resume_step: Optional[int]) -> None:
        """Rank 0's ``metrics.jsonl`` and TensorBoard events, continued from ``resume_step``
        (later records dropped, bad lines reported) or started afresh (old ones rotated aside)."""
        metrics = os.path.join(self.out, rundir.METRICS_FILE)
        purge = None
        if self.rank == 0 and resume_step is not None:
            _, bad = rundir.truncate_records(metrics, resume_step)
            if bad:
                self.console.note(rundir.describe_bad(metrics, bad))
            purge = resume_step + 1
        elif self.rank == 0 and os.path.exists(metrics):
            kept = rundir.rotate(metrics)
            if os.path.isdir(os.path.join(self.out, rundir.TENSORBOARD)):
                rundir.rotate(os.path.join(self.out, rundir.TENSORBOARD))
            self.console.note(f"no checkpoint to resume: a fresh log (the previous one is {kept})")
        self.log = RunLog(self.out, enabled=self.rank == 0, purge_step=purge)
        self.log.trackers = tracking.trackers(self.plan, self.out, enabled=self.rank == 0)

    def checkpoint_record(self, trainer: PhaseTrainer) -> dict[str, Any]:
        """The sidecar of the checkpoint ``trainer`` is saving (``procdsl.runtime.sidecar``)."""
        return {
            "plan_hash": self.plan.hash,
            "plan_json": self.plan_json,
            "phase": trainer.phase.name,
            "phase_index": trainer.index,
            "phase_step": trainer.step,
            "global_step": trainer.global_step,
            "world": self.world,
            "wall_time_s": round(self.wall_time(), 3),
            "data": self.data,
        }

    def after_step(self, trainer: PhaseTrainer) -> None:
        """Checkpoint when due (``procdsl.runtime.saving``); on an agreed stop, raise Stopped."""
        self.saver.poll()
        step = trainer.global_step
        stop, timed = self.agreement.exchange([int(self.stop.requested), int(self.saver.due_by_time())])
        end = trainer.step == trainer.phase.steps
        if not (end or stop or timed or due_by_step(self.plan.runtime, step)):
            return
        path = self.saver.save(
            trainer.checkpointer, step, self.checkpoint_record(trainer), wait=end or bool(stop)
        )
        if stop and step < self.plan.total_steps:
            self.log.flush()
            raise Stopped(self.stop.name or "a signal on another rank", step, path)

    def lm_eval_at_end(self, trainer: PhaseTrainer) -> None:
        """The phase's ``lm_eval`` on its phase-end checkpoint, unless its records are already in
        ``metrics.jsonl`` (module docstring). Collective: rank 0 evaluates, every rank learns
        the outcome and raises the same error if it failed."""
        spec, phase = trainer.phase.lm_eval, trainer.phase
        if spec is None or trainer.step < phase.steps:
            return
        outcome: list[Any] = [("ok", None)]
        if self.rank == 0:
            outcome[0] = self._lm_eval(trainer, spec)
        if self.world > 1:
            dist.broadcast_object_list(outcome, src=0)  # waits at most runtime.comm_timeout
        kind, payload = outcome[0]
        if kind == "stopped":
            raise Stopped(
                self.stop.name or "a signal on rank 0",
                trainer.global_step,
                checkpoint_path(self.checkpoints, trainer.global_step),
            )
        if kind == "failed":
            raise harness.LmEvalFailed(payload)

    def _lm_eval(self, trainer: PhaseTrainer, spec: Any) -> tuple[str, Optional[str]]:
        """Rank 0's part of :meth:`lm_eval_at_end`: ``("ok" | "failed" | "stopped", message)``."""
        phase, step = trainer.phase, trainer.global_step
        done = [
            r
            for r in rundir.read_metrics(self.out)
            if r.get("kind") == "eval"
            and r.get("eval") == "lm_eval"
            and r.get("phase") == phase.name
            and r.get("step") == step
        ]
        if done:
            return "ok", None
        self.log.flush()
        self.console.note(f"{phase.name}: lm_eval {', '.join(spec.tasks)} on the checkpoint of step {step}")
        began = time.perf_counter()
        try:
            record = harness.evaluate_checkpoint(self.out, step, spec, device=self.device)
        except harness.LmEvalFailed as failed:
            return ("stopped", None) if self.stop.requested else ("failed", str(failed))
        shown = []
        for task in harness.task_records(record["results"]):
            self.log.write(
                {
                    "kind": "eval",
                    "step": step,
                    "phase": phase.name,
                    "phase_step": trainer.step,
                    "eval": "lm_eval",
                    **task,
                }
            )
            shown.append(
                f"{task['task']} "
                + ", ".join(
                    f"{k} {v:.4f}" for k, v in task.items() if isinstance(v, float) and "stderr" not in k
                )
            )
        self.console.note(
            f"{phase.name}: lm_eval in {time.perf_counter() - began:.0f} s: " + "; ".join(shown)
        )
        return "ok", None

    def begin(self, resume: Optional[int]) -> None:
        """What the phase trainers need before the first: the stop agreement between ranks, the
        run log (continued from ``resume``) and the checkpoint saver."""
        self.agreement = Agreement.for_world(self.world)
        self.open_log(resume)
        self.saver = Saver(
            self.checkpoints,
            runtime=self.plan.runtime,
            rank=self.rank,
            world=self.world,
            note=lambda text: logger.info("procdsl: %s", text),
            phase_ends={o + p.steps for o, p in zip(self.offsets, self.plan.phases)},
        )

    def run(self) -> None:
        self.preflight()
        resume = self.checkpoint_to_resume()
        self.begin(resume)
        if resume is not None:
            self.resumed_from = resume
            self.console.note(f"resuming from {checkpoint_path(self.checkpoints, resume)}")
        previous: Optional[PhaseTrainer] = None
        try:
            for index, phase in enumerate(self.plan.phases):
                start, end = self.offsets[index], self.offsets[index] + phase.steps
                if resume is not None and end < resume:
                    continue
                trainer = PhaseTrainer(self, index)
                try:
                    if resume is not None and start < resume <= end:
                        trainer.resume(resume)
                        resume = None
                    elif previous is not None:
                        done = trainer.take_over(previous)
                        self.console.note(
                            f"{phase.name}: kept {', '.join(done['kept']) or 'nothing'}; "
                            f"re-initialised {', '.join(done['reinit']) or 'nothing'}; "
                            f"frozen tensors: {len(done['frozen'])}; AdamW state kept for "
                            f"{done['optimizer_state_carried']} tensors"
                            + "".join(f"; {c} perturbed ({k})" for c, k in done["perturbed"].items())
                        )
                finally:
                    if previous is not None:
                        previous.close()
                        previous = None
                previous = trainer
                trainer.train()
                self.lm_eval_at_end(trainer)
            self.saver.finish()
        finally:
            try:
                self.saver.close()
            finally:
                if previous is not None:
                    previous.close()
                self.agreement.drain()
                self.log.close()


def summarize(
    out: str,
    plan: Plan,
    *,
    status: str,
    error: Optional[str],
    wall_time: float,
    resumed_from: Optional[int],
    segment_time: Optional[float] = None,
) -> dict[str, Any]:
    """``summary.json``: per phase the last training record and the phase-end evals.

    ``wall_time_s`` is the run's, summed over its segments (a stopped or killed run resumed
    later); ``segment_wall_time_s`` this process's part of it.
    """
    records = rundir.read_metrics(out)
    phases: dict[str, Any] = {}
    for phase in plan.phases:
        train = [r for r in records if r.get("kind") == "train" and r["phase"] == phase.name]
        evals = [r for r in records if r.get("kind") == "eval" and r["phase"] == phase.name]
        entry: dict[str, Any] = {"steps": phase.steps, "steps_done": train[-1]["phase_step"] if train else 0}
        if train:
            last = train[-1]
            entry["final_loss"] = last["loss"]
            tail = train[-10:]
            entry["final_loss_mean10"] = sum(r["loss"] for r in tail) / len(tail)
            entry |= {k: v for k, v in last.items() if k.startswith(("loss/", "share/", "share_total/"))}
            rates = [r["tokens_per_s"] for r in train]
            entry["median_tokens_per_s"] = sorted(rates)[len(rates) // 2]
        if evals:
            final_step = evals[-1]["phase_step"]
            skip = ("kind", "step", "phase", "phase_step", "eval", "source", "task", "targets")
            entry["eval"] = {
                f"{r['eval']}/{r.get('task') or r['source']}": {k: v for k, v in r.items() if k not in skip}
                for r in evals
                if r["phase_step"] == final_step
            }
        phases[phase.name] = entry
    trained = [r for r in records if r.get("kind") == "train"]
    summary = {
        "plan": plan.name,
        "hash": plan.hash,
        "status": status,
        "error": error,
        "steps": trained[-1]["step"] if trained else 0,
        "total_steps": plan.total_steps,
        "tokens": trained[-1]["tokens"] if trained else 0,
        "wall_time_s": round(wall_time, 3),
        "segment_wall_time_s": round(wall_time if segment_time is None else segment_time, 3),
        "resumed_from": resumed_from,
        "phases": phases,
    }
    atomic_write(os.path.join(out, rundir.SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary
