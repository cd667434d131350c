"""Per-step metrics as JSON lines: TorchTitan's metrics processor, also writing ``metrics.jsonl``.

Contract: TorchTitan 0.2.2's ``Trainer.train_step`` calls ``metrics_processor.log(step,
global_avg_loss, global_max_loss, grad_norm, extra_metrics={"n_tokens_seen", "lr"})`` on every
rank whenever ``should_log(step)`` (step 1 and every ``metrics.log_freq`` steps); the losses are
already reduced over data-parallel ranks. Rank 0 appends one JSON object per logged step to
``<job.dump_folder>/metrics.jsonl``::

    {"step": 1, "loss": 4.17, "max_loss": 4.19, "grad_norm": 1.3, "lr": 0.001, "tokens": 512}

``tokens`` counts every input position this rank has seen (masked or not), summed over ranks.
Console, TensorBoard and W&B logging stay TorchTitan's.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch.distributed as dist
from torchtitan.components.metrics import MetricsProcessor

METRICS_FILE = "metrics.jsonl"


class JsonlMetricsProcessor(MetricsProcessor):
    """``MetricsProcessor`` that also appends each logged step to ``metrics.jsonl`` (rank 0)."""

    def __init__(self, job_config: Any, parallel_dims: Any, tag: str | None = None):
        super().__init__(job_config, parallel_dims, tag)
        self.path = os.path.join(job_config.job.dump_folder, METRICS_FILE)

    def log(self, step: int, global_avg_loss: float, global_max_loss: float, grad_norm: float,
            extra_metrics: dict[str, Any] | None = None) -> None:
        super().log(step, global_avg_loss, global_max_loss, grad_norm, extra_metrics)
        if dist.is_initialized() and dist.get_rank() != 0:
            return
        extra = extra_metrics or {}
        record = {"step": step, "loss": float(global_avg_loss), "max_loss": float(global_max_loss),
                  "grad_norm": float(grad_norm), "lr": extra.get("lr"),
                  "tokens": int(extra.get("n_tokens_seen", 0))}
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def build_metrics_processor(job_config: Any, parallel_dims: Any, model_args: Any = None,
                            tag: str | None = None) -> JsonlMetricsProcessor:
    """``TrainSpec.build_metrics_processor_fn``: the Trainer passes ``(job_config, parallel_dims, model_args)``."""
    del model_args
    return JsonlMetricsProcessor(job_config, parallel_dims, tag)


def read_metrics(dump_folder: str) -> list[dict[str, Any]]:
    """The records of ``<dump_folder>/metrics.jsonl``, in order."""
    with open(os.path.join(dump_folder, METRICS_FILE), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
