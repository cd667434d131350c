"""The GPT-2 presets' parameter counts (what ``procdsl plan`` shows) equal the built model's.

The count is torch-free (``procdsl.runtime.flops.count_params``, from the shape); here it meets
the model TorchTitan builds, on the meta device (no memory), at the paper's vocabulary.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from procdsl.runtime.flops import count_params  # noqa: E402
from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs  # noqa: E402

from procdsl.compiler.settings import GPT2_PRESETS  # noqa: E402
from procdsl.plan import Gpt2Model  # noqa: E402

#: Hugging Face's counts for GPT-2 (tied, vocab 50,257, 1,024 positions): gpt2 is 124,439,808.
HF_GPT2 = {"gpt2_124m": 124_439_808, "gpt2_350m": 354_823_168}


def _built(model: Gpt2Model, vocab: int, context: int) -> int:
    args = GPT2ModelArgs.from_shape(
        layers=model.layers,
        heads=model.heads,
        dim=model.dim,
        vocab_size=vocab,
        context=context,
        mlp_ratio=model.mlp_ratio,
        tie_embeddings=model.tie_embeddings,
        dropout=model.dropout,
    )
    with torch.device("meta"):
        return sum(p.numel() for p in GPT2(args).parameters())


@pytest.mark.parametrize("name", sorted(GPT2_PRESETS))
@pytest.mark.parametrize("vocab, context", [(50257, 1024), (50257, 2048), (129, 2048)])
def test_preset_count_is_the_built_models(name, vocab, context):
    model = Gpt2Model(**GPT2_PRESETS[name])
    assert count_params(model, vocab=vocab, context=context).params == _built(model, vocab, context)


def test_the_paper_gpt2_is_hugging_faces():
    for name, hf in HF_GPT2.items():
        assert _built(Gpt2Model(**GPT2_PRESETS[name]), 50257, 1024) == hf
    assert Gpt2Model() == Gpt2Model(**GPT2_PRESETS["gpt2_124m"])  # gpt2() is the 124M
    assert (Gpt2Model().tie_embeddings, Gpt2Model().dropout) == (True, 0.1)
    untied = Gpt2Model(tie_embeddings=False)
    assert _built(untied, 50257, 1024) == 124_439_808 + 50257 * 768  # the old default: 163M
