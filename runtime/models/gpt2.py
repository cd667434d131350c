"""GPT-2 (Radford et al., 2019) as a TorchTitan model: the paper's architecture at any size.

Pre-LayerNorm blocks, learned absolute position embeddings, causal self-attention through
``F.scaled_dot_product_attention``, a GELU (tanh) MLP of width ``mlp_ratio × dim`` (4),
biases on every linear layer, a final LayerNorm and an LM head, optionally tied to the token
embedding. Dropout (embeddings, attention, residuals) defaults to 0, as in the plan.

Contract with TorchTitan: :class:`GPT2` is a ``ModelProtocol`` built on the meta device from
:class:`GPT2ModelArgs`; ``init_weights()`` gives every parameter its value after
``to_empty`` (also on FSDP-sharded DTensors); ``forward(tokens) -> logits`` of shape
``(batch, seq, vocab)``. Blocks live in ``self.layers`` (a ``ModuleDict`` keyed "0", "1", …)
as TorchTitan's activation checkpointing, compile and FSDP helpers expect.

Contract with procdsl's ``transfer``: :func:`component_params` maps each component
(``embed, pos, attn, mlp, norm, head``) to the canonical parameter names it owns (by the
table of ``procdsl.runtime.models.kinds``), and
``GPT2.init_components`` re-initialises just those. With tied embeddings the head *is* the
token embedding: ``head`` owns no parameter and ``embed`` owns the shared matrix.

>>> args = GPT2ModelArgs.from_shape(layers=1, heads=2, dim=8, vocab_size=11, context=16,
...                                 tie_embeddings=True)
>>> {name: len(params) for name, params in component_params(args).items()}
{'embed': 1, 'pos': 1, 'attn': 4, 'mlp': 4, 'norm': 6, 'head': 0}
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchtitan.protocols.model import BaseModelArgs, ModelProtocol

from procdsl.plan import COMPONENTS

from ..flops import training_flops
from .kinds import GPT2 as GPT2_KIND


@dataclass
class GPT2ModelArgs(BaseModelArgs):
    """Shape of a GPT-2. ``max_seq_len`` sizes the position table (the curriculum's context)."""

    n_layers: int = 12
    n_heads: int = 12
    dim: int = 768
    vocab_size: int = 50257
    max_seq_len: int = 1024
    mlp_ratio: float = 4.0
    tie_embeddings: bool = False
    dropout: float = 0.0
    norm_eps: float = 1e-5
    init_std: float = 0.02

    @classmethod
    def from_shape(
        cls,
        *,
        layers: int,
        heads: int,
        dim: int,
        vocab_size: int,
        context: int,
        mlp_ratio: float = 4.0,
        tie_embeddings: bool = False,
        dropout: float = 0.0,
    ) -> GPT2ModelArgs:
        """Build from the plan's ``model`` (``layers, heads, dim, mlp_ratio, tie_embeddings,
        dropout``) plus the tokenizer's vocabulary size and the largest phase context."""
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        return cls(
            n_layers=layers,
            n_heads=heads,
            dim=dim,
            vocab_size=vocab_size,
            max_seq_len=context,
            mlp_ratio=mlp_ratio,
            tie_embeddings=tie_embeddings,
            dropout=dropout,
        )

    def update_from_config(self, job_config, **kwargs) -> None:
        """Check the run's sequence length fits the learned position table (never resizes it)."""
        del kwargs
        seq_len = job_config.training.seq_len
        if seq_len > self.max_seq_len:
            raise ValueError(
                f"training.seq_len {seq_len} exceeds the model's position table "
                f"({self.max_seq_len}); build the model with a larger context"
            )

    def get_nparams_and_flops(self, model: nn.Module, seq_len: int) -> tuple[int, int]:
        """Parameters, and training FLOPs per token: 6·(matmul params incl. head) + 12·L·dim·T."""
        nparams = sum(p.numel() for p in model.parameters())  # tied weights counted once
        embedding = self.vocab_size * self.dim + self.max_seq_len * self.dim
        matmul = nparams - embedding + (self.vocab_size * self.dim if self.tie_embeddings else 0)
        return nparams, training_flops(matmul, layers=self.n_layers, dim=self.dim, seq_len=seq_len)


def component_params(args: GPT2ModelArgs) -> dict[str, tuple[str, ...]]:
    """For each component in ``COMPONENTS`` order, the canonical parameter names it owns."""
    names = ["tok_embeddings.weight", "pos_embeddings.weight"]
    for i in range(args.n_layers):
        for module in ("attention_norm", "attention.qkv", "attention.out", "mlp_norm", "mlp.up", "mlp.down"):
            names += [f"layers.{i}.{module}.weight", f"layers.{i}.{module}.bias"]
    names += ["norm.weight", "norm.bias"]
    if not args.tie_embeddings:
        names.append("output.weight")
    owned: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    for name in names:
        owned[GPT2_KIND.component_of(name)].append(name)
    return {c: tuple(ps) for c, ps in owned.items()}


class Attention(nn.Module):
    """Multi-head causal self-attention (fused QKV projection, SDPA kernel)."""

    def __init__(self, args: GPT2ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.dropout_p = args.dropout
        self.qkv = nn.Linear(args.dim, 3 * args.dim)
        self.out = nn.Linear(args.dim, args.dim)
        self.resid_dropout = nn.Dropout(args.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: None for plain causal attention, else ``[b, 1, T, T]`` bool (True =
        attend) from :func:`document_mask`."""
        bs, seqlen, dim = x.shape
        q, k, v = self.qkv(x).view(bs, seqlen, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=mask is None,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return self.resid_dropout(self.out(y.transpose(1, 2).reshape(bs, seqlen, dim)))


class MLP(nn.Module):
    """``dim → mlp_ratio·dim → GELU(tanh) → dim``."""

    def __init__(self, args: GPT2ModelArgs):
        super().__init__()
        hidden = int(args.mlp_ratio * args.dim)
        self.up = nn.Linear(args.dim, hidden)
        self.down = nn.Linear(hidden, args.dim)
        self.dropout = nn.Dropout(args.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.up(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, args: GPT2ModelArgs):
        super().__init__()
        self.attention_norm = nn.LayerNorm(args.dim, eps=args.norm_eps)
        self.attention = Attention(args)
        self.mlp_norm = nn.LayerNorm(args.dim, eps=args.norm_eps)
        self.mlp = MLP(args)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), mask)
        return x + self.mlp(self.mlp_norm(x))


class GPT2(ModelProtocol):
    """GPT-2 language model; see the module docstring for the contract."""

    def __init__(self, model_args: GPT2ModelArgs):
        super().__init__(model_args)
        self.model_args = model_args
        self.tok_embeddings = nn.Embedding(model_args.vocab_size, model_args.dim)
        self.pos_embeddings = nn.Embedding(model_args.max_seq_len, model_args.dim)
        self.dropout = nn.Dropout(model_args.dropout)
        self.layers = nn.ModuleDict({str(i): Block(model_args) for i in range(model_args.n_layers)})
        self.norm = nn.LayerNorm(model_args.dim, eps=model_args.norm_eps)
        # Tied: the head multiplies by the embedding matrix directly. Sharing one Parameter
        # between two modules does not survive `to_empty()` after meta-device construction.
        self.output = (
            None
            if model_args.tie_embeddings
            else nn.Linear(model_args.dim, model_args.vocab_size, bias=False)
        )

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,
        document: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[b, T, vocab]``. ``positions``/``document`` (``[b, T]``, from a packed row)
        restart positions per unit and keep attention inside each unit; without them every
        row is one causal sequence from position 0."""
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
        mask = None if document is None else document_mask(document)
        h = self.dropout(self.tok_embeddings(tokens) + self.pos_embeddings(positions))
        for layer in self.layers.values():
            h = layer(h, mask)
        h = self.norm(h)
        return F.linear(h, self.tok_embeddings.weight) if self.output is None else self.output(h)

    def init_weights(self, buffer_device: torch.device | None = None) -> None:
        """Initialise every parameter (GPT-2's scheme); GPT-2 has no buffers to place."""
        del buffer_device
        self.init_components(COMPONENTS)

    @torch.no_grad()
    def init_components(self, components: Iterable[str]) -> None:
        """Re-initialise the parameters of the named components, leaving the others as they are.

        Linear weights ~ N(0, 0.02); the two residual projections per block ~ N(0, 0.02/√(2L));
        token embedding N(0, 0.02), positions N(0, 0.01) (GPT-2's release); biases 0;
        LayerNorm weight 1, bias 0. The head of an untied model ~ N(0, 0.02).
        """
        wanted = set(components)
        if unknown := wanted - set(COMPONENTS):
            raise ValueError(f"unknown components {sorted(unknown)}; known: {list(COMPONENTS)}")
        std = self.model_args.init_std
        residual_std = std / math.sqrt(2 * self.model_args.n_layers)
        if "embed" in wanted:
            nn.init.normal_(self.tok_embeddings.weight, std=std)
        if "pos" in wanted:
            nn.init.normal_(self.pos_embeddings.weight, std=std / 2)
        for block in self.layers.values():
            if "attn" in wanted:
                _init_linear(block.attention.qkv, std)
                _init_linear(block.attention.out, residual_std)
            if "mlp" in wanted:
                _init_linear(block.mlp.up, std)
                _init_linear(block.mlp.down, residual_std)
            if "norm" in wanted:
                block.attention_norm.reset_parameters()
                block.mlp_norm.reset_parameters()
        if "norm" in wanted:
            self.norm.reset_parameters()
        if "head" in wanted and self.output is not None:
            nn.init.normal_(self.output.weight, std=std)


def document_mask(document: torch.Tensor) -> torch.Tensor:
    """``[b, 1, T, T]`` bool for SDPA: query ``t`` attends to key ``u`` iff ``u ≤ t`` and both
    lie in the same unit (``document[b, t] == document[b, u]``).

    >>> document_mask(torch.tensor([[0, 0, 1]]))[0, 0].int().tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    seq = document.shape[1]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=document.device).tril()
    return ((document[:, :, None] == document[:, None, :]) & causal)[:, None]


def _init_linear(linear: nn.Linear, std: float) -> None:
    nn.init.normal_(linear.weight, std=std)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
