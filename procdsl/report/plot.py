"""Curves as pictures: matplotlib PNGs for the record, a character plot for the terminal.

>>> print(terminal_plot({"a": Curve([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0])}, width=8, height=4))
4 |a       
  |  a     
  |    a   
1 |      a 
   0 … 3  (a=a)
"""

from __future__ import annotations

import os
from procdsl.report.compare import Arm, Curve, arm_curve

MARKS = "abcdefghijklmnopqrstuvwxyz"


def terminal_plot(curves: dict[str, Curve], width: int = 60, height: int = 12) -> str:
    """A small scatter of several curves in characters (one letter per curve)."""
    points = [(x, y) for c in curves.values() for x, y in zip(c.x, c.y)]
    if not points:
        return "(no data)"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid = [[" "] * width for _ in range(height)]
    for mark, curve in zip(MARKS, curves.values()):
        for x, y in zip(curve.x, curve.y):
            col = int((x - x0) / (x1 - x0 or 1) * (width - 1) / 2) * 2 if width > 1 else 0
            row = int((y1 - y) / (y1 - y0 or 1) * (height - 1))
            grid[row][col] = mark
    label = max(len(f"{y1:.3g}"), len(f"{y0:.3g}"))
    lines = []
    for i, row in enumerate(grid):
        tick = f"{y1:.3g}" if i == 0 else f"{y0:.3g}" if i == height - 1 else ""
        lines.append(f"{tick:>{label}} |" + "".join(row))
    legend = ", ".join(f"{m}={name}" for m, name in zip(MARKS, curves))
    lines.append(" " * (label + 2) + f" {x0:.3g} … {x1:.3g}  ({legend})")
    return "\n".join(lines)


def save_pngs(arms: list[Arm], out: str, use_eval: bool) -> list[str]:
    """Loss curves (mean over seeds, band = min..max) and eval metrics; returns the files written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from procdsl.report.compare import loss_curve

    os.makedirs(out, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in arms:
        curves = [loss_curve(r, use_eval=use_eval) for r in arm.runs]
        mean = arm_curve(arm, use_eval=use_eval)
        if not mean.x:
            continue
        line, = ax.plot(mean.x, mean.y, label=f"{arm.label} (n={len(arm.runs)})")
        if len(curves) > 1:
            lows = [min(c.y[c.x.index(x)] for c in curves) for x in mean.x]
            highs = [max(c.y[c.x.index(x)] for c in curves) for x in mean.x]
            ax.fill_between(mean.x, lows, highs, alpha=0.2, color=line.get_color())
    written.append(_save(plt, fig, ax, "real-data tokens (last phase)",
                         "eval loss" if use_eval else "train loss (EMA)", os.path.join(out, "loss.png")))
    accuracy = _accuracy_series(arms)
    if accuracy:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, (steps, values) in accuracy.items():
            ax.plot(steps, values, marker="o", label=label)
        ax.set_ylim(0, 1)
        written.append(_save(plt, fig, ax, "step of the last phase", "answer accuracy", os.path.join(out, "accuracy.png")))
    return written


def _save(plt, fig, ax, xlabel: str, ylabel: str, path: str) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _accuracy_series(arms: list[Arm]) -> dict[str, tuple[list[int], list[float]]]:
    """Mean accuracy over seeds per (arm, source), by step of the last phase (so a warm-up
    does not shift one arm's probe against another's)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for arm in arms:
        last = arm.last_phase()["name"]
        by_source: dict[str, dict[int, list[float]]] = {}
        for run in arm.runs:
            for r in run.evals:
                if r.get("eval") == "accuracy" and r.get("accuracy") is not None and r.get("phase") == last:
                    by_source.setdefault(r.get("source", "?"), {}).setdefault(int(r["phase_step"]), []).append(float(r["accuracy"]))
        for source, points in by_source.items():
            steps = sorted(points)
            series[f"{arm.label} · {source}"] = (steps, [sum(points[s]) / len(points[s]) for s in steps])
    return series
