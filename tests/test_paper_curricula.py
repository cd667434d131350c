"""The shipped curricula are the paper's settings (PAPER.md, "Paper training settings").

One row per phase: the numbers of the paper's public configs (``procedural_pretraining/configs/*.yaml``,
``downstream/semantic/configs/*.yaml``), written out here by hand, against the compiled plans.
A warm-up's context is its example's length (``x SEP y`` = 129 tokens, k-Dyck 2,048): one
example per sequence, so the tokens of a phase are the paper's ``steps × sequences × length``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from procdsl.compiler import compile_file
from procdsl.plan.table import phase_parameters

CURRICULA = Path(__file__).resolve().parent.parent / "curricula"

#: curriculum, phase -> steps, sequences per step, context, tokens, lr, schedule (kind, warm-up,
#: min), weight decay, clip
PAPER = {
    ("dyck_then_c4", "warmup"): (501, 32, 2048, 32_833_536, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("dyck_then_c4", "language"): (10_000, 32, 2048, 655_360_000, 5e-4, ("cosine", 0, 0.1), 0.0, 1.0),
    ("sort_then_code", "warmup"): (2501, 64, 129, 20_648_256, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("sort_then_code", "code"): (50_000, 8, 1024, 409_600_000, 5e-5, ("cosine", 0, 0.0), 0.01, 1.0),
    ("sort_then_python", "warmup"): (2501, 64, 129, 20_648_256, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("sort_then_python", "code"): (50_000, 8, 1024, 409_600_000, 5e-5, ("cosine", 0, 0.0), 0.01, 1.0),
    ("dm_math", "warmup"): (2501, 64, 130, 20_808_320, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("dm_math", "math"): (50_000, 8, 512, 204_800_000, 5e-5, ("cosine", 0, 0.0), 0.01, 1.0),
    ("assembly", "set_attention"): (2501, 64, 129, 20_648_256, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("assembly", "eca_mlp"): (501, 32, 2048, 32_833_536, 5e-4, ("constant", 0, None), 0.1, 1.0),
    ("assembly", "probe"): (10_000, 1000, 34, 340_000_000, 1e-3, ("cosine", 500, 0.0), 0.001, 1.0),
}

#: curriculum -> layers, heads, dim, tied embeddings, dropout (the paper's Hugging Face GPT-2; the
#: probes' task files build GPT2Config(tie_word_embeddings=False, dropout 0))
MODELS = {
    "dyck_then_c4": (12, 12, 768, True, 0.1),
    "sort_then_code": (12, 12, 768, True, 0.1),
    "sort_then_python": (12, 12, 768, True, 0.1),
    "dm_math": (12, 12, 768, True, 0.1),
    "assembly": (2, 4, 16, False, 0.0),
}


def _plan(name: str):
    result = compile_file(str(CURRICULA / f"{name}.curr"))
    assert result.ok, [d.message for d in result.diagnostics]
    return result.plans[0]


@pytest.mark.parametrize("curriculum, phase", sorted(PAPER))
def test_phase_is_the_papers(curriculum, phase):
    steps, batch, context, tokens, lr, (kind, warmup, floor), decay, clip = PAPER[curriculum, phase]
    p = _plan(curriculum).phase(phase)
    assert (p.steps, p.batch, p.context, p.tokens) == (steps, batch, context, tokens)
    assert (p.optimizer.lr, p.optimizer.weight_decay, p.optimizer.clip) == (lr, decay, clip)
    assert p.optimizer.betas == (0.9, 0.999) and p.optimizer.eps == 1e-8  # torch's AdamW
    assert (p.schedule.kind, p.schedule.warmup) == (kind, warmup)
    if floor is not None:
        assert p.schedule.min == floor


@pytest.mark.parametrize("curriculum", sorted(MODELS))
def test_model_is_the_papers(curriculum):
    m = _plan(curriculum).model
    assert (m.layers, m.heads, m.dim, m.tie_embeddings, m.dropout) == MODELS[curriculum]


def test_every_phase_is_in_the_table():
    for name in MODELS:
        assert {(name, p.name) for p in _plan(name).phases} <= set(PAPER)


def test_procedural_warmups_hold_one_example_per_sequence():
    """The paper's sequence is one whole example: the context is the example's length."""
    for (curriculum, phase), _row in PAPER.items():
        plan = _plan(curriculum)
        p = plan.phase(phase)
        for source in p.mix:
            src = plan.sources[source]
            if src.procedural:
                assert src.min_tokens(p.context) == src.max_tokens(p.context) == p.context, (
                    curriculum,
                    phase,
                )


def test_the_c4_phase_gets_the_papers_tokens_from_the_budget():
    plan = _plan("dyck_then_c4")
    assert plan.budget == plan.total_tokens == 32_833_536 + 655_360_000


def test_plan_counts_the_papers_gpt2():
    plan = _plan("dyck_then_c4")  # GPT-2 BPE (50,257), positions for 2,048, tied
    language = plan.phase("language")
    assert phase_parameters(plan, language) == 124_439_808 + (2048 - 1024) * 768
