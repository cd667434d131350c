"""procdsl.runtime.transfer on real GPT-2 models: keep, reinit, mean rows, freeze, continue."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchtitan")

from procdsl.runtime import transfer  # noqa: E402
from procdsl.runtime.models.gpt2 import GPT2, GPT2ModelArgs  # noqa: E402
from runtime_models import materialize  # noqa: E402

from procdsl.plan import Transfer  # noqa: E402
from procdsl.stream.vocab import IdRange  # noqa: E402

KEEP_ALL = ("embed", "pos", "attn", "mlp", "norm", "head")


def gpt2(vocab: int, seed: int) -> GPT2:
    return materialize(
        GPT2, GPT2ModelArgs.from_shape(layers=2, heads=2, dim=16, vocab_size=vocab, context=32), seed
    )


def params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def of(component: str, names) -> list[str]:
    return [n for n in names if transfer.component_of("gpt2", n) == component]


def test_kept_equal_reinit_fresh():
    old, new = gpt2(40, seed=0), gpt2(40, seed=1)
    before_old, fresh = params(old), params(new)
    spec = Transfer(keep=("attn", "mlp", "norm"), reinit=("embed", "pos", "head"))
    transfer.apply_transfer(old, new, spec, kind="gpt2")
    after = params(new)
    for name in after:
        component = transfer.component_of("gpt2", name)
        expected = before_old[name] if component in spec.keep else fresh[name]
        assert torch.equal(after[name], expected), name
        if component in spec.reinit:
            assert not torch.equal(after[name], before_old[name]), name
    assert all(torch.equal(p, before_old[n]) for n, p in params(old).items())  # old untouched


def test_reinit_embed_with_mean():
    old, new = gpt2(40, seed=0), gpt2(30, seed=1)
    spec = Transfer(keep=("attn", "mlp", "norm", "pos"), reinit=("embed", "head"), embed_init="mean")
    transfer.apply_transfer(old, new, spec, kind="gpt2")
    mean = old.tok_embeddings.weight.detach().mean(0)
    embed = new.tok_embeddings.weight.detach()
    assert embed.shape == (30, 16)
    assert torch.allclose(embed, mean.expand(30, 16))
    assert not torch.allclose(new.output.weight.detach()[0], old.output.weight.detach()[0])


def test_kept_rows_follow_their_tokens_and_new_rows_get_the_mean():
    # phase 1: sort [0, 22); phase 2: text [0, 10) then sort [10, 32)
    old, new = gpt2(22, seed=0), gpt2(32, seed=1)
    fresh = params(new)
    rows = transfer.row_map([IdRange("sort", 0, 22)], [IdRange("text", 0, 10), IdRange("sort", 10, 22)])
    assert rows == [(0, 10, 22)]
    transfer.apply_transfer(old, new, Transfer(embed_init="mean"), kind="gpt2", rows=rows)
    embed, old_embed = new.tok_embeddings.weight.detach(), old.tok_embeddings.weight.detach()
    assert torch.equal(embed[10:], old_embed)
    assert torch.allclose(embed[:10], old_embed.mean(0).expand(10, 16))
    head = new.output.weight.detach()
    assert torch.equal(head[10:], old.output.weight.detach())
    normal = gpt2(22, seed=0), gpt2(32, seed=1)
    transfer.apply_transfer(*normal, Transfer(), kind="gpt2", rows=rows)
    assert torch.equal(normal[1].tok_embeddings.weight.detach()[:10], fresh["tok_embeddings.weight"][:10])


def test_keeping_a_shape_change_is_refused():
    old = gpt2(20, seed=0)
    args = GPT2ModelArgs.from_shape(layers=2, heads=2, dim=16, vocab_size=20, context=32, mlp_ratio=2.0)
    new = GPT2(args)
    with pytest.raises(transfer.TransferError, match="mlp.up.weight"):
        transfer.apply_transfer(old, new, Transfer(), kind="gpt2")


def test_frozen_untouched_after_a_step():
    model = gpt2(20, seed=0)
    frozen = transfer.freeze(model, ["attn", "pos"], kind="gpt2")
    assert set(frozen) == set(of("attn", frozen) + of("pos", frozen)) and len(frozen) == 9
    before = params(model)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1
    )
    tokens = torch.randint(0, 20, (4, 9))
    loss = torch.nn.functional.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    after = params(model)
    for name in after:
        changed = not torch.equal(after[name], before[name])
        assert changed == (name not in frozen), name


def test_continue_optimizer_carries_state_when_shapes_allow():
    def stepped(model):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        tokens = torch.randint(0, model.model_args.vocab_size, (2, 9))
        model(tokens[:, :-1]).sum().backward()
        optimizer.step()
        return optimizer

    old, new = gpt2(20, seed=0), gpt2(24, seed=1)  # vocabulary grows: embed/head change shape
    old_opt = stepped(old)
    new_opt = torch.optim.AdamW(new.parameters(), lr=1e-2)
    carried = transfer.continue_optimizer(
        [old_opt], old, [new_opt], new, keep=("attn", "mlp", "norm", "pos", "embed"), kind="gpt2"
    )
    names = dict(new.named_parameters())
    assert "layers.0.attention.qkv.weight" in carried and "pos_embeddings.weight" in carried
    assert "tok_embeddings.weight" not in carried  # shape changed
    assert "output.weight" not in carried  # head was not kept
    state = new_opt.state[names["layers.0.mlp.up.weight"]]
    old_state = old_opt.state[dict(old.named_parameters())["layers.0.mlp.up.weight"]]
    assert state["exp_avg"] is old_state["exp_avg"]  # moved: the old optimizer is discarded
    assert names["tok_embeddings.weight"] not in new_opt.state


def test_llama_components():
    assert transfer.component_of("llama", "layers.0._checkpoint_wrapped_module.attention.wk.weight") == "attn"
    assert transfer.component_of("llama", "layers.2.ffn_norm.weight") == "norm"
    assert transfer.component_of("llama", "output.weight") == "head"
    with pytest.raises(KeyError):
        transfer.component_of("llama", "pos_embeddings.weight")


def test_perturbations_of_kept_weights():
    from procdsl.plan.model import Perturb

    old = gpt2(20, seed=0)
    spec = lambda **p: Transfer(perturb={k: Perturb(kind=v[0], amount=v[1]) for k, v in p.items()})  # noqa: E731
    runs = {}
    for label, transfer_spec in (
        ("plain", Transfer()),
        ("shuffle", spec(attn=("shuffle", None))),
        ("noise", spec(mlp=("noise", 0.5))),
        ("scale", spec(norm=("scale", 2.0))),
    ):
        new = gpt2(20, seed=1)
        transfer.apply_transfer(old, new, transfer_spec, kind="gpt2", seed=3)
        runs[label] = params(new)
    before = params(old)
    qkv = "layers.0.attention.qkv.weight"
    assert not torch.equal(runs["shuffle"][qkv], before[qkv])
    assert torch.equal(runs["shuffle"][qkv].flatten().sort().values, before[qkv].flatten().sort().values)
    up = "layers.1.mlp.up.weight"
    delta = runs["noise"][up] - before[up]
    assert delta.std().item() == pytest.approx(0.5 * before[up].std().item(), rel=0.1)
    assert torch.equal(runs["scale"]["norm.weight"], 2 * before["norm.weight"])
    for label in ("shuffle", "noise", "scale"):  # the other components are copied as they were
        assert torch.equal(runs[label]["pos_embeddings.weight"], before["pos_embeddings.weight"])
    again = gpt2(20, seed=1)
    transfer.apply_transfer(old, again, spec(mlp=("noise", 0.5)), kind="gpt2", seed=3)
    assert torch.equal(params(again)[up], runs["noise"][up])  # deterministic in the seed
