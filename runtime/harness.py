"""``procdsl eval`` and ``eval { lm_eval(…) }``: lm-evaluation-harness tasks on a run's exported model.

The run's checkpoint is exported once (``procdsl.runtime.export``) to
``RUN/export/step-N/`` — reused while its ``procdsl_export.json`` names the same step and plan
hash — and handed to lm-eval's Hugging Face model (``hf``, float32, on the CPU unless CUDA is
asked for). ``include_path`` adds task definitions from a folder of YAML files, so a task whose
data is a local file runs offline. The results (every metric of every task, with its stderr)
are written to ``RUN/lm_eval/step-N.json``; a metric lm-eval reports as NaN (a stderr of one
example, say) is written as ``null``.

>>> finite({"acc": 0.5, "acc_stderr": float("nan"), "alias": "t"})
{'acc': 0.5, 'acc_stderr': None, 'alias': 't'}

**At a phase's end** (``eval { lm_eval(tasks=[…]) }`` in the plan, :func:`evaluate_checkpoint`)
the same command runs as a child process, ``python -m procdsl.cli eval RUN --step N …``, on the
phase-end checkpoint: lm-eval seeds Python's, numpy's and torch's generators and sets up its
own logging, which must not touch the training process (its RNG is part of exact resume), and
the child is not a rank of the training job (the launcher's variables are left out of its
environment). Its output goes to ``RUN/logs/lm_eval_step-N.log``; :func:`task_records` turns
the results into run-log records, one per task.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from procdsl.rundir import LOGS, PLAN_FILE

from .export import Exported, ExportError, export_run, resolve_step


def finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with NaN and ±inf numbers replaced by None (JSON's null)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}


class LmEvalFailed(Exception):
    """lm-eval at a phase's end did not finish (the message names its log)."""


#: variables of a distributed launcher (torchrun, ``procdsl run``, SLURM's wrapper): the lm-eval
#: child of rank 0 is one process on its own, not a rank of the training job
LAUNCHER_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "ROLE_NAME",
    "MASTER_ADDR",
    "MASTER_PORT",
)


def metric_name(key: str) -> str:
    """lm-eval's ``metric,filter`` result key as a record key (the default filter ``none`` left out).

    >>> metric_name("acc,none"), metric_name("acc_stderr,none"), metric_name("exact_match,strict-match")
    ('acc', 'acc_stderr', 'exact_match/strict-match')
    """
    metric, _, filter_ = key.partition(",")
    return metric if filter_ in ("", "none") else f"{metric}/{filter_}"


def task_records(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``{"task", metric: value…}`` per task of lm-eval's results: its numbers (NaN → None),
    under :func:`metric_name` names; names and aliases dropped.

    >>> task_records({"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": None}})
    [{'task': 't', 'acc': 0.5, 'acc_stderr': None}]
    """
    return [
        {
            "task": task,
            **{
                metric_name(k): v
                for k, v in finite(metrics).items()
                if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
            },
        }
        for task, metrics in results.items()
    ]


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the lm-eval child: this one without the launcher's variables.

    >>> sorted(child_env({"RANK": "0", "WORLD_SIZE": "2", "HF_HUB_OFFLINE": "1", "TORCHELASTIC_RUN_ID": "x"}))
    ['HF_HUB_OFFLINE']
    """
    return {
        k: v for k, v in environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith("TORCHELASTIC_")
    }


def evaluate_checkpoint(run_dir: str, step: int, spec: Any, *, device: str = "cpu") -> dict[str, Any]:
    """Run the plan's ``lm_eval`` spec (``tasks``, ``limit``, ``include_path``, ``batch_size``)
    on checkpoint ``step`` of ``run_dir`` in a child process (module docstring); the record
    :func:`run_tasks` wrote. Raises :class:`LmEvalFailed` naming the log if the child fails."""
    command = [
        sys.executable,
        "-m",
        "procdsl.cli",
        "eval",
        run_dir,
        "--step",
        str(step),
        "--tasks",
        ",".join(spec.tasks),
        "--batch-size",
        str(spec.batch_size),
        "--device",
        device,
    ]
    if spec.limit is not None:
        command += ["--limit", str(spec.limit)]
    if spec.include_path is not None:
        command += ["--include-path", spec.include_path]
    log = os.path.join(run_dir, LOGS, f"lm_eval_step-{step}.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=child_env(os.environ)
        )
    if done.returncode != 0:
        lines = [
            line for line in open(log, encoding="utf-8", errors="replace").read().splitlines() if line.strip()
        ]
        errors = [line for line in lines if line.startswith("error: ")]
        why = (
            errors[-1].removeprefix("error: ")
            if errors
            else (lines[-1] if lines else f"exit {done.returncode}")
        )
        raise LmEvalFailed(f"lm_eval on the checkpoint of step {step} failed: {why} (log: {log})")
    return json.load(open(os.path.join(run_dir, "lm_eval", f"step-{step}.json"), encoding="utf-8"))


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


def result_lines(record: Mapping[str, Any]) -> list[str]:
    """``procdsl eval``'s lines: each task's metrics to four places, standard errors left out.

    >>> result_lines({"results": {"arc": {"acc,none": 0.25, "acc_stderr,none": 0.01, "alias": "arc"}}})
    ['arc: acc 0.2500']
    """
    return [
        f"{task}: "
        + ", ".join(
            f"{k.split(',')[0]} {v:.4f}"
            for k, v in metrics.items()
            if isinstance(v, float) and "stderr" not in k
        )
        for task, metrics in record["results"].items()
    ]


def run_tasks(
    run_dir: str,
    tasks: Sequence[str],
    *,
    step: Optional[int] = None,
    include_path: Optional[str] = None,
    limit: Optional[int] = None,
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate ``tasks`` on the export of ``run_dir``; ``{"model", "step", "results"}``."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as missing:
        raise ExportError(
            f"`procdsl eval` needs lm-eval ({missing.name} is missing): pip install 'procdsl[eval]'"
        ) from None
    exported = exported_model(run_dir, step)
    folder = exported if isinstance(exported, str) else exported.folder
    step = json.load(open(os.path.join(folder, "procdsl_export.json"), encoding="utf-8"))["step"]
    manager = TaskManager(include_path=include_path) if include_path else TaskManager()
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        hint = "" if include_path else " (a local task: --include-path DIR with its YAML)"
        raise ExportError(f"unknown lm-eval task(s): {', '.join(unknown)}{hint}")
    output = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": folder, "dtype": "float32"},
        tasks=list(tasks),
        task_manager=manager,
        device=device,
        batch_size=batch_size,
        limit=limit,
        log_samples=False,
    )
    results = {
        task: finite({k: v for k, v in metrics.items()}) for task, metrics in output["results"].items()
    }
    record = {"model": folder, "step": step, "tasks": list(tasks), "limit": limit, "results": results}
    target = os.path.join(run_dir, "lm_eval", f"step-{step}.json")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, allow_nan=False)
        f.write("\n")
    record["file"] = target
    return record
