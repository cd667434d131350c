"""``procdsl run`` on a sweep: every variant into DIR/<variant>/, or one with --variant."""

from __future__ import annotations

import json
import subprocess
import sys

SWEEP = """curriculum sw {
  model   = gpt2(layers=1, heads=2, dim=16)
  context = 32
  batch   = 4
  source a = sort(length=8, vocab=10)
  source b = reverse(length=8, vocab=10)
  phase warm { steps = 3  mix = { a: 100% } }
  sweep { seed: [0, 1], warm.mix: [{ a: 100% }, { b: 100% }] }
}
"""


def procdsl(*args):
    return subprocess.run(
        [sys.executable, "-m", "procdsl.cli", *map(str, args)], capture_output=True, text=True
    )


def test_a_sweep_runs_every_variant_in_its_own_directory(tmp_path):
    (tmp_path / "sw.curr").write_text(SWEEP)
    result = procdsl("run", tmp_path / "sw.curr", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    dirs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert dirs == [
        "seed=0,warm.mix=a-100%",
        "seed=0,warm.mix=b-100%",
        "seed=1,warm.mix=a-100%",
        "seed=1,warm.mix=b-100%",
    ]
    plans = [json.loads((tmp_path / "out" / d / "plan.json").read_text()) for d in dirs]
    assert [p["seed"] for p in plans] == [0, 0, 1, 1]
    assert [list(p["phases"][0]["mix"]) for p in plans] == [["a"], ["b"], ["a"], ["b"]]
    assert all(
        json.loads((tmp_path / "out" / d / "summary.json").read_text())["status"] == "done" for d in dirs
    )


def test_variant_selects_one_and_unknown_is_a_usage_error(tmp_path):
    (tmp_path / "sw.curr").write_text(SWEEP)
    one = procdsl(
        "run", tmp_path / "sw.curr", "--out", tmp_path / "out", "--variant", "seed=1,warm.mix=b-100%"
    )
    assert one.returncode == 0, one.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["seed=1,warm.mix=b-100%"]
    bad = procdsl("run", tmp_path / "sw.curr", "--variant", "nope")
    assert bad.returncode == 2 and "the variants are" in bad.stderr
