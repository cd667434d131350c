"""procdsl.runtime.flops: parameter counts match the built models; FLOPs/MFU match a hand count."""

from __future__ import annotations

import pytest
from procdsl.runtime import flops

from procdsl.plan import Gpt2Model, LlamaModel

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")


def test_flops_and_mfu_by_hand():
    # GPT-2, 2 layers, dim 64, 4 heads, vocabulary 100, context 32, untied.
    model = Gpt2Model(layers=2, heads=4, dim=64)
    d, h, v, t = 64, 256, 100, 32
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d)  # 49,984
    dense = 2 * block + 2 * d + v * d  # 106,496
    count = flops.count_params(model, vocab=v, context=t)
    assert (count.embedding, count.dense) == (v * d + t * d, dense) == (8448, 106496)
    per_token = 6 * 106_496 + 12 * 2 * 64 * 32  # 688,128
    assert flops.flops_per_token(model, vocab=v, context=t, seq_len=t) == per_token == 688_128
    # 1,000 tokens/s against a 1 GFLOP/s device: 688,128,000 / 1e9
    assert flops.mfu(per_token, tokens_per_s=1000, peak_flops=1e9) == pytest.approx(0.688128)
    assert flops.mfu(per_token, tokens_per_s=1000, peak_flops=0) is None


def test_tied_head_counts_as_a_matmul():
    untied = flops.count_params(
        Gpt2Model(layers=1, heads=1, dim=8, tie_embeddings=False), vocab=10, context=4
    )
    tied = flops.count_params(Gpt2Model(layers=1, heads=1, dim=8, tie_embeddings=True), vocab=10, context=4)
    assert tied.params == untied.params - 10 * 8
    assert tied.dense == untied.dense  # the embedding matrix does the head's multiply


@pytest.mark.parametrize("tied", [False, True])
def test_gpt2_count_matches_the_model(tied):
    from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs

    plan_model = Gpt2Model(layers=3, heads=2, dim=24, mlp_ratio=3.0, tie_embeddings=tied)
    args = GPT2ModelArgs.from_shape(
        layers=3, heads=2, dim=24, vocab_size=57, context=40, mlp_ratio=3.0, tie_embeddings=tied
    )
    with torch.device("meta"):
        built = GPT2(args)
    nparams, per_token = args.get_nparams_and_flops(built, seq_len=40)
    count = flops.count_params(plan_model, vocab=57, context=40)
    assert count.params == nparams
    assert flops.flops_per_token(plan_model, vocab=57, context=40, seq_len=40) == per_token


@pytest.mark.parametrize("kv_heads, multiplier", [(None, None), (2, 1.3)])
def test_llama_count_matches_torchtitan(kv_heads, multiplier):
    from procdsl.runtime.spec import llama_args
    from torchtitan.models import llama3

    plan_model = LlamaModel(
        layers=2, heads=4, dim=64, kv_heads=kv_heads, multiple_of=32, ffn_dim_multiplier=multiplier
    )
    args = llama_args(
        layers=2,
        heads=4,
        dim=64,
        vocab_size=91,
        context=32,
        kv_heads=kv_heads,
        multiple_of=32,
        ffn_dim_multiplier=multiplier,
    )
    with torch.device("meta"):
        built = llama3.Transformer(args)
    nparams, per_token = args.get_nparams_and_flops(built, seq_len=32)
    assert flops.count_params(plan_model, vocab=91, context=32).params == nparams
    assert flops.flops_per_token(plan_model, vocab=91, context=32, seq_len=32) == per_token


def test_memory_estimate_shards_state_and_checkpoints_activations():
    model = Gpt2Model(layers=4, heads=4, dim=64)
    full = flops.memory_estimate(model, vocab=100, context=32, seq_len=32, local_batch=8)
    n = flops.count_params(model, vocab=100, context=32).params
    assert (full.params, full.grads, full.optimizer) == (4 * n, 4 * n, 8 * n)
    assert full.activations == 8 * 32 * 4 * 34 * 64 * 2  # tokens × layers × 34·d × 4/2 bytes
    assert full.logits == 8 * 32 * 100 * 8
    sharded = flops.memory_estimate(model, vocab=100, context=32, seq_len=32, local_batch=8, shard=4)
    assert sharded.optimizer == 8 * -(-n // 4)
    ac = flops.memory_estimate(
        model, vocab=100, context=32, seq_len=32, local_batch=8, activation_checkpoint="full"
    )
    assert ac.activations < full.activations / 3
    bf16 = flops.memory_estimate(model, vocab=100, context=32, seq_len=32, local_batch=8, activation_bytes=2)
    assert bf16.activations == full.activations // 2
    assert full.total == sum(v for k, v in full.as_dict().items() if k != "total")


def test_peak_flops_only_from_a_known_peak(monkeypatch):
    monkeypatch.setenv("PROCDSL_PEAK_FLOPS", "2.5e12")
    assert flops.peak_flops("cpu", "float32") == 2.5e12
    monkeypatch.delenv("PROCDSL_PEAK_FLOPS")
    assert flops.peak_flops("cpu", "float32") is None and flops.peak_flops("cpu", "bf16") is None
    assert flops.mfu(1e6, tokens_per_s=1e3, peak_flops=None) is None
    # float32 matmuls are measured against the float32 peak, not the bf16 one (16x apart on A100)
    assert flops.known_peak("NVIDIA A100 80GB PCIe", "bf16") == 16 * flops.known_peak(
        "NVIDIA A100 80GB PCIe", "float32"
    )
    assert flops.known_peak("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert flops.known_peak("NVIDIA GeForce RTX 3090", "bf16") is None  # unknown: no MFU
