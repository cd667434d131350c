"""The training step on the CPU: accumulation equivalence, host syncs per step, NaN skipped on
the device, the gc policy across phases.

The tiny curriculum of ``test_runtime_run`` trains in this process; one test builds a
``PhaseTrainer`` by hand to count device→host reads inside a single step.
"""

from __future__ import annotations

import gc
import json
import math
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import phases, platform  # noqa: E402
from procdsl.runtime.run import execute, run_and_report  # noqa: E402
from test_runtime_run import curriculum, plan_of, train_losses  # noqa: E402

from procdsl.plan import to_json  # noqa: E402
from procdsl.rundir import read_metrics  # noqa: E402

#: the ways a tensor's value reaches the host
READS = ("item", "cpu", "tolist", "__float__", "__bool__", "__int__", "__index__")


def fields(step: int) -> dict:
    """The host-side fields the training loop records with each step's device statistics."""
    return {
        "step": step,
        "phase_step": step,
        "lr": 0.0,
        "shares": {},
        "shares_total": {},
        "tokens": 0,
        "step_time_s": 0.0,
        "data_wait_s": 0.0,
        "time": 0.0,
    }


def train_records(folder) -> list[dict]:
    return [r for r in read_metrics(str(folder)) if r["kind"] == "train"]


def test_accumulation_gives_the_same_run(tmp_path):
    """batch 8 in one forward, and in microbatches of 2 (4 accumulation steps): the same losses,
    per-source losses, gradient norms and evals, to float tolerance, over both phases."""
    path = curriculum(tmp_path, warm=6, main=4)
    whole, micro = tmp_path / "whole", tmp_path / "micro"
    no_dropout = ["model.dropout=0"]  # dropout masks depend on the microbatch's shape
    execute(plan_of(path, no_dropout), out=str(whole), device="cpu", claim=True)
    execute(plan_of(path, no_dropout + ["runtime.microbatch=2"]), out=str(micro), device="cpu", claim=True)
    assert "gradient accumulation steps 4" in (micro / "logs" / "rank_0.log").read_text()
    a, b = train_records(whole), train_records(micro)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 11))
    for x, y in zip(a, b):
        tolerance = 1e-6 if x["step"] == 1 else 1e-4  # float sums in another order, compounding
        for key in [
            k for k in x if k.startswith(("loss", "grad_norm", "share/", "tokens")) and k != "tokens_per_s"
        ]:
            assert y[key] == pytest.approx(x[key], rel=tolerance, abs=1e-7), (x["step"], key)
    evals = lambda folder: [(r["step"], r["loss"]) for r in read_metrics(str(folder)) if r["kind"] == "eval"]  # noqa: E731
    assert [s for s, _ in evals(micro)] == [s for s, _ in evals(whole)]
    assert [v for _, v in evals(micro)] == pytest.approx([v for _, v in evals(whole)], rel=1e-4)


@pytest.fixture
def trainer(tmp_path):
    """Phase ``warm`` of the tiny curriculum as a PhaseTrainer (log_every 100: no step is a log step)."""
    plan = plan_of(curriculum(tmp_path, runtime="log_every = 100 steps"))
    out = tmp_path / "run"
    out.mkdir()
    (out / "plan.json").write_text(to_json(plan))
    runner = phases.PhaseRunner(plan, out=str(out), device="cpu", rank=0, world=1)
    trainer = phases.PhaseTrainer(runner, 0)
    try:
        yield trainer
    finally:
        trainer.close()


def count_reads(monkeypatch) -> list[str]:
    """Patch every way a tensor reaches the host; return the list the calls are logged to."""
    calls: list[str] = []
    for name in READS:
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def test_a_step_reads_nothing_from_the_device_outside_log_steps(trainer, monkeypatch):
    batches = trainer.batch_generator(trainer.dataloader)
    for step in (1, 2):  # warm-up: lazy state, first AdamW step
        trainer._unread.append((fields(step), trainer.train_step(batches)["stats"]))
    with monkeypatch.context() as patch:
        calls = count_reads(patch)
        result = trainer.train_step(batches)
    assert calls == [], calls  # TorchTitan's own step has one (.item())
    assert result["stats"].shape == (3 * len(trainer.sources) + 2,)
    trainer._unread.append((fields(3), result["stats"]))
    with monkeypatch.context() as patch:
        calls = count_reads(patch)
        records = trainer.read_metrics()
    assert calls.count("cpu") == 1 and "item" not in calls  # one copy for all unread steps
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in records)
    assert records[0]["mfu"] is None  # no known peak on the CPU


def test_a_nonfinite_step_is_skipped_on_the_device_and_reported_at_the_read(trainer, monkeypatch):
    batches = trainer.batch_generator(trainer.dataloader)
    trainer._unread.append((fields(1), trainer.train_step(batches)["stats"]))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    steps = {
        id(p): trainer.optimizers.optimizers[0].state[p]["step"].clone() for p in trainer.model.parameters()
    }
    real = phases.token_losses
    monkeypatch.setattr(phases, "token_losses", lambda logits, labels: real(logits, labels) * math.nan)
    for step in (2, 3):  # both skipped: the flag latches
        trainer._unread.append((fields(step), trainer.train_step(batches)["stats"]))
        monkeypatch.setattr(phases, "token_losses", real)
    for name, param in trainer.model.named_parameters():
        assert torch.equal(param.detach(), before[name]), name
        assert torch.equal(trainer.optimizers.optimizers[0].state[param]["step"], steps[id(param)])
    with pytest.raises(phases.TrainingDiverged, match=r"the loss is nan at step 2 .*not applied"):
        trainer.read_metrics()
    trainer._unread.append((fields(4), trainer.train_step(batches)["stats"]))
    with pytest.raises(phases.TrainingDiverged, match="an earlier step; skipped at step 4"):
        trainer.state_dict()  # a checkpoint reads first: never saved


def test_nan_stops_the_run_at_the_next_read_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    path = curriculum(tmp_path, warm=6, main=6)
    real, forward_backward = phases.token_losses, phases.PhaseTrainer.forward_backward_step
    at = {}

    def tracked(self, **kwargs):
        at["step"] = self.global_step
        return forward_backward(self, **kwargs)

    monkeypatch.setattr(phases.PhaseTrainer, "forward_backward_step", tracked)
    monkeypatch.setattr(
        phases,
        "token_losses",
        lambda logits, labels: real(logits, labels) * (math.inf if at.get("step") == 7 else 1.0),
    )
    code = run_and_report(plan_of(path), out=str(tmp_path / "run"), device="cpu", claim=True)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "training stopped" in err, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps"] == 6, summary
    assert "loss is nan at step 7" in summary["error"] or "loss is inf at step 7" in summary["error"]
    # read at the checkpoint of step 8 (checkpoint_every 4): it was never written
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["step-4", "step-6"]
    assert [r["step"] for r in train_records(tmp_path / "run")] == list(range(1, 7))


def test_the_gc_policy_holds_across_phases(tmp_path, monkeypatch):
    """With TorchTitan's GPU policy (gc off while training), closing phase 1's trainer must not
    turn gc back on under phase 2's; the caller's state comes back at the end."""
    seen = []
    train = phases.PhaseTrainer.train

    def watched(self):
        seen.append((self.phase.name, gc.isenabled()))
        return train(self)

    monkeypatch.setattr(platform, "automatic_gc", lambda device: False)
    monkeypatch.setattr(phases.PhaseTrainer, "train", watched)
    was = gc.isenabled()  # an earlier test in this worker may have left gc off
    gc.enable()
    try:
        execute(
            plan_of(curriculum(tmp_path, warm=2, main=2)), out=str(tmp_path / "run"), device="cpu", claim=True
        )
        assert seen == [("warm", False), ("main", False)]
        assert gc.isenabled() and train_losses(tmp_path / "run")
    finally:
        (gc.enable if was else gc.disable)()
