"""`.pre-commit-hooks.yaml` exposes `procdsl-check` and `procdsl-fmt` on .curr files, and their
entries do what pre-commit expects when it runs them on the staged files."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO

yaml = pytest.importorskip("yaml")
HOOKS = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
GOOD = "curriculum c {\n  seed = 1\n}\n"


def run(hook: str, *files) -> subprocess.CompletedProcess:
    program, *args = HOOKS[hook]["entry"].split()
    assert program == "procdsl"
    return subprocess.run(
        [sys.executable, "-m", "procdsl.cli", *args, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hooks_run_on_curr_files_only():
    assert set(HOOKS) == {"procdsl-check", "procdsl-fmt"}
    for hook in HOOKS.values():
        assert hook["language"] == "python"
        assert re.search(hook["files"], "curricula/probes/haystack.curr")
        assert not re.search(hook["files"], "notes.curr.md") and not re.search(hook["files"], "x.py")


def test_check_hook_fails_on_an_error_and_passes_a_good_file(tmp_path):
    good, bad = tmp_path / "good.curr", tmp_path / "bad.curr"
    good.write_text(REPO.joinpath("curricula", "quickstart.curr").read_text(encoding="utf-8"))
    bad.write_text("source s = dyk(k=4)\n")
    assert run("procdsl-check", good).returncode == 0
    failed = run("procdsl-check", good, bad)
    assert failed.returncode == 1 and "E106" in failed.stdout


def test_fmt_hook_rewrites_files_in_place(tmp_path):
    path = tmp_path / "ugly.curr"
    path.write_text("curriculum c {  seed=1 }\n")
    assert run("procdsl-fmt", path).returncode == 0
    assert path.read_text() == GOOD
