"""Experiment trackers beside ``metrics.jsonl`` and TensorBoard: Weights & Biases.

``runtime { wandb = "project" }`` sends every record of the run log to a W&B run of that
project (rank 0 only): training records as ``train/<key>``, evals as ``eval/<source>/<key>`` —
the names TensorBoard gets — at the run's global ``step``. The W&B run is named after the
plan, carries the plan as its config, lives in ``DIR/wandb/``, and has an id derived from the
plan hash and the run directory, so a resumed run continues the same W&B run. Without network,
``WANDB_MODE=offline`` keeps everything on disk (``wandb sync DIR/wandb/offline-run-*`` uploads
it later).

>>> scalars({"kind": "eval", "step": 8, "source": "val", "loss": 1.5, "phase": "p", "ok": True})
{'eval/val/loss': 1.5}
>>> scalars({"kind": "eval", "step": 8, "eval": "lm_eval", "task": "arc_easy", "acc": 0.25})
{'eval/arc_easy/acc': 0.25}
>>> run_id("0123456789abcdef", "/runs/a") == run_id("0123456789abcdef", "/runs/a/")
True
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

#: keys of a record that are coordinates, not measurements
_COORDINATES = ("step", "phase_step", "time")


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a run-log record under their tracker names (``train/loss``, …)."""
    prefix = (
        "train" if record.get("kind") == "train" else f"eval/{record.get('task') or record.get('source')}"
    )
    return {
        f"{prefix}/{key}": value
        for key, value in record.items()
        if key not in _COORDINATES and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def run_id(plan_hash: str, out: str) -> str:
    """A W&B run id that is the same whenever this plan runs in this directory."""
    where = os.path.abspath(out).rstrip(os.sep)
    return f"{plan_hash[:8]}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


class WandbTracker:
    """One W&B run fed with run-log records (see the module docstring)."""

    def __init__(self, project: str, *, plan: Any, out: str):
        try:
            import wandb
        except ImportError:
            raise ValueError(
                "runtime { wandb = … } needs the wandb package: pip install 'procdsl[track]'"
            ) from None
        os.makedirs(out, exist_ok=True)
        self.run = wandb.init(
            project=project,
            name=plan.name,
            dir=out,
            id=run_id(plan.hash, out),
            resume="allow",
            config=json.loads(plan.model_dump_json()),
            reinit="finish_previous",
        )

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(scalars(record), step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()


def trackers(plan: Any, out: str, *, enabled: bool) -> list[Any]:
    """The trackers ``plan.runtime`` asks for (none on ranks other than 0)."""
    project: Optional[str] = getattr(plan.runtime, "wandb", None)
    if not enabled or not project:
        return []
    return [WandbTracker(project, plan=plan, out=out)]
