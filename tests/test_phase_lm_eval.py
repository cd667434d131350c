"""``eval { lm_eval(…) }``: lm-eval tasks on a phase's final model, at its end, inside ``procdsl run``.

End to end and offline: a tiny two-phase run whose second phase runs the local task of
``test_export`` (``include_path`` relative to the ``.curr`` file) logs one ``lm_eval`` record
at that phase's last step, lists it in ``summary.json``, and does not evaluate again when the
finished run is rerun; a run that lost its records (killed during lm-eval) evaluates on resume.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

from procdsl.runtime.run import execute  # noqa: E402
from test_export import write_tiny_task  # noqa: E402

from procdsl.compiler import compile_file  # noqa: E402
from procdsl.rundir import read_metrics  # noqa: E402

CURRICULUM = """curriculum ends {
  seed      = 0
  model     = gpt2(layers=1, heads=2, dim=16)
  tokenizer = bytes
  context   = 32
  batch     = 4
  source code = python_code()
  source s    = sort(length=4..8, vocab=10)
  phase warm { steps = 2  mix = { s: 100% } }
  phase main {
    steps = 3
    mix   = { code: 70%, s: 30% }
    eval { lm_eval(tasks=["procdsl_tiny"], include_path="tasks", limit=3) }
  }
}
"""


def lm_eval_records(run) -> list[dict]:
    return [r for r in read_metrics(str(run)) if r.get("eval") == "lm_eval"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """lm-eval offline (the task's data is a local file), and the data read as the run goes:
    where a run's tokens come from is not what these tests are about."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PROCDSL_DATA", "stream")


@pytest.mark.slow
def test_phase_end_lm_eval_is_logged_once(tmp_path):
    write_tiny_task(tmp_path)
    (tmp_path / "ends.curr").write_text(CURRICULUM)
    plan = compile_file(str(tmp_path / "ends.curr")).plan
    assert plan.phases[1].lm_eval.include_path == str(tmp_path / "tasks")
    run = tmp_path / "run"
    summary = execute(plan, out=str(run), device="cpu", claim=True)
    assert summary["status"] == "done"

    records = lm_eval_records(run)
    assert len(records) == 1, records  # `warm` has no lm_eval
    record = records[0]
    assert (record["kind"], record["phase"], record["step"], record["phase_step"], record["task"]) == (
        "eval",
        "main",
        5,
        3,
        "procdsl_tiny",
    )
    # limit=3: the accuracy is a count of 3 examples; its stderr is a number or null
    assert record["acc"] * 3 == pytest.approx(round(record["acc"] * 3)) and 0 <= record["acc"] <= 1
    assert "acc_stderr" in record and not any("," in key for key in record)
    # the record is the last one of the phase: after its last training step and the checkpoint
    assert read_metrics(str(run))[-1] == record
    assert summary["phases"]["main"]["eval"]["lm_eval/procdsl_tiny"]["acc"] == record["acc"]
    assert "eval" not in summary["phases"]["warm"]
    written = json.loads((run / "lm_eval" / "step-5.json").read_text())
    assert written["step"] == 5 and written["limit"] == 3
    log = run / "logs" / "lm_eval_step-5.log"
    assert log.is_file()

    # rerun of the finished run: resumes from step 5, finds the record, does not evaluate again
    before = log.stat().st_mtime_ns
    assert execute(plan, out=str(run), device="cpu", claim=True)["status"] == "done"
    assert lm_eval_records(run) == records and log.stat().st_mtime_ns == before

    # a run killed during lm-eval has no record of it: the resumed run evaluates
    metrics = run / "metrics.jsonl"
    kept = [line for line in metrics.read_text().splitlines() if '"lm_eval"' not in line]
    metrics.write_text("\n".join(kept) + "\n")
    assert lm_eval_records(run) == []
    assert execute(plan, out=str(run), device="cpu", claim=True)["status"] == "done"
    again = lm_eval_records(run)
    assert [(r["step"], r["task"], r["acc"]) for r in again] == [(5, "procdsl_tiny", record["acc"])]
    assert log.stat().st_mtime_ns != before


@pytest.mark.slow
def test_a_failing_lm_eval_fails_the_run_with_its_log(tmp_path):
    """An unknown task fails in the child; the run reports one line naming the task and the log."""
    write_tiny_task(tmp_path)
    text = CURRICULUM.replace('"procdsl_tiny"', '"no_such_task"').replace("steps = 2 ", "steps = 1 ")
    text = text.replace("steps = 3\n", "steps = 1\n")
    (tmp_path / "ends.curr").write_text(text)
    plan = compile_file(str(tmp_path / "ends.curr")).plan
    from procdsl.runtime.harness import LmEvalFailed

    with pytest.raises(LmEvalFailed) as failed:
        execute(plan, out=str(tmp_path / "run"), device="cpu", claim=True)
    message = str(failed.value)
    assert "unknown lm-eval task(s): no_such_task" in message
    assert os.path.join("run", "logs", "lm_eval_step-2.log") in message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] != "done" and lm_eval_records(tmp_path / "run") == []
