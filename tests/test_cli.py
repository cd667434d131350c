"""The command line as a user meets it: exit codes, output formats, stdout/stderr discipline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CURRICULA, snippet
from typer.testing import CliRunner

from procdsl.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.curr"
    path.write_text(snippet(phases="  phase p {\n    steps = 10\n    mix = { a: 60%, b: 30% }\n  }"))
    return path


def test_check_passes_on_every_shipped_curriculum():
    result = run("check", CURRICULA)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("All checks passed!")


def test_check_reports_errors_with_frame_and_exit_1(bad):
    result = run("check", bad)
    assert result.exit_code == 1
    assert f"{bad}:11:11: E301 mix shares sum to 90%, not 100%" in result.output
    assert "^^^^" in result.output and "add 10% to a source" in result.output
    assert "Found 1 errors." in result.output


def test_check_json_is_one_object_per_diagnostic(bad):
    result = run("check", "--format", "json", bad)
    assert result.exit_code == 1
    (obj,) = [json.loads(line) for line in result.output.splitlines()]
    assert {k: obj[k] for k in ("line", "column", "code", "severity")} == {
        "line": 11,
        "column": 11,
        "code": "E301",
        "severity": "error",
    }
    assert set(obj) >= {"file", "line", "column", "end_line", "end_column", "code", "severity", "message"}


def test_check_github_annotations(bad):
    result = run("check", "--format", "github", bad)
    assert result.output.startswith(f"::error file={bad},line=11,col=11,")


def test_usage_errors_exit_2(tmp_path):
    assert run("check", tmp_path / "missing.curr").exit_code == 2
    assert run("check", "--format", "xml", CURRICULA).exit_code == 2
    assert run("plan").exit_code == 2


def test_plan_json_prints_only_json_and_matches_output_file(tmp_path):
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(CURRICULA / "dyck_then_c4.curr"), "--json", "-o", str(out)])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert json.loads(out.read_text()) == plan
    assert [p["steps"] for p in plan["phases"]] == [501, 10000]  # the paper's Table 2 setting
    for field in (
        "version",
        "name",
        "seed",
        "model",
        "tokenizer",
        "context",
        "batch",
        "sources",
        "phases",
        "total_steps",
        "total_tokens",
        "hash",
    ):
        assert field in plan


def test_plan_set_overrides_are_revalidated(tmp_path):
    ok = run(
        "plan", CURRICULA / "quickstart.curr", "--json", "--set", "phases.warmup.steps=500", "--set", "seed=3"
    )
    plan = json.loads(ok.stdout)
    assert plan["seed"] == 3 and plan["phases"][0]["steps"] == 500 and plan["phases"][0]["seed"] == 3
    bad = runner.invoke(app, ["plan", str(CURRICULA / "quickstart.curr"), "--set", "phases.warmup.steps=-5"])
    assert bad.exit_code == 1 and "E202" in bad.stderr
    unknown = runner.invoke(
        app, ["plan", str(CURRICULA / "quickstart.curr"), "--set", "phases.warmpu.steps=5"]
    )
    assert unknown.exit_code == 1 and "E103" in unknown.stderr and "did you mean `warmup`?" in unknown.stderr


def test_plan_table_shows_phases(tmp_path):
    result = run("plan", CURRICULA / "dyck_then_c4.curr")
    assert result.exit_code == 0
    assert "warmup" in result.output and "501" in result.output and "32,833,536" in result.output


def test_plan_diagnostics_go_to_stderr(bad):
    result = runner.invoke(app, ["plan", str(bad), "--json"])
    assert result.exit_code == 1 and result.stdout == "" and "E301" in result.stderr


def test_fmt_check_and_rewrite(tmp_path):
    path = tmp_path / "x.curr"
    path.write_text(snippet().replace("  batch = 4", "batch=4   # per step"))
    assert run("fmt", "--check", path).exit_code == 1
    assert run("fmt", path).exit_code == 0
    assert "  batch   = 4  # per step" in path.read_text()
    assert run("fmt", "--check", path).exit_code == 0


def test_check_does_not_import_torch():
    code = (
        "import sys\nfrom procdsl.cli import app\n"
        f"try:\n    app(['check', {str(CURRICULA)!r}])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'torchtitan', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_console_script_never_shows_a_traceback(tmp_path):
    path = tmp_path / "weird.curr"
    path.write_bytes(b"\xff\xfe curriculum")
    result = subprocess.run(
        [sys.executable, "-m", "procdsl.cli", "check", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr and "not UTF-8" in result.stdout


def test_sample_json_lines_carry_raw_ids_and_masks():
    result = runner.invoke(
        app, ["sample", str(CURRICULA / "quickstart.curr"), "--source", "sort", "-n", "3", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and all(set(r) == {"source", "tokens", "loss_mask"} for r in rows)
    for r in rows:  # x SEP sorted(x): SEP = vocab = 100, targets exactly the sorted output
        sep = r["tokens"].index(100)
        x, y = r["tokens"][:sep], r["tokens"][sep + 1 :]
        assert y == sorted(x) and r["loss_mask"] == [False] * (sep + 1) + [True] * len(y)


def test_sample_verify_and_packed_rows():
    ok = runner.invoke(app, ["sample", str(CURRICULA / "assembly.curr"), "-n", "5", "--verify"])
    assert ok.exit_code == 0 and "0 problems" in ok.stderr
    packed = runner.invoke(
        app,
        ["sample", str(CURRICULA / "quickstart.curr"), "--packed", "--phase", "code", "-n", "2", "--json"],
    )
    rows = [json.loads(line) for line in packed.stdout.splitlines()]
    assert [len(r["tokens"]) for r in rows] == [257, 257] and set(rows[0]["source"]) == {"code"}
    assert (
        runner.invoke(app, ["sample", str(CURRICULA / "quickstart.curr"), "--source", "nope"]).exit_code == 2
    )


@pytest.mark.slow
def test_bench_reports_ratios_as_json():
    result = runner.invoke(app, ["bench", "--json", "--quick"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["generators"] and data["pipeline"]
