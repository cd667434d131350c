"""Per-step metrics as JSON lines: TorchTitan's metrics processor, also writing ``metrics.jsonl``.

Contract: TorchTitan 0.2.2's ``Trainer.train_step`` calls ``metrics_processor.log(step,
global_avg_loss, global_max_loss, grad_norm, extra_metrics={"n_tokens_seen", "lr"})`` on every
rank whenever ``should_log(step)`` (step 1 and every ``metrics.log_freq`` steps); the losses are
already reduced over data-parallel ranks. Rank 0 appends one JSON object per logged step to
``<job.dump_folder>/metrics.jsonl``::

    {"step": 1, "loss": 4.17, "max_loss": 4.19, "grad_norm": 1.3, "lr": 0.001, "tokens": 512}

``tokens`` counts every input position this rank has seen (masked or not), summed over ranks.
Console, TensorBoard and W&B logging stay TorchTitan's.

``procdsl run`` does not go through the metrics processor (its phase trainer computes per-source
losses TorchTitan does not know about): it writes :class:`RunLog` records instead — the same
file name, richer records (``kind``, ``phase``, ``loss/<source>``, ``share/<source>``,
``tokens_per_s``, ``mfu``, evals) — and their TensorBoard events.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import torch.distributed as dist
from torchtitan.components.metrics import MetricsProcessor

from procdsl.rundir import METRICS_FILE, TENSORBOARD

from .tracking import scalars


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one line of JSON; NaN and ±inf (a diverged loss) become ``null``.

    >>> json_line({"step": 3, "loss": float("nan"), "lr": 0.001})
    '{"step": 3, "loss": null, "lr": 0.001}\\n'
    """
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


class JsonlMetricsProcessor(MetricsProcessor):
    """``MetricsProcessor`` that also appends each logged step to ``metrics.jsonl`` (rank 0)."""

    def __init__(self, job_config: Any, parallel_dims: Any, tag: str | None = None):
        super().__init__(job_config, parallel_dims, tag)
        self.path = os.path.join(job_config.job.dump_folder, METRICS_FILE)

    def log(
        self,
        step: int,
        global_avg_loss: float,
        global_max_loss: float,
        grad_norm: float,
        extra_metrics: dict[str, Any] | None = None,
    ) -> None:
        super().log(step, global_avg_loss, global_max_loss, grad_norm, extra_metrics)
        if dist.is_initialized() and dist.get_rank() != 0:
            return
        extra = extra_metrics or {}
        record = {
            "step": step,
            "loss": float(global_avg_loss),
            "max_loss": float(global_max_loss),
            "grad_norm": float(grad_norm),
            "lr": extra.get("lr"),
            "tokens": int(extra.get("n_tokens_seen", 0)),
        }
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json_line(record))


def build_metrics_processor(
    job_config: Any, parallel_dims: Any, model_args: Any = None, tag: str | None = None
) -> JsonlMetricsProcessor:
    """``TrainSpec.build_metrics_processor_fn``: the Trainer passes ``(job_config, parallel_dims, model_args)``."""
    del model_args
    return JsonlMetricsProcessor(job_config, parallel_dims, tag)


class RunLog:
    """A procdsl run's record (rank 0): ``metrics.jsonl`` lines and TensorBoard scalars.

    One JSON object per line, appended and flushed as it happens, so a killed run loses at
    most the line being written (``procdsl.rundir.truncate_records`` repairs that
    on resume, and drops the records logged after the checkpoint). ``kind`` tells the two record types apart::

        {"kind": "train", "step": 12, "phase": "warmup", "phase_step": 12, "loss": 2.31,
         "loss/sort": 2.31, "share/sort": 1.0, "share_total/sort": 1.0, "pad": 0.47,
         "lr": 0.001, "grad_norm": 0.8,
         "tokens": 49152, "tokens_per_s": 10240.0, "mfu": 0.21, "step_time_s": 4.8,
         "data_wait_s": 0.002, "time": 1795000000.0}
        {"kind": "eval", "step": 300, "phase": "code", "phase_step": 300, "eval": "perplexity",
         "source": "heldout", "loss": 1.9, "perplexity": 6.7, "accuracy": 0.52, "targets": 16380}
        {"kind": "eval", "step": 300, "phase": "code", "phase_step": 300, "eval": "lm_eval",
         "task": "arc_easy", "acc": 0.31, "acc_stderr": 0.02}

    ``share/<source>`` is the source's share of the step's real tokens (padding excluded),
    ``share_total/<source>`` the same over the phase so far, and ``pad`` the padding's share of
    all the step's tokens.
    ``step`` counts optimizer steps over the whole run (the ``N`` of ``checkpoints/step-N``).
    ``step_time_s`` is the wall time of the step (``tokens_per_s`` = tokens / it),
    ``data_wait_s`` the part of it spent in the dataloader's ``next()``, and ``time`` the Unix
    time at which the step ended (so ``time - step_time_s`` is when it began).
    TensorBoard gets every number: ``train/<key>`` and ``eval/<source>/<key>`` (an lm-eval
    record: ``eval/<task>/<key>``; ``procdsl.runtime.tracking.scalars``), at ``step``.
    Ranks other than 0 hold a disabled log that writes nothing. A resumed run passes
    ``purge_step`` (the checkpoint's step + 1): TensorBoard then hides the events a previous
    segment logged from that step on, so no step is shown twice.
    """

    def __init__(
        self, folder: str, *, enabled: bool = True, tensorboard: bool = True, purge_step: int | None = None
    ):
        self.path = os.path.join(folder, METRICS_FILE)
        self.enabled = enabled
        self._tb = None
        self.trackers: list[Any] = []  # procdsl.runtime.tracking: each gets every record
        if enabled:
            os.makedirs(folder, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # tensorboard is optional: metrics.jsonl is the record
                    SummaryWriter = None
                if SummaryWriter is not None:
                    self._tb = SummaryWriter(os.path.join(folder, TENSORBOARD), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json_line(record))
        if self._tb is not None:
            for name, value in scalars(record).items():
                self._tb.add_scalar(name, value, record["step"])
        for tracker in self.trackers:
            tracker.log(record)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()
        self.trackers = []
        if self._tb is not None:
            self._tb.close()
            self._tb = None
