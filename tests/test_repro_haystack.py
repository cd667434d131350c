"""Miniature haystack reproduction, reduced for CI: a k-Dyck warm-up beats no warm-up.

Both arms of ``curricula/repro/`` (``haystack_dyck.curr``, ``haystack_baseline.curr``) at a
reduced length — 200 warm-up steps, 100 probe steps, batch 512 — over three seeds, two runs at a
time as ``python -m procdsl.cli run`` subprocesses (~4 minutes on 2 cores). The assertion is the
direction of the paper's effect on the mean over seeds of the final haystack accuracy; the full
miniature result is in ``docs/results/haystack/README.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")

ROOT = Path(__file__).resolve().parent.parent
REPRO = ROOT / "curricula" / "repro"
SEEDS = (0, 1, 2)
WARMUP_STEPS, PROBE_STEPS = 200, 100


def _final_accuracy(out: Path) -> float:
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if r.get("kind") == "eval" and r.get("eval") == "accuracy"]
    assert evals, f"no accuracy eval in {out}"
    last = max(evals, key=lambda r: r["step"])
    assert last["phase_step"] == PROBE_STEPS
    return float(last["accuracy"])


def _launch(arm: str, seed: int, out: Path) -> subprocess.Popen:
    sets = [f"seed={seed}", f"phases.probe.steps={PROBE_STEPS}"]
    if arm == "dyck":
        sets.append(f"phases.warmup.steps={WARMUP_STEPS}")
    cmd = [sys.executable, "-m", "procdsl.cli", "run", str(REPRO / f"haystack_{arm}.curr"),
           "--device", "cpu", "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_dyck_warmup_beats_baseline_on_haystack(tmp_path):
    accuracy: dict[str, list[float]] = {"dyck": [], "baseline": []}
    for seed in SEEDS:
        procs = {arm: (_launch(arm, seed, tmp_path / arm / f"seed{seed}"), tmp_path / arm / f"seed{seed}")
                 for arm in accuracy}
        for arm, (proc, out) in procs.items():
            log, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
            accuracy[arm].append(_final_accuracy(out))
    dyck = sum(accuracy["dyck"]) / len(SEEDS)
    baseline = sum(accuracy["baseline"]) / len(SEEDS)
    assert dyck > baseline, f"k-Dyck warm-up {accuracy['dyck']} vs baseline {accuracy['baseline']}"
