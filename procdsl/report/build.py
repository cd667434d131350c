"""Assemble a report: tables (rich on the terminal, Markdown on disk), curves and the ratio;
:func:`write_report` and :func:`print_report` are ``procdsl report``.

>>> import os, json, tempfile
>>> root = tempfile.mkdtemp()
>>> for arm, phases, losses in (("base", ["lm"], [4.0, 3.0, 2.5, 2.2]), ("warm", ["w", "lm"], [3.2, 2.6, 2.3, 2.1])):
...     d = os.path.join(root, arm); os.makedirs(d)
...     plan = {"name": arm, "seed": 0, "phases": [{"name": p, "batch": 10, "context": 100} for p in phases]}
...     _ = open(os.path.join(d, "plan.json"), "w").write(json.dumps(plan))
...     lines = [{"kind": "eval", "step": i, "phase": "lm", "phase_step": i, "eval": "perplexity",
...               "source": "val", "loss": y} for i, y in enumerate(losses, 1)]
...     _ = open(os.path.join(d, "metrics.jsonl"), "w").write("\\n".join(map(json.dumps, lines)))
>>> report = build_report([root], include_unfinished=True)   # these runs wrote no summary.json
>>> [(row["arm"], round(row["ratio"], 3)) for row in report.efficiency]
[('warm', 0.875)]
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from procdsl.errors import CommandError, UsageError
from procdsl.report.axes import AXES, AxisError, axis_for
from procdsl.report.compare import (
    Arm,
    achieved_mixture,
    arm_curve,
    choose_baseline,
    efficiency_table,
    final_metrics,
    group_arms,
    has_eval_loss,
)
from procdsl.report.plot import CAPTION, save_figures, terminal_plot
from procdsl.report.runs import ReportError, discover, load_run


@dataclass
class Report:
    arms: list[Arm]
    baseline: Optional[Arm]
    finals: dict[str, dict[str, tuple[float, float]]]
    mixtures: dict[str, dict[str, dict[str, float]]]
    efficiency: list[dict[str, Any]]
    use_eval: bool
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # runs not finished (no summary, or failed)


def build_report(
    paths: list[str], baseline: Optional[str] = None, include_unfinished: bool = False
) -> Report:
    """Compare the finished runs under ``paths`` (unfinished ones too if asked)."""
    dirs = discover(paths)
    if not dirs:
        raise ReportError(f"no run found under {', '.join(paths)} (a run directory holds metrics.jsonl)")
    runs = [load_run(d) for d in dirs]
    kept = [r for r in runs if include_unfinished or r.finished]
    if not kept:
        raise ReportError(
            "no finished run (summary.json with status done) under "
            f"{', '.join(paths)}; --all includes unfinished runs"
        )
    arms = group_arms(kept)
    base = choose_baseline(arms, baseline)
    if baseline and base is None:
        raise ReportError(
            f"no arm matches --baseline {baseline!r}; arms are: " + ", ".join(a.label for a in arms)
        )
    use_eval = has_eval_loss(arms)
    efficiency = efficiency_table(arms, base) if base is not None and len(arms) > 1 else []
    return Report(
        arms,
        base,
        {a.label: final_metrics(a) for a in arms},
        {a.label: achieved_mixture(a) for a in arms},
        efficiency,
        use_eval,
        skipped=[r.path for r in runs if r not in kept],
    )


def _cell(value: tuple[float, float]) -> str:
    mean, std = value
    if math.isnan(mean):
        return "—"
    return f"{mean:.4g} ± {std:.2g}" if std else f"{mean:.4g}"


def _context(arm: Arm) -> str:
    plan = arm.plan
    model = plan.get("model", {})
    shape = f"{model.get('kind', '?')} {model.get('layers', '?')}L/{model.get('heads', '?')}H/{model.get('dim', '?')}d"
    return f"{shape}, {plan.get('total_steps', '?')} steps, seeds {arm.seeds}"


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    columns = sorted(
        {k for finals in report.finals.values() for k in finals if k != "wall_time_s"},
        key=lambda k: (k != "loss", k),
    )
    header = ["arm", "runs"] + columns + ["wall time (s)", "setting"]
    rows = []
    for arm in report.arms:
        finals = report.finals[arm.label]
        rows.append(
            [arm.label, str(len(arm.runs))]
            + [_cell(finals.get(c, (math.nan, math.nan))) for c in columns]
            + [_cell(finals.get("wall_time_s", (math.nan, math.nan))), _context(arm)]
        )
    return header, rows


def efficiency_rows(report: Report) -> list[list[str]]:
    return [
        [
            row["arm"],
            row["baseline"],
            row["metric"],
            f"{row['target']:.4g}" if row["target"] is not None else "—",
            f"{row['ratio'] * 100:.0f}%" if row["ratio"] is not None else "not reached",
        ]
        for row in report.efficiency
    ]


def markdown(report: Report, hardware: str) -> str:
    header, rows = table_rows(report)
    out = [
        "# procdsl report",
        "",
        f"Hardware: {hardware}",
        "",
        "## Final metrics (mean ± std over seeds)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    if report.efficiency:
        out += [
            "",
            "## Data efficiency",
            "",
            "Real-data tokens needed to reach the baseline's final loss, as a share of the baseline's.",
            "",
            "| arm | baseline | compared | baseline final | tokens needed |",
            "|---|---|---|---|---|",
        ]
        out += ["| " + " | ".join(r) + " |" for r in efficiency_rows(report)]
    out += ["", "## Achieved mixtures", ""]
    for label, phases in report.mixtures.items():
        for phase, shares in phases.items():
            out.append(f"- {label} · {phase}: " + ", ".join(f"{s} {v * 100:.2f}%" for s, v in shares.items()))
    figures = [path for path in report.files if path.endswith(".png")]
    if figures:
        out += ["", "## Figures", "", "Each also as SVG and PDF beside it. " + CAPTION]
    for path in figures:
        out += ["", f"![{os.path.basename(path)}]({os.path.basename(path)})"]
    return "\n".join(out) + "\n"


def curves(report: Report, x: str = "real-tokens") -> dict[str, Any]:
    """Each arm's mean loss curve on the x-axis ``x`` (:mod:`procdsl.report.axes`)."""
    return {
        f"{arm.label} (n={len(arm.runs)})": arm_curve(
            arm, use_eval=report.use_eval, axis=axis_for(arm.plan, x)
        )
        for arm in report.arms
    }


def write_report(
    paths: Sequence[Union[str, Path]],
    *,
    out: Optional[Union[str, Path]] = None,
    baseline: Optional[str] = None,
    include_unfinished: bool = False,
    x: str = "real-tokens",
) -> tuple[Report, str, dict[str, Any]]:
    """``procdsl report``'s files: the report of the runs under ``paths``, its figures and
    ``report.md`` in ``out`` (default ``FIRST/report``); returns the report, that folder and the
    curves on the x-axis ``x``. UsageError for an unknown axis, CommandError when there is
    nothing to compare."""
    if x not in AXES:
        raise UsageError(f"--x {x}: choose {', '.join(AXES)}")
    try:
        report = build_report([str(p) for p in paths], baseline, include_unfinished=include_unfinished)
        folder = str(Path(out) if out is not None else Path(paths[0]) / "report")
        report.files = save_figures(report, folder, x)
        plotted = curves(report, x)
    except (ReportError, AxisError) as exc:
        raise CommandError(str(exc)) from None
    hardware = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    os.makedirs(folder, exist_ok=True)
    Path(folder, "report.md").write_text(markdown(report, hardware), encoding="utf-8")
    return report, folder, plotted


def report_json(report: Report) -> str:
    """``procdsl report --json``: the final metrics, the data efficiency and the mixtures."""
    return json.dumps(
        {"finals": report.finals, "efficiency": report.efficiency, "mixtures": report.mixtures},
        indent=2,
        default=str,
    )


def print_report(report: Report, plotted: dict[str, Any], folder: str, console: Any = None) -> None:
    """``procdsl report`` on the terminal: what was left out, the tables, the curves, the files."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not report.files:
        console.print(
            "no figures: matplotlib is not installed (pip install 'procdsl[report]'); "
            "report.md has the tables",
            style="yellow",
            highlight=False,
        )
    for path in report.skipped:
        console.print(f"skipped unfinished run {path} (--all includes it)", style="yellow", highlight=False)
    header, rows = table_rows(report)
    table = Table(title="final metrics (mean ± std over seeds)", title_justify="left")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if report.efficiency:
        eff = Table(
            title="data efficiency: real tokens to reach the baseline's final loss", title_justify="left"
        )
        for column in ("arm", "baseline", "compared", "baseline final", "tokens needed"):
            eff.add_column(column)
        for row in efficiency_rows(report):
            eff.add_row(*row)
        console.print(eff)
    console.print(terminal_plot(plotted), highlight=False)
    console.print(f"wrote {folder}/report.md" + "".join(f", {f}" for f in report.files), style="dim")
