"""Help texts read as words; ``--version`` and shell completion exist."""

from __future__ import annotations

import re

from typer.testing import CliRunner

import procdsl
from procdsl.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"procdsl {procdsl.__version__}"


def test_completion_options_are_offered():
    assert "--install-completion" in invoke("--help").output
    shown = invoke("--show-completion", "bash")
    assert shown.exit_code == 0 or "procdsl" in shown.output


def test_placeholders_are_words():
    for command in ("check", "plan", "fmt", "run", "sample", "report", "export", "eval"):
        text = invoke(command, "--help").output
        assert not re.search(r"\{[a-z_]+\}|<(int|str|float|path|list|bool|file)[^>]*>", text), text
    sample = invoke("sample", "--help").output
    assert "sample [OPTIONS] FILE\n" in sample
    assert "-n N " in sample and "--set KEY=VALUE" in sample
    assert "--format text|json|github" in invoke("check", "--help").output
    assert "[OPTIONS] PATHS..." in invoke("report", "--help").output
