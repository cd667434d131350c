"""Which checkpoint a run resumes from, and whether it may (no torch; rank 0 decides).

:func:`choose` takes the newest *complete* checkpoint (``procdsl.runtime.sidecar``: damaged
ones are skipped with a warning naming them) and checks it against this run, from its sidecar
alone — nothing in it is unpickled:

* its plan hash: another plan is :class:`~procdsl.runtime.ownership.PlanMismatch` with the diff,
  unless ``--force-replan``, which notes the diff and goes on;
* under a replanned plan, its place: the checkpoint's phase must still exist at the same index
  with at least the checkpoint's step, and the phases before it keep their lengths
  (:func:`place_error`); the model's shapes are compared when the trainer loads it
  (:func:`shape_error`);
* its data: a source whose fingerprint changed (``procdsl.runtime.fingerprint``) is
  :class:`DataChanged` with the difference, unless ``--force-replan``.

>>> place_error({"phase": "warm", "phase_index": 0, "phase_step": 8, "global_step": 8},
...             phases=[("warm", 6), ("main", 8)], path="checkpoints/step-8")
'--force-replan cannot continue checkpoints/step-8: it is step 8 of phase `warm`, which the plan now makes 6 steps long. Start a new run directory (--out), or keep the phase lengths up to the checkpoint.'
>>> print(shape_error({"w": (44, 32)}, {"w": (44, 64)}, path="step-8"))
--force-replan cannot continue step-8: the model's shape changed (w: (44, 32) in the checkpoint, (44, 64) in the plan). Start a new run directory (--out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from . import fingerprint, sidecar
from .jobconfig import ConfigError
from .ownership import PlanMismatch, plan_diff


class DataChanged(ConfigError):
    """The data a checkpoint was trained on differs from the data found now."""


def choose(
    folder: str, plan: Any, plan_json: str, *, data: dict[str, Any], force: bool, note: Callable[[str], None]
) -> Optional[tuple[int, dict[str, Any]]]:
    """``(step, sidecar)`` of the checkpoint to resume, or None to start afresh (module docstring)."""
    newest = sidecar.newest_complete(
        folder,
        skipped=lambda path, why: note(f"warning: skipping {path}: {why}; trying the checkpoint before it"),
    )
    if newest is None:
        return None
    step, record = newest
    path = sidecar.checkpoint_path(folder, step)
    if record["plan_hash"] != plan.hash:
        diff = plan_diff(str(record.get("plan_json", "")), plan_json)
        if not force:
            raise PlanMismatch(path, record["plan_hash"], plan.hash, diff)
        note(f"--force-replan: resuming {path} under a different plan:\n{diff}")
        problem = place_error(record, phases=[(p.name, p.steps) for p in plan.phases], path=path)
        if problem:
            raise ConfigError(problem)
    if step > plan.total_steps:
        raise ConfigError(f"{path} is past the plan's last step ({plan.total_steps})")
    changed = fingerprint.diff(record.get("data") or {}, data)
    if changed:
        message = f"the data changed since {path} was written:\n{changed}"
        if not force:
            raise DataChanged(
                f"{message}\nResuming would continue the stream in other documents. "
                "Restore the data, use another --out directory, or --force-replan "
                "to continue on the new data."
            )
        note(f"--force-replan: {message}")
    return step, record


def place_error(record: dict[str, Any], *, phases: list[tuple[str, int]], path: str) -> Optional[str]:
    """Why the checkpoint's phase and step do not fit ``phases`` (``[(name, steps)]``), or None."""
    name, index, step = record.get("phase"), record.get("phase_index"), record.get("phase_step")
    names = [n for n, _ in phases]
    head = f"--force-replan cannot continue {path}: it is step {step} of phase `{name}`"
    tail = " Start a new run directory (--out), or keep the phase lengths up to the checkpoint."
    if (
        not isinstance(index, int)
        or not isinstance(step, int)
        or name not in names
        or names.index(name) != index
    ):
        return f"{head}, which the plan no longer has at position {index}.{tail}"
    if step > phases[index][1]:
        return f"{head}, which the plan now makes {phases[index][1]} steps long.{tail}"
    if sum(s for _, s in phases[:index]) + step != record.get("global_step"):
        return f"{head}, and the phases before it changed length.{tail}"
    return None


def shape_error(
    stored: dict[str, tuple[int, ...]], model: dict[str, tuple[int, ...]], *, path: str
) -> Optional[str]:
    """Why the checkpoint's tensors (``stored``) cannot fill the model's (``model``), or None."""
    for key, shape in model.items():
        old = stored.get(key)
        if old != tuple(shape):
            found = "absent" if old is None else f"{old}"
            return (
                f"--force-replan cannot continue {path}: the model's shape changed ({key}: "
                f"{found} in the checkpoint, {tuple(shape)} in the plan). Start a new run "
                "directory (--out)."
            )
    return None


__all__ = ["DataChanged", "choose", "place_error", "shape_error"]
