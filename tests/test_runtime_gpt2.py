"""procdsl.runtime.models.gpt2 and the flavor tables of procdsl.runtime.spec."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import spec  # noqa: E402
from procdsl.runtime.models.gpt2 import (  # noqa: E402
    COMPONENTS,
    GPT2,
    GPT2ModelArgs,
    component_params,
)
from procdsl.runtime.models.kinds import GPT2 as GPT2_KIND  # noqa: E402
from runtime_models import materialize  # noqa: E402

component_of = GPT2_KIND.component_of


def small(**kwargs) -> GPT2ModelArgs:
    shape = dict(layers=2, heads=2, dim=16, vocab_size=32, context=8) | kwargs
    return GPT2ModelArgs.from_shape(**shape)


def built(args: GPT2ModelArgs, seed: int = 0) -> GPT2:
    """As the Trainer does it: construct on meta, materialise, init_weights."""
    return materialize(GPT2, args, seed)


@pytest.mark.parametrize("tied", [False, True])
def test_components_partition_the_state_dict(tied):
    args = small(tie_embeddings=tied)
    owned = component_params(args)
    assert tuple(owned) == COMPONENTS
    names = [n for ns in owned.values() for n in ns]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(built(args).state_dict())
    assert (owned["head"] == ()) is tied


def test_component_of_ignores_wrapper_infixes():
    from torchtitan.config import ActivationCheckpoint
    from torchtitan.distributed.activation_checkpoint import apply_ac

    model = built(small())
    apply_ac(model, ActivationCheckpoint(mode="full"))
    wrapped = [n for n, _ in model.named_parameters()]
    assert any("_checkpoint_wrapped_module" in n for n in wrapped)
    assert {component_of(n) for n in wrapped} == set(COMPONENTS)
    with pytest.raises(KeyError):
        component_of("layers.0.attention.rotary")


def test_init_components_touches_only_those():
    model = built(small())
    before = {n: p.clone() for n, p in model.state_dict().items()}
    torch.manual_seed(1)
    model.init_components(["attn", "pos"])
    owned = component_params(model.model_args)
    changed = {n for n, p in model.state_dict().items() if not torch.equal(p, before[n]) and p.ndim > 1}
    assert changed == {n for n in owned["attn"] + owned["pos"] if before[n].ndim > 1}
    with pytest.raises(ValueError, match="unknown components"):
        model.init_components(["ffn"])


def test_init_scheme():
    model = built(small(layers=4, dim=64, vocab_size=2048, context=64))
    assert model.tok_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert model.layers["0"].mlp.down.weight.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.1)
    assert torch.count_nonzero(model.layers["0"].attention.qkv.bias) == 0
    assert torch.all(model.norm.weight == 1)


def test_forward_is_causal_and_tied_head_uses_embedding():
    args = small(tie_embeddings=True)
    model = built(args).eval()
    tokens = torch.randint(0, args.vocab_size, (2, 8))
    logits = model(tokens)
    assert logits.shape == (2, 8, args.vocab_size)
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % args.vocab_size
    torch.testing.assert_close(model(changed)[:, :5], logits[:, :5])
    assert model.output is None


def test_nparams_and_flops():
    args = small()
    model = built(args)
    nparams, flops = args.get_nparams_and_flops(model, seq_len=8)
    assert nparams == sum(p.numel() for p in model.parameters())
    matmul = nparams - (32 + 8) * 16  # untied: the head is a matmul, embeddings are lookups
    assert flops == 6 * matmul + 12 * 2 * 16 * 8


def test_context_bounds_seq_len():
    args = small()
    args.update_from_config(SimpleNamespace(training=SimpleNamespace(seq_len=8)))
    with pytest.raises(ValueError, match="position table"):
        args.update_from_config(SimpleNamespace(training=SimpleNamespace(seq_len=9)))
    with pytest.raises(ValueError, match="multiple of heads"):
        small(heads=3)


def test_flavor_tables():
    table = spec.gpt2_spec().model_args
    first = table["debugmodel"]
    first.n_layers = 99
    assert table["debugmodel"].n_layers == 2  # every lookup is a fresh copy
    args = table["layers=3,heads=2,dim=8,vocab_size=10,context=4,tie_embeddings=true"]
    assert (args.n_layers, args.tie_embeddings, args.max_seq_len) == (3, True, 4)
    for bad in ("large", "layers=2", "layers=two,heads=1,dim=1,vocab_size=2,context=2"):
        with pytest.raises(KeyError):
            table[bad]
    llama = spec.llama_spec().model_args["layers=2,heads=4,dim=64,vocab_size=64,context=32,kv_heads=2"]
    assert (llama.n_layers, llama.n_kv_heads, llama.max_seq_len) == (2, 2, 32)
    assert "8B" in spec.llama_spec().model_args
