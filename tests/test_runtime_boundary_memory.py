"""Peak memory at a phase boundary, measured on the CPU (where the device is the host).

A 2-phase curriculum of a ~13M-parameter GPT-2 trains one step per phase in a fresh process.
Around the boundary — building phase 2's trainer, the transfer (with ``optimizer = continue``),
closing phase 1's — the process's peak resident set (``VmHWM``, reset just before through
``/proc/self/clear_refs``) must stay below 2 × (model + AdamW state) above what the process held
before phase 1's model existed: phase 1's model and optimizer are still resident, so the
transfer itself may add little beyond phase 2's model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")

CURRICULUM = """curriculum memory {
  model   = gpt2(layers=4, heads=4, dim=512, tie_embeddings=false, dropout=0)
  context = 32
  batch   = 1
  source sort = sort(length=4..8, vocab=20)
  source rev  = reverse(length=4..8, vocab=20)
  phase warm { steps = 1  mix = { sort: 100% } }
  phase main {
    steps = 1  mix = { rev: 100% }  optimizer = continue
    transfer = { keep: [attn, mlp, norm, pos], reinit: [embed, head] }
  }
}
"""

WORKER = r"""
import json, os, sys
import torch
from procdsl.compiler import compile_file
from procdsl.plan import to_json
from procdsl.runtime.phases import PhaseRunner, PhaseTrainer

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

out = sys.argv[2]
plan = compile_file(sys.argv[1]).plan
os.makedirs(out)
open(os.path.join(out, "plan.json"), "w").write(to_json(plan))
runner = PhaseRunner(plan, out=out, device="cpu", rank=0, world=1)
runner.begin(None)
before = rss("VmRSS:")
first = PhaseTrainer(runner, 0)
first.train()
params = sum(p.numel() for p in first.model.parameters())
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                   # VmHWM := VmRSS
resident = rss("VmRSS:")
second = PhaseTrainer(runner, 1)
done = second.take_over(first)
first.close()
peak = rss("VmHWM:")
second.train()
second.close()
print(json.dumps({"before": before, "resident": resident, "peak": peak, "params": params,
                  "carried": done["optimizer_state_carried"]}))
"""


@pytest.mark.slow
def test_phase_boundary_peak_rss_below_twice_model_and_optimizer(tmp_path):
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    path = tmp_path / "memory.curr"
    path.write_text(CURRICULUM)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(path), str(tmp_path / "run")],
        env=env | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    m = json.loads(done.stdout.strip().splitlines()[-1])
    model_and_optimizer = 12 * m["params"]  # float32 weights + two AdamW moments
    assert m["params"] > 12_000_000 and m["carried"] > 0
    extra = m["peak"] - m["before"]
    print(
        f"boundary peak {extra / 2**20:.0f} MiB above the start; model + optimizer "
        f"{model_and_optimizer / 2**20:.0f} MiB; before the boundary {(m['resident'] - m['before']) / 2**20:.0f} MiB"
    )
    assert extra < 2 * model_and_optimizer, m
