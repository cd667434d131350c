"""What a signal, a damaged or hostile checkpoint, a second run, a bad metrics line, changed data or
a full disk can do to ``procdsl run`` (issues #11 item 6, #14): never run code, lose data or print a
traceback. Tiny two-phase runs in this process (seconds each); the slow ones start real processes.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import ownership, sidecar  # noqa: E402
from procdsl.runtime.checkpoint import latest_step  # noqa: E402
from procdsl.runtime.preempt import EXIT_STOPPED  # noqa: E402
from procdsl.runtime.run import execute, run_and_report  # noqa: E402
from test_runtime_run import clean_env, curriculum, plan_of, procdsl, train_losses  # noqa: E402

from procdsl.rundir import read_metrics  # noqa: E402

WARM, MAIN = 6, 4  # checkpoints every 4 steps (TINY) and at the phase ends: 4, 6, 8, 10


def steps_logged(folder) -> list[int]:
    return [r["step"] for r in read_metrics(str(folder)) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run: (curriculum file, run directory)."""
    folder = tmp_path_factory.mktemp("reference")
    path = curriculum(folder, warm=WARM, main=MAIN)
    out = folder / "run"
    assert execute(plan_of(path), out=str(out), device="cpu", claim=True)["status"] == "done"
    return path, out


def copy_run(reference, tmp_path, *, drop=()):
    out = tmp_path / "run"
    shutil.copytree(reference[1], out)
    for step in drop:
        shutil.rmtree(out / "checkpoints" / f"step-{step}")
    (out / "summary.json").unlink()
    return out


# ------------------------------------------------------------------------------ signals


def signal_at(monkeypatch, step: int, sig=signal.SIGTERM):
    """Deliver ``sig`` to this process right after global step ``step`` trains (a real signal,
    through the run's handler)."""
    from procdsl.runtime.phases import PhaseRunner

    original = PhaseRunner.after_step

    def after_step(self, trainer):
        if trainer.global_step == step:
            os.kill(os.getpid(), sig)
        return original(self, trainer)

    monkeypatch.setattr(PhaseRunner, "after_step", after_step)


def test_sigterm_mid_phase_saves_stops_and_resumes_bitwise(reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    plan = plan_of(reference[0])
    signal_at(monkeypatch, 3)
    assert run_and_report(plan, out=str(out), device="cpu", claim=True) == EXIT_STOPPED
    err = capsys.readouterr().err
    assert "stopped by SIGTERM after step 3" in err and "checkpoints/step-3" in err, err
    assert "Traceback" not in err
    assert latest_step(str(out / "checkpoints")) == 3  # saved at the stop
    first = json.loads((out / "summary.json").read_text())
    assert first["status"] == "stopped" and first["steps"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    monkeypatch.undo()
    assert run_and_report(plan, out=str(out), device="cpu", claim=True) == 0
    assert "resuming from" in capsys.readouterr().err
    assert train_losses(out) == train_losses(reference[1])  # bit for bit
    assert steps_logged(out) == list(range(1, WARM + MAIN + 1))  # no duplicate rows
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["resumed_from"] == 3
    stopped_at = json.loads((out / "checkpoints" / "step-3" / "procdsl.json").read_text())["wall_time_s"]
    assert summary["wall_time_s"] == pytest.approx(stopped_at + summary["segment_wall_time_s"], abs=0.05)
    assert summary["wall_time_s"] > summary["segment_wall_time_s"]  # summed over segments


def test_sigint_during_a_save_finishes_it(reference, tmp_path, monkeypatch, capsys):
    """Ctrl-C while DCP writes: the save completes (sidecar and all), then the run stops."""
    from torchtitan.components.checkpoint import CheckpointManager

    original = CheckpointManager.dcp_save

    def dcp_save(self, state_dict, checkpoint_id, *args, **kwargs):
        if checkpoint_id.endswith("step-4"):
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, state_dict, checkpoint_id, *args, **kwargs)

    monkeypatch.setattr(CheckpointManager, "dcp_save", dcp_save)
    out = tmp_path / "run"
    code = run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True)
    err = capsys.readouterr().err
    assert code == EXIT_STOPPED and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped by SIGINT after step 5" in err, err  # the step after the one saving
    assert sidecar.read(str(out / "checkpoints" / "step-4"))["global_step"] == 4
    assert latest_step(str(out / "checkpoints")) == 5


@pytest.mark.slow
def test_sigterm_from_outside_then_rerun_continues_bitwise(reference, tmp_path):
    """A real `procdsl run` process gets SIGTERM from outside mid-phase: exit 3, one line saying
    where the checkpoint is; the rerun continues the losses bit for bit, without duplicate rows."""
    out = tmp_path / "run"
    process = subprocess.Popen(
        procdsl(reference[0], "--out", out, "--device", "cpu"),
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and '"step": 2,' in metrics.read_text():
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_STOPPED, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    stopped = latest_step(str(out / "checkpoints"))
    assert stopped is not None and f"checkpoints/step-{stopped}" in err
    rerun = subprocess.run(
        procdsl(reference[0], "--out", out, "--device", "cpu"),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert train_losses(out) == train_losses(reference[1])
    assert steps_logged(out) == list(range(1, WARM + MAIN + 1))


# --------------------------------------------------------------------------- checkpoints


def test_retention_keeps_the_newest_n_and_the_phase_ends(tmp_path):
    path = curriculum(tmp_path, warm=WARM, main=MAIN)
    for keep, kept in ((1, [WARM, WARM + MAIN]), (2, [WARM, WARM + MAIN - 1, WARM + MAIN])):
        out = tmp_path / f"keep{keep}"
        plan = plan_of(path, [f"runtime.keep={keep}", "runtime.checkpoint_every=1"])
        execute(plan, out=str(out), device="cpu", claim=True)
        assert sorted(sidecar.steps(str(out / "checkpoints"))) == kept


def test_async_checkpoints_resume_bitwise(reference, tmp_path, monkeypatch):
    path = curriculum(tmp_path, warm=WARM, main=MAIN, runtime="async_checkpoint")
    plan = plan_of(path)
    out = tmp_path / "run"
    signal_at(monkeypatch, 7)
    assert run_and_report(plan, out=str(out), device="cpu", claim=True) == EXIT_STOPPED
    assert sorted(sidecar.steps(str(out / "checkpoints"))) == [4, 6, 7]
    for step in (4, 6, 7):  # each completed in the background, then vouched for
        sidecar.read(str(out / "checkpoints" / f"step-{step}"))
    monkeypatch.undo()
    shutil.rmtree(out / "checkpoints" / "step-7")
    shutil.rmtree(out / "checkpoints" / "step-6")
    assert run_and_report(plan, out=str(out), device="cpu", claim=True) == 0
    assert train_losses(out) == train_losses(reference[1])  # the runtime block is not the loss


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar"])
def test_damaged_newest_checkpoint_falls_back(reference, tmp_path, capsys, damage):
    out = copy_run(reference, tmp_path)
    newest = out / "checkpoints" / f"step-{WARM + MAIN}"
    if damage == "flip":
        data = bytearray((newest / "__0_0.distcp").read_bytes())
        data[len(data) // 2] ^= 0x01
        (newest / "__0_0.distcp").write_bytes(bytes(data))
    elif damage == "truncate":
        with open(newest / ".metadata", "r+b") as f:
            f.truncate(100)
    else:
        (newest / "procdsl.json").write_text('{"format": 1, "plan_ha')
    shutil.rmtree(out / "checkpoints" / "step-8")  # fall back to a phase boundary
    assert run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True) == 0
    err = capsys.readouterr().err
    assert f"skipping {newest}" in err and "Traceback" not in err, err
    assert f"resuming from {out / 'checkpoints' / f'step-{WARM}'}" in err
    assert train_losses(out) == train_losses(reference[1])
    assert sidecar.read(str(newest))["global_step"] == WARM + MAIN  # written again, whole


def test_malicious_checkpoint_runs_no_code(reference, tmp_path, capsys):
    """A `.metadata` whose unpickling would run a command, with a sidecar that vouches for it
    (anyone can compute SHA-256): refused with a message, and the command never runs."""
    out = copy_run(reference, tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    newest = out / "checkpoints" / f"step-{WARM + MAIN}"
    (newest / ".metadata").write_bytes(pickle.dumps(Payload()))
    record = json.loads((newest / "procdsl.json").read_text())
    record.pop("files")
    sidecar.write(str(newest), record)
    shutil.rmtree(out / "checkpoints" / "step-8")
    (out / "checkpoints" / "step-6").rename(out / "checkpoints" / "step-9")  # resume target: the forged one
    code = run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True)
    err = capsys.readouterr().err
    assert not marker.exists(), "the checkpoint ran code"
    assert code == 1 and "Traceback" not in err
    assert "system, which DCP metadata never holds" in err, err


def test_malicious_non_tensor_entry_is_refused(tmp_path):
    """DCP pickles non-tensor entries; torch's default load planner unpickles them without limits."""
    import torch.distributed.checkpoint as dcp
    from procdsl.runtime import safeload

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    dcp.save({"w": torch.ones(2), "extra": Payload()}, checkpoint_id=str(tmp_path / "ck"), no_dist=True)
    state = {"w": torch.zeros(2), "extra": None}
    with pytest.raises(safeload.UnsafeCheckpoint, match="entry 'extra' is not plain data"):
        safeload.load(state, str(tmp_path / "ck"), no_dist=True)
    assert not marker.exists()


def test_force_replan_with_another_shape_or_phase_length_is_a_message(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path, drop=(WARM + MAIN,))
    for override, text in (
        (["model=gpt2(layers=2, heads=2, dim=64)"], "the model's shape changed"),
        (["phases.warm.steps=4"], "the phases before it changed length"),
    ):
        code = run_and_report(
            plan_of(reference[0], override), out=str(out), device="cpu", claim=True, force_replan=True
        )
        err = capsys.readouterr().err
        assert code == 1 and text in err and "Traceback" not in err, err
        assert "--out" in err


# ------------------------------------------------------------------------- run directory


def test_a_second_run_on_the_same_directory_is_refused_naming_the_pid(reference, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from procdsl.runtime.ownership import locked\n"
            f"with locked({str(out)!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code = run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True)
        err = capsys.readouterr().err
        assert code == 1 and f"in use by process {holder.pid}" in err and "Traceback" not in err, err
        assert not (out / "plan.json").exists() and not (out / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_refused_plan_writes_nothing(reference, tmp_path):
    out = copy_run(reference, tmp_path)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "run.lock"}
    (out / "plan.json").unlink()  # only the checkpoint knows the plan now
    del before[out / "plan.json"]
    code = run_and_report(plan_of(reference[0], ["seed=5"]), out=str(out), device="cpu", claim=True)
    assert code == 1
    assert not (out / "plan.json").exists()  # not rewritten by the refused plan
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert after == before
    with pytest.raises(ownership.PlanMismatch):  # and torch-free, for the CLI
        ownership.claim(str(out), "{}", "other")


def test_metrics_keep_every_good_line_and_warn_about_bad_ones(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path, drop=(8, WARM + MAIN))
    lines = (out / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines[2] = '{"kind": "train", "step": 3, "lo\n'  # a damaged record in the middle
    lines.insert(5, "\xff\xfe not json\n")
    (out / "metrics.jsonl").write_text("".join(lines))
    assert run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True) == 0
    err = capsys.readouterr().err
    assert "2 unreadable lines dropped (lines 3, 6)" in err, err
    expected = [s for s in range(1, WARM + MAIN + 1) if s != 3]
    assert steps_logged(out) == expected  # everything else kept, once
    losses, ref = train_losses(out), train_losses(reference[1])
    assert all(losses[s] == ref[s] for s in expected)


def test_without_a_checkpoint_a_rerun_starts_a_fresh_log(reference, tmp_path, capsys):
    out = copy_run(reference, tmp_path)
    shutil.rmtree(out / "checkpoints")
    old = (out / "metrics.jsonl").read_text()
    assert run_and_report(plan_of(reference[0]), out=str(out), device="cpu", claim=True) == 0
    assert (out / "metrics.jsonl.1").read_text() == old and (out / "tb.1").is_dir()
    assert steps_logged(out) == list(range(1, WARM + MAIN + 1))
    assert "metrics.jsonl.1" in capsys.readouterr().err


def test_tensorboard_hides_the_rows_after_the_checkpoint(reference, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = copy_run(reference, tmp_path, drop=(8, WARM + MAIN))
    execute(plan_of(reference[0]), out=str(out), device="cpu", claim=True)
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == list(range(1, WARM + MAIN + 1))  # 7..10 logged twice, shown once


# ------------------------------------------------------------------------------- data


def text_curriculum(folder, data: str, heldout: str = "0.5") -> str:
    (folder / "docs").mkdir(exist_ok=True)
    for i in range(40):
        (folder / "docs" / f"{i}.txt").write_text(f"document {i} " * 5)
    path = folder / "text.curr"
    path.write_text(f"""curriculum t {{
  model = gpt2(layers=1, heads=2, dim=16)
  context = 64
  batch = 4
  runtime {{ checkpoint_every = 2 steps }}
  source d = text("{data}", heldout={heldout})
  phase p {{ steps = 4  mix = {{ d: 100% }}  eval every 4 steps {{ perplexity(d, batches=1) }} }}
}}
""")
    return path


def test_an_empty_heldout_split_fails_before_training_naming_the_file(tmp_path, capsys):
    only = tmp_path / "only.txt"
    only.write_text("a single document, which the 1% held-out split does not take")
    path = text_curriculum(tmp_path, str(only), heldout="0.01")
    code = run_and_report(plan_of(path), out=str(tmp_path / "run"), device="cpu", claim=True)
    err = capsys.readouterr().err
    assert code == 1 and str(only) in err and "no held-out documents" in err, err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_resume_on_changed_data_is_refused_with_the_diff(tmp_path, capsys):
    path = text_curriculum(tmp_path, str(tmp_path / "docs" / "*.txt"))
    plan, out = plan_of(path), tmp_path / "run"
    execute(plan, out=str(out), device="cpu", claim=True)
    shutil.rmtree(out / "checkpoints" / "step-4")
    (tmp_path / "docs" / "7.txt").write_text("changed")
    assert run_and_report(plan, out=str(out), device="cpu", claim=True) == 1
    err = capsys.readouterr().err
    assert "the data changed since" in err and "d: 40 files" in err and "→ 40 files" in err, err
    assert "Traceback" not in err
    assert run_and_report(plan, out=str(out), device="cpu", claim=True, force_replan=True) == 0


# ---------------------------------------------------------------------------- full disk


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """The run directory on a 1 MB tmpfs (a private mount namespace): a checkpoint no longer fits."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("needs unshare -rm to mount a small tmpfs")
    path = curriculum(tmp_path, warm=12, main=4)
    out = tmp_path / "run"
    out.mkdir()
    command = " ".join(
        map(str, procdsl(path, "--out", out, "--device", "cpu", "--set", "runtime.checkpoint_every=1"))
    )
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {out} && {command}; code=$?; "
        f"ls -a {out} > {tmp_path}/listing; ls {out}/checkpoints > {tmp_path}/checkpoints; exit $code"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr, done.stderr[-3000:]
    assert any("No space left on device" in line for line in errors), done.stderr[-3000:]
    listing = (tmp_path / "listing").read_text().split()
    assert not [name for name in listing if name.endswith(".tmp")], listing
