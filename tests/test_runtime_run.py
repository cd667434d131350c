"""``procdsl run`` end to end on the CPU: phases with transfer, metrics, checkpoints, resume.

The fast tests train a tiny two-phase curriculum in this process (a few seconds); the slow
ones launch real processes: two gloo FSDP ranks, and a run killed with SIGKILL at a random
step and rerun, whose losses must continue bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime.checkpoint import latest_step, stored_keys  # noqa: E402
from procdsl.runtime.run import execute, run_and_report  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from procdsl.cli import app  # noqa: E402
from procdsl.compiler import compile_file  # noqa: E402
from procdsl.rundir import read_metrics  # noqa: E402

#: warm: two procedural sources and an eval; main: one source (the vocabulary shrinks from 44 to
#: 22 ids), embed/head re-initialised (embed to the mean of the old rows), pos kept and frozen,
#: mlp kept with a little noise, attention entropy evaluated.
TINY = """curriculum tiny {
  seed    = 0
  model   = gpt2(layers=2, heads=2, dim=32)
  context = 64
  batch   = 8
  runtime { checkpoint_every = 4 steps %(runtime)s }

  source sort     = sort(length=4..12, vocab=20)
  source rev      = reverse(length=4..12, vocab=20)
  source sort_val = sort(length=4..12, vocab=20)
  source rev_val  = reverse(length=4..12, vocab=20)

  phase warm {
    steps     = %(warm)d
    mix       = { sort: 70%%, rev: 30%% }
    optimizer = adamw(lr=3e-3)
    eval every 5 steps { accuracy(sort_val, batches=2) }
  }

  phase main {
    steps     = %(main)d
    transfer  = { keep: [attn, mlp, norm, pos], reinit: [embed, head], freeze: [pos], embed_init: mean,
                  perturb: { mlp: noise(0.01) } }
    mix       = { rev: 100%% }
    optimizer = continue
    schedule  = cosine(warmup=2, min=0.1)
    eval every 4 steps { attention_entropy(rev_val, batches=1) }
  }
}
"""
from procdsl.runtime.harness import LAUNCHER_VARIABLES as LAUNCHER_VARS  # noqa: E402


def curriculum(folder, warm: int = 10, main: int = 8, runtime: str = "", name: str = "tiny.curr"):
    path = folder / name
    path.write_text(TINY % {"warm": warm, "main": main, "runtime": runtime})
    return path


def plan_of(path, overrides=()):
    result = compile_file(str(path), overrides)
    assert result.ok, result.diagnostics
    return result.plan


def train_losses(folder) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(str(folder)) if r["kind"] == "train"}


def dcp_tensor(checkpoint, key: str) -> torch.Tensor:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader

    meta = FileSystemReader(str(checkpoint)).read_metadata().state_dict_metadata[key]
    state = {key: torch.empty(meta.size, dtype=meta.properties.dtype)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "assuming … a single process": yes
        dcp.load(state, checkpoint_id=str(checkpoint), no_dist=True)
    return state[key]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny curriculum trained once, in this process: (curriculum file, run directory)."""
    folder = tmp_path_factory.mktemp("tiny")
    path = curriculum(folder)
    out = folder / "run"
    summary = execute(plan_of(path), out=str(out), device="cpu", claim=True)
    return path, out, summary


def test_two_phase_curriculum_with_transfer(tiny_run):
    _, out, summary = tiny_run
    assert summary["status"] == "done" and summary["steps"] == 18
    assert not set(LAUNCHER_VARS) & set(os.environ)  # the process is left as found
    records = read_metrics(str(out))
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 19))
    assert [r["phase"] for r in train] == ["warm"] * 10 + ["main"] * 8
    first = train[0]
    assert {
        "loss",
        "loss/sort",
        "loss/rev",
        "share/sort",
        "share/rev",
        "lr",
        "grad_norm",
        "tokens",
        "tokens_per_s",
        "mfu",
    } <= set(first)
    assert first["loss"] == pytest.approx(math.log(44), abs=0.15)  # uniform over 44 ids at init
    assert train[9]["loss"] < first["loss"] - 0.3
    assert train[9]["share/sort"] == pytest.approx(0.7, abs=0.03)  # token shares, as asked
    assert set(train[-1]) >= {"loss/rev", "share/rev"} and "loss/sort" not in train[-1]
    assert train[-1]["tokens"] == 18 * 8 * 64
    evals = [r for r in records if r["kind"] == "eval"]
    assert [(r["step"], r["source"], r["eval"]) for r in evals] == [
        (5, "sort_val", "accuracy"),
        (10, "sort_val", "accuracy"),
        (14, "rev_val", "attention_entropy"),
        (18, "rev_val", "attention_entropy"),
    ]
    entropy = evals[-1]
    heads = [entropy[f"attention_entropy/layer{i}/head{h}"] for i in range(2) for h in range(2)]
    assert entropy["attention_entropy"] == pytest.approx(sum(heads) / 4)
    # between one-hot (0) and uniform attention (mean over rows t of log(t + 1), 64-token rows)
    assert all(0 < e < sum(math.log(t + 1) for t in range(64)) / 64 for e in heads)
    evals = evals[:2]
    assert 0 <= evals[-1]["accuracy"] <= 1 and evals[-1]["perplexity"] == pytest.approx(
        math.exp(evals[-1]["loss"])
    )
    # checkpoints every 4 steps and at both phase ends; each names its plan and phase
    steps = sorted(int(p.name.split("-")[1]) for p in (out / "checkpoints").iterdir())
    assert steps == [4, 8, 10, 12, 16, 18]
    keys = stored_keys(str(out / "checkpoints" / "step-12"))
    assert {"procdsl.rng_rank_0", "dataloader.stream", "train_state.step"} <= keys
    record = json.loads((out / "checkpoints" / "step-12" / "procdsl.json").read_text())
    assert (record["plan_hash"], record["phase"], record["phase_step"]) == (summary["hash"], "main", 2)
    assert set(record["files"]) == {".metadata", "__0_0.distcp"}
    # the vocabulary shrank at the boundary; pos was kept and frozen for the whole phase
    assert dcp_tensor(out / "checkpoints" / "step-10", "tok_embeddings.weight").shape[0] == 44
    assert dcp_tensor(out / "checkpoints" / "step-18", "tok_embeddings.weight").shape[0] == 22
    assert torch.equal(
        dcp_tensor(out / "checkpoints" / "step-10", "pos_embeddings.weight"),
        dcp_tensor(out / "checkpoints" / "step-18", "pos_embeddings.weight"),
    )
    assert not torch.equal(
        dcp_tensor(out / "checkpoints" / "step-10", "layers.0.mlp.up.weight"),
        dcp_tensor(out / "checkpoints" / "step-18", "layers.0.mlp.up.weight"),
    )
    written = json.loads((out / "summary.json").read_text())
    assert written["phases"]["warm"]["eval"]["accuracy/sort_val"]["accuracy"] == evals[-1]["accuracy"]
    assert written["phases"]["main"]["final_loss"] == train[-1]["loss"]
    assert any((out / "tb").iterdir()) and (out / "logs" / "rank_0.log").is_file()


def test_shares_per_step_running_and_padding(tiny_run):
    """``share/<source>`` is the step's share of real tokens, ``share_total/<source>`` the phase's
    so far, ``pad`` the step's padding: each equal to a replay of the phase's stream."""
    from procdsl.stream import PhaseStream

    path, out, _ = tiny_run
    warm = [r for r in read_metrics(str(out)) if r["kind"] == "train" and r["phase"] == "warm"]
    stream, delivered = PhaseStream(plan_of(path), "warm"), [0, 0]
    for record, batch in zip(warm, stream):
        real = sum(batch.source_tokens)
        delivered = [d + t for d, t in zip(delivered, batch.source_tokens)]
        assert record["share/sort"] == pytest.approx(batch.source_tokens[0] / real)
        assert record["share/sort"] + record["share/rev"] == pytest.approx(1.0)
        assert record["share_total/sort"] == pytest.approx(delivered[0] / sum(delivered))
        assert record["pad"] == pytest.approx(batch.pad_tokens / (real + batch.pad_tokens))
    assert len({round(r["share/sort"], 6) for r in warm}) > 1  # per step, not a running total
    assert warm[-1]["share_total/sort"] == pytest.approx(0.7, abs=0.03)


def test_resume_in_process_is_bitwise(tiny_run, tmp_path):
    _, out, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    for step in (16, 18):  # as if killed after step 13
        shutil.rmtree(copy / "checkpoints" / f"step-{step}")
    (copy / "summary.json").unlink()
    summary = execute(plan_of(tiny_run[0]), out=str(copy), device="cpu", claim=True)
    assert summary["resumed_from"] == 12
    assert train_losses(copy) == train_losses(out)  # the same floats, bit for bit
    assert [r["step"] for r in read_metrics(str(copy))] == [r["step"] for r in read_metrics(str(out))]


def test_boundary_resume_applies_the_transfer_again(tiny_run, tmp_path):
    _, out, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    for step in (12, 16, 18):  # the newest is the phase boundary
        shutil.rmtree(copy / "checkpoints" / f"step-{step}")
    execute(plan_of(tiny_run[0]), out=str(copy), device="cpu", claim=True)
    assert train_losses(copy) == train_losses(out)


def test_another_plan_is_refused_with_the_diff(tiny_run, tmp_path):
    path, out, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(copy), "--set", "seed=5"])
    assert result.exit_code == 1
    assert "belongs to another plan" in result.output and "Traceback" not in result.output
    assert '-  "seed": 0,' in result.output and '+  "seed": 5,' in result.output
    # without plan.json the checkpoint itself carries the plan and refuses as well
    (copy / "plan.json").unlink()
    code = run_and_report(plan_of(path, ["seed=5"]), out=str(copy), device="cpu", claim=True)
    assert code == 1
    assert latest_step(str(copy / "checkpoints")) == 18
    assert json.loads((copy / "summary.json").read_text())["status"] == "done"  # left alone


def test_force_replan_continues_and_logs_the_diff(tiny_run, tmp_path):
    path, out, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "checkpoints" / "step-18")
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(path),
            "--out",
            str(copy),
            "--force-replan",
            "--set",
            "phases.main.schedule=constant",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "--force-replan" in result.output and '"kind": "constant"' in result.output
    assert train_losses(copy)[16] == train_losses(out)[16]
    lr = lambda folder: {r["step"]: r["lr"] for r in read_metrics(str(folder)) if r["kind"] == "train"}  # noqa: E731
    assert lr(copy)[18] == 3e-3 != lr(out)[18]  # the new (constant) schedule


def test_bf16_tiny_run(tmp_path):
    path = curriculum(tmp_path, warm=8, main=2, runtime="dtype = bf16")
    summary = execute(plan_of(path), out=str(tmp_path / "run"), device="cpu", claim=True)
    losses = list(train_losses(tmp_path / "run").values())
    assert summary["status"] == "done" and all(math.isfinite(v) for v in losses)
    assert losses[7] < losses[0] - 0.2


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    path = curriculum(tmp_path, warm=6, main=6)
    # an lr the compiler refuses (E203: lr ≤ 10), put into the plan behind its back
    from procdsl.plan import AdamW, with_hash

    plan = plan_of(path)
    exploding = plan.phases[1].model_copy(update={"optimizer": AdamW(lr=1e30)})
    plan = with_hash(plan.model_copy(update={"phases": (plan.phases[0], exploding)}))
    code = run_and_report(plan, out=str(tmp_path / "run"), device="cpu", claim=True)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "training stopped" in err and "checkpoints/step-" in err, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert "loss is nan" in summary["error"] or "loss is inf" in summary["error"], summary["error"]
    last = latest_step(str(tmp_path / "run" / "checkpoints"))
    diverged_at = summary["steps"] + 1
    assert last is not None and 6 <= last < diverged_at
    assert f"checkpoints/step-{last}" in err


def test_dry_run_and_slurm(tmp_path):
    path = curriculum(tmp_path)
    result = CliRunner().invoke(
        app, ["run", str(path), "--dry-run", "--nproc", "2", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    for text in (
        "phase warm: 10 steps",
        "vocabulary 44",
        "FLOPs per token",
        "FLOPs per step",
        "memory per rank",
        '"data_parallel_shard_degree": -1',
        '"local_batch_size": 4',
        "TorchTitan job config",
    ):
        assert text in result.output, text
    assert not (tmp_path / "run" / "plan.json").exists()  # a dry run claims nothing
    result = CliRunner().invoke(
        app, ["run", str(path), "--emit-slurm", "--nodes", "2", "--gpus-per-node", "4"]
    )
    assert result.exit_code == 0 and result.output.startswith("#!/bin/bash")
    assert "--nproc-per-node=4" in result.output and str(path.resolve()) in result.output


def test_dry_run_counts_activations_of_one_microbatch(tmp_path):
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}

    def activations(runtime: str) -> float:
        path = curriculum(tmp_path, runtime=runtime, name=f"m{len(runtime)}.curr")
        result = CliRunner().invoke(
            app, ["run", str(path), "--dry-run", "--nproc", "2", "--out", str(tmp_path / "run")]
        )
        assert result.exit_code == 0, result.output
        line = next(line for line in result.output.splitlines() if "memory per rank" in line)
        number, unit = re.search(r"activations ([0-9.]+) (\w+),", line).groups()
        return float(number) * units[unit]

    # 8 rows over 2 ranks: 4 rows' activations at once, or one microbatch of 1 row at a time
    assert activations("microbatch = 1") == pytest.approx(activations("") / 4, rel=0.05)


def test_user_errors_without_traceback(tmp_path):
    path = curriculum(tmp_path)
    result = CliRunner().invoke(app, ["run", str(path), "--nproc", "3", "--dry-run"])
    assert result.exit_code == 1 and "cannot be split over 3 ranks" in result.output
    result = CliRunner().invoke(app, ["run", str(path), "--device", "cuda", "--dry-run"])
    if not torch.cuda.is_available():
        assert result.exit_code == 1 and "no CUDA device" in result.output
    result = CliRunner().invoke(app, ["run", str(tmp_path / "missing.curr")])
    assert result.exit_code == 2
    data = tmp_path / "data.curr"
    data.write_text(
        "curriculum d {\n  model = gpt2(layers=1, heads=2, dim=16)\n  context = 32\n"
        '  batch = 4\n  source t = text("nowhere/*.txt")\n'
        "  phase p { steps = 2  mix = { t: 100% } }\n}\n"
    )
    result = CliRunner().invoke(app, ["run", str(data), "--out", str(tmp_path / "d")])
    assert result.exit_code == 1 and "nowhere/*.txt" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d" / "metrics.jsonl").exists()  # failed before training


def test_truncate_records_drops_later_steps_and_a_torn_line(tmp_path):
    from procdsl.rundir import truncate_records

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"kind": "eval", "step": 2}\n{"step": 3}\n{"st')
    assert truncate_records(str(path), 2) == (3, [5])
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"kind": "eval", "step": 2}\n'


# ------------------------------------------------------------------------ multi-process


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}


def procdsl(*args) -> list[str]:
    return [sys.executable, "-m", "procdsl.cli", "run", *map(str, args)]


@pytest.mark.slow
def test_two_ranks_gloo_fsdp(tmp_path):
    """torchrun launches two ranks that join (`procdsl run` sees RANK/WORLD_SIZE/MASTER_ADDR);
    then `--nproc 2` spawns two ranks that resume the same run from a mid-phase checkpoint."""
    path = curriculum(tmp_path)
    out = tmp_path / "run"
    joined = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            *procdsl(path, "--out", out)[1:],
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert joined.returncode == 0, joined.stdout[-3000:] + joined.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 18
    losses = train_losses(out)
    assert losses[1] == pytest.approx(math.log(44), abs=0.15) and losses[10] < losses[1] - 0.3
    assert "Applied FSDP to GPT-2" in (out / "logs" / "rank_1.log").read_text()
    keys = stored_keys(str(out / "checkpoints" / "step-18"))
    assert {"procdsl.rng_rank_0", "procdsl.rng_rank_1"} <= keys
    assert torch.equal(
        dcp_tensor(out / "checkpoints" / "step-10", "pos_embeddings.weight"),
        dcp_tensor(out / "checkpoints" / "step-18", "pos_embeddings.weight"),
    )
    for step in (16, 18):
        shutil.rmtree(out / "checkpoints" / f"step-{step}")
    spawned = subprocess.run(
        procdsl(path, "--nproc", "2", "--out", out),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert spawned.returncode == 0, spawned.stdout[-3000:] + spawned.stderr[-3000:]
    assert "resuming from" in spawned.stderr
    assert train_losses(out) == pytest.approx(losses, rel=1e-6)


@pytest.mark.slow
def test_kill_9_and_rerun_continues_bitwise(tmp_path):
    path = curriculum(tmp_path, warm=24, main=16, runtime="")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    done = subprocess.run(
        procdsl(path, "--out", reference), env=clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kill_after = random.Random().randint(5, 36)  # any step: mid-phase or boundary
    process = subprocess.Popen(
        procdsl(path, "--out", killed), env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and sum(1 for line in metrics.open() if '"train"' in line) >= kill_after:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "summary.json").exists()
    rerun = subprocess.run(
        procdsl(path, "--out", killed), env=clean_env(), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    if kill_after > 4:
        assert "resuming from" in rerun.stderr, (kill_after, rerun.stderr)
    expected, got = train_losses(reference), train_losses(killed)
    assert got == expected, f"killed after {kill_after} logged steps"
    evals = lambda folder: [r for r in read_metrics(str(folder)) if r["kind"] == "eval"]  # noqa: E731
    assert [(r["step"], r["loss"]) for r in evals(killed)] == [
        (r["step"], r["loss"]) for r in evals(reference)
    ]


def free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_loopback(tmp_path):
    """Two torchrun "nodes" (one rank each, static rendezvous on 127.0.0.1) join one job:
    each runs `procdsl run` in joined mode on a run directory they share, as on a cluster."""
    path = curriculum(tmp_path, warm=6, main=4)
    out = tmp_path / "run"
    port = free_loopback_port()
    env = clean_env() | {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}  # loopback only
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--node_rank",
                str(rank),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                "--local_addr",
                "127.0.0.1",
                *procdsl(path, "--out", out, "--device", "cpu")[1:],
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=240)[0] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n----\n".join(o[-3000:] for o in outputs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 10
    losses = train_losses(out)
    assert sorted(losses) == list(range(1, 11))
    assert losses[6] < losses[1] - 0.2  # it learned in phase 1 …
    assert losses[10] < losses[7]  # … and after the transfer
    for rank in (0, 1):
        log = (out / "logs" / f"rank_{rank}.log").read_text()
        assert "Applied FSDP to GPT-2" in log
    assert {"procdsl.rng_rank_0", "procdsl.rng_rank_1"} <= stored_keys(str(out / "checkpoints" / "step-10"))


@pytest.mark.slow
def test_bf16_and_compile_tiny_run(tmp_path):
    """`runtime { dtype = bf16  compile = true }` through `procdsl run` (one process: bf16 is
    CPU autocast; the GPT-2 blocks are torch.compile'd)."""
    from torch._dynamo.utils import counters

    path = curriculum(tmp_path, warm=6, main=3, runtime="dtype = bf16  compile = true")
    out = tmp_path / "run"
    dry = CliRunner().invoke(app, ["run", str(path), "--dry-run", "--device", "cpu", "--out", str(out)])
    assert '"mixed_precision_param": "bfloat16"' in dry.output and '"enable": true' in dry.output
    graphs = counters["stats"]["unique_graphs"]
    result = CliRunner().invoke(app, ["run", str(path), "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 9
    losses = train_losses(out)
    assert all(math.isfinite(v) for v in losses.values()) and losses[6] < losses[1] - 0.2
    log = (out / "logs" / "rank_0.log").read_text()
    for phase in ("warm", "main"):  # read from the trainer's autocast context and model blocks
        assert f"procdsl: phase {phase}: compute autocast torch.bfloat16; compiled modules 2" in log
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo really captured graphs
