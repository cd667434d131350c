"""One init for every world size: the initial weights and the first loss are the same on 1, 2 and
4 gloo ranks (4 with rank 0 building the weights alone and broadcasting them), and for llama
with tensor parallelism over 2 ranks.

Each run is this file started by torchrun as a worker (``python test_runtime_init.py JOB OUT``):
TorchTitan's Trainer (``ProcdslTrainer``) is built, rank 0 saves the full initial weights and
the FSDP units, then one step trains and logs its loss to ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

GPT2 = "layers=2,heads=4,dim=32,vocab_size=64,context=32"
LLAMA = "layers=2,heads=4,dim=64,vocab_size=64,context=32,multiple_of=32"
from procdsl.runtime.harness import LAUNCHER_VARIABLES as LAUNCHER_VARS  # noqa: E402


def job(folder, *, model: str, flavor: str, tp: int = 1, broadcast_above: int = 2**30) -> dict:
    return {
        "job": {"dump_folder": str(folder)},
        "model": {"name": model, "flavor": flavor},
        "training": {
            "local_batch_size": 2,
            "global_batch_size": 8,
            "seq_len": 32,
            "steps": 1,
            "mixed_precision_param": "float32",
        },
        "optimizer": {"lr": 1e-3, "implementation": "fused"},
        "parallelism": {"tensor_parallel_degree": tp, "disable_loss_parallel": True},
        "metrics": {"log_freq": 1},
        "checkpoint": {"enable": False},
        "procdsl": {
            "device": "cpu",
            "dataloader": "procdsl.runtime.synthetic:build_synthetic",
            "broadcast_init_above": broadcast_above,
        },
        "debug": {"seed": 3},
    }


def worker(job_path: str, out: str) -> int:
    import torch.distributed as dist
    from procdsl.runtime.titan import ProcdslTrainer, job_config_from_dict
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import FSDPModule

    with open(job_path, encoding="utf-8") as f:
        trainer = ProcdslTrainer(job_config_from_dict(json.load(f)))
    try:
        model = trainer.model_parts[0]
        weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
        units = sum(isinstance(m, FSDPModule) for m in model.modules())
        if dist.get_rank() == 0:
            torch.save({"weights": weights, "units": units}, out)
        trainer.train()
    finally:
        trainer.close()
        dist.destroy_process_group()
    return 0


def launch(tmp_path, name: str, ranks: int, config: dict) -> tuple[dict, float]:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps(config | {"job": {"dump_folder": str(folder)}}))
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS} | {"OMP_NUM_THREADS": "1"}
    me = [__file__, str(folder / "job.json"), str(folder / "init.pt")]
    cmd = (
        [sys.executable, *me]
        if ranks == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(ranks),
            *me,
        ]
    )
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return torch.load(folder / "init.pt"), records[0]["loss"]


@pytest.mark.slow
def test_initial_weights_and_first_loss_do_not_depend_on_the_world_size(tmp_path):
    config = job(tmp_path, model="procdsl_gpt2", flavor=GPT2)
    one, loss_1 = launch(tmp_path, "one", 1, config)
    two, loss_2 = launch(tmp_path, "two", 2, config)
    four, loss_4 = launch(
        tmp_path, "four", 4, job(tmp_path, model="procdsl_gpt2", flavor=GPT2, broadcast_above=0)
    )
    for name, value in one["weights"].items():
        assert torch.equal(two["weights"][name], value), name
        assert torch.equal(four["weights"][name], value), name
    rows = one["weights"]["layers.0.attention.qkv.weight"]
    assert not torch.equal(rows[:48], rows[48:])  # no rank drew the same shard twice
    assert loss_2 == pytest.approx(loss_1, rel=1e-6) and loss_4 == pytest.approx(loss_1, rel=1e-6)
    # FSDP units like llama's: [token, position embeddings], 2 blocks, [norm, head], the root
    assert (one["units"], two["units"]) == (0, 7)


@pytest.mark.slow
def test_llama_tensor_parallel_init_and_first_loss(tmp_path):
    one, loss_1 = launch(tmp_path, "one", 1, job(tmp_path, model="procdsl_llama", flavor=LLAMA))
    tp, loss_tp = launch(tmp_path, "tp", 2, job(tmp_path, model="procdsl_llama", flavor=LLAMA, tp=2))
    for name, value in one["weights"].items():
        assert torch.equal(tp["weights"][name], value), name
    assert loss_tp == pytest.approx(loss_1, rel=1e-5)


if __name__ == "__main__":
    sys.exit(worker(*sys.argv[1:]))


TIED_RUN = """curriculum tied {
  seed    = 0
  model   = gpt2(layers=2, heads=2, dim=32, dropout=0.0)
  context = 32
  batch   = 4
  source s = sort(length=4..12, vocab=20)
  phase p { steps = 6  mix = { s: 100% }  optimizer = adamw(lr=3e-3) }
}
"""


@pytest.mark.slow
def test_tied_gpt2_trains_the_same_on_one_and_two_ranks(tmp_path):
    """The tied default's embeddings + final norm form one FSDP unit kept whole through the
    forward (the head reads the matrix): every step's loss matches a single rank's."""
    path = tmp_path / "tied.curr"
    path.write_text(TIED_RUN)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS} | {"OMP_NUM_THREADS": "1"}
    losses = {}
    for ranks in (1, 2):
        out = tmp_path / f"run{ranks}"
        done = subprocess.run(
            [sys.executable, "-m", "procdsl.cli", "run", str(path), "--out", str(out), "--nproc", str(ranks)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[ranks] = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses[1]) == 6 and losses[2] == pytest.approx(losses[1], rel=1e-5)
