"""procdsl.runtime.attention and evaluate: attention entropy against a direct computation."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import attention  # noqa: E402
from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs  # noqa: E402
from runtime_models import materialize  # noqa: E402


def test_gpt2_entropy_matches_the_attention_weights():
    args = GPT2ModelArgs.from_shape(layers=2, heads=2, dim=16, vocab_size=30, context=12)
    model = GPT2(args)
    torch.manual_seed(0)
    model.init_weights()
    for p in model.parameters():  # sharper attention than the init gives
        p.data.mul_(3)
    tokens = torch.randint(0, 30, (3, 12))
    with attention.recording(model, "gpt2") as recorded, torch.no_grad():
        model(tokens)
    stats = attention.entropy_stats(recorded.tensor())
    # by hand, layer 0: embeddings → LayerNorm → QKV → softmax(QKᵀ/√d + causal mask)
    with torch.no_grad():
        h = model.tok_embeddings(tokens) + model.pos_embeddings(torch.arange(12))
        block = model.layers["0"]
        q, k, _ = block.attention.qkv(block.attention_norm(h)).view(3, 12, 3, 2, 8).permute(2, 0, 3, 1, 4)
        weights = (
            (q @ k.transpose(-1, -2) / math.sqrt(8))
            .masked_fill(torch.ones(12, 12, dtype=torch.bool).triu(1), float("-inf"))
            .softmax(-1)
        )
        entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1).mean((0, 2))
    for head in range(2):
        assert stats[f"attention_entropy/layer0/head{head}"] == pytest.approx(float(entropy[head]), rel=1e-5)
    assert recorded.rows == 3 * 12
    assert not model.layers["0"].attention._forward_pre_hooks  # hooks removed afterwards


def test_llama_entropy_runs_with_grouped_queries():
    from procdsl.runtime.spec import llama_args
    from torchtitan.models import llama3

    args = llama_args(layers=2, heads=4, dim=32, vocab_size=30, context=16, kv_heads=2, multiple_of=16)
    model = materialize(llama3.Transformer, args)
    with attention.recording(model, "llama") as recorded, torch.no_grad():
        model(torch.randint(0, 30, (2, 16)))
    stats = attention.entropy_stats(recorded.tensor())
    uniform = sum(math.log(t + 1) for t in range(16)) / 16
    values = [stats[f"attention_entropy/layer{i}/head{h}"] for i in range(2) for h in range(4)]
    assert all(0 < v <= uniform + 1e-6 for v in values)
