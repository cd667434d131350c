"""Finding and reading run directories.

A run directory (``procdsl.rundir``) holds ``plan.json`` and ``metrics.jsonl`` (and, once
finished, ``summary.json``); a sweep writes one per variant under a common directory.
:func:`discover` finds them all; :func:`load_run` reads one (bad lines of ``metrics.jsonl``
skipped, as everywhere: ``procdsl.rundir.read_records``).

>>> import json, os, tempfile
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "a"))
>>> _ = open(os.path.join(root, "a", "metrics.jsonl"), "w").write(
...     '{"kind": "train", "step": 1, "phase": "p", "loss": 2.0, "tokens": 10}\\n{"kind": "tra')
>>> [os.path.basename(p) for p in discover([root])]
['a']
>>> [r["loss"] for r in load_run(os.path.join(root, "a")).train]  # a torn last line is skipped
[2.0]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from procdsl.rundir import CHECKPOINTS, METRICS_FILE, PLAN_FILE, SUMMARY_FILE, TENSORBOARD, read_metrics


class ReportError(Exception):
    """A run directory that cannot be read; the message names it."""


@dataclass
class Run:
    path: str
    plan: dict[str, Any]
    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    summary: Optional[dict[str, Any]] = None

    @property
    def name(self) -> str:
        return self.plan.get("name", os.path.basename(self.path))

    @property
    def seed(self) -> int:
        return int(self.plan.get("seed", 0))

    @property
    def finished(self) -> bool:
        return self.summary is not None and self.summary.get("status") == "done"


def discover(paths: Iterable[str]) -> list[str]:
    """Every directory at or below ``paths`` that holds a ``metrics.jsonl``, sorted."""
    found = set()
    for path in paths:
        if not os.path.isdir(path):
            raise ReportError(f"{path}: not a directory")
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in (CHECKPOINTS, TENSORBOARD)]
            if METRICS_FILE in files:
                found.add(os.path.normpath(root))
    return sorted(found)


def load_run(path: str) -> Run:
    plan_path = os.path.join(path, PLAN_FILE)
    plan: dict[str, Any] = {}
    if os.path.exists(plan_path):
        with open(plan_path, encoding="utf-8") as f:
            plan = json.load(f)
    records = read_metrics(path)
    summary = None
    summary_path = os.path.join(path, SUMMARY_FILE)
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    return Run(
        path,
        plan,
        [r for r in records if r.get("kind", "train") == "train"],
        [r for r in records if r.get("kind") == "eval"],
        summary,
    )
