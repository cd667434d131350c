"""``procdsl report`` on synthetic run directories whose answers are known by construction."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.report.build import build_report
from procdsl.report.compare import Curve, data_efficiency, mean_std, reach


def write_run(root, name, *, seed, phases, eval_losses=None, train_losses=(), status="done", variant=None):
    path = os.path.join(root, f"{name}-{seed}")
    os.makedirs(path)
    plan = {
        "name": name + (f"/seed={seed}" if variant is not None else ""),
        "seed": seed,
        "variant": {**(variant or {}), **({"seed": str(seed)} if variant is not None else {})},
        "model": {"kind": "gpt2", "layers": 2, "heads": 2, "dim": 16},
        "total_steps": 10,
        "phases": [{"name": p, "batch": 2, "context": 50, "seed": seed} for p in phases],
    }
    with open(os.path.join(path, "plan.json"), "w") as f:
        json.dump(plan, f)
    lines = [
        {"kind": "train", "step": i, "phase": phases[-1], "phase_step": i, "loss": y, "share/a": 0.25}
        for i, y in enumerate(train_losses, 1)
    ]
    lines += [
        {
            "kind": "eval",
            "step": i,
            "phase": phases[-1],
            "phase_step": i,
            "eval": "perplexity",
            "source": "val",
            "loss": y,
            "perplexity": math.exp(y),
        }
        for i, y in enumerate(eval_losses or [], 1)
    ]
    with open(os.path.join(path, "metrics.jsonl"), "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + '\n{"kind": "tr')  # a torn last line
    with open(os.path.join(path, "summary.json"), "w") as f:
        json.dump({"status": status, "wall_time_s": 3.0}, f)
    return path


def test_reach_interpolates_and_ratio_uses_real_tokens_only():
    assert reach(Curve([10, 20], [5.0, 3.0]), 4.0) == 15
    assert reach(Curve([10, 20], [5.0, 4.5]), 4.0) is None
    base, warm = (
        Curve([100, 200, 300, 400], [4, 3, 2.5, 2.0]),
        Curve([100, 200, 300, 400], [3, 2.5, 2.0, 1.5]),
    )
    assert data_efficiency(warm, base) == pytest.approx(300 / 400)


def test_mean_std_over_seeds():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([5.0]) == (5.0, 0.0)


def test_report_groups_seeds_into_arms_and_measures_efficiency(tmp_path):
    for seed in range(3):  # the warm arm reaches the baseline's final eval loss (2.0) at step 2 of 4
        write_run(tmp_path, "base", seed=seed, phases=["lm"], eval_losses=[4.0, 3.0, 2.5, 2.0 + seed * 0.0])
        write_run(
            tmp_path, "warm", seed=seed, phases=["w", "lm"], eval_losses=[3.0, 2.0, 1.8, 1.5 + seed * 0.1]
        )
    report = build_report([str(tmp_path)])
    assert sorted((a.label, a.seeds) for a in report.arms) == [("base", [0, 1, 2]), ("warm", [0, 1, 2])]
    assert report.baseline.label == "base"
    (row,) = report.efficiency
    assert row["arm"] == "warm" and row["metric"] == "eval loss" and row["ratio"] == pytest.approx(0.5)
    mean, std = report.finals["warm"]["perplexity/val"]
    assert mean == pytest.approx(sum(math.exp(1.5 + s * 0.1) for s in range(3)) / 3) and std > 0


def test_report_cli_writes_markdown_and_png(tmp_path):
    write_run(tmp_path, "base", seed=0, phases=["lm"], train_losses=[4, 3, 2.5, 2.4])
    write_run(tmp_path, "warm", seed=0, phases=["w", "lm"], train_losses=[3, 2.4, 2.2, 2.0])
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| warm |" in text and "train loss (EMA)" in text and "Hardware:" in text
    assert (tmp_path / "out" / "loss.png").stat().st_size > 1000
    assert (tmp_path / "out" / "loss.svg").exists() and (tmp_path / "out" / "loss.pdf").exists()


def test_report_on_nothing_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "no run found" in result.output


def test_unfinished_runs_are_left_out_unless_asked(tmp_path):
    write_run(tmp_path, "base", seed=0, phases=["lm"], train_losses=[4, 3])
    write_run(tmp_path, "base", seed=1, phases=["lm"], train_losses=[4], status="failed")
    assert [len(a.runs) for a in build_report([str(tmp_path)]).arms] == [1]
    assert [len(a.runs) for a in build_report([str(tmp_path)], include_unfinished=True).arms] == [2]


def test_accuracy_only_probes_compare_training_loss(tmp_path):
    for arm, phases in (("base", ["probe"]), ("warm", ["w", "probe"])):
        path = write_run(
            tmp_path,
            arm,
            seed=0,
            phases=phases,
            train_losses=[3, 2, 1.5, 1.2] if arm == "base" else [2.5, 1.6, 1.2, 1.0],
        )
        with open(os.path.join(path, "metrics.jsonl"), "a") as f:  # accuracy evals only, no perplexity
            f.write(
                "\n"
                + json.dumps(
                    {
                        "kind": "eval",
                        "step": 4,
                        "phase": "probe",
                        "phase_step": 4,
                        "eval": "accuracy",
                        "source": "t",
                        "accuracy": 0.5,
                        "loss": 1.0,
                    }
                )
            )
    report = build_report([str(tmp_path)])
    (row,) = report.efficiency
    assert row["metric"] == "train loss (EMA)" and row["ratio"] is not None


def write_paper_runs(root, seeds=3):
    """Two arms over seeds, as real runs log them: a 1-phase baseline and a warm-up arm whose
    last phase starts lower; train records with per-source losses, held-out loss and haystack
    accuracy evals, and a plan that validates (for the FLOPs axis)."""
    from procdsl.compiler import compile_text
    from procdsl.plan import to_json

    text = """curriculum {name} {{
  model = gpt2(layers=1, heads=2, dim=16)
  context = 32
  batch = 4
  source warm = sort(length=8, vocab=10)
  source probe = haystack(pairs=4, vocab=20)
  source val = haystack(pairs=4, vocab=20)
{phases}
}}"""
    main = "  phase main { steps = 400  mix = { probe: 100% }  eval every 50 steps { perplexity(val, batches=1)  accuracy(val, batches=1) } }"
    arms = {"base": main, "warm": "  phase w { steps = 100  mix = { warm: 100% } }\n" + main}
    for name, phases in arms.items():
        plan = json.loads(to_json(compile_text(text.format(name=name, phases=phases), "r.curr").plan))
        for seed in range(seeds):
            path = os.path.join(root, name, f"seed{seed}")
            os.makedirs(path)
            plan["seed"] = seed
            json.dump(plan, open(os.path.join(path, "plan.json"), "w"))
            lines, step, rng = [], 0, np.random.default_rng(seed)
            for phase in plan["phases"]:
                for i in range(1, phase["steps"] + 1):
                    step += 1
                    source = next(iter(phase["mix"]))
                    start = 2.2 if name == "warm" and phase["name"] == "main" else 3.0
                    loss = 1.0 + (start - 1.0) * math.exp(-i / 150) + rng.normal(0, 0.03)
                    lines.append(
                        {
                            "kind": "train",
                            "step": step,
                            "phase": phase["name"],
                            "phase_step": i,
                            "loss": loss,
                            f"loss/{source}": loss,
                            f"share/{source}": 1.0,
                            f"share_total/{source}": 1.0,
                            "pad": 0.1,
                            "tokens": step * 128,
                        }
                    )
                    if phase["name"] == "main" and i % 50 == 0:
                        held = loss + 0.05 + rng.normal(0, 0.02)
                        acc = (
                            0.25
                            + (0.5 if name == "warm" else 0.3) * (1 - math.exp(-i / 200))
                            + rng.normal(0, 0.02)
                        )
                        lines += [
                            {
                                "kind": "eval",
                                "step": step,
                                "phase": "main",
                                "phase_step": i,
                                "eval": "perplexity",
                                "source": "val",
                                "loss": held,
                                "perplexity": math.exp(held),
                            },
                            {
                                "kind": "eval",
                                "step": step,
                                "phase": "main",
                                "phase_step": i,
                                "eval": "accuracy",
                                "source": "val",
                                "loss": held,
                                "accuracy": acc,
                            },
                        ]
            with open(os.path.join(path, "metrics.jsonl"), "w") as f:
                f.write("\n".join(json.dumps(line) for line in lines) + "\n")
            json.dump({"status": "done", "wall_time_s": 3.0}, open(os.path.join(path, "summary.json"), "w"))


def svg_text(path) -> list[str]:
    """The text elements of an SVG figure (labels stay text: procdsl.report.style)."""
    import re

    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))


def test_paper_figures_are_vector_and_say_what_they_show(tmp_path):
    write_paper_runs(tmp_path / "runs")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", str(tmp_path / "runs"), "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for stem in ("loss", "accuracy", "loss_by_source"):
        for fmt in ("png", "svg", "pdf"):
            assert (out / f"{stem}.{fmt}").stat().st_size > 1000, (stem, fmt)
    loss = svg_text(out / "loss.svg")
    for label in (
        "base (n=3)",
        "warm (n=3)",
        "± 1 std over seeds",
        "real-data tokens (last phase)",
        "held-out loss",
        "baseline's final loss (1.14)",
        "10k",
        "50k",
    ):
        assert label in loss, label
    ratio = build_report([str(tmp_path / "runs")]).efficiency[0]["ratio"]
    assert f"{ratio:.0%} of the baseline's tokens" in loss  # the crossing, marked
    assert any("standard deviation over seeds" in t for t in loss)  # and the caption says so
    accuracy = svg_text(out / "accuracy.svg")
    assert "chance: copy a listed value (25%)" in accuracy and "answer accuracy" in accuracy
    sources = svg_text(out / "loss_by_source.svg")
    assert "loss on probe" in sources and "loss on warm" in sources
    report = (out / "report.md").read_text()
    assert (
        "![loss.png](loss.png)" in report and "loss.svg" not in report and "± 1 standard deviation" in report
    )


def test_x_axis_choice_moves_the_curves_and_marks_phase_starts(tmp_path):
    write_paper_runs(tmp_path / "runs", seeds=1)
    for x, label, starts in (
        ("all-tokens", "tokens (all phases)", True),
        ("flops", "training FLOPs (all phases)", True),
        ("real-tokens", "real-data tokens (last phase)", False),
    ):
        out = tmp_path / x
        result = CliRunner().invoke(
            app, ["report", str(tmp_path / "runs"), "--out", str(out), "--x", x], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        text = svg_text(out / "loss.svg")
        assert label in text and ("main starts" in text) is starts, x
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--x", "steps"])
    assert bad.exit_code == 2 and "choose real-tokens, all-tokens, flops" in bad.output


def test_flops_axis_of_a_plan_that_no_longer_validates_is_one_error_line(tmp_path):
    write_run(tmp_path, "base", seed=0, phases=["lm"], train_losses=[4, 3])  # a plan without sources
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--x", "flops", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and result.output.startswith("error: cannot count the FLOPs of plan 'base'")


def test_terminal_plot_shows_every_arm_where_they_overlap():
    from procdsl.report.plot import terminal_plot

    drawn = terminal_plot(
        {
            "base": Curve([0, 100], [3.0, 1.0]),
            "warm": Curve([0, 100], [3.0, 1.0]),
            "late": Curve([50, 100], [2.0, 2.0]),
        },
        width=20,
        height=6,
    )
    rows = drawn.splitlines()[:-1]
    assert (
        all(mark not in "".join(rows) for mark in "ab") and "*" in drawn
    )  # a and b coincide: both shown as *
    assert "c" in "".join(rows) and "a = base, b = warm, c = late, * = both" in drawn
