"""Finding and reading run directories.

A run directory holds ``plan.json`` and ``metrics.jsonl`` (and, once finished, ``summary.json``);
a sweep writes one per variant under a common directory. :func:`discover` finds them all.

>>> import json, os, tempfile
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "a"))
>>> _ = open(os.path.join(root, "a", "metrics.jsonl"), "w").write(
...     '{"kind": "train", "step": 1, "phase": "p", "loss": 2.0, "tokens": 10}\\n{"kind": "tra')
>>> [os.path.basename(p) for p in discover([root])]
['a']
>>> [r["loss"] for r in read_records(os.path.join(root, "a", "metrics.jsonl"))]  # a torn last line is skipped
[2.0]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

METRICS = "metrics.jsonl"


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
        return bool(self.summary) and self.summary.get("status") == "done"


def discover(paths: Iterable[str]) -> list[str]:
    """Every directory at or below ``paths`` that holds a ``metrics.jsonl``, sorted."""
    found = set()
    for path in paths:
        if not os.path.isdir(path):
            raise ReportError(f"{path}: not a directory")
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("checkpoints", "tensorboard")]
            if METRICS in files:
                found.add(os.path.normpath(root))
    return sorted(found)


def read_records(path: str) -> list[dict[str, Any]]:
    """The JSON lines of a metrics file; a torn line (a killed run) is skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def load_run(path: str) -> Run:
    plan_path = os.path.join(path, "plan.json")
    plan: dict[str, Any] = {}
    if os.path.exists(plan_path):
        with open(plan_path, encoding="utf-8") as f:
            plan = json.load(f)
    records = read_records(os.path.join(path, METRICS))
    summary = None
    summary_path = os.path.join(path, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    return Run(path, plan, [r for r in records if r.get("kind", "train") == "train"],
               [r for r in records if r.get("kind") == "eval"], summary)
