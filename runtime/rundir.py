"""The run directory and the plan it belongs to (no torch: the CLI checks before launching).

One run, one directory::

    DIR/plan.json              the plan being executed (its hash names the run)
    DIR/checkpoints/step-N/    DCP checkpoints (each also records the plan's hash and JSON)
    DIR/metrics.jsonl          one record per step, and one per evaluation
    DIR/tb/                    TensorBoard events of the same numbers
    DIR/logs/rank_R.log        TorchTitan's log of each rank
    DIR/summary.json           written when the run ends (done or failed)

A directory belongs to one plan. :func:`claim` writes ``plan.json`` for a new run; for an
existing run it compares hashes: equal → resume; different → :class:`PlanMismatch` carrying the
unified diff of the two plans' JSON, unless ``force`` (``--force-replan``), which keeps the old
plan as ``plan.<old hash[:12]>.json`` and returns the diff to be logged.

>>> old = '{"name": "a", "seed": 0}'
>>> print(plan_diff(old, '{"name": "a", "seed": 3}'))
--- plan.json (run directory)
+++ plan.json (this command)
@@ -1,4 +1,4 @@
 {
   "name": "a",
-  "seed": 0
+  "seed": 3
 }
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Optional

PLAN_FILE = "plan.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINTS = "checkpoints"


class PlanMismatch(Exception):
    """The run directory holds a run of another plan."""

    def __init__(self, where: str, old_hash: str, new_hash: str, diff: str):
        self.where, self.old_hash, self.new_hash, self.diff = where, old_hash, new_hash, diff
        super().__init__(f"{where} belongs to another plan (hash {old_hash[:12]}…, this plan is "
                         f"{new_hash[:12]}…); refusing to resume it.\n{diff}\n"
                         "Use another --out directory, or --force-replan to continue this run "
                         "under the new plan.")


def _pretty(text: str) -> list[str]:
    data = json.loads(text)
    if isinstance(data, dict):
        data.pop("hash", None)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def plan_diff(old_json: str, new_json: str) -> str:
    """Unified diff of two plans' JSON (keys sorted, the hash itself left out)."""
    lines = difflib.unified_diff(_pretty(old_json), _pretty(new_json), lineterm="",
                                 fromfile="plan.json (run directory)", tofile="plan.json (this command)")
    return "\n".join(lines)


def default_out(plan_name: str) -> str:
    """``runs/<plan name>`` (a sweep variant's ``/`` and ``=`` kept as nested folders).

    >>> default_out("quickstart")
    'runs/quickstart'
    """
    return os.path.join("runs", *plan_name.split("/"))


def claim(out: str, plan_json: str, plan_hash: str, *, force: bool = False,
          write: bool = True) -> Optional[str]:
    """Make ``out`` the run directory of this plan (module docstring); returns the diff if replanned."""
    path = Path(out) / PLAN_FILE
    diff = None
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        try:
            old_hash = json.loads(old).get("hash", "")
        except json.JSONDecodeError:
            old_hash = "unreadable"
        if old_hash == plan_hash:
            return None
        diff = plan_diff(old, plan_json) if old_hash != "unreadable" else "(the old plan.json is unreadable)"
        if not force:
            raise PlanMismatch(str(path), old_hash, plan_hash, diff)
        if write:
            path.rename(path.with_name(f"plan.{old_hash[:12]}.json"))
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(plan_json + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return diff
