"""``runtime { wandb = "project" }``: every run-log record also goes to Weights & Biases.

Offline (``WANDB_MODE=offline``), the W&B run is a file under ``DIR/wandb/``; its records are
protobuf, so the test looks for the metric names the run logged inside it.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")
pytest.importorskip("wandb")

from procdsl.runtime.run import execute  # noqa: E402
from procdsl.runtime.tracking import run_id  # noqa: E402

from procdsl.compiler import compile_text  # noqa: E402

TRACKED = """curriculum tracked {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 16
  batch = 2
  runtime { %s }
  source s = sort(length=4, vocab=5)
  source v = sort(length=4, vocab=5)
  phase warm { steps = 4  mix = { s: 100%% }  eval every 2 steps { accuracy(v, batches=1) } }
}
"""


def test_wandb_offline_run_holds_the_records(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    plan = compile_text(TRACKED % 'wandb = "procdsl-test"', "t.curr").plan
    assert plan.runtime.wandb == "procdsl-test"
    out = tmp_path / "run"
    assert execute(plan, out=str(out), device="cpu", claim=True)["status"] == "done"
    (folder,) = (out / "wandb").glob(f"offline-run-*-{run_id(plan.hash, str(out))}")
    data = (folder / f"run-{run_id(plan.hash, str(out))}.wandb").read_bytes()
    assert data.count(b"train/loss") >= 4 and b"train/tokens_per_s" in data
    assert b"eval/v/accuracy" in data and b"procdsl-test" in data
    assert (out / "tb").is_dir()  # TensorBoard still gets the same numbers


def test_wandb_setting_is_checked():
    assert compile_text(TRACKED % "compile = false", "t.curr").plan.runtime.wandb is None
    result = compile_text(TRACKED % "wandb = 3", "t.curr")
    assert not result.ok and "wandb" in result.diagnostics[0].message


def test_metrics_lines_are_strict_json(tmp_path):
    import json

    from procdsl.runtime.metrics import RunLog

    log = RunLog(str(tmp_path), tensorboard=False)
    log.write({"kind": "train", "step": 1, "loss": float("nan"), "grad_norm": float("inf"), "lr": 0.1})
    log.close()
    line = (tmp_path / "metrics.jsonl").read_text()
    record = json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name} in {line}"))
    assert record == {"kind": "train", "step": 1, "loss": None, "grad_norm": None, "lr": 0.1}
