"""One table per model kind (``gpt2``, ``llama``): parameters → transfer components, parameter counts.

Everything the runtime knows about a model kind's parameters, counted from the plan's shape
without building it (torch-free: ``procdsl plan`` counts parameters without torch):

* :meth:`ModelKind.component_of` — which transfer component (``embed pos attn mlp norm head``,
  ``procdsl.plan.COMPONENTS``) owns a parameter, by its canonical name;
* :func:`canonical` — a parameter name without the infixes activation checkpointing, compile
  and FSDP wrappers add (every name is stripped here, nowhere else);
* :meth:`ModelKind.count` — the parameters the built model allocates (``procdsl.runtime.flops``
  turns them into FLOPs; tests check the count against the built model).

>>> KINDS["llama"].component_of("layers.0._checkpoint_wrapped_module.attention.wk.weight")
'attn'
>>> from procdsl.plan import Gpt2Model
>>> kind_of("gpt2").count(Gpt2Model(layers=1, heads=1, dim=8, tie_embeddings=False), vocab=10, context=4)
ParamCount(params=1080, embedding=112, dense=968)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

_WRAPPERS = re.compile(r"(_checkpoint_wrapped_module|_orig_mod|_fsdp_wrapped_module)\.")


@dataclass(frozen=True)
class ParamCount:
    """``params`` in total; ``embedding`` in lookup tables; ``dense`` = the rest (matmuls, norms)."""

    params: int
    embedding: int
    dense: int


def canonical(name: str) -> str:
    """A parameter name without the infixes that activation checkpointing and compile add.

    >>> canonical("layers.0._checkpoint_wrapped_module._orig_mod.mlp.up.weight")
    'layers.0.mlp.up.weight'
    """
    return _WRAPPERS.sub("", name)


@dataclass(frozen=True)
class ModelKind:
    """A model kind: its parameter → component table and its parameter count."""

    name: str
    #: (pattern of a canonical parameter name, component) pairs
    components: tuple[tuple[re.Pattern[str], str], ...]
    count_fn: Callable[[Any, int, int], ParamCount]

    def component_of(self, name: str) -> str:
        """The transfer component owning parameter ``name`` (wrapper infixes ignored); KeyError if none."""
        plain = canonical(name)
        for pattern, component in self.components:
            if pattern.fullmatch(plain):
                return component
        raise KeyError(f"parameter {name!r} belongs to no {self.name} component")

    def count(self, model: Any, *, vocab: int, context: int) -> ParamCount:
        """Parameters of ``model`` (the plan's model of this kind) at this vocabulary size."""
        return self.count_fn(model, vocab, context)


def llama_ffn_hidden(dim: int, multiple_of: int, ffn_dim_multiplier: Optional[float]) -> int:
    """TorchTitan llama3's feed-forward width: ⅔ of 4·dim, scaled, rounded up to ``multiple_of``.

    >>> llama_ffn_hidden(256, 256, None), llama_ffn_hidden(4096, 1024, 1.3)
    (768, 14336)
    """
    hidden = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def _gpt2_count(model: Any, vocab: int, context: int) -> ParamCount:
    d = model.dim
    hidden = int(model.mlp_ratio * d)
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d)
    embedding = vocab * d + context * d
    head = 0 if model.tie_embeddings else vocab * d
    dense = model.layers * block + 2 * d + head
    tied = vocab * d if model.tie_embeddings else 0  # the shared matrix also multiplies, as the head
    return ParamCount(embedding + dense, embedding, dense + tied)


def _llama_count(model: Any, vocab: int, context: int) -> ParamCount:
    del context  # rotary positions: no table
    d = model.dim
    kv = (model.kv_heads or model.heads) * (d // model.heads)
    hidden = llama_ffn_hidden(d, model.multiple_of, model.ffn_dim_multiplier)
    block = 2 * d + d * d + 2 * d * kv + d * d + 3 * d * hidden
    embedding = vocab * d
    dense = model.layers * block + d + vocab * d
    return ParamCount(embedding + dense, embedding, dense)


GPT2 = ModelKind(
    "gpt2",
    (
        (re.compile(r"tok_embeddings\.weight"), "embed"),
        (re.compile(r"pos_embeddings\.weight"), "pos"),
        (re.compile(r"layers\.\d+\.attention\.(qkv|out)\.(weight|bias)"), "attn"),
        (re.compile(r"layers\.\d+\.mlp\.(up|down)\.(weight|bias)"), "mlp"),
        (re.compile(r"(layers\.\d+\.(attention_norm|mlp_norm)|norm)\.(weight|bias)"), "norm"),
        (re.compile(r"output\.weight"), "head"),
    ),
    _gpt2_count,
)

LLAMA = ModelKind(
    "llama",
    (
        (re.compile(r"tok_embeddings\.weight"), "embed"),
        (re.compile(r"layers\.\d+\.attention\.(wq|wk|wv|wo)\.weight"), "attn"),
        (re.compile(r"layers\.\d+\.feed_forward\.(w1|w2|w3)\.weight"), "mlp"),
        (re.compile(r"(layers\.\d+\.(attention_norm|ffn_norm)|norm)\.weight"), "norm"),
        (re.compile(r"output\.weight"), "head"),
    ),
    _llama_count,
)

KINDS = {kind.name: kind for kind in (GPT2, LLAMA)}


def kind_of(name: str) -> ModelKind:
    """The table of model kind ``name``; ValueError for an unknown kind."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}") from None
