"""The GPU path in minutes on the first machine that has one: a two-phase curriculum with bf16,
torch.compile, gradient accumulation and 2 NCCL ranks, through ``procdsl run --nproc 2``.

Skipped when CUDA (or a second device) is absent; run with ``pytest -m gpu tests/test_gpu.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices"
    ),
]

CURRICULUM = """curriculum gpu {
  seed    = 0
  model   = gpt2(layers=4, heads=4, dim=256, tie_embeddings=false)
  context = 128
  batch   = 16
  runtime { dtype = bf16  compile = true  microbatch = 2  log_every = 5 steps  checkpoint_every = 10 steps }

  source sort = sort(length=8..32, vocab=64)
  source rev  = reverse(length=8..32, vocab=64)

  phase warm { steps = 20  mix = { sort: 100% }  optimizer = adamw(lr=1e-3) }
  phase main {
    steps    = 10
    transfer = { keep: [attn, mlp, norm, pos], reinit: [embed, head] }
    mix      = { rev: 100% }
    optimizer = continue
  }
}
"""
from procdsl.runtime.harness import LAUNCHER_VARIABLES as LAUNCHER_VARS  # noqa: E402


def test_two_phases_bf16_compile_accumulation_two_ranks(tmp_path):
    path = tmp_path / "gpu.curr"
    path.write_text(CURRICULUM)
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "procdsl.cli",
            "run",
            str(path),
            "--out",
            str(out),
            "--nproc",
            "2",
            "--device",
            "cuda",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 30
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("kind") == "train"]
    assert [r["step"] for r in train] == list(range(1, 31))
    assert all(math.isfinite(r["loss"]) for r in train) and train[19]["loss"] < train[0]["loss"] - 0.3
    assert all(r["mfu"] is None or 0 < r["mfu"] < 1 for r in train)
    log = (out / "logs" / "rank_0.log").read_text()
    assert "gradient accumulation steps 4" in log  # 16 rows / 2 ranks / 2 per forward
    for phase in ("warm", "main"):
        assert f"procdsl: phase {phase}: compute FSDP param dtype bfloat16; compiled modules" in log
