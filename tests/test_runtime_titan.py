"""TorchTitan 0.2.2's own Trainer trains procdsl's GPT-2 on the CPU from procdsl's dataloader.

Proof of the runtime's foundation: one rank in this process (with a DCP checkpoint, a resume,
and the dataloader's state restored), two ranks with gloo FSDP under torchrun, and the two
optional speed features (bf16 autocast, torch.compile) on a tiny model.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from torch.distributed.checkpoint import FileSystemReader  # noqa: E402

from procdsl.runtime import titan  # noqa: E402
from procdsl.rundir import read_metrics  # noqa: E402

VOCAB = 64
FLAVOR = f"layers=2,heads=4,dim=64,vocab_size={VOCAB},context=32"
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                 "MASTER_ADDR", "MASTER_PORT")


def job(folder, *, steps: int, local_batch: int = 8, **sections) -> dict:
    """A tiny GPT-2 job on procdsl's synthetic rows; ``sections`` update the defaults."""
    config = {
        "job": {"dump_folder": str(folder)},
        "model": {"name": "procdsl_gpt2", "flavor": FLAVOR},
        "training": {"local_batch_size": local_batch, "global_batch_size": 8, "seq_len": 32,
                     "steps": steps, "mixed_precision_param": "float32"},
        "optimizer": {"lr": 3e-3},
        "lr_scheduler": {"warmup_steps": 2},
        "activation_checkpoint": {"mode": "selective"},
        "metrics": {"log_freq": 1},
        "checkpoint": {"enable": True, "folder": "checkpoints", "interval": 3,
                       "last_save_model_only": False},
        "procdsl": {"device": "cpu", "dataloader": "procdsl.runtime.dataloader:build_synthetic"},
        "debug": {"seed": 0},
    }
    for section, values in sections.items():
        config[section] = config.get(section, {}) | values
    return config


def losses(folder) -> list[float]:
    return [record["loss"] for record in read_metrics(str(folder))]


def assert_learns(values: list[float]) -> None:
    assert all(math.isfinite(v) for v in values), values
    assert values[0] == pytest.approx(math.log(VOCAB), abs=0.15), values  # uniform at init
    assert values[-1] < values[0] - 0.3, values


def stored_keys(checkpoint) -> set[str]:
    return set(FileSystemReader(str(checkpoint)).read_metadata().state_dict_metadata)


def test_single_rank_trains_checkpoints_and_resumes(tmp_path):
    trainer = titan.run(titan.job_config_from_dict(job(tmp_path, steps=6)))
    assert trainer.step == 6
    assert trainer.dataloader.state_dict() == {"dp_rank_0": {"index": 48}, "world_size": 1}
    assert_learns(losses(tmp_path))
    keys = stored_keys(tmp_path / "checkpoints" / "step-6")
    assert {"dataloader.dp_rank_0.index", "train_state.step", "tok_embeddings.weight"} <= keys
    assert any(k.startswith("optimizer.") for k in keys)
    assert not (tmp_path / "comm_traces").exists()  # TorchTitan's NCCL set-up never ran
    assert gc.isenabled()
    assert not set(LAUNCHER_VARS) & set(os.environ)  # a single process leaves no launcher vars

    resumed = titan.run(titan.job_config_from_dict(job(tmp_path, steps=8)))
    assert resumed.step == 8
    assert resumed.dataloader.state_dict()["dp_rank_0"] == {"index": 64}  # 48 restored + 2 × 8
    assert [r["step"] for r in read_metrics(str(tmp_path))] == list(range(1, 9))
    assert read_metrics(str(tmp_path))[-1]["tokens"] == 8 * 8 * 32


def test_single_rank_bf16_autocast(tmp_path):
    config = job(tmp_path, steps=6, training={"mixed_precision_param": "bfloat16"},
                 checkpoint={"enable": False})
    titan.run(titan.job_config_from_dict(config))
    assert_learns(losses(tmp_path))


@pytest.mark.slow
def test_two_ranks_gloo_fsdp(tmp_path):
    config_file = tmp_path / "job.json"
    config_file.write_text(json.dumps(job(tmp_path, steps=8, local_batch=4)))
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "procdsl.runtime.titan", str(config_file)],
        env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("Applied FSDP to GPT-2") == 2
    assert_learns(losses(tmp_path))
    keys = stored_keys(tmp_path / "checkpoints" / "step-8")
    assert {"dataloader.dp_rank_0.index", "dataloader.dp_rank_1.index"} <= keys
    assert not (tmp_path / "comm_traces").exists()


@pytest.mark.slow
def test_single_rank_torch_compile(tmp_path):
    config = job(tmp_path, steps=4, compile={"enable": True}, checkpoint={"enable": False},
                 lr_scheduler={"warmup_steps": 1})
    titan.run(titan.job_config_from_dict(config))
    assert_learns(losses(tmp_path))
