"""``procdsl eval``: lm-evaluation-harness tasks on a run's exported model.

The run's checkpoint is exported once (``procdsl.runtime.export``) to
``RUN/export/step-N/`` — reused while its ``procdsl_export.json`` names the same step and plan
hash — and handed to lm-eval's Hugging Face model (``hf``, float32, on the CPU unless CUDA is
asked for). ``include_path`` adds task definitions from a folder of YAML files, so a task whose
data is a local file runs offline. The results (every metric of every task, with its stderr)
are written to ``RUN/lm_eval/step-N.json``; a metric lm-eval reports as NaN (a stderr of one
example, say) is written as ``null``.

>>> finite({"acc": 0.5, "acc_stderr": float("nan"), "alias": "t"})
{'acc': 0.5, 'acc_stderr': None, 'alias': 't'}
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Optional, Sequence

from procdsl.rundir import PLAN_FILE

from .export import ExportError, Exported, export_run, resolve_step


def finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with NaN and ±inf numbers replaced by None (JSON's null)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


def exported_model(run_dir: str, step: Optional[int]) -> Exported | str:
    """``RUN/export/step-N`` for the checkpoint ``step`` (exported now unless already there)."""
    step = resolve_step(run_dir, step)
    folder = os.path.join(run_dir, "export", f"step-{step}")
    stamp = os.path.join(folder, "procdsl_export.json")
    plan_hash = json.load(open(os.path.join(run_dir, PLAN_FILE), encoding="utf-8"))["hash"]
    if os.path.isfile(stamp):
        info = json.load(open(stamp, encoding="utf-8"))
        if info.get("step") == step and info.get("plan_hash") == plan_hash:
            return folder
    return export_run(run_dir, folder, step)


def run_tasks(run_dir: str, tasks: Sequence[str], *, step: Optional[int] = None,
              include_path: Optional[str] = None, limit: Optional[int] = None,
              batch_size: int = 8, device: str = "cpu") -> dict[str, Any]:
    """Evaluate ``tasks`` on the export of ``run_dir``; ``{"model", "step", "results"}``."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as missing:
        raise ExportError(f"`procdsl eval` needs lm-eval ({missing.name} is missing): "
                          "pip install 'procdsl[eval]'") from None
    exported = exported_model(run_dir, step)
    folder = exported if isinstance(exported, str) else exported.folder
    step = json.load(open(os.path.join(folder, "procdsl_export.json"), encoding="utf-8"))["step"]
    manager = TaskManager(include_path=include_path) if include_path else TaskManager()
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        hint = "" if include_path else " (a local task: --include-path DIR with its YAML)"
        raise ExportError(f"unknown lm-eval task(s): {', '.join(unknown)}{hint}")
    output = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": folder, "dtype": "float32"}, tasks=list(tasks),
        task_manager=manager, device=device, batch_size=batch_size, limit=limit,
        log_samples=False)
    results = {task: finite({k: v for k, v in metrics.items()})
               for task, metrics in output["results"].items()}
    record = {"model": folder, "step": step, "tasks": list(tasks), "limit": limit,
              "results": results}
    target = os.path.join(run_dir, "lm_eval", f"step-{step}.json")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, allow_nan=False)
        f.write("\n")
    record["file"] = target
    return record
