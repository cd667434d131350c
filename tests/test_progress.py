"""Without a terminal, ``procdsl run`` prints plain progress lines while a phase trains.

A SLURM log or a pipe gets no progress bar; it must still show that training moves: a line at
the first step, then every N steps, before the phase's closing line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtitan")

CURRICULUM = """curriculum progress {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 16
  batch = 2
  runtime { log_every = 2 steps }
  source s = sort(length=4, vocab=5)
  phase warm { steps = 12  mix = { s: 100% } }
}
"""
LINE = re.compile(r"^warm  step (\d+)/12  loss \d+\.\d{4}  [\d,]+ tok/s  ETA \d+:\d\d:\d\d$")


def test_piped_run_prints_progress_lines_before_the_phase_ends(tmp_path):
    path = tmp_path / "progress.curr"
    path.write_text(CURRICULUM)
    env = dict(os.environ, PROCDSL_PROGRESS_EVERY="4")
    done = subprocess.run(
        [sys.executable, "-m", "procdsl.cli", "run", str(path), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    steps = [int(m.group(1)) for line in lines if (m := LINE.match(line))]
    assert steps == [1, 6, 10], done.stderr  # metrics are read at step 1 and every 2 steps
    end = next(i for i, line in enumerate(lines) if line.startswith("warm  12/12  loss"))
    assert max(i for i, line in enumerate(lines) if LINE.match(line)) < end
