"""The registry is the one source of docs: it names exactly what the compiler accepts, documents
every parameter, and `plan --help`, docs/reference.md and the README agree with it."""

from __future__ import annotations

import re

import pytest
from conftest import REPO
from typer.testing import CliRunner

from procdsl.cli import app
from procdsl.compiler.phases import EVALS, LOSSES, PERTURBATIONS, PHASE_KEYS, SCHEDULES, TRANSFER_KEYS
from procdsl.compiler.settings import CURRICULUM_KEYS, MODELS, RUNTIME_KEYS, TOKENIZER_WORDS
from procdsl.plan.model import COMPONENTS, Runtime
from procdsl.plan.sources import RULES, SOURCE_KINDS
from procdsl.registry.calls import MISSING_DOC
from procdsl.registry.lookup import ITEMS, category
from procdsl.registry.render import reference_markdown, settings_help
from procdsl.registry.settings import KEYS


def names(role: str, callable_: bool | None = None) -> list[str]:
    return [i.name for i in category(role) if callable_ is None or i.callable == callable_]


@pytest.mark.parametrize(
    "block, compiler",
    [
        ("curriculum", CURRICULUM_KEYS),
        ("runtime", RUNTIME_KEYS),
        ("phase", PHASE_KEYS),
        ("transfer", TRANSFER_KEYS),
    ],
)
def test_keys_are_exactly_what_the_compiler_accepts(block, compiler):
    assert [i.name for i in KEYS[block]] == list(compiler)


@pytest.mark.parametrize(
    "role, compiler",
    [
        ("source kind", SOURCE_KINDS),
        ("model", MODELS),
        ("schedule", SCHEDULES),
        ("evaluation", EVALS),
        ("perturbation", PERTURBATIONS),
        ("rule", RULES),
        ("component", COMPONENTS),
        ("loss", LOSSES),
    ],
)
def test_calls_and_words_are_exactly_what_the_compiler_accepts(role, compiler):
    assert sorted(names(role)) == sorted(compiler)


def test_tokenizers_are_the_compilers_words_and_bpe():
    assert sorted(names("tokenizer")) == sorted(list(TOKENIZER_WORDS) + ["bpe"])


def test_every_entry_and_parameter_has_one_line_of_doc():
    for item in ITEMS:
        assert item.doc and item.doc != MISSING_DOC and "\n" not in item.doc, item.name
        for param in item.params:
            assert param.doc and param.doc != MISSING_DOC and "\n" not in param.doc, (
                f"{item.name}.{param.name}"
            )


def test_runtime_defaults_are_the_plans():
    plan = Runtime()
    by_name = {i.name: i for i in KEYS["runtime"]}
    assert by_name["dtype"].default == plan.dtype
    assert by_name["compile"].default == str(plan.compile).lower()
    assert by_name["checkpoint_every"].default == "none" and plan.checkpoint_every is None
    assert by_name["activation_checkpoint"].default == plan.activation_checkpoint


def test_parameter_facts_come_from_the_models():
    dyck = next(i for i in category("source kind") if i.name == "dyck")
    length = dyck.param("length")
    assert (length.type, length.default, length.range) == ("int, range or ramp", "none", "≥ 2, even")
    adamw = category("optimizer")[0]
    assert adamw.param("lr").range == "> 0" and adamw.param("betas").default == "(0.9, 0.999)"


def test_reference_document_is_generated_from_the_registry():
    """Regenerate with: python -m procdsl.registry.render > docs/reference.md"""
    assert (REPO / "docs" / "reference.md").read_text(encoding="utf-8") == reference_markdown()


def test_plan_help_lists_every_key_from_the_registry():
    result = CliRunner().invoke(app, ["plan", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for line in settings_help().splitlines():
        assert line.replace("\b", "").strip() in result.output


def test_readme_names_every_setting_key_and_call_of_the_registry():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quoted = set(re.findall(r"`([^`]*)`", readme))
    words = {w for text in quoted for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}
    wanted = [i.name for block in KEYS.values() for i in block]
    wanted += (
        names("source kind") + names("schedule") + names("optimizer") + names("evaluation") + names("model")
    )
    missing = sorted(set(wanted) - words)
    assert not missing, f"README.md does not mention {missing}"
