"""Attention entropy per layer and head: the ``attention_entropy(SOURCE, batches=N)`` eval.

The models attend through fused SDPA kernels that never materialise the attention weights, so
:func:`recording` hooks every attention module (a forward *pre*-hook: it runs inside the
block's forward, where FSDP has gathered the parameters) and recomputes the queries and keys
from the module's own input: GPT-2's fused QKV projection; llama's ``wq``/``wk`` with RoPE,
its key heads repeated for grouped queries. For each causal attention row ``t`` (query ``t``
over keys ``0…t``) it adds the entropy ``-Σ p log p`` (nats) to a per-(layer, head) sum.
The mean over rows is what the eval logs; a row that attends to a single key has entropy 0,
a uniform row over ``t + 1`` keys has ``log(t + 1)``. Compiled blocks run eagerly while
recording (``torch.compiler.set_stance("force_eager")``), or the hooks would not fire.

>>> import torch
>>> q = torch.zeros(1, 1, 3, 4); k = torch.randn(1, 1, 3, 4)   # zero queries: uniform rows
>>> round(float(row_entropy(q, k)[0]), 4) == round(0 + math.log(2) + math.log(3), 4)
True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch


def row_entropy(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per head, the sum over batch and query positions of causal attention-row entropies.

    ``q``, ``k``: ``[batch, heads, seq, head_dim]``; scaled dot products, causal mask, or
    ``mask`` (``[batch, 1, seq, seq]`` bool, True = attend: a packed row's document mask).
    """
    seq, head_dim = q.shape[-2], q.shape[-1]
    scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(head_dim)
    if mask is None:
        future = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(1)
    else:
        future = ~mask
    logp = scores.masked_fill(future, float("-inf")).log_softmax(-1)
    plogp = torch.where(future, torch.zeros_like(logp), logp.exp() * logp)
    return -plogp.sum(-1).sum((0, 2)).double()


class EntropySums:
    """Running sums: ``sums[layer, head]`` of row entropies over ``rows`` attention rows."""

    def __init__(self, layers: int):
        self.per_layer: list[torch.Tensor | None] = [None] * layers
        self.rows = 0

    def add(self, layer: int, value: torch.Tensor, rows: int) -> None:
        value = value.detach().cpu()
        current = self.per_layer[layer]
        self.per_layer[layer] = value if current is None else current + value
        if layer == 0:
            self.rows += rows

    def tensor(self) -> torch.Tensor:
        """``[layers, heads + 1]``: the sums, and the row count in the last column."""
        sums = torch.stack(
            [s if s is not None else torch.zeros(0, dtype=torch.float64) for s in self.per_layer]
        )
        rows = torch.full((sums.shape[0], 1), float(self.rows), dtype=torch.float64)
        return torch.cat([sums, rows], dim=1)


def _gpt2_qk(module: Any, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor, Any]:
    x = args[0]
    mask = args[1] if len(args) > 1 else kwargs.get("mask")
    bs, seq, _ = x.shape
    q, k, _ = module.qkv(x).view(bs, seq, 3, module.n_heads, -1).permute(2, 0, 3, 1, 4)
    return q, k, mask


def _llama_qk(module: Any, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    from torchtitan.models.llama3.model.model import apply_rotary_emb

    names = ("x", "freqs_cis", "attention_masks", "positions")
    bound = dict(zip(names, args)) | kwargs
    x = bound["x"]
    bs, seq, _ = x.shape
    xq = module.wq(x).view(bs, seq, -1, module.head_dim)
    xk = module.wk(x).view(bs, seq, -1, module.head_dim)
    xq, xk = apply_rotary_emb(xq, xk, freqs_cis=bound["freqs_cis"], positions=bound.get("positions"))
    q, k = xq.transpose(1, 2), xk.transpose(1, 2)
    # a packed row's flex BlockMask is not recomputed here: entropies are over causal rows
    return q, k.repeat_interleave(q.shape[1] // k.shape[1], dim=1), None


def _attention_modules(model: torch.nn.Module, kind: str) -> list[torch.nn.Module]:
    if kind == "gpt2":
        from .models.gpt2 import Attention
    else:
        from torchtitan.models.llama3.model.model import Attention
    found = []
    for block in model.layers.values():
        found += [m for m in block.modules() if isinstance(m, Attention)]
    return found


@contextlib.contextmanager
def recording(model: torch.nn.Module, kind: str) -> Iterator[EntropySums]:
    """Collect attention-row entropies of every forward pass run inside the ``with`` block."""
    modules = _attention_modules(model, kind)
    sums = EntropySums(len(modules))
    qk = _gpt2_qk if kind == "gpt2" else _llama_qk

    def hook_for(layer: int):
        def hook(module, args, kwargs):
            with torch.no_grad():
                q, k, mask = qk(module, args, kwargs)
                sums.add(layer, row_entropy(q, k, mask), rows=q.shape[0] * q.shape[2])

        return hook

    handles = [m.register_forward_pre_hook(hook_for(i), with_kwargs=True) for i, m in enumerate(modules)]
    try:
        # compiled blocks would run their graphs without calling the hooks: run them eagerly
        with torch.compiler.set_stance("force_eager"):
            yield sums
    finally:
        for handle in handles:
            handle.remove()


def entropy_stats(reduced: torch.Tensor) -> dict[str, float]:
    """From :meth:`EntropySums.tensor` summed over ranks: the mean, and one value per layer/head.

    >>> entropy_stats(torch.tensor([[2.0, 4.0, 2.0], [0.0, 2.0, 2.0]], dtype=torch.float64))
    {'attention_entropy': 1.0, 'attention_entropy/layer0/head0': 1.0, 'attention_entropy/layer0/head1': 2.0, 'attention_entropy/layer1/head0': 0.0, 'attention_entropy/layer1/head1': 1.0}
    """
    sums, rows = reduced[:, :-1], reduced[:, -1:]
    means = sums / rows.clamp(min=1)
    out = {"attention_entropy": float(means.mean())}
    for layer, row in enumerate(means.tolist()):
        for head, value in enumerate(row):
            out[f"attention_entropy/layer{layer}/head{head}"] = value
    return out
