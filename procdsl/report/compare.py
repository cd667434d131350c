"""Runs → arms (the same plan up to the seed), numbers over seeds, and the data-efficiency ratio.

The **data-efficiency ratio** (the paper's 55% / 67% / 86%) is the number of real-data tokens a
warm-started arm needs to reach the baseline's final loss, as a fraction of the baseline's
real-data tokens. "Real-data tokens" are those of each run's *last* phase (warm-up tokens are not
counted, as in the paper); the loss is the last phase's held-out eval loss when both arms have
one, else its training loss, averaged over seeds at equal token counts.

>>> base = Curve([1000, 2000, 3000, 4000], [4.0, 3.0, 2.5, 2.2])
>>> warm = Curve([1000, 2000, 3000, 4000], [3.2, 2.6, 2.3, 2.1])
>>> round(reach(warm, 2.2), 1)       # 2.3 at 3000, 2.1 at 4000: 2.2 is crossed at 3500
3500.0
>>> round(data_efficiency(warm, base), 3)
0.875
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from procdsl.plan.hashing import canonical_json
from procdsl.report.axes import Axis, axis_for
from procdsl.report.runs import Run


@dataclass
class Curve:
    """y over x (x = real-data tokens of the last phase), x increasing."""

    x: list[float]
    y: list[float]

    def final(self) -> Optional[float]:
        return self.y[-1] if self.y else None


@dataclass
class Arm:
    """Runs of one plan under different seeds."""

    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)

    @property
    def plan(self) -> dict[str, Any]:
        return self.runs[0].plan

    def last_phase(self) -> dict[str, Any]:
        return self.plan["phases"][-1]


def arm_key(plan: dict[str, Any]) -> str:
    """What makes two runs the same arm: the plan, minus seeds, names and hash."""
    stripped = {k: v for k, v in plan.items() if k not in ("hash", "seed", "name", "variant")}
    stripped["phases"] = [{k: v for k, v in p.items() if k != "seed"} for p in plan.get("phases", [])]
    return canonical_json(stripped)


def arm_label(run: Run) -> str:
    variant = {k: v for k, v in run.plan.get("variant", {}).items() if k != "seed"}
    base = run.name.split("/", 1)[0]
    return base + ("/" + ",".join(f"{k}={v}" for k, v in variant.items()) if variant else "")


def group_arms(runs: list[Run]) -> list[Arm]:
    arms: dict[str, Arm] = {}
    for run in runs:
        key = arm_key(run.plan)
        if key not in arms:
            arms[key] = Arm(arm_label(run), [])
        arms[key].runs.append(run)
    labels = [a.label for a in arms.values()]
    for arm in arms.values():  # same label, different plans (e.g. hand-made --set runs): say which
        if labels.count(arm.label) > 1:
            arm.label = f"{arm.label} [{arm.runs[0].path}]"
    return list(arms.values())


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        return math.nan, math.nan
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def final_metrics(arm: Arm) -> dict[str, tuple[float, float]]:
    """``{"loss": (mean, std), "perplexity/<src>": …, "accuracy/<src>": …, "wall_time_s": …}``."""
    columns: dict[str, list[float]] = {}
    for run in arm.runs:
        if run.train:
            columns.setdefault("loss", []).append(float(run.train[-1]["loss"]))
        last: dict[tuple[str, str], dict] = {}
        for record in run.evals:
            last[(record.get("eval", "perplexity"), record.get("source", "?"))] = record
        for (kind, source), record in last.items():
            if record.get(kind) is not None:
                columns.setdefault(f"{kind}/{source}", []).append(float(record[kind]))
        if run.summary and run.summary.get("wall_time_s") is not None:
            columns.setdefault("wall_time_s", []).append(float(run.summary["wall_time_s"]))
    return {key: mean_std(values) for key, values in columns.items()}


def achieved_mixture(arm: Arm) -> dict[str, dict[str, float]]:
    """Per phase, each source's share of the real tokens the phase delivered (mean over seeds).

    A run's share of a phase comes from the token counts of its last record there,
    ``share_total/<source>`` (the phase's delivered tokens so far); a run logged before
    per-step shares existed wrote that running total as ``share/<source>``.

    >>> run = Run("r", {}, [{"phase": "p", "share/a": 1.0, "share_total/a": 0.5, "share_total/b": 0.5},
    ...                     {"phase": "p", "share/a": 0.0, "share_total/a": 0.25, "share_total/b": 0.75}])
    >>> achieved_mixture(Arm("x", [run]))
    {'p': {'a': 0.25, 'b': 0.75}}
    """
    last: dict[tuple[int, str], dict] = {}
    for i, run in enumerate(arm.runs):
        for record in run.train:
            last[(i, record.get("phase", "?"))] = record
    out: dict[str, dict[str, list[float]]] = {}
    for (_, phase), record in last.items():
        prefix = "share_total/" if any(k.startswith("share_total/") for k in record) else "share/"
        for key, value in record.items():
            if key.startswith(prefix) and value is not None:
                out.setdefault(phase, {}).setdefault(key[len(prefix) :], []).append(float(value))
    return {phase: {s: float(np.mean(v)) for s, v in shares.items()} for phase, shares in out.items()}


def loss_curve(run: Run, *, use_eval: bool, axis: Optional[Axis] = None) -> Curve:
    """The last phase's loss (eval loss, or EMA-smoothed train loss) over ``axis`` (default: its
    real-data tokens, :mod:`procdsl.report.axes`)."""
    phase = run.plan["phases"][-1]["name"] if run.plan.get("phases") else None
    axis = axis or axis_for(run.plan, "real-tokens")
    if use_eval:
        raw = [
            (axis.x(phase, r["phase_step"]), float(r["loss"]))
            for r in run.evals
            if r.get("phase") == phase
            and r.get("loss") is not None
            and r.get("eval", "perplexity") == "perplexity"
        ]
    else:
        raw = [(axis.x(phase, step), y) for step, y in smoothed(run.train, "loss", phase)]
    return curve_through(raw)


def curve_through(points: Iterable[tuple[Optional[float], float]]) -> Curve:
    """The curve through ``points``, sorted by x; points off the axis (x None) left out."""
    kept = sorted((x, y) for x, y in points if x is not None)
    return Curve([x for x, _ in kept], [y for _, y in kept])


def smoothed(records: list[dict[str, Any]], key: str, phase: Optional[str]) -> list[tuple[int, float]]:
    """``(phase_step, EMA of record[key])`` over the records of ``phase`` that hold a number there.

    >>> points = smoothed([{"phase": "p", "phase_step": 1, "l": 4.0}, {"phase": "p", "phase_step": 2, "l": 2.0},
    ...                    {"phase": "p", "phase_step": 3, "l": None}], "l", "p")
    >>> [(step, round(y, 6)) for step, y in points]
    [(1, 4.0), (2, 3.8)]
    """
    points, ema = [], None
    for r in records:
        if r.get("phase") != phase or not isinstance(r.get(key), (int, float)):
            continue
        ema = float(r[key]) if ema is None else 0.9 * ema + 0.1 * float(r[key])
        points.append((int(r["phase_step"]), ema))
    return points


def mean_curve(curves: list[Curve]) -> Curve:
    """Pointwise mean over runs, on the x values they all share."""
    if not curves:
        return Curve([], [])
    shared = sorted(set.intersection(*(set(c.x) for c in curves)))
    return Curve(shared, [float(np.mean([c.y[c.x.index(x)] for c in curves])) for x in shared])


def arm_curve(arm: Arm, *, use_eval: bool, axis: Optional[Axis] = None) -> Curve:
    return mean_curve([loss_curve(run, use_eval=use_eval, axis=axis) for run in arm.runs])


def reach(curve: Curve, target: float) -> Optional[float]:
    """The first x at which the curve comes down to ``target`` (linear between points)."""
    for i, (x, y) in enumerate(zip(curve.x, curve.y)):
        if y <= target:
            if i == 0:
                return x
            x0, y0 = curve.x[i - 1], curve.y[i - 1]
            return x0 + (y0 - target) / (y0 - y) * (x - x0) if y0 != y else x
    return None


def data_efficiency(arm: Curve, baseline: Curve) -> Optional[float]:
    """Tokens ``arm`` needs to reach the baseline's final loss, over the baseline's tokens."""
    target, total = baseline.final(), (baseline.x[-1] if baseline.x else None)
    if target is None or not total:
        return None
    reached = reach(arm, target)
    return None if reached is None else reached / total


def choose_baseline(arms: list[Arm], wanted: Optional[str] = None) -> Optional[Arm]:
    """``wanted`` (a label or a substring of one), else the arm with the fewest phases."""
    if not arms:
        return None
    if wanted:
        matches = [a for a in arms if a.label == wanted] or [a for a in arms if wanted in a.label]
        return matches[0] if matches else None
    return min(arms, key=lambda a: len(a.plan.get("phases", [])))


def has_eval_loss(arms: list[Arm]) -> bool:
    """Whether every arm logs a held-out loss (a ``perplexity`` eval) in its last phase; the
    comparison falls back to the training loss when one does not (e.g. accuracy-only probes)."""

    def logs(run: Run) -> bool:
        last = run.plan["phases"][-1]["name"] if run.plan.get("phases") else None
        return any(r.get("eval", "perplexity") == "perplexity" and r.get("phase") == last for r in run.evals)

    return all(any(logs(r) for r in arm.runs) for arm in arms)


def efficiency_table(arms: list[Arm], baseline: Arm) -> list[dict[str, Any]]:
    """Per arm: which loss was compared, the baseline's final value, and the ratio (None: not reached)."""
    use_eval = has_eval_loss(arms)
    base_curve = arm_curve(baseline, use_eval=use_eval)
    rows = []
    for arm in arms:
        if arm is baseline:
            continue
        curve = arm_curve(arm, use_eval=use_eval)
        rows.append(
            {
                "arm": arm.label,
                "baseline": baseline.label,
                "metric": "eval loss" if use_eval else "train loss (EMA)",
                "target": base_curve.final(),
                "ratio": data_efficiency(curve, base_curve),
            }
        )
    return rows
