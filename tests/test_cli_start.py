"""``procdsl explain`` (the registry on the command line) and ``procdsl init`` (a starter project)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.registry.lookup import ITEMS

runner = CliRunner()


@pytest.mark.parametrize("name, shown", [
    ("mix", ["mix — phase key", "rest"]),
    ("batch", ["batch — curriculum setting", "batch — phase key"]),
    ("runtime.log_every", ["log_every — runtime setting", "default: 10"]),
    ("dyck.k", ["k — parameter of dyck", "default: 64", "range: ≥ 1"]),
    ("cosine", ["cosine — schedule", "warmup:"]),
])
def test_explain_shows_the_registry_entry(name, shown):
    result = runner.invoke(app, ["explain", name])
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in result.output


def test_every_registry_name_can_be_explained():
    for item in ITEMS:
        result = runner.invoke(app, ["explain", item.name])
        assert result.exit_code == 0 and f"{item.name} — {item.category}" in result.output


@pytest.mark.parametrize("name, message", [
    ("dyk", "nothing is called `dyk`; did you mean `dyck`?"),
    ("runtime.lgo_every", "no runtime setting is called `lgo_every`; did you mean `log_every`?"),
    ("adamw.clipp", "`adamw` has no parameter `clipp`; did you mean `clip`?"),
])
def test_explain_an_unknown_name_is_a_usage_error_with_a_suggestion(name, message):
    result = runner.invoke(app, ["explain", name])
    assert result.exit_code == 2 and f"error: {message}" in result.output
