"""Plan → TorchTitan job config, launch mode, run directory claims and the SLURM script.

All of it is pure (no training); the schedules are checked against TorchTitan's own scheduler.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import compile_snippet
from procdsl.runtime import jobconfig, launch, ownership, slurm

from procdsl import rundir
from procdsl.plan import to_json

TWO_PHASES = """curriculum c {
  model = gpt2(layers=2, heads=2, dim=16)
  context = 32
  batch = 8
  %s
  source a = sort(length=4, vocab=10)
  phase one { steps = 40  mix = { a: 100%% }  optimizer = adamw(lr=2e-3, betas=(0.8, 0.9), clip=0.5)
              schedule = %s }
  phase two { steps = 10  context = 16  batch = 4  mix = { a: 100%% }  optimizer = continue }
}"""


def plan_of(schedule: str = "constant", runtime: str = ""):
    result = compile_snippet(TWO_PHASES % (runtime, schedule))
    assert result.ok, result.diagnostics
    return result.plan


def lrs(plan, index: int) -> list[float]:
    """The lr TorchTitan's scheduler gives at each step of phase ``index``."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchtitan")
    from torchtitan.components.lr_scheduler import build_lr_schedulers
    from torchtitan.config import LRScheduler

    job = jobconfig.phase_job_config(plan, index, vocab_size=12, out="o", device="cpu", world=1)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=job["optimizer"]["lr"])
    schedulers = build_lr_schedulers(
        [optimizer], LRScheduler(**job["lr_scheduler"]), job["training"]["steps"]
    )
    values = []
    for _ in range(job["training"]["steps"]):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedulers.step()
    return values


def test_job_config_sections():
    plan = plan_of(
        runtime="runtime { dtype = bf16  compile = true  checkpoint_every = 7 steps "
        "activation_checkpoint = full }"
    )
    job = jobconfig.phase_job_config(plan, 0, vocab_size=12, out="runs/c", device="cpu", world=2)
    assert job["model"]["name"] == "procdsl_gpt2"
    assert "vocab_size=12,context=32" in job["model"]["flavor"]
    assert (
        job["training"].items()
        >= {
            "local_batch_size": 4,
            "global_batch_size": 8,
            "seq_len": 32,
            "steps": 40,
            "max_norm": 0.5,
            "mixed_precision_param": "bfloat16",
        }.items()
    )
    assert job["optimizer"].items() >= {"lr": 2e-3, "beta1": 0.8, "beta2": 0.9}.items()
    assert (
        job["checkpoint"].items()
        >= {
            "enable": True,
            "interval": 1,
            "last_save_model_only": False,
            "keep_latest_k": 0,
            "folder": "checkpoints",
        }.items()
    )
    assert job["activation_checkpoint"] == {"mode": "full"}
    assert job["compile"]["enable"] is True
    assert (
        job["procdsl"].items()
        >= {
            "dataloader": jobconfig.STREAM_FACTORY,
            "phase": "one",
            "plan": "runs/c/plan.json",
            "device": "cpu",
        }.items()
    )
    second = jobconfig.phase_job_config(plan, 1, vocab_size=12, out="runs/c", device="cpu", world=2)
    assert second["optimizer"]["lr"] == 2e-3  # `continue`: the previous AdamW
    assert second["training"]["seq_len"] == 16
    assert "context=32" in second["model"]["flavor"]  # one position table for all phases
    default = jobconfig.phase_job_config(plan_of(), 0, vocab_size=12, out="o", device="cpu", world=1)
    assert default["checkpoint"]["async_mode"] == "disabled"  # procdsl.runtime.saving decides when
    assert default["training"]["mixed_precision_param"] == "float32"


def test_world_size_must_divide_the_batch():
    with pytest.raises(jobconfig.ConfigError, match="cannot be split over 3 ranks"):
        jobconfig.phase_job_config(plan_of(), 0, vocab_size=12, out="o", device="cpu", world=3)


def test_parallelism_fsdp_and_hsdp():
    assert jobconfig.parallelism_section(plan_of(), 4)["data_parallel_shard_degree"] == -1
    hsdp = plan_of(runtime="runtime { parallel = fsdp(shard=2) }")
    assert jobconfig.parallelism_section(hsdp, 8) == {
        "data_parallel_shard_degree": 2,
        "data_parallel_replicate_degree": 4,
        "tensor_parallel_degree": 1,
        "disable_loss_parallel": True,
    }
    assert jobconfig.parallelism_section(hsdp, 1)["data_parallel_replicate_degree"] == 1
    with pytest.raises(jobconfig.ConfigError, match="divisible by 2"):
        jobconfig.parallelism_section(hsdp, 3)


def test_constant_schedule():
    assert lrs(plan_of("constant"), 0) == [2e-3] * 40
    warm = lrs(plan_of("constant(warmup=4)"), 0)
    assert warm[:5] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3]) and warm[-1] == 2e-3


def test_cosine_schedule():
    # TorchTitan decays over the phase and reaches `min` one (virtual) step after its end:
    # the lr of phase step s (0-based) is peak × (min + (1 - min) × cos-factor(s / steps)).
    values = lrs(plan_of("cosine(warmup=0, min=0.1)"), 0)
    factor = lambda x: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * x))  # noqa: E731
    assert values == pytest.approx([2e-3 * factor(s / 40) for s in range(40)])


def test_linear_and_wsd_schedules():
    linear = lrs(plan_of("linear(warmup=0, min=0)"), 0)
    assert linear == pytest.approx([2e-3 * (1 - s / 40) for s in range(40)])
    wsd = lrs(plan_of("wsd(warmup=5, decay=10)"), 0)
    assert wsd[:5] == pytest.approx([4e-4, 8e-4, 1.2e-3, 1.6e-3, 2e-3])
    assert wsd[4:31] == [2e-3] * 27  # stable until the last 10 steps
    assert wsd[31:] == pytest.approx([2e-3 * (1 - k / 10) for k in range(1, 10)])


@pytest.mark.parametrize(
    ("environ", "nproc", "mode"),
    [
        ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}, 1, "joined"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, 1, "single"),  # no MASTER_ADDR: not a launcher
        ({}, 1, "single"),
        ({}, 4, "spawn"),
    ],
)
def test_launch_mode(environ, nproc, mode):
    assert launch.launch_mode(environ, nproc=nproc) == mode


def test_launch_mode_rejects_zero_ranks():
    with pytest.raises(ValueError):
        launch.launch_mode({}, nproc=0)


def test_claim_new_same_and_different_plan(tmp_path):
    out = tmp_path / "run"
    first, second = plan_of(), plan_of("cosine(warmup=0, min=0.1)")
    assert ownership.claim(str(out), to_json(first), first.hash) is None
    assert json.loads((out / "plan.json").read_text())["hash"] == first.hash
    assert ownership.claim(str(out), to_json(first), first.hash) is None  # same plan: resume
    with pytest.raises(ownership.PlanMismatch) as refused:
        ownership.claim(str(out), to_json(second), second.hash)
    assert '-        "kind": "constant",' in refused.value.diff
    assert '+        "kind": "cosine",' in refused.value.diff
    assert "--force-replan" in str(refused.value)
    assert json.loads((out / "plan.json").read_text())["hash"] == first.hash  # untouched
    diff = ownership.claim(str(out), to_json(second), second.hash, force=True)
    assert "cosine" in diff
    assert json.loads((out / "plan.json").read_text())["hash"] == second.hash
    assert (out / f"plan.{first.hash[:12]}.json").is_file()


def test_default_out():
    assert rundir.default_out("sweep/seed=1") == "runs/sweep/seed=1"


def test_slurm_script():
    script = slurm.sbatch_script(
        "/abs/my run.curr",
        nodes=4,
        gpus_per_node=8,
        out="/scratch/r",
        job_name="r",
        overrides=["phases.warmup.steps=10"],
        partition="gpu",
        python="/venv/bin/python",
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert {
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
    } <= set(lines)
    assert "--nproc-per-node=8 \\" in script and '--nnodes="$SLURM_NNODES"' in script
    assert "--rdzv-backend=c10d" in script
    command = next(line for line in lines if "-m procdsl.cli run" in line)
    assert command.endswith(
        "-m procdsl.cli run '/abs/my run.curr' --device cuda --out /scratch/r --set phases.warmup.steps=10"
    )
    # preemption: SLURM's lead-time signal, forwarded by torchrun; a stopped run requeues itself
    assert {
        "#SBATCH --signal=USR1@120",
        "#SBATCH --cpus-per-task=64",
        "#SBATCH --mem=0",
        "#SBATCH --requeue",
    } <= set(lines)
    assert "  --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 \\" in lines
    assert "mkdir -p /scratch/r/comm_traces" in lines and 'scontrol requeue "$SLURM_JOB_ID"' in script
    custom = slurm.sbatch_script(
        "/a.curr", nodes=1, gpus_per_node=2, out="/o", job_name="a", cpus_per_task=12, mem="200G"
    )
    assert "#SBATCH --cpus-per-task=12" in custom and "#SBATCH --mem=200G" in custom
    assert script.count("srun ") == 1
    with pytest.raises(ValueError):
        slurm.sbatch_script("x.curr", nodes=0, gpus_per_node=1, out="o", job_name="x")
