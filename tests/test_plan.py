"""The plan contract: exact step arithmetic, hashing, overrides and sweeps."""

from __future__ import annotations

import json

import pytest
from conftest import CURRICULA, PHASE, compile_snippet, snippet
from pydantic import ValidationError

from procdsl.plan import Plan, load_plan, plan_hash, to_json


def _phase(text_phase: str, settings: str = ""):
    result = compile_snippet(snippet(settings=settings, phases=text_phase))
    assert result.ok, result.diagnostics
    return result.plan


def test_tokens_round_up_to_whole_steps_design_example():
    plan = _phase(PHASE.replace("steps = 10", "tokens = 100K\n    batch = 8\n    context = 128"))
    assert (plan.phases[0].steps, plan.phases[0].tokens) == (98, 100_352)


def test_share_rounds_up_and_rest_rounds_down():
    phases = (
        PHASE.replace("steps = 10", "share = 10%")
        + "\n  phase q {\n    length = rest\n    mix = { a: 100% }\n  }"
    )
    plan = _phase(phases, settings="  budget = 100K tokens")
    per_step = 4 * 64
    assert plan.phases[0].steps == -(-10_000 // per_step)  # ceil
    assert plan.phases[1].steps == (100_000 - plan.phases[0].tokens) // per_step  # floor
    assert plan.total_tokens <= 100_000
    assert plan.total_tokens == sum(p.tokens for p in plan.phases)


def test_every_phase_satisfies_tokens_equals_steps_batch_context():
    for path in CURRICULA.rglob("*.curr"):
        from procdsl.compiler import compile_file

        for plan in compile_file(str(path)).plans:
            for p in plan.phases:
                assert p.tokens == p.steps * p.batch * p.context
                assert abs(sum(p.mix.values()) - 1) < 1e-9


def test_hash_is_stable_and_covers_everything_but_itself(tmp_path):
    plan = _phase(PHASE)
    assert plan.hash == plan_hash(plan) and len(plan.hash) == 64
    changed = compile_snippet(snippet(phases=PHASE.replace("steps = 10", "steps = 11"))).plan
    assert changed.hash != plan.hash
    path = tmp_path / "plan.json"
    path.write_text(to_json(plan))
    assert load_plan(path) == plan
    data = json.loads(path.read_text())
    data["seed"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="hash does not match"):
        load_plan(path)


def test_plan_is_frozen_and_rejects_unknown_fields():
    plan = _phase(PHASE)
    with pytest.raises(ValidationError):
        plan.seed = 3  # type: ignore[misc]
    data = plan.model_dump(mode="json")
    data["surprise"] = 1
    with pytest.raises(ValidationError):
        Plan.model_validate(data)


def test_overrides_recompute_derived_fields():
    base = snippet(phases=PHASE)
    plan = compile_snippet(base, overrides=["phases.p.tokens=1000", "seed=5", "batch=2"]).plan
    phase = plan.phases[0]
    assert (phase.steps, phase.batch, phase.seed) == (8, 2, 5) and phase.tokens == 8 * 2 * 64
    short = compile_snippet(base, overrides=["p.mix={ a: 100% }"]).plan
    assert short.phases[0].mix == {"a": 1.0}
    nested = compile_snippet(base, overrides=["phases.p.optimizer.lr=1e-3", "runtime.dtype=bf16"]).plan
    assert nested.phases[0].optimizer.lr == 1e-3 and nested.runtime.dtype == "bf16"


@pytest.mark.parametrize(
    "override,code",
    [
        ("nothing=1", "E110"),
        ("phases.x.steps=1", "E103"),
        ("phases.p.stepz=1", "E110"),
        ("seed", "E005"),
        ("seed=[", "E003"),
        ("phases.p.steps=0", "E202"),
    ],
)
def test_bad_overrides_are_diagnostics(override, code):
    result = compile_snippet(snippet(phases=PHASE), overrides=[override])
    assert not result.ok and code in [d.code for d in result.diagnostics]


def test_sweep_expands_to_distinct_plans():
    result = compile_snippet(snippet(phases=PHASE + "\n  sweep { seed: [0, 1, 2], p.steps: [5, 10] }"))
    assert result.ok, result.diagnostics
    assert len(result.plans) == 6 and len({p.hash for p in result.plans}) == 6
    assert result.plans[0].name == "t/seed=0,p.steps=5" and result.plans[0].variant == {
        "seed": "0",
        "p.steps": "5",
    }


def test_sweep_key_that_names_nothing_is_an_error():
    text = snippet(phases=PHASE + "\n  sweep { warmup.mix: [{ a: 100% }] }")
    result = compile_snippet(text)
    assert [d.code for d in result.diagnostics] == ["E110"]


def test_override_merges_into_an_existing_runtime_block():
    text = snippet(phases=PHASE + "\n  runtime { compile = true }")
    plan = compile_snippet(text, overrides=["runtime.dtype=bf16"]).plan
    assert plan.runtime.dtype == "bf16" and plan.runtime.compile is True
    twice = compile_snippet(
        snippet(phases=PHASE + "\n  runtime { compile = true }\n  runtime { dtype = bf16 }")
    )
    assert [d.code for d in twice.diagnostics] == ["E312"]


def test_import_path_with_a_nul_byte_is_a_diagnostic():
    result = compile_snippet('import "a\x00b.curr"\n')
    assert [d.code for d in result.diagnostics] == ["E108"]


def test_sweep_warns_only_about_what_every_variant_leaves_unused():
    text = snippet(
        phases=PHASE.replace("mix = { a: 50%, b: 50% }", "mix = { a: 100% }")
        + "\n  sweep { p.mix: [{ a: 100% }, { b: 100% }] }",
        sources="  source c = sort()",
    )
    result = compile_snippet(text)
    assert [d.message for d in result.diagnostics] == ["source `c` is never used"]
