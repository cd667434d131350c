"""Executing a plan's phases in one process: one TorchTitan trainer per phase, handed over in turn.

:class:`PhaseTrainer` is ``procdsl.runtime.titan.ProcdslTrainer`` (TorchTitan's ``Trainer``)
for one phase — its job config from ``procdsl.runtime.jobconfig``, its data from the phase's
``PhaseStream`` — with four additions: the frozen components of the phase's ``transfer``
(``requires_grad = False``, and the optimizer rebuilt over the rest); a training step that
also yields the per-source losses and stops before the optimizer step on a NaN/inf loss; the
evals of the phase; and :class:`~procdsl.runtime.checkpoint.RunState` in every checkpoint.

:class:`PhaseRunner` runs the plan, phase by phase::

    for each phase i:                     global steps (start_i, end_i]
        trainer_i = PhaseTrainer(i)       fresh model, seeded with the phase's seed
        if the checkpoint to resume is in (start_i, end_i]:  trainer_i.resume(step)
        elif i > 0:                       trainer_i.take_over(trainer_{i-1})   (transfer)
        trainer_i.train()                 steps → metrics, evals, checkpoints; at end_i an
                                          eval of every block and a full checkpoint
        close trainer_{i-1}

**Resume.** The newest complete checkpoint ``step-N`` decides. Phases ending before ``N`` are
skipped; the phase holding ``N`` is built and loads everything (model, optimizer, schedule,
stream, RNG, step). If ``N`` ends that phase (a boundary checkpoint), the phase has nothing
left to do and the next one takes over from it exactly as in an uninterrupted run: the next
model's initialisation depends only on its seed, and what it takes comes from weights that
the checkpoint restored bit for bit. Hence a run killed at any step and rerun logs the same
losses, bit for bit, on the CPU. Records past ``N`` in ``metrics.jsonl`` (logged after the
last checkpoint) are dropped before training resumes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from typing import Any, Optional

import torch
import torch.distributed as dist
from torchtitan.components.checkpoint import LR_SCHEDULER, OPTIMIZER
from torchtitan.distributed import utils as dist_utils
from torchtitan.tools.logging import logger

from procdsl.plan import ContinueOptimizer, Plan, to_json

from . import flops, transfer
from .checkpoint import (KEY, RunState, checkpoint_path, latest_step, read_run_state, stored_keys,
                         truncate_records)
from .console import RunConsole
from .evaluate import Evaluator, due
from .jobconfig import CHECKPOINT_FOLDER, ConfigError, max_context, phase_job_config
from .losses import means, source_sums, token_losses
from .metrics import RunLog
from .rundir import METRICS_FILE, PlanMismatch, plan_diff
from .titan import ProcdslTrainer, job_config_from_dict


class TrainingDiverged(RuntimeError):
    """The loss (or gradient norm) stopped being finite."""


class PhaseTrainer(ProcdslTrainer):
    """TorchTitan's trainer for phase ``index`` of the runner's plan (module docstring)."""

    def __init__(self, runner: "PhaseRunner", index: int):
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
            self.maybe_enable_amp = contextlib.nullcontext()   # CPU autocast cannot do float32
        spec = self.phase.transfer
        self.frozen = transfer.freeze(self.model, spec.freeze, kind=self.kind) if spec else []
        if self.frozen:
            self._rebuild_optimizer()
        self.dataloader.strict = not runner.force_replan
        self.sources = self.dataloader.sources
        self.vocab = self.dataloader.stream.vocab
        self.run_state = RunState(plan_hash=self.plan.hash, plan_json=runner.plan_json,
                                  phase=self.phase.name, phase_index=index, step_offset=self.offset,
                                  rank=runner.rank, device=self.device.type, trainer=self)
        self.checkpointer.states[KEY] = self.run_state
        self.flops_per_token = flops.flops_per_token(
            self.plan.model, vocab=self.vocab.size, context=max_context(self.plan),
            seq_len=self.phase.context)
        self.evaluator = Evaluator(self.plan, self.phase, rank=runner.rank, world=runner.world,
                                   cache_dir=runner.cache_dir, tokenizer=self.vocab.tokenizer)
        logger.info("procdsl: phase %s: %s", self.phase.name, self.precision_and_compile())

    def precision_and_compile(self) -> str:
        """What this trainer actually does with ``runtime.dtype`` and ``runtime.compile``, read
        from the objects that train (the autocast context, the FSDP policy, the model's blocks)."""
        from torch._dynamo.eval_frame import OptimizedModule

        amp = self.maybe_enable_amp
        if isinstance(amp, torch.autocast):
            compute = f"autocast {amp.fast_dtype}"
        elif self.parallel_dims.fsdp_enabled:
            compute = f"FSDP param dtype {self.job_config.training.mixed_precision_param}"
        else:
            compute = "float32"
        compiled = sum(isinstance(m, OptimizedModule) for m in self.model.modules())
        return f"compute {compute}; compiled modules {compiled}"

    @property
    def model(self) -> torch.nn.Module:
        return self.model_parts[0]

    @property
    def global_step(self) -> int:
        return self.offset + self.step

    def _rebuild_optimizer(self) -> None:
        """Optimizer and schedule over the trainable parameters only (after freezing)."""
        config = self.job_config
        self.optimizers = self.train_spec.build_optimizers_fn(self.model_parts, config.optimizer,
                                                              self.parallel_dims)
        self.lr_schedulers = self.train_spec.build_lr_schedulers_fn(
            self.optimizers, config.lr_scheduler, config.training.steps)
        self.metrics_processor.optimizers = self.optimizers
        self.checkpointer.states[OPTIMIZER] = self.optimizers
        self.checkpointer.states[LR_SCHEDULER] = self.lr_schedulers

    # ---------------------------------------------------------------------- start of phase

    def take_over(self, previous: "PhaseTrainer") -> dict[str, Any]:
        """Apply this phase's ``transfer`` from the previous phase's trainer."""
        spec = self.phase.transfer
        if spec is None:
            from procdsl.plan import Transfer

            spec = Transfer()
        rows = transfer.row_map(previous.vocab.ranges, self.vocab.ranges)
        transfer.apply_transfer(previous.model, self.model, spec, kind=self.kind, rows=rows,
                                seed=self.phase.seed)
        carried: list[str] = []
        if isinstance(self.phase.optimizer, ContinueOptimizer):
            # moments of perturbed weights describe other values: those start fresh
            unchanged = set(spec.keep) - set(getattr(spec, "perturb", {}))
            carried = transfer.continue_optimizer(previous.optimizers, previous.model,
                                                  self.optimizers, self.model, keep=unchanged,
                                                  kind=self.kind)
        return {"kept": list(spec.keep), "reinit": list(spec.reinit), "frozen": self.frozen,
                "perturbed": {c: p.kind for c, p in getattr(spec, "perturb", {}).items()},
                "optimizer_state_carried": len(carried)}

    def resume(self, global_step: int) -> None:
        """Load the checkpoint of ``global_step`` (inside this phase) completely."""
        path = checkpoint_path(self.checkpointer.folder, global_step)
        self.run_state.available = stored_keys(path)
        try:
            self.checkpointer.load(step=global_step)
        finally:
            self.run_state.available = None
        if self.global_step != global_step:
            raise RuntimeError(f"{path} holds phase step {self.step}, expected "
                               f"{global_step - self.offset} of phase {self.phase.name!r}")
        if not self.run_state.restored_rng:
            self.runner.console.note(f"note: {path} has no RNG state for rank {self.runner.rank}; "
                                     "continuing from the phase's seed")

    # ------------------------------------------------------------------------ training

    def _reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.parallel_dims.dp_enabled:
            return tensor
        reduced = tensor.to(self.device)
        dist.all_reduce(reduced, group=self.parallel_dims.get_mesh("batch").get_group())
        return reduced.cpu()

    def train_step(self, data_iterator) -> dict[str, Any]:  # type: ignore[override]
        """One optimizer step; returns the step's global metrics (TorchTitan's step, plus
        per-source sums; raises :class:`TrainingDiverged` before updating on a NaN/inf)."""
        self.optimizers.zero_grad()
        lr = self.lr_schedulers.schedulers[0].get_last_lr()[0]
        microbatches = [next(data_iterator) for _ in range(self.gradient_accumulation_steps)]
        local_valid = sum(int((labels != -100).sum()) for _, labels in microbatches)
        global_valid = self._reduce(torch.tensor([float(local_valid)], dtype=torch.float64))[0]
        denominator = max(float(global_valid), 1.0)
        n = len(self.sources)
        sums = torch.zeros(3 * n, dtype=torch.float64)
        model = self.model
        for input_dict, labels in microbatches:
            inputs = input_dict["input"].to(self.device)
            labels = labels.to(self.device)
            with self.train_context(), self.maybe_enable_amp:
                logits = model(inputs)
                losses = token_losses(logits, labels)
                loss = losses.sum() / denominator
            del logits
            loss.backward()
            sums += source_sums(losses, labels, input_dict["source"], n).cpu()
        grad_norm = dist_utils.clip_grad_norm_(
            [p for m in self.model_parts for p in m.parameters()], self.job_config.training.max_norm,
            foreach=True, pp_mesh=None, ep_enabled=False)
        sums = self._reduce(sums)
        stats = means(sums, n)
        total = float(sums[n:2 * n].sum())
        loss_value = float(sums[:n].sum()) / total if total else float("nan")
        norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm)):
            what = "loss" if not math.isfinite(loss_value) else "gradient norm"
            raise TrainingDiverged(f"the {what} is {loss_value if what == 'loss' else norm} at "
                                   f"step {self.global_step} (phase {self.phase.name!r}, step "
                                   f"{self.step} of {self.phase.steps})")
        self.checkpointer.maybe_wait_for_staging()
        self.optimizers.step()
        self.lr_schedulers.step()
        return {"loss": loss_value, "per_source": stats["loss"], "grad_norm": norm, "lr": lr}

    def train(self) -> None:  # type: ignore[override]
        """Train the phase's remaining steps: metrics, progress, evals, checkpoints."""
        runner, phase = self.runner, self.phase
        if self.step >= phase.steps:
            return
        runner.console.start_phase(phase.name, phase.steps, self.step)
        tokens_per_step = phase.batch * phase.context
        peak = runner.peak_flops * runner.world
        data_iterator = self.batch_generator(self.dataloader)
        began, first = time.perf_counter(), self.step
        result: dict[str, Any] = {}
        while self.step < phase.steps:
            self.step += 1
            self.gc_handler.run(self.step)
            loading = self.metrics_processor.data_loading_times   # filled by batch_generator
            loading.clear()                                       # (only TorchTitan's log empties it)
            start = time.perf_counter()
            result = self.train_step(data_iterator)
            elapsed = time.perf_counter() - start
            data_wait = sum(loading)
            tokens_per_s = tokens_per_step / elapsed if elapsed > 0 else 0.0
            record = {"kind": "train", "step": self.global_step, "phase": phase.name,
                      "phase_step": self.step, "loss": result["loss"]}
            record |= {f"loss/{s}": v for s, v in zip(self.sources, result["per_source"])}
            record |= {f"share/{s}": v for s, v in self.dataloader.achieved_shares().items()}
            record |= {"lr": result["lr"], "grad_norm": result["grad_norm"],
                       "tokens": runner.tokens_before(self.index) + self.step * tokens_per_step,
                       "tokens_per_s": tokens_per_s,
                       "mfu": flops.mfu(self.flops_per_token, tokens_per_s=tokens_per_s, peak_flops=peak),
                       "step_time_s": elapsed, "data_wait_s": data_wait, "time": time.time()}
            runner.log.write(record)
            runner.console.advance(self.step, result["loss"], tokens_per_s)
            for evaluation in due(phase.eval, step=self.step, steps=phase.steps):
                self.evaluate(evaluation)
            self.checkpointer.save(self.global_step, last_step=self.step == phase.steps)
        wall = time.perf_counter() - began
        rate = (self.step - first) * tokens_per_step / wall if wall > 0 else 0.0
        runner.log.flush()
        runner.console.end_phase(f"{phase.name}  {self.step}/{phase.steps}  loss "
                                 f"{result.get('loss', float('nan')):.4f}  {rate:,.0f} tok/s  "
                                 f"{wall:.0f} s")

    def evaluate(self, evaluation: Any) -> dict[str, Any]:
        amp = None if isinstance(self.maybe_enable_amp, contextlib.nullcontext) else self.maybe_enable_amp
        stats = self.evaluator.run(self.model, evaluation, device=self.device, amp=amp,
                                   reduce=self._reduce, kind=self.kind)
        record = {"kind": "eval", "step": self.global_step, "phase": self.phase.name,
                  "phase_step": self.step, "eval": evaluation.kind, "source": evaluation.source,
                  **stats}
        self.runner.log.write(record)
        return record


class PhaseRunner:
    """Runs every phase of ``plan`` in this process (one rank of ``world``); see the module docstring."""

    def __init__(self, plan: Plan, *, out: str, device: str, rank: int, world: int,
                 force_replan: bool = False, console: Optional[RunConsole] = None):
        self.plan, self.out, self.device = plan, out, device
        self.rank, self.world, self.force_replan = rank, world, force_replan
        self.plan_json = to_json(plan)
        self.plan_path = os.path.join(out, "plan.json")
        self.cache_dir = os.path.join(out, "cache")
        self.checkpoints = os.path.join(out, CHECKPOINT_FOLDER)
        self.offsets = [sum(p.steps for p in plan.phases[:i]) for i in range(len(plan.phases))]
        self.console = console or RunConsole(enabled=rank == 0)
        self.log = RunLog(out, enabled=rank == 0)
        self.peak_flops = flops.peak_flops(device)
        self.resumed_from: Optional[int] = None

    def job_dict(self, index: int) -> dict[str, Any]:
        from procdsl.stream import PhaseVocab

        vocab = PhaseVocab.for_phase(self.plan, self.plan.phases[index], cache_dir=self.cache_dir)
        return phase_job_config(self.plan, index, vocab_size=vocab.size, out=self.out,
                                device=self.device, world=self.world, plan_path=self.plan_path,
                                cache_dir=self.cache_dir)

    def tokens_before(self, index: int) -> int:
        return sum(p.tokens for p in self.plan.phases[:index])

    def checkpoint_to_resume(self) -> Optional[int]:
        """The newest complete checkpoint, checked against the plan (PlanMismatch otherwise)."""
        step = latest_step(self.checkpoints)
        if step is None:
            return None
        path = checkpoint_path(self.checkpoints, step)
        state = read_run_state(path)
        if state["plan_hash"] != self.plan.hash:
            diff = plan_diff(state["plan_json"], self.plan_json)
            if not self.force_replan:
                raise PlanMismatch(path, state["plan_hash"], self.plan.hash, diff)
            self.console.note(f"--force-replan: resuming {path} under a different plan:\n{diff}")
        if step > self.plan.total_steps:
            raise ValueError(f"{path} is past the plan's last step ({self.plan.total_steps})")
        return step

    def preflight(self) -> None:
        """Fail before training, not at phase 3: every phase's batch splits over the ranks, and
        every data source the plan reads opens (a DataError names the file otherwise)."""
        from procdsl.data import validate

        for phase in self.plan.phases:
            if phase.batch % self.world:
                raise ConfigError(f"phase {phase.name!r}: the batch of {phase.batch} rows cannot be "
                                  f"split over {self.world} ranks (the world size must divide the batch)")
        used = dict.fromkeys(name for phase in self.plan.phases
                             for name in [*phase.mix, *(e.source for e in phase.eval)])
        for name in used:
            source = self.plan.sources[name]
            if not source.procedural:
                info = validate(source)
                self.console.note(f"source {name}: {info.description}")

    def run(self) -> None:
        self.preflight()
        resume = self.checkpoint_to_resume()
        if resume is not None:
            self.resumed_from = resume
            if self.rank == 0:
                truncate_records(os.path.join(self.out, METRICS_FILE), resume)
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
                            + "".join(f"; {c} perturbed ({k})" for c, k in done["perturbed"].items()))
                finally:
                    if previous is not None:
                        previous.close()
                        previous = None
                previous = trainer
                trainer.train()
        finally:
            if previous is not None:
                previous.close()
            self.log.close()


def summarize(out: str, plan: Plan, *, status: str, error: Optional[str], wall_time: float,
              resumed_from: Optional[int]) -> dict[str, Any]:
    """``summary.json``: per phase the last training record and the phase-end evals."""
    from .metrics import read_metrics

    path = os.path.join(out, METRICS_FILE)
    records = read_metrics(out) if os.path.isfile(path) else []
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
            entry |= {k: v for k, v in last.items() if k.startswith(("loss/", "share/"))}
            rates = [r["tokens_per_s"] for r in train]
            entry["median_tokens_per_s"] = sorted(rates)[len(rates) // 2]
        if evals:
            final_step = evals[-1]["phase_step"]
            skip = ("kind", "step", "phase", "phase_step", "eval", "source", "targets")
            entry["eval"] = {f"{r['eval']}/{r['source']}": {k: v for k, v in r.items() if k not in skip}
                             for r in evals if r["phase_step"] == final_step}
        phases[phase.name] = entry
    trained = [r for r in records if r.get("kind") == "train"]
    summary = {"plan": plan.name, "hash": plan.hash, "status": status, "error": error,
               "steps": trained[-1]["step"] if trained else 0, "total_steps": plan.total_steps,
               "tokens": trained[-1]["tokens"] if trained else 0, "wall_time_s": round(wall_time, 3),
               "resumed_from": resumed_from, "phases": phases}
    tmp = os.path.join(out, "summary.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "summary.json"))
    return summary
