"""``procdsl report`` on synthetic run directories whose answers are known by construction."""

from __future__ import annotations

import json
import math
import os

import pytest
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.report.build import build_report
from procdsl.report.compare import Curve, data_efficiency, mean_std, reach


def write_run(root, name, *, seed, phases, eval_losses=None, train_losses=(), status="done", variant=None):
    path = os.path.join(root, f"{name}-{seed}")
    os.makedirs(path)
    plan = {"name": name + (f"/seed={seed}" if variant is not None else ""), "seed": seed,
            "variant": {**(variant or {}), **({"seed": str(seed)} if variant is not None else {})},
            "model": {"kind": "gpt2", "layers": 2, "heads": 2, "dim": 16}, "total_steps": 10,
            "phases": [{"name": p, "batch": 2, "context": 50, "seed": seed} for p in phases]}
    with open(os.path.join(path, "plan.json"), "w") as f:
        json.dump(plan, f)
    lines = [{"kind": "train", "step": i, "phase": phases[-1], "phase_step": i, "loss": y, "share/a": 0.25}
             for i, y in enumerate(train_losses, 1)]
    lines += [{"kind": "eval", "step": i, "phase": phases[-1], "phase_step": i, "eval": "perplexity",
               "source": "val", "loss": y, "perplexity": math.exp(y)} for i, y in enumerate(eval_losses or [], 1)]
    with open(os.path.join(path, "metrics.jsonl"), "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + "\n{\"kind\": \"tr")  # a torn last line
    with open(os.path.join(path, "summary.json"), "w") as f:
        json.dump({"status": status, "wall_time_s": 3.0}, f)
    return path


def test_reach_interpolates_and_ratio_uses_real_tokens_only():
    assert reach(Curve([10, 20], [5.0, 3.0]), 4.0) == 15
    assert reach(Curve([10, 20], [5.0, 4.5]), 4.0) is None
    base, warm = Curve([100, 200, 300, 400], [4, 3, 2.5, 2.0]), Curve([100, 200, 300, 400], [3, 2.5, 2.0, 1.5])
    assert data_efficiency(warm, base) == pytest.approx(300 / 400)


def test_mean_std_over_seeds():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([5.0]) == (5.0, 0.0)


def test_report_groups_seeds_into_arms_and_measures_efficiency(tmp_path):
    for seed in range(3):  # the warm arm reaches the baseline's final eval loss (2.0) at step 2 of 4
        write_run(tmp_path, "base", seed=seed, phases=["lm"], eval_losses=[4.0, 3.0, 2.5, 2.0 + seed * 0.0])
        write_run(tmp_path, "warm", seed=seed, phases=["w", "lm"], eval_losses=[3.0, 2.0, 1.8, 1.5 + seed * 0.1])
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
        path = write_run(tmp_path, arm, seed=0, phases=phases, train_losses=[3, 2, 1.5, 1.2] if arm == "base" else [2.5, 1.6, 1.2, 1.0])
        with open(os.path.join(path, "metrics.jsonl"), "a") as f:  # accuracy evals only, no perplexity
            f.write("\n" + json.dumps({"kind": "eval", "step": 4, "phase": "probe", "phase_step": 4,
                                       "eval": "accuracy", "source": "t", "accuracy": 0.5, "loss": 1.0}))
    report = build_report([str(tmp_path)])
    (row,) = report.efficiency
    assert row["metric"] == "train loss (EMA)" and row["ratio"] is not None
