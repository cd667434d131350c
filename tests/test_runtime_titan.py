"""TorchTitan 0.2.2's own Trainer trains procdsl's GPT-2 on the CPU from procdsl's dataloader.

Proof of the runtime's foundation: ``titan.run`` drives TorchTitan's own training loop on one
rank in this process, with a DCP checkpoint, a resume, and the dataloader's state restored.
Two ranks with gloo FSDP, bf16 autocast and torch.compile run through the same trainer in
``procdsl run`` (tests/test_runtime_run.py), so they are not repeated here.
"""

from __future__ import annotations

import gc
import math
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import titan  # noqa: E402
from torch.distributed.checkpoint import FileSystemReader  # noqa: E402

from procdsl.rundir import read_metrics  # noqa: E402

VOCAB = 64
FLAVOR = f"layers=2,heads=4,dim=64,vocab_size={VOCAB},context=32"
from procdsl.runtime.harness import LAUNCHER_VARIABLES as LAUNCHER_VARS  # noqa: E402


def job(folder, *, steps: int, local_batch: int = 8, **sections) -> dict:
    """A tiny GPT-2 job on procdsl's synthetic rows; ``sections`` update the defaults."""
    config = {
        "job": {"dump_folder": str(folder)},
        "model": {"name": "procdsl_gpt2", "flavor": FLAVOR},
        "training": {
            "local_batch_size": local_batch,
            "global_batch_size": 8,
            "seq_len": 32,
            "steps": steps,
            "mixed_precision_param": "float32",
        },
        "optimizer": {"lr": 3e-3},
        "lr_scheduler": {"warmup_steps": 2},
        "activation_checkpoint": {"mode": "selective"},
        "metrics": {"log_freq": 1},
        "checkpoint": {"enable": True, "folder": "checkpoints", "interval": 3, "last_save_model_only": False},
        "procdsl": {"device": "cpu", "dataloader": "procdsl.runtime.synthetic:build_synthetic"},
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
