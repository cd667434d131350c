"""Which plan a run directory belongs to, and who runs in it (no torch: the CLI checks before launching).

What a run directory holds is ``procdsl.rundir``'s. A directory belongs to one plan. :func:`claim` writes ``plan.json`` for a new run; for an
existing run it compares hashes — of ``plan.json`` and of the newest complete checkpoint's
sidecar (``procdsl.runtime.sidecar``) — equal → resume; different → :class:`PlanMismatch`
carrying the unified diff of the two plans' JSON, unless ``force`` (``--force-replan``), which
keeps the old plan as ``plan.<old hash[:12]>.json`` and returns the diff to be logged. Nothing is
written before the plan is accepted, and ``plan.json`` is replaced atomically.

:func:`locked` holds ``DIR/run.lock`` for the life of a run, so that two runs cannot train into
one directory: the second gets :class:`RunLocked`, naming the holder's PID (the lock goes when
its process does, even after ``kill -9``; on a cluster file system it needs working ``flock``).

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

import contextlib
import difflib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from procdsl.atomic import atomic_write
from procdsl.rundir import CHECKPOINTS, LOCK_FILE, PLAN_FILE

from . import sidecar


class RunLocked(Exception):
    """Another process is running in this directory."""


class PlanMismatch(Exception):
    """The run directory holds a run of another plan."""

    def __init__(self, where: str, old_hash: str, new_hash: str, diff: str):
        self.where, self.old_hash, self.new_hash, self.diff = where, old_hash, new_hash, diff
        super().__init__(
            f"{where} belongs to another plan (hash {old_hash[:12]}…, this plan is "
            f"{new_hash[:12]}…); refusing to resume it.\n{diff}\n"
            "Use another --out directory, or --force-replan to continue this run "
            "under the new plan."
        )


def _pretty(text: str) -> list[str]:
    data = json.loads(text)
    if isinstance(data, dict):
        data.pop("hash", None)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def plan_diff(old_json: str, new_json: str) -> str:
    """Unified diff of two plans' JSON (keys sorted, the hash itself left out)."""
    try:
        _pretty(old_json)
    except (ValueError, TypeError):
        return "(the other plan's JSON is unreadable)"
    lines = difflib.unified_diff(
        _pretty(old_json),
        _pretty(new_json),
        lineterm="",
        fromfile="plan.json (run directory)",
        tofile="plan.json (this command)",
    )
    return "\n".join(lines)


def claim(
    out: str, plan_json: str, plan_hash: str, *, force: bool = False, write: bool = True
) -> Optional[str]:
    """Make ``out`` the run directory of this plan (module docstring); returns the diff if replanned."""
    path = Path(out) / PLAN_FILE
    diff = None
    newest = sidecar.newest_complete(os.path.join(out, CHECKPOINTS))
    if newest is not None and newest[1]["plan_hash"] != plan_hash:
        where = sidecar.checkpoint_path(os.path.join(out, CHECKPOINTS), newest[0])
        diff = plan_diff(str(newest[1].get("plan_json", "")), plan_json)
        if not force:
            raise PlanMismatch(where, newest[1]["plan_hash"], plan_hash, diff)
    old_hash = None
    if path.is_file():
        old = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(old)
            old_hash = data.get("hash", "") if isinstance(data, dict) else "unreadable"
        except json.JSONDecodeError:
            old_hash = "unreadable"
        if old_hash != plan_hash:
            diff = (
                plan_diff(old, plan_json) if old_hash != "unreadable" else "(the old plan.json is unreadable)"
            )
            if not force:
                raise PlanMismatch(str(path), old_hash, plan_hash, diff)
    if write and old_hash != plan_hash:
        if old_hash is not None:
            path.rename(path.with_name(f"plan.{old_hash[:12]}.json"))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, plan_json + "\n")
    return diff


@contextlib.contextmanager
def locked(out: str) -> Iterator[None]:
    """Hold ``out/run.lock`` for the ``with`` block; :class:`RunLocked` if another process holds it."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 200).decode("utf-8", "replace").split()
        os.close(fd)
        who = (
            f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "")
            if holder
            else "another process"
        )
        raise RunLocked(
            f"{out} is in use by {who} (it holds {path}); wait for that run to end, "
            "stop it, or use another --out directory"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the lock
