"""``procdsl explain`` (the registry on the command line) and ``procdsl init`` (a starter project)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.registry.lookup import ITEMS

runner = CliRunner()


@pytest.mark.parametrize(
    "name, shown",
    [
        ("mix", ["mix — phase key", "rest"]),
        ("batch", ["batch — curriculum setting", "batch — phase key"]),
        ("runtime.log_every", ["log_every — runtime setting", "default: 10"]),
        ("dyck.k", ["k — parameter of dyck", "default: 64", "range: ≥ 1"]),
        ("cosine", ["cosine — schedule", "warmup:"]),
    ],
)
def test_explain_shows_the_registry_entry(name, shown):
    result = runner.invoke(app, ["explain", name])
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in result.output


def test_every_registry_name_can_be_explained():
    for item in ITEMS:
        result = runner.invoke(app, ["explain", item.name])
        assert result.exit_code == 0 and f"{item.name} — {item.category}" in result.output


@pytest.mark.parametrize(
    "name, message",
    [
        ("dyk", "nothing is called `dyk`; did you mean `dyck`?"),
        ("runtime.lgo_every", "no runtime setting is called `lgo_every`; did you mean `log_every`?"),
        ("adamw.clipp", "`adamw` has no parameter `clipp`; did you mean `clip`?"),
    ],
)
def test_explain_an_unknown_name_is_a_usage_error_with_a_suggestion(name, message):
    result = runner.invoke(app, ["explain", name])
    assert result.exit_code == 2 and f"error: {message}" in result.output


def test_init_writes_a_curriculum_that_checks_and_a_readme(tmp_path):
    folder = tmp_path / "my-project"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    curr, readme = folder / "curriculum.curr", folder / "README.md"
    assert f"wrote {curr}" in result.output and f"wrote {readme}" in result.output
    assert "curriculum my_project {" in curr.read_text()
    assert (
        "## Training with procdsl" in readme.read_text()
        and "procdsl run curriculum.curr" in readme.read_text()
    )
    assert runner.invoke(app, ["check", str(folder)]).output.strip() == "All checks passed!"
    assert runner.invoke(app, ["fmt", "--check", str(folder)]).exit_code == 0
    plan = runner.invoke(app, ["plan", str(curr), "--json"])
    assert plan.exit_code == 0 and '"python_code"' in plan.output  # offline sources only


def test_init_never_replaces_a_curriculum_and_adds_its_stanza_to_a_readme_once(tmp_path):
    (tmp_path / "README.md").write_text("# Mine\n\nmy notes")
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Mine\n\nmy notes\n\n## Training with procdsl")
    (tmp_path / "curriculum.curr").write_text("# edited\n")
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 1 and "already exists; init changes nothing" in again.output
    assert (tmp_path / "curriculum.curr").read_text() == "# edited\n"
    (tmp_path / "curriculum.curr").unlink()
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    assert (tmp_path / "README.md").read_text().count("## Training with procdsl") == 1


def test_init_defaults_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "curriculum.curr").exists()
