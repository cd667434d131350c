"""Curves as pictures: figures for a paper (PNG, SVG and PDF) and a character plot for the terminal.

:func:`save_figures` writes, on the x-axis chosen (:mod:`procdsl.report.axes`):

* ``loss`` — each arm's loss (held-out, or EMA-smoothed training loss) in its last phase: the
  mean over seeds, a band of ± 1 standard deviation over seeds (said so in the legend and the
  caption), ``n`` runs per arm in the legend, where each later phase starts (all-tokens and
  FLOPs axes), the baseline's final loss and the point where each other arm reaches it (the
  data-efficiency crossing, with its ratio on the real-tokens axis);
* ``accuracy`` — accuracy evals of the last phase, same bands, with the probe's chance line
  (:mod:`procdsl.report.chance`);
* ``loss_by_source`` — one panel per source: the training loss on that source's tokens, every
  phase the axis covers.

Numbers on axes read ``20k``/``1.5M`` and SVG/PDF keep their text as text
(:mod:`procdsl.report.style`).

>>> print(terminal_plot({"base": Curve([0, 3], [4.0, 1.0]), "warm": Curve([0, 3], [1.0, 4.0])}, width=8, height=4))
  4 |aa    bb
    |  aabb
    |  bbaa
  1 |bb    aa
      0 … 3   a = base, b = warm, * = both
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np

from procdsl.report.axes import Axis, axis_for
from procdsl.report.compare import Arm, Curve, curve_through, loss_curve, mean_curve, reach, smoothed
from procdsl.report.style import save_all, short_count

MARKS = "abcdefghijklmnopqrstuvwxyz"
CAPTION = "Lines: mean over seeds; shaded bands: ± 1 standard deviation over seeds; n: runs (seeds) per arm."


def _column_values(curve: Curve, columns: np.ndarray) -> np.ndarray:
    """The curve at each column's x, linear between points, NaN outside its range."""
    xs, ys = np.asarray(curve.x, float), np.asarray(curve.y, float)
    values = np.interp(columns, xs, ys)
    values[(columns < xs[0]) | (columns > xs[-1])] = np.nan
    return values


def terminal_plot(curves: dict[str, Curve], width: int = 60, height: int = 12) -> str:
    """Every curve as a line of its letter, drawn through each column it spans (so one arm
    never hides another: a cell two curves share shows ``*``)."""
    curves = {name: c for name, c in curves.items() if c.x}
    if not curves:
        return "(no data)"
    x0 = min(c.x[0] for c in curves.values())
    x1 = max(c.x[-1] for c in curves.values())
    y0 = min(min(c.y) for c in curves.values())
    y1 = max(max(c.y) for c in curves.values())
    columns = np.linspace(x0, x1, width) if width > 1 else np.array([x0])
    grid = [[" "] * width for _ in range(height)]
    for mark, curve in zip(MARKS, curves.values()):
        values = (
            _column_values(curve, columns)
            if len(curve.x) > 1
            else np.where(np.isclose(columns, curve.x[0]), curve.y[0], np.nan)
        )
        for col, y in enumerate(values):
            if not math.isnan(y):
                row = int(round((y1 - y) / (y1 - y0 or 1) * (height - 1)))
                grid[row][col] = mark if grid[row][col] in (" ", mark) else "*"
    label = max(len(f"{y1:.3g}"), len(f"{y0:.3g}"))
    lines = []
    for i, cells in enumerate(grid):
        tick = f"{y1:.3g}" if i == 0 else f"{y0:.3g}" if i == height - 1 else ""
        lines.append(f"{tick:>{label + 2}} |" + "".join(cells).rstrip())
    legend = ", ".join(f"{m} = {name}" for m, name in zip(MARKS, curves))
    lines.append(" " * (label + 4) + f" {short_count(x0)} … {short_count(x1)}   {legend}, * = both")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures


def _mean_band(curves: list[Curve]) -> tuple[list[float], list[float], list[float]]:
    """x, mean and standard deviation (sample, 0 for one run) at the x all curves share."""
    mean = mean_curve(curves)
    std = [
        float(np.std([c.y[c.x.index(x)] for c in curves], ddof=1)) if len(curves) > 1 else 0.0 for x in mean.x
    ]
    return mean.x, mean.y, std


def _draw_arm(
    ax, curves: list[Curve], label: str, color: str, marker: Optional[str] = None
) -> Optional[Curve]:
    x, y, std = _mean_band(curves)
    if not x:
        return None
    ax.plot(x, y, color=color, lw=1.5, marker=marker, ms=3, label=label)
    if len(curves) > 1:
        ax.fill_between(x, np.subtract(y, std), np.add(y, std), color=color, alpha=0.2, lw=0)
    return Curve(x, y)


def _boundaries(ax, axis: Axis, color: str) -> None:
    """A dashed line where each later phase of an arm starts, named at the top."""
    for x, phase in axis.boundaries():
        ax.axvline(x, color=color, ls="--", lw=0.8, alpha=0.7)
        ax.annotate(
            f"{phase} starts",
            (x, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=color,
            xytext=(-2, -2),
            textcoords="offset points",
        )


def _finish(
    plt, fig, ax, *, xlabel: str, ylabel: str, title: str, stem: str, bands: bool, legend_loc: str = "best"
) -> list[str]:
    from matplotlib.patches import Patch

    from procdsl.report.style import step_formatter

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_formatter(step_formatter())
    handles, labels = ax.get_legend_handles_labels()
    if bands:
        handles.append(Patch(facecolor="grey", alpha=0.3, label="± 1 std over seeds"))
    ax.legend(handles=handles, loc=legend_loc, framealpha=0.9)
    fig.text(0.01, 0.005, CAPTION, fontsize=7, color="dimgray", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    paths = save_all(fig, stem)
    plt.close(fig)
    return paths


def loss_figure(plt, report: Any, axes: dict[str, Axis], stem: str) -> list[str]:
    """The ``loss`` figure (module docstring)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    means: dict[str, Curve] = {}
    for i, arm in enumerate(report.arms):
        color, axis = f"C{i % 10}", axes[arm.label]
        curves = [loss_curve(run, use_eval=report.use_eval, axis=axis) for run in arm.runs]
        mean = _draw_arm(ax, curves, f"{arm.label} (n={len(arm.runs)})", color)
        if mean is not None:
            means[arm.label] = mean
        _boundaries(ax, axis, color)
    base = report.baseline
    if base is not None and base.label in means and len(means) > 1:
        target = means[base.label].y[-1]
        ax.axhline(target, color="grey", ls=":", lw=1, label=f"baseline's final loss ({target:.3g})")
        ratios = {row["arm"]: row["ratio"] for row in report.efficiency}
        for i, arm in enumerate(report.arms):
            crossing = reach(means[arm.label], target) if arm is not base and arm.label in means else None
            if crossing is None:
                continue
            ax.plot([crossing], [target], marker="o", ms=7, mfc="none", mec=f"C{i % 10}", mew=1.5)
            ratio = ratios.get(arm.label)
            text = (
                f"{ratio:.0%} of the baseline's tokens"
                if ratio is not None and axes[arm.label].name == "real-tokens"
                else "reaches the baseline's final loss"
            )
            right = crossing > np.mean(ax.get_xlim())  # keep the words inside the axes
            ax.annotate(
                text,
                (crossing, target),
                xytext=(-6 if right else 6, 8),
                textcoords="offset points",
                fontsize=7,
                color=f"C{i % 10}",
                ha="right" if right else "left",
            )
    what = "held-out loss" if report.use_eval else "training loss (EMA)"
    axis = next(iter(axes.values()))
    return _finish(
        plt,
        fig,
        ax,
        xlabel=axis.label,
        ylabel=what,
        title=f"{what} over {axis.label}",
        stem=stem,
        bands=any(len(a.runs) > 1 for a in report.arms),
    )


def _accuracy_curves(arm: Arm, axis: Axis) -> dict[str, list[Curve]]:
    """Per source, each run's accuracy in the arm's last phase over ``axis``."""
    last = arm.last_phase()["name"]
    out: dict[str, list[Curve]] = {}
    for run in arm.runs:
        by_source: dict[str, list[tuple[float, float]]] = {}
        for r in run.evals:
            if r.get("eval") == "accuracy" and r.get("accuracy") is not None and r.get("phase") == last:
                x = axis.x(last, int(r["phase_step"]))
                if x is not None:
                    by_source.setdefault(r.get("source", "?"), []).append((x, float(r["accuracy"])))
        for source, points in by_source.items():
            points.sort()
            out.setdefault(source, []).append(Curve([p[0] for p in points], [p[1] for p in points]))
    return out


def accuracy_figure(plt, report: Any, axes: dict[str, Axis], stem: str) -> list[str]:
    """The ``accuracy`` figure, or nothing when no run evaluates accuracy."""
    from procdsl.report.chance import chance_accuracy

    series = [
        (i, arm, source, curves)
        for i, arm in enumerate(report.arms)
        for source, curves in _accuracy_curves(arm, axes[arm.label]).items()
    ]
    if not series:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    several = len({source for *_, source, _ in series}) > 1
    chances: dict[str, tuple[float, str]] = {}
    for k, (_, arm, source, curves) in enumerate(series):
        label = f"{arm.label}{' · ' + source if several else ''} (n={len(curves)})"
        _draw_arm(ax, curves, label, f"C{k % 10}", marker="o")
        found = chance_accuracy(arm.plan.get("sources", {}).get(source, {}))
        if found is not None:
            chances[source] = found
    for source, (level, text) in chances.items():
        ax.axhline(
            level,
            color="black",
            ls="--",
            lw=0.9,
            label=f"{text} ({level:.0%}{', ' + source if several else ''})",
        )
    ax.set_ylim(0, 1)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis = next(iter(axes.values()))
    return _finish(
        plt,
        fig,
        ax,
        xlabel=axis.label,
        ylabel="answer accuracy",
        title=f"answer accuracy over {axis.label}",
        stem=stem,
        bands=any(len(c) > 1 for *_, c in series),
    )


def _source_curves(arm: Arm, axis: Axis, source: str) -> list[Curve]:
    """Each run's EMA-smoothed ``loss/<source>`` over every phase ``axis`` covers."""
    curves = []
    for run in arm.runs:
        curve = curve_through(
            (axis.x(p["name"], step), y)
            for p in arm.plan.get("phases", [])
            for step, y in smoothed(run.train, f"loss/{source}", p["name"])
        )
        if curve.x:
            curves.append(curve)
    return curves


def source_figure(plt, report: Any, axes: dict[str, Axis], stem: str) -> list[str]:
    """The ``loss_by_source`` figure: one panel per source that logs ``loss/<source>``."""
    sources = sorted(
        {
            key[5:]
            for arm in report.arms
            for run in arm.runs
            for r in run.train
            for key in r
            if key.startswith("loss/")
        }
    )
    if not sources:
        return []
    cols = min(3, len(sources))
    rows = math.ceil(len(sources) / cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows + 0.4), squeeze=False)
    from procdsl.report.style import step_formatter

    bands = False
    for panel, source in zip(grid.flat, sources):
        for i, arm in enumerate(report.arms):
            curves = _source_curves(arm, axes[arm.label], source)
            if curves:
                _draw_arm(panel, curves, f"{arm.label} (n={len(curves)})", f"C{i % 10}")
                bands |= len(curves) > 1
                _boundaries(panel, axes[arm.label], f"C{i % 10}")
        panel.set_title(f"loss on {source}")
        panel.xaxis.set_major_formatter(step_formatter())
        panel.set_xlabel(next(iter(axes.values())).label, fontsize=8)
    for panel in list(grid.flat)[len(sources) :]:
        panel.set_visible(False)
    ax = grid.flat[0]
    ax.set_ylabel("training loss (EMA)")
    return _finish(
        plt,
        fig,
        ax,
        xlabel=ax.get_xlabel(),
        ylabel="training loss (EMA)",
        title=f"loss on {sources[0]}",
        stem=stem,
        bands=bands,
        legend_loc="upper right",
    )


def save_figures(report: Any, out: str, x: str = "real-tokens") -> list[str]:
    """Every figure of the report (module docstring) as PNG, SVG and PDF; the files written.
    Without matplotlib, nothing (the report's tables still stand)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from procdsl.report.style import paper_style

    axes = {arm.label: axis_for(arm.plan, x) for arm in report.arms}
    os.makedirs(out, exist_ok=True)
    with paper_style():
        written = loss_figure(plt, report, axes, os.path.join(out, "loss"))
        written += accuracy_figure(plt, report, axes, os.path.join(out, "accuracy"))
        # a warm-up's sources have no tokens on the real-tokens axis (the last phase's only):
        # the per-source panels count every phase's tokens instead
        every = (
            axes
            if x != "real-tokens"
            else {arm.label: axis_for(arm.plan, "all-tokens") for arm in report.arms}
        )
        written += source_figure(plt, report, every, os.path.join(out, "loss_by_source"))
    return written
